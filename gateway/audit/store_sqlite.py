"""The embedded audit store: one SQLite file in WAL mode.

All statements run on plain ``sqlite3`` connections.  The gateway's writer
runs them on one dedicated thread (one hop per batch: begin, read the chain
head, link, insert, move the head, commit), so the event loop never waits on
the disk.  Several worker processes may share the file: they take turns on
the ``<file>-writers`` lock, ``BEGIN IMMEDIATE`` serialises their appends
against any other writer, and each reads the chain head inside its own
transaction, so they extend one chain without a fork.

A SQLite transaction is atomic on a crash (even ``kill -9`` mid-commit): a
batch is either wholly in the file, with the chain head that points at it,
or not at all.  That is why a torn last batch never breaks the chain.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from gateway.audit.chain import Head, Segmenter, link
from gateway.audit.record import CHAIN_COLUMNS, CONTENT_COLUMNS, Content
from gateway.audit.seal import SEAL_COLUMNS, Seal
from gateway.audit.store import LateCommit, SqlReader, StoreError, quoted
from gateway.security.files import create_private, exposed
from gateway.turns import Turns

log = logging.getLogger("lc2_gateway.audit")

__all__ = ["SCHEMA", "KeyMismatch", "SqliteStore", "SqliteWriterStore"]

T = TypeVar("T")
SCHEMA_VERSION = "2"
_WAL_KEPT = 64 * 1024 * 1024  # bytes of WAL file kept after a checkpoint
# Below this much free space on the audit volume the WAL is emptied (checkpoint, truncate)
# after every commit: between automatic checkpoints it grows to about 4 MiB (1000 pages),
# which a nearly full volume can not hold, and it would eat whatever space is freed.
LOW_SPACE = 64 * 1024 * 1024

_TABLES = [
    """CREATE TABLE IF NOT EXISTS audit_log (
    id           INTEGER PRIMARY KEY,
    ts           TEXT    NOT NULL,  -- ISO 8601, UTC, milliseconds
    request_id   TEXT    NOT NULL,
    consumer     TEXT,
    office       TEXT,
    officer      TEXT,              -- the officer acts in office: kept in clear
    client_ip    TEXT,
    user_agent   TEXT,
    method       TEXT    NOT NULL,
    path         TEXT    NOT NULL,  -- citizen IDs in paths are masked
    service      TEXT    NOT NULL,
    kind         TEXT    NOT NULL,  -- data | sandbox | unrouted
    sandbox      INTEGER NOT NULL,
    subject_hash TEXT,              -- HMAC-SHA256(key, queried citizen ID), hex
    subject_hint TEXT,              -- masked citizen ID, for a person reading the trail
    params       TEXT    NOT NULL,  -- JSON, each parameter per its audit mode
    status       INTEGER NOT NULL,
    code         TEXT    NOT NULL,
    rows         INTEGER NOT NULL,
    latency_ms   REAL    NOT NULL,
    backend_ms   REAL,
    error        TEXT,
    chain        TEXT,              -- the writer's chain (audit.instance)
    seq          INTEGER,           -- position in the chain: 1, 2, 3 ...
    segment      TEXT,              -- sealing period: 2026-10-14 (or 2026-10-14T09)
    prev_hash    TEXT,              -- row_hash of the record before
    row_hash     TEXT               -- see gateway/audit/chain.py
)""",
    """CREATE TABLE IF NOT EXISTS audit_seal (
    chain TEXT NOT NULL, segment TEXT NOT NULL,
    first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, "count" INTEGER NOT NULL,
    first_ts TEXT NOT NULL, last_ts TEXT NOT NULL,
    prev_hash TEXT NOT NULL, last_hash TEXT NOT NULL, prev_seal TEXT NOT NULL,
    sealed_at TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL,
    seal_hash TEXT NOT NULL,
    archive TEXT, archive_sha256 TEXT, archived_at TEXT,
    PRIMARY KEY (chain, segment)
)""",
    """CREATE TABLE IF NOT EXISTS audit_chain (
    chain TEXT PRIMARY KEY, head_seq INTEGER NOT NULL, head_hash TEXT NOT NULL,
    head_segment TEXT, sealed_seq INTEGER NOT NULL DEFAULT 0, sealed_segment TEXT,
    seal_hash TEXT
)""",
    "CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]
_INDEXES = [
    "CREATE INDEX IF NOT EXISTS audit_log_subject ON audit_log (subject_hash)",
    "CREATE INDEX IF NOT EXISTS audit_log_ts ON audit_log (ts)",
    "CREATE INDEX IF NOT EXISTS audit_log_officer ON audit_log (officer, ts)",
    "CREATE INDEX IF NOT EXISTS audit_log_office ON audit_log (office, ts)",
    "CREATE UNIQUE INDEX IF NOT EXISTS audit_log_chain_seq ON audit_log (chain, seq)",
    "CREATE INDEX IF NOT EXISTS audit_log_segment ON audit_log (chain, segment, seq)",
]
SCHEMA = ";\n".join(_TABLES + _INDEXES) + ";\n"
_CHAIN_TYPES = {"chain": "TEXT", "seq": "INTEGER", "segment": "TEXT"}

_WIDTH = len(CONTENT_COLUMNS) + len(CHAIN_COLUMNS)
_ROW = f"({', '.join('?' * _WIDTH)})"
# A batch goes in as one multi-row INSERT (chunks of at most _ROWS_PER_INSERT records), not
# as executemany: each statement step lets go of the GIL and takes it back, and every
# take-back stalls the event loop's thread; one step per chunk instead of one per record.
_ROWS_PER_INSERT = 64


@functools.cache
def _insert(rows: int) -> str:
    values = ", ".join([_ROW] * rows)
    return f"INSERT INTO audit_log ({quoted(CONTENT_COLUMNS + CHAIN_COLUMNS)}) VALUES {values}"


_HEAD = "SELECT head_seq, head_hash, head_segment, sealed_segment FROM audit_chain WHERE chain = ?"
_MOVE_HEAD = (
    "INSERT INTO audit_chain (chain, head_seq, head_hash, head_segment) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (chain) DO UPDATE SET head_seq = excluded.head_seq, "
    "head_hash = excluded.head_hash, head_segment = excluded.head_segment"
)


class KeyMismatch(RuntimeError):
    """The store was written under another citizen-ID key: refuse to start."""


class SqliteStore(SqlReader):
    """A connection to the file; every method is synchronous."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._turns = Turns(path)
        # an SQLite older than 3.32 binds at most 999 values a statement
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._rows_per_insert = max(1, min(_ROWS_PER_INSERT, limit // _WIDTH))

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        synchronous: str = "full",
        create: bool = False,
        busy_ms: int = 2000,
        cache_kib: int = 2000,
    ) -> SqliteStore:
        if not create and not path.exists():
            raise StoreError(f"no audit store at {path}")
        try:
            if create:
                create_private(path)  # officers' IDs: 0600 whatever the umask
            exposure = exposed(path)
            if exposure is not None:
                log.error(
                    "audit store %s is readable by others (%s): chmod 600 it and its -wal/-shm",
                    path,
                    exposure,
                )
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            # Memory bounds that do not depend on how SQLite was built: the page cache of
            # this connection, and the WAL file cut back after a checkpoint (it never
            # shrinks otherwise, and keeps the size of its busiest moment).
            conn.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
            conn.execute(f"PRAGMA journal_size_limit={_WAL_KEPT}")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"audit store {path}: {exc}") from exc
        return cls(conn, path)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return [tuple(r) for r in self.conn.execute(sql, tuple(params)).fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"audit store {self.path}: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        self._turns.close()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        # One read transaction: in WAL mode it reads one snapshot of the file from its
        # first SELECT to its end; the writers go on appending beside it.
        try:
            self.conn.execute("BEGIN DEFERRED")
        except sqlite3.Error as exc:
            raise StoreError(f"audit store {self.path}: {exc}") from exc
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("COMMIT")

    def checkpoint(self) -> None:
        """Committed WAL into the file, the WAL truncated; a partial one when readers hold it."""
        with contextlib.suppress(sqlite3.Error):  # at worst the WAL stays as it is
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _transaction(self, fn: Callable[[], T]) -> T:
        with self._turns.transaction(self.conn):  # every writer queues (gateway/turns.py)
            return fn()

    # -- schema, key, migration ------------------------------------------------------

    def prepare(self, fingerprint: str, chain: str, segmenter: Segmenter) -> None:
        """Create or upgrade the schema; refuse a different citizen-ID key."""

        def run() -> None:
            c = self.conn
            for ddl in _TABLES:
                c.execute(ddl)
            have = {r[1] for r in c.execute("PRAGMA table_info(audit_log)")}
            for col in CHAIN_COLUMNS:
                if col not in have:  # a store written before chaining existed
                    kind = _CHAIN_TYPES.get(col, "TEXT")
                    c.execute(f"ALTER TABLE audit_log ADD COLUMN {col} {kind}")
            for ddl in _INDEXES:
                c.execute(ddl)
            meta = dict(c.execute("SELECT key, value FROM audit_meta").fetchall())
            stored = meta.get("key_fingerprint")
            if stored is None:
                c.executemany(
                    "INSERT INTO audit_meta (key, value) VALUES (?, ?)",
                    [("key_fingerprint", fingerprint), ("schema_version", SCHEMA_VERSION)],
                )
            elif stored != fingerprint:
                raise KeyMismatch(
                    f"audit key does not match the one {self.path} was written with; "
                    "restore the original key (audit.key / audit.key_file)"
                )
            elif meta.get("schema_version") == "1":
                # Only once, during the upgrade: rows without a place in the chain found
                # later were written around the gateway and are reported, never adopted.
                self._chain_legacy_rows(chain, segmenter)
                c.execute(
                    "UPDATE audit_meta SET value = ? WHERE key = 'schema_version'",
                    (SCHEMA_VERSION,),
                )

        try:
            self._transaction(run)
        except sqlite3.Error as exc:
            raise StoreError(f"audit store {self.path}: {exc}") from exc

    def _chain_legacy_rows(self, chain: str, segmenter: Segmenter) -> None:
        import datetime as dt

        c = self.conn
        cols = quoted(CONTENT_COLUMNS)
        while True:
            batch = c.execute(
                f"SELECT id, {cols} FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT 5000"
            ).fetchall()
            if not batch:
                return
            head = self._head(chain)
            items = [(tuple(r[1:]), dt.datetime.fromisoformat(r[1]).timestamp()) for r in batch]
            rows, new = link(head, chain, items, segmenter)
            n = len(CONTENT_COLUMNS)
            c.executemany(
                "UPDATE audit_log SET chain = ?, seq = ?, segment = ?, prev_hash = ?, row_hash = ? "
                "WHERE id = ?",
                [(*row[n:], r[0]) for row, r in zip(rows, batch, strict=True)],
            )
            c.execute(_MOVE_HEAD, (chain, new.seq, new.hash, new.segment))

    def _head(self, chain: str) -> Head:
        row = self.conn.execute(_HEAD, (chain,)).fetchone()
        return Head(*row) if row else Head()

    # -- the writer's side -----------------------------------------------------------------

    def append(
        self,
        take: Callable[[], Sequence[tuple[Content, float]]],
        in_time: Callable[[], bool],
        chain: str,
        seg: Segmenter,
    ) -> Head | None:
        """Append what ``take()`` returns once the write lock is held (see writer.py).

        Rolled back instead of committed, with :class:`LateCommit`, if ``in_time()`` says
        the callers' deadline passed meanwhile.
        """

        def run() -> Head | None:
            items = take()
            if not items:
                return None
            rows, new = link(self._head(chain), chain, items, seg)
            per = self._rows_per_insert
            for start in range(0, len(rows), per):
                chunk = rows[start : start + per]
                self.conn.execute(_insert(len(chunk)), [v for row in chunk for v in row])
            self.conn.execute(_MOVE_HEAD, (chain, new.seq, new.hash, new.segment))
            if not in_time():
                raise LateCommit("audit commit outlived commit_timeout: rolled back")
            return new

        return self._transaction(run)

    def probe(self, chain: str, now: str) -> None:
        """A small real write: proves the file can be written again."""
        self._transaction(
            lambda: self.conn.execute(
                "INSERT INTO audit_meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (f"heartbeat:{chain}", now),
            )
        )

    # -- seals and retention ---------------------------------------------------------------------

    def insert_seal(self, seal: Seal, previous: Seal | None) -> bool:
        """Store ``seal`` unless the chain moved meanwhile (another sealer, a late record)."""

        def run() -> bool:
            c = self.conn
            latest = c.execute(
                "SELECT seal_hash FROM audit_seal WHERE chain = ? ORDER BY first_seq DESC LIMIT 1",
                (seal.chain,),
            ).fetchone()
            if (latest[0] if latest else None) != (previous.seal_hash if previous else None):
                return False
            end = c.execute(
                "SELECT max(seq) FROM audit_log WHERE chain = ? AND segment = ?",
                (seal.chain, seal.segment),
            ).fetchone()
            last = c.execute(
                "SELECT row_hash FROM audit_log WHERE chain = ? AND seq = ?",
                (seal.chain, seal.last_seq),
            ).fetchone()
            if end is None or end[0] != seal.last_seq or last is None or last[0] != seal.last_hash:
                return False
            c.execute(
                f"INSERT INTO audit_seal ({quoted(SEAL_COLUMNS)}, seal_hash) "
                f"VALUES ({', '.join('?' * (len(SEAL_COLUMNS) + 1))})",
                (*seal.values(), seal.seal_hash),
            )
            c.execute(
                "UPDATE audit_chain SET sealed_seq = ?, sealed_segment = ?, seal_hash = ? "
                "WHERE chain = ?",
                (seal.last_seq, seal.segment, seal.seal_hash, seal.chain),
            )
            return True

        return self._transaction(run)

    def mark_archived(self, seal: Seal, name: str, sha256: str, at: str) -> None:
        self._transaction(
            lambda: self.conn.execute(
                "UPDATE audit_seal SET archive = ?, archive_sha256 = ?, archived_at = ? "
                "WHERE chain = ? AND segment = ?",
                (name, sha256, at, seal.chain, seal.segment),
            )
        )

    def purge_segment(self, seal: Seal, batch: int = 2000) -> int:
        """Delete an archived segment's records in short transactions (writers keep going)."""
        total = 0
        while True:
            n = self._transaction(
                lambda: (
                    self.conn.execute(
                        "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log "
                        "WHERE chain = ? AND segment = ? AND seq BETWEEN ? AND ? LIMIT ?)",
                        (seal.chain, seal.segment, seal.first_seq, seal.last_seq, batch),
                    ).rowcount
                )
            )
            total += n
            if n < batch:
                return total


class SqliteWriterStore:
    """The gateway writer's handle, used on the writer's thread only: reopened after a failure."""

    def __init__(self, path: Path, synchronous: str, chain: str, segmenter: Segmenter) -> None:
        self.path = path
        self.synchronous = synchronous
        self.chain = chain
        self.segmenter = segmenter
        self._store: SqliteStore | None = None
        self._fingerprint = ""

    def _open(self) -> SqliteStore:
        if self._store is None:
            store = SqliteStore.open(self.path, synchronous=self.synchronous, create=True)
            try:
                # A multi-row INSERT may fail part way, so SQLite keeps a statement journal;
                # past 64 KiB it spills to a temporary file (created, unlinked and written
                # on disk once a batch). In memory it costs a batch's touched pages, and a
                # crash needs no statement journal: the WAL holds only committed batches.
                store.conn.execute("PRAGMA temp_store=MEMORY")
                # After a failure (a full disk): the committed WAL into the file and the WAL
                # cut to nothing, so the space freed goes to new records first.
                store.checkpoint()
                store.prepare(self._fingerprint, self.chain, self.segmenter)
            except BaseException:
                store.close()
                raise
            self._store = store
        return self._store

    def _guarded(self, fn: Callable[[SqliteStore], T]) -> T:
        try:
            return fn(self._open())
        except KeyMismatch:
            raise
        except (sqlite3.Error, OSError, StoreError) as exc:
            # a fresh connection next time: a replaced, repaired or remounted file
            self.close()
            raise StoreError(f"audit store {self.path}: {exc}") from exc

    def open(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint
        self._guarded(lambda s: None)

    def append(
        self, take: Callable[[], Sequence[tuple[Content, float]]], in_time: Callable[[], bool]
    ) -> Head | None:
        head = self._guarded(lambda s: s.append(take, in_time, self.chain, self.segmenter))
        free = self.free_bytes()
        if free is not None and free < LOW_SPACE and self._store is not None:
            self._store.checkpoint()
        return head

    def probe(self, now: str) -> None:
        self._guarded(lambda s: s.probe(self.chain, now))

    def free_bytes(self) -> int | None:
        """Free space on the store's volume for an unprivileged writer; None if unknown."""
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def reader(self) -> SqliteStore:
        """A separate connection for a thread that seals (WAL lets it read beside the writer).

        It reads each record once and is closed after the run: a small page cache.
        """
        return SqliteStore.open(self.path, synchronous=self.synchronous, cache_kib=256)
