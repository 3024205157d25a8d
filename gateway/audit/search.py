"""Finding records: search by time, office, officer, service, status; who-accessed; export.

Times on the command line are local (``audit.timezone``, Asia/Bangkok by
default); the store keeps UTC.  A date alone means the whole day: ``--from
2026-10-01 --to 2026-10-31`` covers all of October.  A citizen is found by
the keyed hash of the ID, computed here from the ID the operator types and
the key of the config; the ID itself is never stored or printed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from gateway.audit.retention import archive_rows
from gateway.audit.store import ALL_COLUMNS, SqlReader

__all__ = [
    "SEARCH_COLUMNS",
    "Filter",
    "month_bounds",
    "parse_time",
    "rows",
    "write_rows",
]

SEARCH_COLUMNS = (
    "ts",
    "request_id",
    "office",
    "officer",
    "consumer",
    "service",
    "kind",
    "status",
    "code",
    "subject_hint",
    "rows",
    "latency_ms",
    "client_ip",
    "error",
)
_STATUS: dict[str, tuple[str, Callable[[int], bool]]] = {
    "ok": ("status < 400", lambda s: s < 400),
    "error": ("status >= 400", lambda s: s >= 400),
    "4xx": ("status BETWEEN 400 AND 499", lambda s: 400 <= s <= 499),
    "5xx": ("status >= 500", lambda s: s >= 500),
}


def _utc(d: dt.datetime) -> str:
    return d.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def parse_time(text: str, tz: ZoneInfo, *, end: bool = False) -> str:
    """``2026-10-01`` (a whole day: with ``end``, the day after), or a local date and time."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            if end:
                day += dt.timedelta(days=1)
            return _utc(dt.datetime.combine(day, dt.time(), tz))
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date or time: {text!r} (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return _utc(moment)


def month_bounds(month: str, tz: ZoneInfo) -> tuple[str, str, dt.date, dt.date]:
    """UTC bounds and local first/last day of ``YYYY-MM``."""
    try:
        first = dt.date.fromisoformat(month + "-01")
    except ValueError:
        raise ValueError(f"not a month: {month!r} (YYYY-MM)") from None
    nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    since = _utc(dt.datetime.combine(first, dt.time(), tz))
    until = _utc(dt.datetime.combine(nxt, dt.time(), tz))
    return since, until, first, nxt - dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Filter:
    since: str | None = None  # UTC ISO, inclusive
    until: str | None = None  # UTC ISO, exclusive
    office: str | None = None
    officer: str | None = None
    service: str | None = None
    consumer: str | None = None
    status: str | None = None  # a number, or ok | error | 4xx | 5xx
    kind: str | None = None
    subject_hash: str | None = None
    in_params: bool = False  # also match the hash inside other hashed parameters
    request_id: str | None = None
    include_sandbox: bool = True

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in _STATUS and not self.status.isdigit():
            raise ValueError("status: a number, or ok, error, 4xx, 5xx")

    def sql(self) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        for col, value in (
            ("office", self.office),
            ("officer", self.officer),
            ("service", self.service),
            ("consumer", self.consumer),
            ("kind", self.kind),
            ("request_id", self.request_id),
        ):
            if value is not None:
                parts.append(f'"{col}" = ?')
                params.append(value)
        if self.since is not None:
            parts.append("ts >= ?")
            params.append(self.since)
        if self.until is not None:
            parts.append("ts < ?")
            params.append(self.until)
        if self.status is not None:
            if self.status.isdigit():
                parts.append("status = ?")
                params.append(int(self.status))
            else:
                parts.append(_STATUS[self.status][0])
        if self.subject_hash is not None:
            if self.in_params:
                parts.append("(subject_hash = ? OR params LIKE ?)")
                params += [self.subject_hash, f"%{self.subject_hash}%"]
            else:
                parts.append("subject_hash = ?")
                params.append(self.subject_hash)
        if not self.include_sandbox:
            parts.append("sandbox = 0")
        return " AND ".join(parts), params

    def match(self, row: Mapping[str, Any]) -> bool:
        """The same filter for rows read from archive files."""
        for col in ("office", "officer", "service", "consumer", "kind", "request_id"):
            want = getattr(self, col)
            if want is not None and row.get(col) != want:
                return False
        ts = str(row.get("ts"))
        if (self.since is not None and ts < self.since) or (
            self.until is not None and ts >= self.until
        ):
            return False
        if self.status is not None:
            status = int(row.get("status") or 0)
            if self.status.isdigit():
                if status != int(self.status):
                    return False
            elif not _STATUS[self.status][1](status):
                return False
        want = self.subject_hash
        if (
            want is not None
            and row.get("subject_hash") != want
            and not (self.in_params and want in str(row.get("params")))
        ):
            return False
        return self.include_sandbox or not row.get("sandbox")


def rows(
    reader: SqlReader,
    flt: Filter,
    columns: Sequence[str] = ALL_COLUMNS,
    *,
    archive_dir: Path | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Matching records as dicts, oldest first; archived segments too if ``archive_dir``."""
    n = 0
    if archive_dir is not None:
        for chain in reader.chains():
            for row in archive_rows(archive_dir, reader.seals(chain), flt.since, flt.until):
                if flt.match(row):
                    yield {c: row.get(c) for c in columns}
                    n += 1
                    if limit is not None and n >= limit:
                        return
    where, params = flt.sql()
    cols = [c for c in columns if c in ALL_COLUMNS]
    for values in reader.select(cols, where, params, limit=None if limit is None else limit - n):
        yield dict(zip(cols, values, strict=True))


def _local(ts: str, tz: ZoneInfo) -> str:
    return dt.datetime.fromisoformat(ts).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def write_rows(
    out: TextIO,
    records: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: str,
    tz: ZoneInfo,
) -> int:
    """Write ``records`` as ``table``, ``csv`` or ``jsonl``; times local in table form."""
    n = 0
    if fmt == "jsonl":
        for r in records:
            out.write(json.dumps({c: r.get(c) for c in columns}, ensure_ascii=False) + "\n")
            n += 1
        return n
    if fmt == "csv":
        w = csv.writer(out)
        w.writerow(columns)
        for r in records:
            w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
            n += 1
        return n
    buf: list[list[str]] = []
    for r in records:
        buf.append(
            [
                _local(str(r[c]), tz) if c == "ts" else ("" if r.get(c) is None else str(r[c]))
                for c in columns
            ]
        )
    head = ["time" if c == "ts" else c for c in columns]
    widths = [max([len(h), *(len(row[i]) for row in buf)]) for i, h in enumerate(head)]
    lines = io.StringIO()
    for row in [head, *buf]:
        lines.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.write(lines.getvalue())
    return len(buf)
