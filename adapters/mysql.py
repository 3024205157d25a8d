"""MariaDB / MySQL backend (asyncmy).

asyncmy, not aiomysql: aiomysql 0.3.2 with the current PyMySQL can not send
``bytes`` parameters.  Connections run in autocommit mode (a plain SELECT
outside autocommit leaves a transaction open, and the pool then discards the
connection instead of reusing it) and, by default, as read-only sessions:
``SET SESSION TRANSACTION READ ONLY`` is the driver's ``init_command``, so it
runs before a new connection is ever handed out.

Text comes back as ``str`` decoded by the server into the connection
``charset`` (utf8mb4 by default): ``tis620`` columns arrive as proper Thai,
TIS-620 bytes kept in ``latin1`` columns arrive as mojibake whose
``.encode("cp1252")`` gives the original bytes back (MySQL's latin1 is
Windows-1252), which is what the gateway's cp874 transform undoes.

Query timeouts are enforced here (the protocol has no cancel message): on
timeout the connection is closed, never returned to the pool half-read, and
``KILL QUERY <thread id>`` is sent on a separate short-lived connection so the
server stops working too.  Error messages keep the error number and the
server's message, but never a parameter value: the text protocol interpolates
parameters into the statement, so the part of a syntax error that quotes the
statement is cut and every parameter's text is redacted from the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar, TypeVar

import asyncmy
from asyncmy.charset import charset_by_name
from asyncmy.connection import Connection
from asyncmy.cursors import Cursor, DictCursor, SSDictCursor
from asyncmy.errors import InterfaceError, MySQLError
from pydantic import Field, SecretStr, field_validator

from adapters._sql import CompiledQuery, SqlOperation, compile_named, limit_zero
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

__all__ = ["FACTORY", "MysqlAdapter", "MysqlFactory", "MysqlOptions"]

_T = TypeVar("_T")

READ_ONLY_COMMAND = "SET SESSION TRANSACTION READ ONLY"

# The server or our session with it is gone or refuses us: answer 503.
_UNAVAILABLE_CODES = frozenset(
    {
        1040,  # ER_CON_COUNT_ERROR: too many connections
        1041,  # ER_OUT_OF_RESOURCES
        1044,  # ER_DBACCESS_DENIED_ERROR
        1045,  # ER_ACCESS_DENIED_ERROR
        1049,  # ER_BAD_DB_ERROR: unknown database
        1053,  # ER_SERVER_SHUTDOWN
        1129,  # ER_HOST_IS_BLOCKED
        1130,  # ER_HOST_NOT_PRIVILEGED
        1152,  # ER_ABORTING_CONNECTION
        1203,  # ER_TOO_MANY_USER_CONNECTIONS
        1226,  # ER_USER_LIMIT_REACHED (max_queries_per_hour ...)
        1927,  # ER_CONNECTION_KILLED (MariaDB)
        2002,  # CR_CONNECTION_ERROR (socket)
        2003,  # CR_CONN_HOST_ERROR: refused, unreachable, connect timeout
        2005,  # CR_UNKNOWN_HOST
        2006,  # CR_SERVER_GONE_ERROR
        2013,  # CR_SERVER_LOST
        2055,  # CR_SERVER_LOST_EXTENDED
        4031,  # ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8: idle session closed)
    }
)
# The server gave up on the statement: answer 504.
_TIMEOUT_CODES = frozenset(
    {
        1205,  # ER_LOCK_WAIT_TIMEOUT
        1317,  # ER_QUERY_INTERRUPTED: KILL QUERY from elsewhere
        1969,  # ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
        3024,  # ER_QUERY_TIMEOUT (MySQL max_execution_time)
    }
)

# "... right syntax to use near '<rest of the statement, parameters included>' at line 1"
_NEAR_STATEMENT = re.compile(r"near '.*' at line (\d+)", re.DOTALL)


class MysqlOptions(OptionsModel):
    host: str = Field(min_length=1, description="server host name or address")
    port: int = Field(default=3306, ge=1, le=65535)
    user: str = Field(min_length=1)
    password: SecretStr | None = Field(default=None, description="password of user")
    database: str = Field(min_length=1, description="default database (schema)")
    charset: str = Field(
        default="utf8mb4",
        description="connection charset; the server converts latin1/tis620 columns into it",
    )
    connect_timeout: float = Field(default=5, gt=0, le=300, description="seconds per connect")
    probe_query: str = Field(default="SELECT 1", min_length=1, description="health probe")
    init_command: str | None = Field(
        default=None,
        description="one statement run on each new connection (after the read-only setting)",
    )
    read_only: bool = Field(
        default=True, description="SET SESSION TRANSACTION READ ONLY on each connection"
    )

    @field_validator("charset")
    @classmethod
    def _known_charset(cls, charset: str) -> str:
        if charset_by_name(charset) is None:
            raise ValueError(f"unknown MySQL charset {charset!r}")
        return charset


def _error_code(exc: BaseException) -> int:
    code = exc.args[0] if exc.args else 0
    return code if isinstance(code, int) else 0


def _describe(exc: BaseException, args: Sequence[object]) -> str:
    """``mysql <errno> (<sqlstate>) ClassName: message`` without any parameter value."""
    if isinstance(exc, MySQLError):
        code = _error_code(exc)
        message = str(exc.args[1]) if len(exc.args) > 1 else ""
        sqlstate = getattr(exc, "sqlstate", None)
        head = f"mysql {code}" + (f" ({sqlstate})" if sqlstate else "")
    else:
        message, head = str(exc), "mysql"
    message = _NEAR_STATEMENT.sub(r"near <statement omitted> at line \1", message)
    message = re.sub(r"\s+", " ", redact_values(message, args)).strip()
    head = f"{head} {type(exc).__name__}"
    return f"{head}: {message}" if message else head


def _map_error(exc: BaseException, args: Sequence[object]) -> Exception:
    code = _error_code(exc)
    if code in _TIMEOUT_CODES:
        return BackendTimeout(_describe(exc, args))
    if code in _UNAVAILABLE_CODES or isinstance(exc, OSError | InterfaceError):
        # only reached after a pooled connection was handed out: it died under us
        return BackendUnavailable(_describe(exc, args), retryable=True)
    return BackendError(_describe(exc, args))


def _leaves_connection_clean(exc: BaseException) -> bool:
    """An error packet from the server ends the exchange; anything else may not."""
    code = _error_code(exc)
    server_error = 1000 <= code < 2000 or code >= 3000
    return isinstance(exc, MySQLError) and server_error and code not in _UNAVAILABLE_CODES


class MysqlAdapter:
    def __init__(self, name: str, options: MysqlOptions, limits: BackendLimits) -> None:
        self.name = name
        self._options = options
        self._limits = limits
        self._pool: asyncmy.Pool | None = None
        self._active = 0  # connections currently held by fetch/probe calls
        self._closed = False
        self._kills: set[asyncio.Task[None]] = set()
        # With read_only the driver's single init_command is taken; a configured
        # init_command then runs here, once per connection, on first checkout.
        self._initialised: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._late_init = options.init_command if options.read_only else None

    def _server_kwargs(self) -> dict[str, Any]:
        opts = self._options
        return {
            "host": opts.host,
            "port": opts.port,
            "user": opts.user,
            "password": opts.password.get_secret_value() if opts.password else "",
            "connect_timeout": opts.connect_timeout,
            "autocommit": True,
        }

    async def open(self) -> None:
        opts = self._options
        init = READ_ONLY_COMMAND if opts.read_only else opts.init_command
        # minsize=0: nothing is connected here, the first acquire connects; a
        # server that is down does not stop the gateway.
        self._pool = await asyncmy.create_pool(
            minsize=0,
            maxsize=self._limits.pool_size,
            database=opts.database,
            charset=opts.charset,
            init_command=init,
            **self._server_kwargs(),
        )

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
            # Calls in flight end within query_timeout; do not wait much longer.
            try:
                await asyncio.wait_for(pool.wait_closed(), self._limits.query_timeout + 1.0)
            except Exception:  # TimeoutError included
                pool.terminate()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pool.wait_closed(), 1.0)
        if self._kills:
            _, pending = await asyncio.wait(set(self._kills), timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _acquire(self) -> tuple[asyncmy.Pool, Connection]:
        pool = self._pool
        if self._closed or pool is None:
            raise BackendUnavailable("adapter closed" if self._closed else "adapter not opened")
        wait = time_left(self._limits.acquire_timeout)
        # In a task of its own, waited for with a deadline rather than cancelled at it: a
        # cancelled waiter of asyncmy's pool must first retake the pool's lock, which a
        # connect to a slow server holds for as long as that connect takes.
        getting = asyncio.ensure_future(pool.acquire())
        try:
            try:
                done, _ = await asyncio.wait((getting,), timeout=wait)
            finally:
                if not getting.done():  # the deadline, or this call cancelled
                    getting.cancel()
                    getting.add_done_callback(partial(_release_late, pool))
            if not done:
                raise TimeoutError
            conn: Connection = getting.result()
        except TimeoutError:
            raise self._limits.acquire_failed(self._active, wait) from None
        except RuntimeError:  # "Cannot acquire connection after closing pool"
            raise BackendUnavailable("adapter closed") from None
        except (MySQLError, OSError) as exc:
            # Whatever fails while connecting (refused, access denied, unknown
            # database, too many connections) leaves the backend unusable.
            raise BackendUnavailable(f"cannot connect: {_describe(exc, ())}") from None
        return pool, conn

    def _abandon(self, conn: Connection, thread_id: int | None) -> None:
        """Drop a connection whose statement may still run on the server."""
        conn.close()  # never back to the pool half-read
        if thread_id:
            task = asyncio.get_running_loop().create_task(self._kill_query(thread_id))
            self._kills.add(task)
            task.add_done_callback(self._kills.discard)

    async def _kill_query(self, thread_id: int) -> None:
        """Best effort: stop the abandoned statement so the server stops working."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._options.connect_timeout + 1.0):
                killer = await asyncmy.connect(**self._server_kwargs())
                try:
                    cur = killer.cursor()
                    await cur.execute(f"KILL QUERY {int(thread_id)}")
                finally:
                    await killer.ensure_closed()

    async def _run(
        self, sql: str, args: Sequence[object] | None, max_rows: int
    ) -> list[dict[str, object]]:
        async def read(cur: Cursor) -> list[dict[str, object]]:
            rows: list[dict[str, object]] = await cur.fetchmany(max_rows)
            return [dict(r) for r in rows]

        return await self._cursor(sql, args, read)

    async def _cursor(
        self,
        sql: str,
        args: Sequence[object] | None,
        read: Callable[[Cursor], Awaitable[_T]],
    ) -> _T:
        pool, conn = await self._acquire()
        self._active += 1
        thread_id: int | None = conn.thread_id()
        clean = True
        timeout = time_left(self._limits.query_timeout)
        try:
            async with within(timeout):
                if self._late_init is not None and conn not in self._initialised:
                    await conn.cursor().execute(self._late_init)
                    self._initialised.add(conn)
                # A buffered cursor: the server sends the whole result and
                # fetchmany hands out max_rows of it.  An unbuffered cursor
                # would have to drain (or drop) the rest before the connection
                # can be reused, so it saves memory, not work.
                cur = conn.cursor(DictCursor)
                await cur.execute(sql, args)
                result = await read(cur)
                await cur.close()
            return result
        except TimeoutError:
            clean = False
            self._abandon(conn, thread_id)
            raise BackendTimeout(f"query exceeded {timeout:.3g}s") from None
        except asyncio.CancelledError:
            clean = False
            self._abandon(conn, thread_id)
            raise
        except (MySQLError, OSError) as exc:
            clean = _leaves_connection_clean(exc)
            raise _map_error(exc, args or ()) from None
        except (TypeError, ValueError) as exc:  # a parameter the driver can not escape
            raise BackendError(f"mysql: parameter not encodable ({type(exc).__name__})") from None
        finally:
            self._active -= 1
            if not clean:
                conn.close()  # the pool drops closed connections on release
            with contextlib.suppress(Exception):  # never hide the call's own outcome
                pool.release(conn)

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        op: CompiledQuery = operation
        # Always a tuple, even empty: compile_named doubled literal '%' signs
        # and only formatting with arguments turns them back into one.
        return await self._run(op.sql, op.bind(dict(params)), op.max_rows)

    async def stream(
        self, operation: Any, params: Mapping[str, object], batch: int
    ) -> AsyncIterator[Sequence[Row]]:
        """An unbuffered cursor: the server sends rows as they are read; each batch
        within query_timeout.  Stopped early, the connection is dropped and the
        statement killed, as on a timeout."""
        op: CompiledQuery = operation
        args = op.bind(dict(params))
        timeout = self._limits.query_timeout
        pool, conn = await self._acquire()
        self._active += 1
        thread_id: int | None = conn.thread_id()
        done = False
        try:
            async with within(timeout):
                if self._late_init is not None and conn not in self._initialised:
                    await conn.cursor().execute(self._late_init)
                    self._initialised.add(conn)
                cur = conn.cursor(SSDictCursor)
                await cur.execute(op.sql, args)
            while True:
                async with within(timeout):
                    rows = await cur.fetchmany(batch)
                if not rows:
                    break
                yield [dict(r) for r in rows]
            await cur.close()
            done = True
        except TimeoutError:
            raise BackendTimeout(f"a batch exceeded {timeout:g}s") from None
        except (MySQLError, OSError) as exc:
            raise _map_error(exc, args) from None
        finally:
            self._active -= 1
            if not done:
                self._abandon(conn, thread_id)
            with contextlib.suppress(Exception):
                pool.release(conn)
    async def result_columns(self, operation: Any) -> list[str]:
        op: CompiledQuery = operation

        async def names(cur: Cursor) -> list[str]:
            return [d[0] for d in cur.description or ()]

        return await self._cursor(limit_zero(op.sql), (None,) * len(op.order), names)

    async def probe(self) -> None:
        await self._run(self._options.probe_query, None, 1)  # None: no % formatting

    def pool_stats(self) -> PoolStats:
        pool = self._pool
        if pool is None:
            return PoolStats(size=0, in_use=0)
        size = int(pool.size)
        return PoolStats(size=size, in_use=size - int(pool.freesize))


def _release_late(pool: asyncmy.Pool, getting: asyncio.Future[Connection]) -> None:
    """A connection the pool handed out after its caller stopped waiting goes back."""
    if getting.cancelled() or getting.exception() is not None:
        return
    with contextlib.suppress(Exception):
        pool.release(getting.result())


class MysqlFactory:
    type_name: ClassVar[str] = "mysql"
    options_model: ClassVar[type[OptionsModel]] = MysqlOptions
    operation_model: ClassVar[type[OptionsModel]] = SqlOperation

    def prepare(self, options: Any, operation: Any, param_names: Sequence[str]) -> CompiledQuery:
        op: SqlOperation = operation
        return compile_named(op.query, "format", param_names, max_rows=op.max_rows)

    def create(self, name: str, options: Any, limits: BackendLimits) -> MysqlAdapter:
        return MysqlAdapter(name, options, limits)


FACTORY = MysqlFactory()
