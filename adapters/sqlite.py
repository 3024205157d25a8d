"""SQLite backend (aiosqlite): embedded legacy databases and the demo.

The database is opened read-only by default: the gateway never writes to a
legacy system.  Text that is not valid UTF-8 (TIS-620 bytes left in TEXT
columns by an old import) comes back as ``bytes`` instead of failing the
whole row, so the ``cp874`` transform can decode it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import aiosqlite
from pydantic import Field

from adapters._sql import CompiledQuery, SqlOperation, compile_named, limit_zero
from gateway.adapter import (
    BackendBusy,
    BackendError,
    BackendLimits,
    BackendTimeout,
    BackendUnavailable,
    OptionsModel,
    PoolStats,
    Row,
    time_left,
    within,
)

__all__ = ["FACTORY", "SqliteAdapter", "SqliteFactory", "SqliteOptions"]


class SqliteOptions(OptionsModel):
    path: Path = Field(description="database file")
    read_only: bool = Field(default=True, description="open with mode=ro (recommended)")
    create_if_missing: Path | None = Field(
        default=None,
        description="SQL script that builds the database when the file does not exist (demos)",
    )
    probe_query: str = Field(default="SELECT 1", description="health probe")


def _text(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _create_from_script(path: Path, script: Path) -> None:
    """Build the file next to its final place and rename it: never a half-made database."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            db.executescript(script.read_text(encoding="utf-8"))
            db.commit()
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class SqliteAdapter:
    def __init__(self, name: str, options: SqliteOptions, limits: BackendLimits) -> None:
        self.name = name
        self._options = options
        self._limits = limits
        self._idle: asyncio.LifoQueue[aiosqlite.Connection] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(limits.pool_size)
        self._open_count = 0
        self._in_use = 0
        self._closed = False

    async def open(self) -> None:
        opts = self._options
        if opts.create_if_missing is not None and not opts.path.exists():
            await asyncio.to_thread(_create_from_script, opts.path, opts.create_if_missing)

    async def close(self) -> None:
        self._closed = True
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            await conn.close()
        self._open_count = 0

    async def _connect(self) -> aiosqlite.Connection:
        path = self._options.path
        if self._options.read_only:
            # checked first: a failed aiosqlite.connect leaves its worker thread to report
            # to the event loop later, possibly after the loop has closed
            if not path.exists():
                raise BackendUnavailable(f"database file {path.name} does not exist")
            target, uri = f"file:{path.resolve()}?mode=ro", True
        else:
            target, uri = str(path), False
        try:
            conn = await aiosqlite.connect(target, uri=uri, check_same_thread=False)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"cannot open {path.name}: {exc}") from None
        conn.text_factory = _text
        conn.row_factory = sqlite3.Row
        self._open_count += 1
        return conn

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._closed:
            raise BackendUnavailable("adapter closed")
        try:
            await asyncio.wait_for(self._slots.acquire(), time_left(self._limits.acquire_timeout))
        except TimeoutError:
            raise BackendBusy("no free connection within acquire_timeout") from None
        self._in_use += 1
        conn: aiosqlite.Connection | None = None
        healthy = False
        try:
            conn = self._idle.get_nowait() if not self._idle.empty() else await self._connect()
            yield conn
            healthy = True
        finally:
            self._in_use -= 1
            self._slots.release()
            if conn is not None:
                if healthy and not self._closed:
                    self._idle.put_nowait(conn)
                else:
                    self._open_count -= 1
                    with contextlib.suppress(Exception):
                        await conn.close()

    async def _run(self, sql: str, args: Sequence[object], max_rows: int) -> list[sqlite3.Row]:
        async with self._connection() as conn:

            async def query() -> list[sqlite3.Row]:
                async with conn.execute(sql, args) as cur:
                    return list(await cur.fetchmany(max_rows))

            timeout = time_left(self._limits.query_timeout)
            try:
                async with within(timeout):
                    return await query()
            except TimeoutError:
                await conn.interrupt()  # stops the query in SQLite's own thread
                raise BackendTimeout(f"query exceeded {timeout:.3g}s") from None
            except sqlite3.OperationalError as exc:
                if "unable to open" in str(exc) or "no such table" in str(exc):
                    raise BackendUnavailable(f"sqlite: {exc}") from None
                raise BackendError(f"sqlite: {exc}") from None
            except sqlite3.Error as exc:
                raise BackendError(f"sqlite: {exc}") from None

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        op: CompiledQuery = operation
        rows = await self._run(op.sql, op.bind(dict(params)), op.max_rows)
        return [dict(zip(r.keys(), r, strict=True)) for r in rows]

    async def stream(
        self, operation: Any, params: Mapping[str, object], batch: int
    ) -> AsyncIterator[Sequence[Row]]:
        """One cursor read with fetchmany; each batch within query_timeout."""
        op: CompiledQuery = operation
        timeout = self._limits.query_timeout
        async with self._connection() as conn:
            try:
                async with within(timeout):
                    cur = await conn.execute(op.sql, op.bind(dict(params)))
                try:
                    while True:
                        async with within(timeout):
                            rows = await cur.fetchmany(batch)
                        if not rows:
                            break
                        yield [dict(zip(r.keys(), r, strict=True)) for r in rows]
                finally:
                    await cur.close()
            except TimeoutError:
                await conn.interrupt()
                raise BackendTimeout(f"a batch exceeded {timeout:g}s") from None
    async def result_columns(self, operation: Any) -> list[str]:
        op: CompiledQuery = operation
        async with self._connection() as conn:
            try:
                async with asyncio.timeout(self._limits.query_timeout):
                    async with conn.execute(limit_zero(op.sql), [None] * len(op.order)) as cur:
                        return [d[0] for d in cur.description or ()]
            except TimeoutError:
                await conn.interrupt()
                raise BackendTimeout(f"query exceeded {self._limits.query_timeout:g}s") from None
            except sqlite3.Error as exc:
                raise BackendError(f"sqlite: {exc}") from None

    async def probe(self) -> None:
        if not self._options.path.exists():
            raise BackendUnavailable(f"database file {self._options.path} does not exist")
        await self._run(self._options.probe_query, (), 1)

    def pool_stats(self) -> PoolStats:
        return PoolStats(size=self._open_count, in_use=self._in_use)


class SqliteFactory:
    type_name: ClassVar[str] = "sqlite"
    options_model: ClassVar[type[OptionsModel]] = SqliteOptions
    operation_model: ClassVar[type[OptionsModel]] = SqlOperation

    def prepare(self, options: Any, operation: Any, param_names: Sequence[str]) -> CompiledQuery:
        op: SqlOperation = operation
        return compile_named(op.query, "qmark", param_names, max_rows=op.max_rows)

    def create(self, name: str, options: Any, limits: BackendLimits) -> SqliteAdapter:
        return SqliteAdapter(name, options, limits)


FACTORY = SqliteFactory()
