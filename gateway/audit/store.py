"""What every audit store offers to the tools that read it (verify, seal, search, report, archive).

Both stores (SQLite, PostgreSQL) hold the same four tables:

``audit_log``    one row per call: the content columns, then ``chain``, ``seq``,
                 ``segment``, ``prev_hash``, ``row_hash``
``audit_seal``   one row per sealed segment (see seal.py), plus where its
                 archive went once its records were purged
``audit_chain``  one row per chain: its head (last seq, hash, segment) and how
                 far it is sealed; updated in the same transaction as the records
``audit_meta``   the key fingerprint and schema version

:class:`SqlReader` holds the SQL the two stores share; a store supplies how
a statement is run (``?`` placeholders, converted for PostgreSQL) and the
qualified table names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.audit.chain import Head, record_hash
from gateway.audit.record import CONTENT_COLUMNS, Content
from gateway.audit.seal import SEAL_COLUMNS, Seal

__all__ = [
    "ALL_COLUMNS",
    "LateCommit",
    "SegmentSpan",
    "SqlReader",
    "StoreError",
    "StoredRecord",
    "quoted",
]


class StoreError(Exception):
    """The store can not be reached or written; the message is safe to show."""


class LateCommit(Exception):
    """A batch reached its commit after its callers' deadline: rolled back, not committed."""


def quoted(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


ALL_COLUMNS: tuple[str, ...] = (
    "id",
    *CONTENT_COLUMNS,
    "chain",
    "seq",
    "segment",
    "prev_hash",
    "row_hash",
)
_N = len(CONTENT_COLUMNS)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    id: int
    content: Content
    chain: str | None
    seq: int | None
    segment: str | None
    prev_hash: str | None
    row_hash: str | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> StoredRecord:
        c = tuple(row[1 : 1 + _N])
        return cls(row[0], c, *row[1 + _N : 6 + _N])

    @property
    def ts(self) -> str:
        return str(self.content[0])

    @property
    def request_id(self) -> str:
        return str(self.content[1])

    def computed_hash(self) -> str | None:
        if self.prev_hash is None or self.chain is None or self.segment is None:
            return None
        return record_hash(self.prev_hash, self.chain, self.segment, self.content)

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(ALL_COLUMNS, (self.id, *self.content, *self.chain_values()), strict=True))

    def chain_values(self) -> tuple[Any, ...]:
        return (self.chain, self.seq, self.segment, self.prev_hash, self.row_hash)


@dataclass(frozen=True, slots=True)
class SegmentSpan:
    label: str
    min_seq: int
    max_seq: int
    count: int


class SqlReader:
    """Reads shared by both stores; subclasses run the statements."""

    log = "audit_log"
    seal_table = "audit_seal"
    chain_table = "audit_chain"
    meta_table = "audit_meta"
    page = 1000  # records per query when reading a segment: bounds the memory of a pass

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql.format(
            log=self.log, seal=self.seal_table, chain=self.chain_table, meta=self.meta_table
        )

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._rows(self._sql(sql), params)

    def close(self) -> None:
        raise NotImplementedError

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        """Every read inside sees the store as of one moment, whatever is appended meanwhile."""
        raise NotImplementedError

    # -- chain structure ---------------------------------------------------------

    def chains(self, *, scan: bool = False) -> list[str]:
        """Chains with a head or a seal; ``scan`` also finds chains only the records name."""
        sql = "SELECT chain FROM {chain} UNION SELECT chain FROM {seal}"
        if scan:  # a full index scan: for verify, not for the sealer that runs every minute
            sql += " UNION SELECT DISTINCT chain FROM {log} WHERE chain IS NOT NULL"
        return sorted({r[0] for r in self.rows(sql) if r[0] is not None})

    def head(self, chain: str) -> Head | None:
        rows = self.rows(
            "SELECT head_seq, head_hash, head_segment, sealed_segment FROM {chain} WHERE chain = ?",
            (chain,),
        )
        return Head(*rows[0]) if rows else None

    def seals(self, chain: str) -> list[Seal]:
        rows = self.rows(
            f"SELECT {quoted(SEAL_COLUMNS)}, archive, archive_sha256 FROM {{seal}} "
            "WHERE chain = ? ORDER BY first_seq, segment",
            (chain,),
        )
        n = len(SEAL_COLUMNS)
        return [Seal.from_values(r[:n], r[n], r[n + 1]) for r in rows]

    def last_seal(self, chain: str) -> Seal | None:
        rows = self.rows(
            f"SELECT {quoted(SEAL_COLUMNS)}, archive, archive_sha256 FROM {{seal}} "
            "WHERE chain = ? ORDER BY first_seq DESC LIMIT 1",
            (chain,),
        )
        n = len(SEAL_COLUMNS)
        return Seal.from_values(rows[0][:n], rows[0][n], rows[0][n + 1]) if rows else None

    def tail_segments(self, chain: str, after_seq: int) -> list[SegmentSpan]:
        """Segments after position ``after_seq``, found by index look-ups, not a scan."""
        spans: list[SegmentSpan] = []
        seq = after_seq + 1
        # the chain as it is now: records appended while it is read are for the next look
        top = self.rows("SELECT max(seq) FROM {log} WHERE chain = ?", (chain,))[0][0]
        for _ in range(10_000):
            if top is None or seq > top:
                return spans
            at = self.rows("SELECT segment FROM {log} WHERE chain = ? AND seq = ?", (chain, seq))
            if not at:
                nxt = self.rows(
                    "SELECT min(seq) FROM {log} WHERE chain = ? AND seq > ?", (chain, seq)
                )
                if not nxt or nxt[0][0] is None:
                    return spans
                seq = int(nxt[0][0])  # a gap: the sealer's check of that segment reports it
                continue
            label = at[0][0]
            lo, hi, n = self.rows(
                "SELECT min(seq), max(seq), count(*) FROM {log} "
                "WHERE chain = ? AND segment = ? AND seq <= ?",
                (chain, label, top),
            )[0]
            span = SegmentSpan(label, int(lo), int(hi), int(n))
            if spans and spans[-1].label == label:
                spans[-1] = span  # the open segment grew while it was read
            elif any(s.label == label for s in spans) or span.max_seq < seq:
                return spans  # a label out of order: the check of the segment reports it
            else:
                spans.append(span)
            seq = span.max_seq + 1
        return spans

    def segments(self, chain: str) -> list[SegmentSpan]:
        rows = self.rows(
            "SELECT segment, min(seq), max(seq), count(*) FROM {log} WHERE chain = ? "
            "GROUP BY segment ORDER BY min(seq)",
            (chain,),
        )
        return [SegmentSpan(*r) for r in rows]

    def segment_records(self, chain: str, segment: str) -> Iterator[StoredRecord]:
        """The records labelled ``segment``, by position; read a page at a time."""
        cols = quoted(ALL_COLUMNS)
        first = self.rows(
            f"SELECT {cols} FROM {{log}} WHERE chain = ? AND segment = ? "
            f"ORDER BY seq, id LIMIT {self.page}",
            (chain, segment),
        )
        batch = first
        while batch:
            for row in batch:
                yield StoredRecord.from_row(row)
            if len(batch) < self.page:
                return
            last = StoredRecord.from_row(batch[-1])
            batch = self.rows(
                f"SELECT {cols} FROM {{log}} WHERE chain = ? AND segment = ? "
                f"AND (seq, id) > (?, ?) ORDER BY seq, id LIMIT {self.page}",
                (chain, segment, last.seq, last.id),
            )

    def unchained(self, limit: int = 100) -> list[tuple[int, str]]:
        """Rows that have no place in any chain: written around the gateway."""
        rows = self.rows(
            "SELECT id, request_id FROM {log} WHERE chain IS NULL OR seq IS NULL "
            f"OR segment IS NULL OR prev_hash IS NULL OR row_hash IS NULL ORDER BY id LIMIT {limit}"
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    def meta(self, key: str) -> str | None:
        rows = self.rows("SELECT value FROM {meta} WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    # -- queries for search, export and reports -------------------------------------

    def select(
        self,
        columns: Sequence[str],
        where: str,
        params: Sequence[Any],
        *,
        order: str = "ts, id",
        limit: int | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Rows in ``order`` (``ts, id``), read with keyset paging so memory stays flat."""
        cols = quoted(("ts", "id", *columns))
        if order != "ts, id":
            raise ValueError("only ts order is supported")
        cond = f"({where})" if where else "1 = 1"
        after: tuple[Any, ...] | None = None
        left = limit
        while left is None or left > 0:
            size = self.page if left is None else min(self.page, left)
            # a row value: both SQLite and PostgreSQL turn it into an index range
            page_where = cond if after is None else f"{cond} AND (ts, id) > (?, ?)"
            page_params = list(params) if after is None else [*params, *after]
            batch = self.rows(
                f"SELECT {cols} FROM {{log}} WHERE {page_where} ORDER BY ts, id LIMIT {size}",
                page_params,
            )
            for row in batch:
                yield row[2:]
            if len(batch) < size:
                return
            after = (batch[-1][0], batch[-1][1])
            if left is not None:
                left -= len(batch)
