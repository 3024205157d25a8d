"""The indexed store an export is loaded into, one immutable generation per file version.

A generation is an SQLite database built once, in a worker thread, from one
version of the export: in memory (SQLite's ``memdb`` VFS, shared by the
generation's connections) or, with ``store_dir``, as a file opened
``immutable``.  It is never written after it is built, so lookups need no
locks, and an answer always comes from exactly one version of the file.

The adapter swaps generations; a generation still used by a lookup is closed
only when its last lookup ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from adapters.files.options import DbfOptions, FileOptions
from adapters.files.readers import ExportError, Report, Table, dbf_files, read_export

__all__ = [
    "FileChanged",
    "Generation",
    "QueryRefused",
    "Signature",
    "build_generation",
    "check_query",
    "remove_stale_stores",
    "signature",
    "source_files",
]

_BATCH = 500


class FileChanged(ExportError):
    """The file changed while it was read: try again once it is stable."""


class QueryRefused(Exception):
    """A query can not run on this store (a full scan, a missing column)."""


@dataclass(frozen=True, slots=True)
class Signature:
    """What identifies one version of an export: inode, size and mtime of each file."""

    files: tuple[tuple[int, int, int], ...]
    mtime: float  # newest modification time, seconds


def source_files(opts: FileOptions) -> list[Path]:
    return dbf_files(opts.path) if isinstance(opts, DbfOptions) else [opts.path]


def signature(paths: Sequence[Path]) -> Signature | None:
    """None if a file is missing."""
    stats = []
    for p in paths:
        try:
            st = p.stat()
        except FileNotFoundError:
            return None
        stats.append(st)
    return Signature(
        tuple((st.st_ino, st.st_size, st.st_mtime_ns) for st in stats),
        max(st.st_mtime for st in stats),
    )


def _pid13(value: object) -> str | None:
    """The 13 digits of a citizen ID in any spelling (dashes, spaces, Thai digits)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    digits = "".join(str(unicodedata.decimal(c)) for c in text if c.isdecimal())
    return digits if len(digits) == 13 else None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_SCAN = re.compile(r"^SCAN (?!CONSTANT ROW)(\S+)")


def check_query(conn: sqlite3.Connection, sql: str, nargs: int, *, allow_scan: bool) -> None:
    """Refuse a query SQLite would answer by reading a whole table."""
    try:
        plan = conn.execute("EXPLAIN QUERY PLAN " + sql, [None] * nargs).fetchall()
    except sqlite3.Error as exc:
        raise QueryRefused(f"query does not fit the export: {exc}") from None
    if allow_scan:
        return
    for row in plan:
        m = _SCAN.match(str(row[-1]))
        if m:
            raise QueryRefused(
                f"query would read every row of {m.group(1)}: filter on a column listed in "
                "`index:` or `citizen_ids:` (or set allow_scan: true for a small table)"
            )


@dataclass(eq=False)
class Generation:
    """One loaded version of the export."""

    number: int
    uri: str
    file_columns: tuple[str, ...]  # as the export has them (the header to compare)
    rows: int
    signature: Signature
    report: Report
    loaded_at: float
    disk_path: Path | None = None
    keeper: sqlite3.Connection | None = None  # keeps a memdb database alive
    users: int = 0  # lookups running on it (event-loop side)
    retired: bool = False
    checked: set[str] = field(default_factory=set)  # queries whose plan was checked
    _idle: list[sqlite3.Connection] = field(default_factory=list)
    _open: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False

    @property
    def open_connections(self) -> int:
        return self._open

    def connection(self) -> sqlite3.Connection:
        """A read-only connection of this generation (runs in a worker)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            conn = sqlite3.connect(self.uri, uri=True, check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
        except BaseException:
            with self._lock:
                self._open -= 1
            raise
        return conn

    def give_back(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return
            self._open -= 1
        conn.close()

    def close(self) -> None:
        """Free the store: its connections, its memory or its file (runs in a worker)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for conn in idle:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        if self.keeper is not None:
            with contextlib.suppress(sqlite3.Error):
                self.keeper.close()
        if self.disk_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.disk_path.unlink()


def _store_target(name: str, number: int, store_dir: Path | None) -> tuple[str, Path | None]:
    if store_dir is None:
        # memdb: one in-memory database shared by every connection that opens
        # this name in this process, freed when the last one closes.
        tag = uuid.uuid4().hex[:8]
        return f"file:/lc2-{os.getpid()}-{name}-{number}-{tag}?vfs=memdb", None
    store_dir.mkdir(parents=True, exist_ok=True)
    path = store_dir / f"{name}-{os.getpid()}-{number}.sqlite"
    return f"file:{path}.tmp", path


def remove_stale_stores(store_dir: Path, name: str) -> None:
    """Store files left by a process that no longer runs (a crash, a kill -9)."""
    for p in store_dir.glob(f"{name}-*-*.sqlite*"):
        parts = p.name[len(name) + 1 :].split("-", 1)
        try:
            pid = int(parts[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        except PermissionError:
            pass  # alive, someone else's


def _resolve(columns: Sequence[str], wanted: str, what: str) -> int:
    lowered = [c.lower() for c in columns]
    try:
        return lowered.index(wanted.lower())
    except ValueError:
        raise ExportError(
            f"column {wanted} ({what}) is not in the file (columns: {', '.join(columns)})"
        ) from None


def build_generation(
    name: str,
    number: int,
    opts: FileOptions,
    stop: threading.Event,
    *,
    previous: Generation | None,
    queries: Mapping[str, int],
) -> Generation:
    """Read the export into a new store and check it; raise ExportError to keep the old one."""
    files = source_files(opts)
    before = signature(files)
    if before is None:
        raise ExportError(f"{opts.path} does not exist")
    table = read_export(opts.path, opts, stop)
    try:
        return _build(name, number, opts, table, files, before, previous, queries)
    finally:
        table.close()


def _build(
    name: str,
    number: int,
    opts: FileOptions,
    table: Table,
    files: Sequence[Path],
    before: Signature,
    previous: Generation | None,
    queries: Mapping[str, int],
) -> Generation:
    columns = table.columns
    for col in opts.index:
        _resolve(columns, col, "index")
    pid_sources = [_resolve(columns, c.column, "citizen_ids") for c in opts.citizen_ids]
    derived = [c.as_ for c in opts.citizen_ids]
    for d in derived:
        if d.lower() in {c.lower() for c in columns}:
            raise ExportError(f"citizen_ids `as: {d}` is also a column of the file: rename it")
    if previous is not None:
        missing = {c.lower() for c in previous.file_columns} - {c.lower() for c in columns}
        if missing:
            raise ExportError(
                f"columns of the loaded export are gone from the new file: "
                f"{', '.join(sorted(missing))}"
            )

    uri, disk_path = _store_target(name, number, opts.store_dir)
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    ok = False
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        all_columns = [*columns, *derived]
        # No declared types: every value keeps the type the reader gave it.
        conn.execute(
            f"CREATE TABLE {_quote(opts.table)} ({', '.join(_quote(c) for c in all_columns)})"
        )
        insert = f"INSERT INTO {_quote(opts.table)} VALUES ({', '.join('?' * len(all_columns))})"
        count = 0
        batch: list[Sequence[object]] = []
        conn.execute("BEGIN")
        for row in table.rows:
            # Tuples of plain values drop out of the garbage collector's view at
            # once, and small batches keep few rows alive: a large load then
            # causes no long collections that would stall the event loop.
            if pid_sources:
                batch.append((*row, *(_pid13(row[i]) for i in pid_sources)))
            else:
                batch.append(tuple(row))
            if len(batch) >= _BATCH:
                conn.executemany(insert, batch)
                count += len(batch)
                batch.clear()
        conn.executemany(insert, batch)
        count += len(batch)
        for i, col in enumerate(opts.indexed()):
            conn.execute(
                f"CREATE INDEX {_quote(f'ix_{opts.table}_{i}')} "
                f"ON {_quote(opts.table)} ({_quote(col)})"
            )
        conn.execute("COMMIT")

        after = signature(files)
        if after != before:
            raise FileChanged("the file changed while it was read: it is still being written")
        reload = opts.reload
        if count < reload.min_rows:
            raise ExportError(f"{count} rows, fewer than min_rows {reload.min_rows}")
        if previous is not None and count < reload.min_ratio * previous.rows:
            raise ExportError(
                f"{count} rows where {previous.rows} are loaded: fewer than min_ratio "
                f"{reload.min_ratio:g} of them (restart or lower min_ratio if this is right)"
            )
        for sql, nargs in queries.items():
            try:
                check_query(conn, sql, nargs, allow_scan=opts.allow_scan)
            except QueryRefused as exc:
                raise ExportError(f"a service's query no longer fits: {exc}") from None

        if disk_path is not None:
            conn.close()
            os.replace(f"{disk_path}.tmp", disk_path)
            uri = f"file:{disk_path}?mode=ro&immutable=1"  # never written again: no locking
        else:
            uri += "&mode=ro"
        ok = True
        return Generation(
            number=number,
            uri=uri,
            file_columns=tuple(columns),
            rows=count,
            signature=before,
            report=table.report,
            loaded_at=time.time(),
            disk_path=disk_path,
            keeper=None if disk_path is not None else conn,
        )
    finally:
        if not ok:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            if disk_path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{disk_path}.tmp")
