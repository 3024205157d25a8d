"""The ODBC adapter: a pool of pyodbc connections, each with its own worker thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyodbc  # type: ignore[import-not-found, unused-ignore]

from adapters._sql import CompiledQuery
from adapters.odbc.errors import (
    Dialect,
    cancel_statement,
    describe_error,
    dialect_of,
    is_connection_error,
    map_error,
    session_id_query,
    session_statements,
)
from adapters.odbc.options import LENIENT_PREFIX, OdbcOptions, build_connection_string, ctype
from gateway.adapter import (
    BackendBusy,
    BackendError,
    BackendLimits,
    BackendTimeout,
    BackendUnavailable,
    PoolStats,
    Row,
)

__all__ = ["OdbcAdapter"]

log = logging.getLogger("lc2_gateway.adapters.odbc")

_T = TypeVar("_T")


@dataclass(eq=False)
class _Conn:
    raw: pyodbc.Connection
    dialect: Dialect
    last_used: float
    session_id: int | None = None  # the server's id for this session, for out-of-band cancels


@dataclass(eq=False)
class _Call:
    """A statement in flight, as far as a cancel from another thread needs to know."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    cursor: pyodbc.Cursor | None = None
    abandoned: bool = False
    finished: bool = False
    names: list[str] | None = None  # the result's columns, once described


class _Lease:
    """One pool slot: a worker thread and the connection it uses.

    If the caller stops waiting (timeout, cancellation) while a job still runs
    in the thread, the slot is released when that job ends, not before.
    """

    def __init__(self, adapter: OdbcAdapter) -> None:
        self._adapter = adapter
        self._pending: asyncio.Future[Any] | None = None
        self._released = False

    def hand_over(
        self, job: asyncio.Future[Any], orphan: Callable[[Any], None] | None = None
    ) -> None:
        self._pending = job

        def done(f: asyncio.Future[Any]) -> None:
            try:
                if not f.cancelled() and f.exception() is None and orphan is not None:
                    orphan(f.result())
            finally:
                self.release()

        job.add_done_callback(done)

    def end(self) -> None:
        if self._pending is None:
            self.release()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._adapter._slot_released()


class OdbcAdapter:
    def __init__(self, name: str, options: OdbcOptions, limits: BackendLimits) -> None:
        self.name = name
        self._options = options
        self._limits = limits
        self._connection_string = build_connection_string(options)
        self._secret = options.password.get_secret_value() if options.password else None
        self._slots = asyncio.Semaphore(limits.pool_size)
        self._leased = 0
        self._all_free: asyncio.Event | None = None
        self._lock = threading.Lock()  # guards _idle and _open, touched from worker threads
        self._idle: list[_Conn] = []
        self._open = 0
        self._closed = False
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._canceller: concurrent.futures.ThreadPoolExecutor | None = None
        self._cancel_conn: pyodbc.Connection | None = None  # used only on the cancel thread
        self._warned_read_only = False

    # -- life cycle ------------------------------------------------------------------

    async def open(self) -> None:
        # The adapter pools connections itself; the driver manager's pooling
        # would keep a connection we discarded after a cancel alive.  It is a
        # process-wide setting read when the first connection is made.
        pyodbc.pooling = False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._limits.pool_size, thread_name_prefix=f"odbc-{self.name}"
        )
        self._canceller = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"odbc-{self.name}-cancel"
        )

    async def close(self) -> None:
        self._closed = True
        if self._leased:
            self._all_free = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_free.wait(), self._limits.query_timeout + 1.0)
        with self._lock:
            idle, self._idle = self._idle, []
        executor, self._executor = self._executor, None
        canceller, self._canceller = self._canceller, None
        if canceller is not None:
            with contextlib.suppress(RuntimeError):
                canceller.submit(self._close_cancel_conn)
        if executor is not None:
            if idle:
                loop = asyncio.get_running_loop()
                with contextlib.suppress(Exception):
                    await loop.run_in_executor(executor, self._close_all, idle)
            # A statement that ignored its cancel keeps its thread until the
            # driver returns; nothing waits for it here.
            executor.shutdown(wait=False, cancel_futures=True)
        if canceller is not None:
            # Not cancel_futures: the job closing the cancel session is queued there.
            canceller.shutdown(wait=False)

    # -- worker-thread side ----------------------------------------------------------

    def _close_all(self, conns: Sequence[_Conn]) -> None:
        for c in conns:
            self._discard(c)

    def _discard(self, conn: _Conn) -> None:
        with self._lock:
            self._open -= 1
        with contextlib.suppress(Exception):
            conn.raw.close()

    def _checkin(self, conn: _Conn) -> None:
        conn.last_used = time.monotonic()
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return
        self._discard(conn)

    def _take_idle(self) -> tuple[_Conn | None, list[_Conn]]:
        """The freshest idle connection young enough to trust, and the stale ones."""
        horizon = time.monotonic() - self._options.max_idle_time
        stale: list[_Conn] = []
        with self._lock:
            while self._idle:
                c = self._idle.pop()
                if c.last_used >= horizon:
                    return c, stale
                stale.append(c)
        return None, stale

    def _checkout(self) -> _Conn:
        """An idle connection or a new one (runs in a worker: connecting blocks)."""
        found, stale = self._take_idle()
        self._close_all(stale)
        return found if found is not None else self._connect()

    def _connect(self) -> _Conn:
        opts = self._options
        raw = pyodbc.connect(
            self._connection_string,
            autocommit=True,
            readonly=opts.read_only,  # a hint; enforced below where the DBMS allows
            timeout=math.ceil(opts.login_timeout),
        )
        with self._lock:
            self._open += 1
        conn = _Conn(raw, "other", time.monotonic())
        try:
            dbms = str(raw.getinfo(pyodbc.SQL_DBMS_NAME) or "")
            conn.dialect = dialect_of(dbms)
            self._set_codecs(raw, conn.dialect)
            # Backstop only: the adapter cancels at query_timeout itself.
            server_timeout = self._limits.query_timeout + 1.0
            with contextlib.suppress(pyodbc.Error):  # psqlodbc refuses the attribute
                raw.timeout = math.ceil(server_timeout)
            statements = session_statements(
                conn.dialect, read_only=opts.read_only, server_timeout=server_timeout
            )
            if opts.read_only and not any(
                "READ ONLY" in s or "query_only" in s for s in statements
            ):
                self._warn_read_only(dbms)
            for sql in (*statements, *opts.init_statements):
                raw.execute(sql).close()
            id_query = session_id_query(conn.dialect)
            if id_query is not None:
                cur = raw.execute(id_query)
                conn.session_id = int(cur.fetchone()[0])
                cur.close()
        except BaseException:
            self._discard(conn)
            raise
        return conn

    def _warn_read_only(self, dbms: str) -> None:
        if not self._warned_read_only:
            self._warned_read_only = True
            log.warning(
                "backend %s: %s has no read-only session; use a login that may only read",
                self.name,
                dbms or "this DBMS",
            )

    def _set_codecs(self, raw: pyodbc.Connection, dialect: Dialect) -> None:
        opts = self._options
        wchar = opts.decoding.wchar
        if wchar is None:
            # MariaDB Connector/ODBC 3.1 drops the last characters of latin1 values
            # with bytes over 0x7F when they are fetched as UTF-16 (measured with
            # 3.1.15: 168 of 300 random TIS-620 strings came back short); fetched
            # as UTF-8 text they arrive whole.
            wchar = "utf-8" if dialect in ("mariadb", "mysql") else "utf-16le"
        lenient = opts.decoding_errors == "replace"
        for sqltype, codec in ((pyodbc.SQL_CHAR, opts.decoding.char), (pyodbc.SQL_WCHAR, wchar)):
            narrow = ctype(codec) == pyodbc.SQL_CHAR
            # Only narrow text can take the lenient codec: given a codec name that
            # is not UTF-16, pyodbc no longer fetches wide (and UTF-16 has no bad bytes).
            name = LENIENT_PREFIX + codec if lenient and narrow else codec
            raw.setdecoding(sqltype, encoding=name, ctype=ctype(codec))
        raw.setencoding(encoding=opts.encoding, ctype=ctype(opts.encoding))

    def _execute(
        self, call: _Call, conn: _Conn, sql: str, args: Sequence[object], max_rows: int
    ) -> list[dict[str, object]]:
        """Run one statement on ``conn`` and give the connection back (runs in a worker)."""
        healthy = False
        try:
            with call.lock:
                if call.abandoned:  # the caller gave up before this thread was free
                    healthy = True
                    return []
                cur = call.cursor = conn.raw.cursor()
            try:
                cur.execute(sql, *args)
                # Procedures and batches may send row counts before the rows.
                while cur.description is None and cur.nextset():
                    pass
                if cur.description is None:
                    rows: list[dict[str, object]] = []
                else:
                    names = call.names = [d[0] for d in cur.description]
                    rows = [
                        dict(zip(names, map(_value, r), strict=True))
                        for r in cur.fetchmany(max_rows)
                    ]
            finally:
                # Under the call's lock: a cancel on the other thread holds it while it
                # stops this session's statement, so the session id it uses stays ours.
                with call.lock:
                    call.finished = True
                    with contextlib.suppress(pyodbc.Error):
                        cur.close()
            healthy = True
            return rows
        except pyodbc.Error as exc:
            healthy = not is_connection_error(exc, conn.dialect)
            if not healthy:
                self._flush_idle()  # a server restart kills them all
            raise
        except UnicodeError:
            healthy = True  # a decoding failure says nothing about the connection
            raise
        finally:
            with call.lock:
                cancelled = call.abandoned and call.cursor is not None
                call.finished = True
            # After a cancel the session state is the driver's guess: never reuse it.
            if healthy and not cancelled:
                self._checkin(conn)
            else:
                self._discard(conn)

    def _flush_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        self._close_all(idle)

    def _cancel(self, call: _Call, conn: _Conn) -> None:
        """Stop the statement from a second session of our own (runs on the cancel thread).

        Not SQLCancel: on a statement that is between two ODBC calls (executed,
        not yet fetched) the drivers treat it as SQLFreeStmt(SQL_CLOSE), which
        frees the result set under the worker's fetch; MariaDB Connector/ODBC
        3.1 crashed the process that way one run in three under a race test.
        A cancel through the server touches nothing of the worker's handles.
        """
        if conn.session_id is None:
            return
        sql = cancel_statement(conn.dialect, conn.session_id)
        if sql is None:
            return
        # Under the call's lock: the worker can not finish and close the session
        # meanwhile, so the id still names this statement's session.
        with call.lock:
            if call.finished:
                return
            for attempt in (1, 2):
                try:
                    if self._cancel_conn is None:
                        self._cancel_conn = pyodbc.connect(
                            self._connection_string,
                            autocommit=True,
                            timeout=math.ceil(self._options.login_timeout),
                        )
                    self._cancel_conn.execute(sql).close()
                    return
                except pyodbc.Error as exc:
                    self._close_cancel_conn()
                    if attempt == 2:
                        log.warning(
                            "backend %s: could not cancel a statement: %s",
                            self.name,
                            describe_error(exc, password=self._secret),
                        )

    def _close_cancel_conn(self) -> None:
        conn, self._cancel_conn = self._cancel_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    # -- event-loop side ------------------------------------------------------------

    def _slot_released(self) -> None:
        self._leased -= 1
        self._slots.release()
        if self._leased == 0 and self._all_free is not None:
            self._all_free.set()

    async def _lease(self) -> _Lease:
        if self._closed or self._executor is None:
            raise BackendUnavailable("adapter closed" if self._closed else "adapter not opened")
        try:
            await asyncio.wait_for(self._slots.acquire(), self._limits.acquire_timeout)
        except TimeoutError:
            raise BackendBusy(
                f"all {self._limits.pool_size} connections busy for "
                f"{self._limits.acquire_timeout:g}s"
            ) from None
        self._leased += 1
        return _Lease(self)

    async def _in_thread(
        self,
        lease: _Lease,
        wait: float,
        fn: Callable[..., _T],
        *args: Any,
        orphan: Callable[[_T], None] | None = None,
    ) -> _T:
        """Run ``fn`` in a worker; if we stop waiting, the job keeps the lease until it ends."""
        executor = self._executor
        if executor is None:
            raise BackendUnavailable("adapter closed")
        job = asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        try:
            return await asyncio.wait_for(asyncio.shield(job), wait)
        except BaseException:
            if not job.done():
                lease.hand_over(job, orphan)
            raise

    def _executor_submit(self, fn: Callable[..., object], *args: Any) -> None:
        """Fire and forget on the cancel thread: closing stale connections, cancels."""
        if self._canceller is not None:
            with contextlib.suppress(RuntimeError):  # shut down while closing
                self._canceller.submit(fn, *args)

    def _orphaned_checkout(self, conn: _Conn) -> None:
        """A connection that arrived after its caller gave up: keep it for the next call."""
        if self._closed:
            self._discard(conn)
        else:
            self._checkin(conn)

    async def _run(
        self, sql: str, args: Sequence[object], max_rows: int, call: _Call | None = None
    ) -> list[dict[str, object]]:
        lease = await self._lease()
        try:
            # The usual case costs no thread hop: a warm idle connection.
            conn, stale = self._take_idle()
            if stale:
                self._executor_submit(self._close_all, stale)
            try:
                if conn is None:
                    conn = await self._in_thread(
                        lease,
                        self._limits.acquire_timeout,
                        self._checkout,
                        orphan=self._orphaned_checkout,
                    )
            except TimeoutError:
                raise BackendUnavailable(
                    f"could not connect within {self._limits.acquire_timeout:g}s"
                ) from None
            except pyodbc.Error as exc:
                # Whatever fails while connecting (refused, login, no database,
                # no driver) leaves the backend unusable.
                text = describe_error(exc, password=self._secret)
                raise BackendUnavailable(f"cannot connect: {text}") from None
            call = call or _Call()
            try:
                return await self._in_thread(
                    lease,
                    self._limits.query_timeout,
                    self._execute,
                    call,
                    conn,
                    sql,
                    args,
                    max_rows,
                )
            except (TimeoutError, asyncio.CancelledError) as exc:
                self._abandon(call, conn)
                if isinstance(exc, TimeoutError):
                    raise BackendTimeout(
                        f"query exceeded {self._limits.query_timeout:g}s (cancelled)"
                    ) from None
                raise
            except pyodbc.Error as exc:
                raise map_error(exc, args, conn.dialect) from None
            except UnicodeDecodeError as exc:
                raise BackendError(
                    f"odbc: column text does not decode as configured in `decoding` ({exc.reason})"
                ) from None
            except (TypeError, ValueError, OverflowError) as exc:  # a parameter pyodbc can not bind
                raise BackendError(f"odbc: parameter not bindable ({type(exc).__name__})") from None
        finally:
            lease.end()

    def _abandon(self, call: _Call, conn: _Conn) -> None:
        with call.lock:
            call.abandoned = True
            running = call.cursor is not None and not call.finished
        if running:
            self._executor_submit(self._cancel, call, conn)

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        op: CompiledQuery = operation
        return await self._run(op.sql, op.bind(dict(params)), op.max_rows)

    async def stream(
        self, operation: Any, params: Mapping[str, object], batch: int
    ) -> AsyncIterator[Sequence[Row]]:
        """The statement's rows by fetchmany, each batch within query_timeout.

        The stream's connection works in a thread of its own, so its jobs run in order:
        the discard after a stop waits for a fetch still in the driver, never racing it.
        """
        op: CompiledQuery = operation
        args = op.bind(dict(params))
        timeout = self._limits.query_timeout
        lease = await self._lease()
        worker = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"odbc-{self.name}-scan"
        )
        loop = asyncio.get_running_loop()
        call = _Call()
        conn: _Conn | None = None

        async def job(wait: float, fn: Callable[..., _T], *fargs: Any) -> _T:
            return await asyncio.wait_for(
                asyncio.shield(loop.run_in_executor(worker, fn, *fargs)), wait
            )

        def start(c: _Conn) -> list[str]:
            cur = call.cursor = c.raw.cursor()
            cur.execute(op.sql, *args)
            while cur.description is None and cur.nextset():
                pass
            return [d[0] for d in cur.description or ()]

        done = False
        try:
            try:
                conn = await job(self._limits.acquire_timeout, self._checkout)
            except pyodbc.Error as exc:
                text = describe_error(exc, password=self._secret)
                raise BackendUnavailable(f"cannot connect: {text}") from None
            names = await job(timeout, start, conn)
            cursor = call.cursor
            while names and cursor is not None:
                rows = await job(timeout, cursor.fetchmany, batch)
                if not rows:
                    break
                yield [dict(zip(names, map(_value, r), strict=True)) for r in rows]
            done = True
        except TimeoutError:
            raise BackendTimeout(f"a batch exceeded {timeout:g}s (cancelled)") from None
        except pyodbc.Error as exc:
            raise map_error(exc, args, conn.dialect if conn else "other") from None
        except UnicodeDecodeError as exc:
            raise BackendError(
                f"odbc: column text does not decode as configured in `decoding` ({exc.reason})"
            ) from None
        finally:
            if conn is not None and not done:
                self._abandon(call, conn)
            last = worker.submit(self._end_stream, call, conn, done)
            worker.shutdown(wait=False)
            lease.hand_over(asyncio.wrap_future(last))
            lease.end()

    def _end_stream(self, call: _Call, conn: _Conn | None, healthy: bool) -> None:
        with call.lock:
            call.finished = True
            if call.cursor is not None:
                with contextlib.suppress(pyodbc.Error):
                    call.cursor.close()
        if conn is not None:
            if healthy:
                self._checkin(conn)
            else:
                self._discard(conn)
    async def result_columns(self, operation: Any) -> list[str] | None:
        op: CompiledQuery = operation
        # WHERE 1=0 rather than LIMIT 0: SQL Server and Access have no LIMIT
        sql = f"SELECT * FROM ({op.sql.strip().rstrip(';').rstrip()}) lc2_columns WHERE 1=0"
        call = _Call()
        await self._run(sql, [None] * len(op.order), 1, call)
        return call.names

    async def probe(self) -> None:
        await self._run(self._options.probe_query, (), 1)

    def pool_stats(self) -> PoolStats:
        return PoolStats(size=self._open, in_use=self._leased)


def _value(v: object) -> object:
    return bytes(v) if isinstance(v, bytearray | memoryview) else v
