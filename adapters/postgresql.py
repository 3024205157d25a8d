"""PostgreSQL backend (asyncpg).

Sessions are read-only by default: ``default_transaction_read_only=on`` is sent
as a start-up parameter, so it is the session default and the gateway can never
write to the legacy database.  asyncpg's reset query on every release (``RESET
ALL``, ``CLOSE ALL``, ``UNLISTEN *``, advisory unlock) costs a round trip per
call for state the gateway's SELECTs never change, so it is sent only with
``reset_session: true`` (a query that calls ``set_config`` would need it);
an open transaction is still rolled back on release either way.

The pool is lazy (``min_size=0``): ``open`` creates it without connecting, so
the gateway starts while the database is down and recovers when it is back.
Timeouts are enforced by asyncpg, which cancels the statement on the server
(CancelRequest on a side connection) and keeps the connection usable.

Error messages carry the SQLSTATE and the server's message, never the DETAIL
(which can quote row values) and never a bound parameter: messages that can
quote a value (data exceptions) are cut to their generic part and every
parameter's text is redacted from what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlsplit

import asyncpg
from pydantic import Field, SecretStr, field_validator, model_validator

from adapters._sql import CompiledQuery, SqlOperation, compile_named
from gateway.adapter import (
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
from gateway.security.redact import redact_values

__all__ = ["FACTORY", "PostgresAdapter", "PostgresFactory", "PostgresOptions"]

_T = TypeVar("_T")

_READ_ONLY_SETTING = "default_transaction_read_only"
_TRUE_SETTINGS = frozenset({"on", "true", "yes", "1"})

# Errors that mean "the server, or our session with it, is not there": the
# request may succeed later or elsewhere, so the gateway answers 503.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,  # class 08: connection does not exist / failure ...
    asyncpg.CannotConnectNowError,  # 57P03: starting up / shutting down
    asyncpg.exceptions.AdminShutdownError,  # 57P01
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.DatabaseDroppedError,  # 57P04
    asyncpg.exceptions.IdleSessionTimeoutError,  # 57P05
    asyncpg.InsufficientResourcesError,  # class 53: too many connections, out of memory ...
    asyncpg.InvalidAuthorizationSpecificationError,  # class 28: bad role or password
    asyncpg.InvalidCatalogNameError,  # 3D000: the database does not exist
)

# SQLSTATE classes whose messages quote the offending value (which comes from
# a parameter, i.e. a citizen ID or a name): only the generic part is kept.
_VALUE_QUOTING_CLASSES = ("22", "23")


class PostgresOptions(OptionsModel):
    dsn: str = Field(
        description="postgresql://user@host:port/database[?sslmode=...]; no password in it"
    )
    password: SecretStr | None = Field(
        default=None, description="password of the DSN's user (kept out of the DSN and of logs)"
    )
    server_settings: dict[str, str] = Field(
        default_factory=dict,
        description="session parameters sent at connect; application_name defaults to lc2-gateway",
    )
    statement_cache_size: int = Field(
        default=100,
        ge=0,
        description="prepared statements cached per connection (0 behind "
        "pgbouncer in transaction mode)",
    )
    probe_query: str = Field(default="SELECT 1", min_length=1, description="health probe")
    connect_timeout: float = Field(default=5, gt=0, le=300, description="seconds per connect")
    read_only: bool = Field(
        default=True, description="sessions default to read-only transactions (recommended)"
    )
    reset_session: bool = Field(
        default=False,
        description="send asyncpg's reset query (RESET ALL, CLOSE ALL, UNLISTEN *, advisory "
        "unlock) on every release: a round trip per call; only needed if a query changes "
        "session state",
    )

    @field_validator("dsn")
    @classmethod
    def _dsn_without_password(cls, dsn: str) -> str:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("dsn must be a postgresql:// URL")
        userinfo, at, _ = parts.netloc.rpartition("@")
        has_password = (at and ":" in userinfo) or any(
            key == "password" for key, _ in parse_qsl(parts.query, keep_blank_values=True)
        )
        if has_password:
            raise ValueError(
                "dsn must not contain a password (user:pass@ or ?password=); "
                "put it in the separate `password` option"
            )
        return dsn

    @model_validator(mode="after")
    def _read_only_not_contradicted(self) -> PostgresOptions:
        value = self.server_settings.get(_READ_ONLY_SETTING)
        if self.read_only and value is not None and value.lower() not in _TRUE_SETTINGS:
            raise ValueError(
                f"server_settings.{_READ_ONLY_SETTING}={value!r} contradicts read_only: true; "
                "set read_only: false to allow writes"
            )
        return self

    def effective_server_settings(self) -> dict[str, str]:
        settings = {"application_name": "lc2-gateway", **self.server_settings}
        if self.read_only:
            settings[_READ_ONLY_SETTING] = "on"
        return settings


def _describe(exc: BaseException, args: Sequence[object]) -> str:
    """``SQLSTATE ClassName: message`` with no DETAIL and no parameter value."""
    sqlstate: str | None = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        message = str(exc.args[0]) if exc.args else ""  # str(exc) would add DETAIL
    else:
        message = str(exc)
    if sqlstate and sqlstate.startswith(_VALUE_QUOTING_CLASSES):
        message = message.split(":", 1)[0]
    message = re.sub(r"\s+", " ", redact_values(message, args)).strip()
    head = " ".join(p for p in ("postgresql", sqlstate, type(exc).__name__) if p)
    return f"{head}: {message}" if message else head


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without the reset query.  asyncpg still rolls back an open transaction
    first; the session's settings (default_transaction_read_only among them) are left
    as the start-up parameters set them, since the gateway's SELECTs change none."""


def _is_closed_interface_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, asyncpg.InterfaceError) and ("closed" in text or "closing" in text)


class PostgresAdapter:
    def __init__(self, name: str, options: PostgresOptions, limits: BackendLimits) -> None:
        self.name = name
        self._options = options
        self._limits = limits
        self._pool: asyncpg.Pool | None = None
        self._active = 0  # connections currently held by fetch/probe calls
        self._releasing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def open(self) -> None:
        opts = self._options
        # min_size=0 (and so init_size=0): no connection is made here, the first
        # acquire connects; a server that is down does not stop the gateway.
        self._pool = await asyncpg.create_pool(
            opts.dsn,
            min_size=0,
            max_size=self._limits.pool_size,
            password=opts.password.get_secret_value() if opts.password else None,
            server_settings=opts.effective_server_settings(),
            statement_cache_size=opts.statement_cache_size,
            timeout=opts.connect_timeout,
            reset=None if opts.reset_session else _keep_session,
        )

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # Calls in flight end within query_timeout; do not wait much longer than that.
        bound = self._limits.query_timeout + 1.0
        try:
            await asyncio.wait_for(pool.close(), bound)
        except Exception:  # TimeoutError included
            pool.terminate()  # close() already terminates on error; harmless twice
        await asyncio.gather(*self._releasing, return_exceptions=True)

    async def _acquire(self) -> tuple[asyncpg.Pool, asyncpg.Connection]:
        pool = self._pool
        if self._closed or pool is None:
            raise BackendUnavailable("adapter closed" if self._closed else "adapter not opened")
        try:
            # not acquire(timeout=): asyncpg would run the acquisition through wait_for,
            # one more task and loop turn for every call
            async with within(wait := time_left(self._limits.acquire_timeout)):
                return pool, await pool.acquire()
        except TimeoutError:
            raise self._limits.acquire_failed(self._active, wait) from None
        except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Whatever fails while connecting (refused, auth, no database, too
            # many connections, shutting down, a DSN asyncpg can not parse)
            # leaves the backend unusable.
            raise BackendUnavailable(f"cannot connect: {_describe(exc, ())}") from None

    async def _run(
        self,
        call: Callable[[asyncpg.Connection, float], Awaitable[_T]],
        args: Sequence[object],
    ) -> _T:
        pool, conn = await self._acquire()
        self._active += 1
        timed_out = False
        timeout = time_left(self._limits.query_timeout)
        try:
            return await call(conn, timeout)
        except TimeoutError:
            timed_out = True
            raise BackendTimeout(f"query exceeded {timeout:.3g}s") from None
        except asyncpg.QueryCanceledError as exc:  # statement_timeout or a DBA's cancel
            raise BackendTimeout(_describe(exc, args)) from None
        except _UNAVAILABLE as exc:
            raise BackendUnavailable(_describe(exc, args), retryable=True) from None
        except asyncpg.InterfaceError as exc:
            if _is_closed_interface_error(exc):
                raise BackendUnavailable(_describe(exc, args), retryable=True) from None
            raise BackendError(_describe(exc, args)) from None
        except asyncpg.exceptions.InternalClientError as exc:
            # e.g. "cannot switch to state 12": the server ended the session (FATAL 57P01
            # on shutdown) and the query met it before the close was seen
            conn.terminate()
            raise BackendUnavailable(_describe(exc, args), retryable=True) from None
        except asyncpg.PostgresError as exc:
            raise BackendError(_describe(exc, args)) from None
        finally:
            if timed_out:
                # asyncpg releases a timed-out connection only once the server has
                # acknowledged the cancel of its query; a hung server never does. The
                # answer must not wait for that: release in the background (bounded).
                task = asyncio.create_task(self._release(pool, conn))
                self._releasing.add(task)
                task.add_done_callback(self._releasing.discard)
            else:
                await self._release(pool, conn)

    async def _release(self, pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
        # A failed reset terminates the connection inside asyncpg; the caller's
        # result (or error) matters more than the release's. A pool that is
        # closing waits for this release. The connection counts as held until it is
        # back: a full pool of slow releases is busy (304), not unreachable (301).
        try:
            with contextlib.suppress(Exception):
                await pool.release(conn, timeout=self._limits.acquire_timeout)
        finally:
            self._active -= 1

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        op: CompiledQuery = operation
        args = op.bind(dict(params))

        async def call(conn: asyncpg.Connection, limit: float) -> list[asyncpg.Record]:
            records: list[asyncpg.Record] = await conn.fetch(op.sql, *args, timeout=limit)
            return records

        records = await self._run(call, args)
        # The full result is read and sliced rather than read through a cursor:
        # asyncpg cursors need an explicit transaction (BEGIN ... COMMIT, two
        # more round trips per call) and the services here are lookups by
        # citizen ID that return a handful of rows; max_rows is a safety cap,
        # a query that can match many rows should carry its own LIMIT.
        return [dict(r.items()) for r in records[: op.max_rows]]

    async def stream(
        self, operation: Any, params: Mapping[str, object], batch: int
    ) -> AsyncIterator[Sequence[Row]]:
        """A cursor in a read-only transaction; each batch within query_timeout."""
        op: CompiledQuery = operation
        args = op.bind(dict(params))
        timeout = self._limits.query_timeout
        pool, conn = await self._acquire()
        self._active += 1
        done = False
        try:
            async with conn.transaction(readonly=True):
                cursor = await conn.cursor(op.sql, *args, timeout=timeout)
                while records := await cursor.fetch(batch, timeout=timeout):
                    yield [dict(r.items()) for r in records]
            done = True
        except (TimeoutError, asyncpg.QueryCanceledError):
            raise BackendTimeout(f"a batch exceeded {timeout:g}s") from None
        except _UNAVAILABLE as exc:
            raise BackendUnavailable(_describe(exc, args)) from None
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise BackendError(_describe(exc, args)) from None
        finally:
            if not done:
                conn.terminate()  # a statement stopped half-way: never back to the pool
            await self._release(pool, conn)

    async def result_columns(self, operation: Any) -> list[str]:
        op: CompiledQuery = operation

        async def call(conn: asyncpg.Connection, limit: float) -> list[str]:
            # a prepared statement describes its result; nothing is executed
            stmt = await conn.prepare(op.sql, timeout=limit)
            return [a.name for a in stmt.get_attributes()]

        return await self._run(call, ())

    async def probe(self) -> None:
        query = self._options.probe_query

        async def call(conn: asyncpg.Connection, limit: float) -> object:
            return await conn.fetchval(query, timeout=limit)

        await self._run(call, ())

    def pool_stats(self) -> PoolStats:
        pool = self._pool
        if pool is None:
            return PoolStats(size=0, in_use=0)
        size = pool.get_size()
        return PoolStats(size=size, in_use=size - pool.get_idle_size())


class PostgresFactory:
    type_name: ClassVar[str] = "postgresql"
    options_model: ClassVar[type[OptionsModel]] = PostgresOptions
    operation_model: ClassVar[type[OptionsModel]] = SqlOperation

    def prepare(self, options: Any, operation: Any, param_names: Sequence[str]) -> CompiledQuery:
        op: SqlOperation = operation
        return compile_named(op.query, "numeric", param_names, max_rows=op.max_rows)

    def create(self, name: str, options: Any, limits: BackendLimits) -> PostgresAdapter:
        return PostgresAdapter(name, options, limits)


FACTORY = PostgresFactory()
