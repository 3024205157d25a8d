"""The file adapter: lookups on the current store, and the reloader that replaces it.

The reloader polls the file's inode, size and mtime every ``reload.interval``
seconds (the ``stat`` and the load both run in a worker thread, never on the
event loop).  A new version is loaded only once it has been left alone for
``reload.settle`` seconds, into a new store beside the one serving; it
replaces it only if it was read whole, did not change while being read, has
at least ``min_ratio`` of the rows and every column of the one it replaces,
and every query the services ran still uses an index on it.  Otherwise the
old data keep serving and ``probe`` (health) says why, until a new version
of the file arrives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters._sql import CompiledQuery
from adapters.files.options import FileOptions
from adapters.files.readers import ExportError, Stopped
from adapters.files.store import (
    FileChanged,
    Generation,
    QueryRefused,
    Signature,
    build_generation,
    check_query,
    remove_stale_stores,
    signature,
    source_files,
)
from gateway.adapter import (
    BackendBusy,
    BackendError,
    BackendLimits,
    BackendTimeout,
    BackendUnavailable,
    PoolStats,
    Row,
)

__all__ = ["FileAdapter"]

log = logging.getLogger("lc2_gateway.adapters.files")


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


@dataclass(eq=False)
class _Call:
    """The connection a lookup runs on, so a timeout can interrupt it from the loop.

    The lock keeps an interrupt from reaching a connection its worker has already
    given back (to another lookup, or to a store being closed).
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    conn: sqlite3.Connection | None = None
    interrupted: bool = False

    def interrupt(self) -> None:
        with self.lock:
            self.interrupted = True
            if self.conn is not None:
                self.conn.interrupt()  # stops the statement in its worker thread


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class FileAdapter:
    def __init__(self, name: str, options: FileOptions, limits: BackendLimits) -> None:
        self.name = name
        self._options = options
        self._limits = limits
        self._files = source_files(options)
        self._current: Generation | None = None
        self._number = 0
        self._load_error: str | None = None  # why nothing is served yet
        self._problem: str | None = None  # why the file on disk is not what is served
        self._refused: Signature | None = None  # a version already refused: not retried
        self._missing_since: float | None = None
        self._queries: dict[str, int] = {}  # every query seen, re-checked on each new store
        self._first_check = asyncio.Event()
        self._checking = asyncio.Lock()
        self._slots = asyncio.Semaphore(limits.pool_size)
        self._leased = 0
        self._inflight: set[asyncio.Future[list[dict[str, object]]]] = set()
        self._stop = threading.Event()
        self._closed = False
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._loader: concurrent.futures.ThreadPoolExecutor | None = None
        self._watcher: asyncio.Task[None] | None = None

    # -- life cycle ----------------------------------------------------------------------

    async def open(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._limits.pool_size, thread_name_prefix=f"file-{self.name}"
        )
        # One loader thread: two versions are never loaded at once.
        self._loader = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"file-{self.name}-load"
        )
        if self._options.store_dir is not None:
            await self._in_loader(remove_stale_stores, self._options.store_dir, self.name)
        # The first load runs in the background: a large export must not hold
        # up start-up; lookups wait for it up to acquire_timeout.
        self._watcher = asyncio.create_task(self._watch(), name=f"file-watch-{self.name}")

    async def close(self) -> None:
        self._closed = True
        self._stop.set()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._inflight:  # lookups end within query_timeout
            await asyncio.wait(set(self._inflight), timeout=self._limits.query_timeout + 1.0)
        current, self._current = self._current, None
        if current is not None:
            current.retired = True
            with contextlib.suppress(Exception):
                await self._in_loader(current.close)
        for pool in (self._executor, self._loader):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._executor = self._loader = None

    async def _in_loader(self, fn: Any, *args: Any) -> Any:
        loader = self._loader
        if loader is None:
            raise RuntimeError("adapter closed")
        return await asyncio.get_running_loop().run_in_executor(loader, fn, *args)

    # -- the reloader ----------------------------------------------------------------------

    async def _watch(self) -> None:
        while not self._closed:
            try:
                await self.check_now()
            except asyncio.CancelledError:
                raise
            except Exception:  # the watcher must outlive any surprise
                log.exception("backend %s: checking %s failed", self.name, self._options.path)
            finally:
                self._first_check.set()
            await asyncio.sleep(self._options.reload.interval)

    async def check_now(self) -> None:
        """One poll of the file: load it if a new, settled version is there."""
        async with self._checking:  # the poller and an explicit check never overlap
            await self._check()

    async def _check(self) -> None:
        sig: Signature | None = await self._in_loader(signature, self._files)
        now = time.time()
        current = self._current
        if sig is None:
            if current is None:
                self._load_error = f"{self._options.path} does not exist"
            elif self._missing_since is None:
                self._missing_since = now
            elif now - self._missing_since >= self._options.reload.settle:
                self._problem = (
                    f"{self._options.path} is missing since {_when(self._missing_since)}; "
                    f"serving the version of {_when(current.signature.mtime)}"
                )
            return
        self._missing_since = None
        if current is not None and sig == current.signature:
            self._problem = None
            return
        if sig == self._refused:
            return  # that version was refused once; wait for another
        age = now - sig.mtime
        if age < self._options.reload.settle:
            if current is None:
                self._load_error = (
                    f"{self._options.path} changed {age:.0f}s ago; it is loaded once it has "
                    f"been left alone for {self._options.reload.settle:g}s"
                )
            return
        await self._load(sig)

    async def _load(self, sig: Signature) -> None:
        previous = self._current
        self._number += 1
        started = time.monotonic()
        try:
            gen: Generation = await self._in_loader(
                lambda: build_generation(
                    self.name,
                    self._number,
                    self._options,
                    self._stop,
                    previous=previous,
                    queries=dict(self._queries),
                )
            )
        except Stopped:
            return
        except Exception as exc:
            if not isinstance(exc, ExportError):
                log.exception("backend %s: loading %s failed", self.name, self._options.path)
            reason = str(exc) if isinstance(exc, ExportError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, FileChanged):
                self._refused = sig  # the same bytes would fail the same way
            where = f"{self._options.path} (modified {_when(sig.mtime)})"
            if previous is None:
                self._load_error = f"{where} not loaded: {reason}"
            else:
                self._problem = (
                    f"{where} not loaded: {reason}; serving the version of "
                    f"{_when(previous.signature.mtime)} ({previous.rows} rows)"
                )
            log.warning("backend %s: %s not loaded: %s", self.name, where, reason)
            return
        if self._closed:
            await self._in_loader(gen.close)
            return
        self._swap(gen)
        r = gen.report
        log.info(
            "backend %s: loaded %s: %d rows in %.2fs (encoding %s, %d deleted skipped, "
            "%d undecodable bytes replaced, %d invalid values)%s",
            self.name,
            self._options.path,
            gen.rows,
            time.monotonic() - started,
            r.encoding,
            r.deleted,
            r.replaced,
            r.invalid,
            "".join(f"; {n}" for n in r.notes),
        )

    def _swap(self, gen: Generation) -> None:
        # One assignment on the event loop: a lookup either started before it
        # (and finishes on the old store) or after it (and sees only the new one).
        old, self._current = self._current, gen
        self._load_error = self._problem = None
        self._refused = None
        if old is not None:
            old.retired = True
            if old.users == 0:
                self._retire(old)

    def _retire(self, gen: Generation) -> None:
        loader = self._loader
        if loader is None:
            gen.close()
            return
        with contextlib.suppress(RuntimeError):  # shutting down
            loader.submit(gen.close)

    # -- lookups ------------------------------------------------------------------------------

    async def _serving(self) -> Generation:
        if self._closed:
            raise BackendUnavailable("adapter closed")
        if self._current is None and not self._first_check.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_check.wait(), self._limits.acquire_timeout)
        current = self._current
        if current is None:
            raise BackendUnavailable(f"no data loaded: {self._load_error or 'still loading'}")
        return current

    async def _run(
        self, sql: str, args: Sequence[object], max_rows: int, *, check: bool = True
    ) -> list[dict[str, object]]:
        gen = await self._serving()
        gen.users += 1  # no await since reading _current: a swap can not close it under us
        call = _Call()
        inner = asyncio.ensure_future(self._query(gen, call, sql, args, max_rows, check))
        inner.add_done_callback(_consume)
        self._inflight.add(inner)
        inner.add_done_callback(self._inflight.discard)
        try:
            # Shielded: a cancelled caller interrupts the statement, and the
            # store stays pinned until its worker has really let go of it.
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            call.interrupt()
            raise

    async def _query(
        self,
        gen: Generation,
        call: _Call,
        sql: str,
        args: Sequence[object],
        max_rows: int,
        check: bool,
    ) -> list[dict[str, object]]:
        try:
            try:
                await asyncio.wait_for(self._slots.acquire(), self._limits.acquire_timeout)
            except TimeoutError:
                raise BackendBusy(
                    f"all {self._limits.pool_size} lookups busy for "
                    f"{self._limits.acquire_timeout:g}s"
                ) from None
            self._leased += 1
            try:
                executor = self._executor
                if executor is None:
                    raise BackendUnavailable("adapter closed")
                job = asyncio.get_running_loop().run_in_executor(
                    executor, self._execute, gen, call, sql, args, max_rows, check
                )
                try:
                    return await asyncio.wait_for(asyncio.shield(job), self._limits.query_timeout)
                except TimeoutError:
                    call.interrupt()
                    with contextlib.suppress(Exception):
                        await job  # interrupted: ends at once
                    raise BackendTimeout(
                        f"lookup exceeded {self._limits.query_timeout:g}s"
                    ) from None
            finally:
                self._leased -= 1
                self._slots.release()
        except QueryRefused as exc:
            raise BackendError(f"{self.name}: {exc}") from None
        except sqlite3.Error as exc:
            raise BackendError(f"store {type(exc).__name__}: {exc}") from None
        finally:
            gen.users -= 1
            if gen.retired and gen.users == 0:
                self._retire(gen)

    def _execute(
        self,
        gen: Generation,
        call: _Call,
        sql: str,
        args: Sequence[object],
        max_rows: int,
        check: bool,
    ) -> list[dict[str, object]]:
        """One lookup on one generation (runs in a worker)."""
        conn = gen.connection()
        with call.lock:
            if call.interrupted:
                gen.give_back(conn)
                return []
            call.conn = conn
        try:
            if check and sql not in gen.checked:
                check_query(conn, sql, len(args), allow_scan=self._options.allow_scan)
                gen.checked.add(sql)
            cur = conn.execute(sql, args)
            try:
                names = [d[0] for d in cur.description or ()]
                return [dict(zip(names, r, strict=True)) for r in cur.fetchmany(max_rows)]
            finally:
                cur.close()
        finally:
            with call.lock:
                call.conn = None
            gen.give_back(conn)

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        op: CompiledQuery = operation
        args = op.bind(dict(params))
        rows = await self._run(op.sql, args, op.max_rows)
        # Known once it has run: every new version of the file must serve it too.
        self._queries.setdefault(op.sql, len(args))
        return rows

    async def probe(self) -> None:
        gen = await self._serving()
        if self._problem:
            raise BackendError(self._problem)
        max_age = self._options.max_age
        if max_age is not None and time.time() - gen.signature.mtime > max_age:
            raise BackendError(
                f"the loaded export is from {_when(gen.signature.mtime)}, older than "
                f"max_age {max_age:g}s: is the export job still running?"
            )
        await self._run("SELECT 1", (), 1, check=False)

    def pool_stats(self) -> PoolStats:
        gen = self._current
        return PoolStats(size=gen.open_connections if gen else 0, in_use=self._leased)

    def status(self) -> dict[str, object]:
        """What is loaded, for logs and tests: rows, file time, generation, problem."""
        gen = self._current
        return {
            "generation": gen.number if gen else None,
            "rows": gen.rows if gen else 0,
            "file_mtime": gen.signature.mtime if gen else None,
            "problem": self._problem or (None if gen else self._load_error),
        }
