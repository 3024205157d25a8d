"""The Oracle adapter: python-oracledb's async pool, one call per lookup."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import oracledb

from adapters.oracle.errors import describe_error, error_code, map_error
from adapters.oracle.options import OracleOptions, pool_params
from adapters.oracle.text import DB_CHARSETS, output_type_handler, recover_text, text_error
from gateway.adapter import (
    BackendError,
    BackendLimits,
    BackendTimeout,
    BackendUnavailable,
    PoolStats,
    Row,
)

__all__ = ["QUERY_START", "OracleAdapter", "OracleQuery"]


@dataclass(frozen=True, slots=True)
class OracleQuery:
    sql: str  # as written: Oracle binds :name natively
    names: tuple[str, ...]  # distinct parameter names used
    max_rows: int

    def bind(self, params: Mapping[str, object]) -> dict[str, object]:
        # unquoted bind names are upper case to Oracle's parser
        return {name.upper(): params[name] for name in self.names}


QUERY_START = re.compile(r"\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*\(*\s*(select|with)\b", re.I | re.S)


class OracleAdapter:
    def __init__(self, name: str, options: OracleOptions, limits: BackendLimits) -> None:
        self.name = name
        self._options = options
        self._limits = limits
        self._pool: oracledb.AsyncConnectionPool | None = None
        self._active = 0
        self._closed = False
        self._charset = options.database_charset
        self._handler = output_type_handler(options.text_encoding is not None)
        self._open_error: Exception | None = None  # a dsn or tnsnames.ora problem

    async def open(self) -> None:
        # Building the parameters (and reading tnsnames.ora) is local; nothing
        # connects here, so a database that is down does not stop the gateway.
        try:
            params = pool_params(self._options, self._limits)
        except oracledb.Error as exc:
            # a dsn or tnsnames.ora problem: every call says so until the config is fixed
            self._open_error = map_error(exc)
            return
        self._pool = oracledb.create_pool_async(params=params)

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), self._limits.query_timeout + 1.0)
        except Exception:  # busy connections past the bound, or already closed
            with contextlib.suppress(Exception):
                await pool.close(force=True)

    async def _acquire(self) -> tuple[oracledb.AsyncConnectionPool, oracledb.AsyncConnection]:
        pool = self._pool
        if self._open_error is not None:
            err = self._open_error
            raise (
                type(err)(err.detail) if isinstance(err, BackendUnavailable | BackendError) else err
            )
        if self._closed or pool is None:
            raise BackendUnavailable("adapter closed" if self._closed else "adapter not opened")
        try:
            # The pool's own wait_timeout bounds waiting for a busy pool; this
            # bounds the connect (TCP, TLS, login) that may run underneath.
            async with asyncio.timeout(self._limits.acquire_timeout + 0.5):
                conn = await pool.acquire()
        except TimeoutError:
            raise BackendUnavailable(
                f"could not connect within {self._limits.acquire_timeout:g}s"
            ) from None
        except oracledb.Error as exc:
            full_code, _, _ = error_code(exc)
            if full_code == "DPY-4005":  # timed out waiting for the pool
                raise self._limits.acquire_failed(self._active) from None
            # Whatever fails while connecting leaves the backend unusable.
            raise BackendUnavailable(f"cannot connect: {describe_error(exc)}") from None
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot connect: oracle {type(exc).__name__}: {exc}"
            ) from None
        return pool, conn

    async def _database_charset(self, conn: oracledb.AsyncConnection) -> str:
        if self._charset is None:
            with conn.cursor() as cur:
                await cur.execute(
                    "SELECT value FROM nls_database_parameters WHERE parameter = 'NLS_CHARACTERSET'"
                )
                row = await cur.fetchone()
            charset = str(row[0]).upper() if row else "AL32UTF8"
            if charset not in DB_CHARSETS:
                raise BackendError(
                    f"oracle: NLS_CHARACTERSET {charset} is not one text_encoding can repair"
                )
            self._charset = charset
        return self._charset

    async def _run(
        self, sql: str, binds: Mapping[str, object], max_rows: int
    ) -> list[dict[str, object]]:
        pool, conn = await self._acquire()
        self._active += 1
        healthy = True
        args = list(binds.values())
        try:
            conn.call_timeout = max(1, int(self._limits.query_timeout * 1000))
            # Backstop in case a round trip never returns despite call_timeout.
            async with asyncio.timeout(self._limits.query_timeout + 2.0):
                charset = (
                    await self._database_charset(conn) if self._options.text_encoding else None
                )
                with conn.cursor() as cur:
                    cur.outputtypehandler = self._handler
                    cur.arraysize = min(max_rows, 100)
                    cur.prefetchrows = min(max_rows, 100) + 1
                    await cur.execute(sql, dict(binds))
                    names = [d[0] for d in cur.description or ()]
                    raw_rows = await cur.fetchmany(max_rows)
            return [self._row(names, r, charset) for r in raw_rows]
        except TimeoutError:
            healthy = False
            raise BackendTimeout(f"query exceeded {self._limits.query_timeout:g}s") from None
        except asyncio.CancelledError:
            healthy = False
            raise
        except oracledb.Error as exc:
            err = map_error(exc, args)
            healthy = not isinstance(err, BackendTimeout | BackendUnavailable)
            raise err from None
        except UnicodeDecodeError as exc:
            raise text_error(exc) from None
        finally:
            self._active -= 1
            with contextlib.suppress(Exception):  # never hide the call's own outcome
                if healthy:
                    await pool.release(conn)
                else:
                    # a broken or timed-out round trip: never reuse (the driver's
                    # annotation names the synchronous Connection class)
                    await pool.drop(conn)  # type: ignore[arg-type]

    def _row(
        self, names: Sequence[str], values: Sequence[object], charset: str | None
    ) -> dict[str, object]:
        encoding = self._options.text_encoding
        out: dict[str, object] = {}
        for name, value in zip(names, values, strict=True):
            if isinstance(value, bytes) and encoding and charset:
                value = recover_text(value, charset, encoding)
            out[name] = value
        return out

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        op: OracleQuery = operation
        return await self._run(op.sql, op.bind(params), op.max_rows)

    async def probe(self) -> None:
        await self._run(self._options.probe_query, {}, 1)

    def pool_stats(self) -> PoolStats:
        pool = self._pool
        if pool is None:
            return PoolStats(size=0, in_use=0)
        return PoolStats(size=int(pool.opened), in_use=int(pool.busy))
