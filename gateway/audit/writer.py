"""The audit writer: one durable, chained record per call, committed before the answer.

Callers hand their record to the writer's own thread and wait on a future;
the thread takes everything handed over meanwhile, appends it to the chain
in one transaction (group commit) and wakes every waiter of the batch with a
single call into the event loop.  Under load one fsync covers many calls, yet
no caller is answered before its own record is committed.

The thread, not a task on the loop, owns the store: a batch costs the loop
one wake-up, and the store's statements never wait for a turn of a busy loop
between them.

When the store can not be written (disk full, locked, unreachable, corrupt):

* ``fail_closed: true`` (the default): waiters get :class:`AuditUnavailable`
  and the pipeline answers 503 (code 501) instead of serving data whose
  access could not be proven.  Every new batch is tried again, and while no
  call comes in the writer probes the store every ``retry_interval``, so
  ``/health`` turns green by itself when the store is writable again.
* ``fail_closed: false``: calls are answered; their records wait in memory
  (at most ``queue_max``) and are written, in order, once the store is
  back.  Records beyond that bound, or still waiting when the process dies,
  are lost: ``unconfirmed`` and ``lost`` count them.

A task seals closed segments (see sealer.py) in a thread, on its own
connection, so sealing never holds up the calls.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

from gateway.audit.chain import Head, Segmenter
from gateway.audit.config import AuditSettings
from gateway.audit.record import Content, content_from_call, iso_utc, subject_hash
from gateway.audit.sealer import SealingStore, seal_due
from gateway.audit.store import LateCommit, StoreError
from gateway.audit.store_sqlite import SCHEMA, KeyMismatch, SqliteWriterStore
from gateway.errors import AuditUnavailable
from gateway.observe import CallRecord

if TYPE_CHECKING:
    from gateway.config.runtime import Service

__all__ = ["SCHEMA", "AuditWriter", "key_fingerprint", "subject_hash"]

log = logging.getLogger("lc2_gateway.audit")

WriteHook = Callable[[int, float, bool], None]


def key_fingerprint(key: bytes) -> str:
    return hmac.new(key, b"lc2-gateway audit key", "sha256").hexdigest()


Item = tuple[Content, float]  # a record's content and its time stamp
Take = Callable[[], list[Item]]  # called by a store once it holds the chain's lock
InTime = Callable[[], bool]  # called by a store just before its commit

QUEUED, COMMITTING, ABANDONED = 0, 1, 2
_COMMITTED, _EXPIRED = "committed", "expired"  # what a waiter's future says


class _SealingReader(SealingStore, Protocol):
    def close(self) -> None: ...


class _Store(Protocol):
    """A store as the writer's thread uses it: every call blocks that thread only."""

    def open(self, fingerprint: str) -> None: ...

    def append(self, take: Take, in_time: InTime) -> Head | None: ...

    def probe(self, now: str) -> None: ...

    def free_bytes(self) -> int | None: ...

    def close(self) -> None: ...

    def reader(self) -> _SealingReader: ...


@dataclass(slots=True)
class _Entry:
    item: Item
    # None for a record no caller waits for (fail-open while the store is down)
    fut: asyncio.Future[str] | None
    # when its caller's wait ends (time.monotonic()); a batch past it is rolled back
    due: float = math.inf
    # QUEUED -> COMMITTING (inside the store's transaction) or ABANDONED (its caller was
    # answered 503 first); changed only under AuditWriter._claim, so a record is written
    # if and only if its caller is told it was
    state: int = QUEUED
    # the outcome once the batch is settled: None written, else why not (fail-closed)
    settled: bool = False
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the thread reports to the loop after a write, applied there in one call."""

    entries: list[_Entry]  # the callers to answer
    ok: bool
    error: str | None
    resolved: int  # records that left the writer: written, refused or lost
    lost: int
    records: int  # records in the attempted transaction
    seconds: float


@dataclass(slots=True)
class _SealState:
    last_at: float | None = None
    sealed_total: int = 0
    error: str | None = None
    problems: list[str] = field(default_factory=list)


_STOP = object()  # handed to the thread by close(): write what is left, then end
_SPACE_EVERY = 10.0  # seconds: how often an idle writer looks at the free space


class AuditWriter:
    def __init__(
        self,
        settings: AuditSettings,
        services: Mapping[str, Service],
        *,
        on_write: WriteHook | None = None,
    ) -> None:
        self._settings = settings
        self.services = services  # replaced on reload: parameters' audit modes
        self._on_write = on_write
        # what a turn of the loop commits goes over in one put: one wake-up of the thread
        # per turn, however many calls the turn finished
        self._outbox: list[_Entry] = []
        self._inbox: queue.SimpleQueue[list[_Entry] | object] = queue.SimpleQueue()
        self._pending = 0  # handed over and not yet written, refused or lost (loop only)
        self._claim = threading.Lock()  # the store's transaction and a timed-out caller
        self.segmenter = Segmenter(settings.seal_period, settings.timezone)
        self._store = self._make_store()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._sealer: asyncio.Task[None] | None = None
        self._seal_thread = ThreadPoolExecutor(1, thread_name_prefix="audit-sealer")
        self.healthy = True
        self.last_error: str | None = None
        self.unconfirmed = 0  # fail-open: calls answered before their record was committed
        self.lost = 0  # fail-open: records dropped because the backlog was full
        self.head: Head | None = None
        self.free_bytes: int | None = None  # on the audit volume, as the thread last saw it
        self.seal = _SealState()

    def _make_store(self) -> _Store:
        s = self._settings
        if s.store == "postgresql":
            from gateway.audit.store_postgres import PostgresWriterStore

            assert s.postgresql is not None
            return PostgresWriterStore(s.postgresql, s.instance, self.segmenter)
        return SqliteWriterStore(s.path, s.synchronous, s.instance, self.segmenter)

    @property
    def fail_closed(self) -> bool:
        return self._settings.fail_closed

    @property
    def chain(self) -> str:
        return self._settings.instance

    # -- life cycle -----------------------------------------------------------

    async def start(self) -> None:
        """Open the store; a key mismatch refuses to start, an unreachable store does not."""
        loop = self._loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        self._stopped = loop.create_future()
        self._worker = threading.Thread(
            target=self._thread_main, args=(opened,), name="audit-writer", daemon=True
        )
        self._worker.start()
        try:
            await opened
        except BaseException:
            self._worker = None  # it has ended: nothing for close() to stop
            raise
        if self._settings.seal_seed is not None:
            self._sealer = asyncio.create_task(self._seal_loop(), name="audit-sealer")

    async def close(self) -> None:
        if self._sealer is not None:
            self._sealer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sealer
        self._seal_thread.shutdown(wait=False)
        if self._worker is not None and self._stopped is not None:
            # FIFO: everything handed over before this is written (or refused) first;
            # a batch inside its transaction is never cut short
            self._pass()
            self._inbox.put(_STOP)
            await self._stopped
            self._worker = None

    @property
    def queue_depth(self) -> int:
        return self._pending

    def status(self) -> dict[str, Any]:
        """For /health and metrics: everything an operator needs to see at a glance."""
        return {
            "status": "up" if self.healthy else "down",
            "error": self.last_error,
            "store": self._settings.store,
            "failClosed": self.fail_closed,
            "chain": self.chain,
            "headSeq": None if self.head is None else self.head.seq,
            "volumeFreeBytes": self.free_bytes,
            "queue": self.queue_depth,
            "unconfirmed": self.unconfirmed,
            "lost": self.lost,
            "sealed": self.seal.sealed_total,
            "lastSealAt": self.seal.last_at,
            "sealError": self.seal.error,
            # for alerting: how long a closed segment may wait for its seal
            "sealPeriodSeconds": 3600 if self._settings.seal_period == "hour" else 86400,
            "sealGraceSeconds": self._settings.seal_grace,
        }

    # -- the durable observer (on the loop) -------------------------------------

    def to_row(self, rec: CallRecord) -> Content:
        return content_from_call(rec, self.services.get(rec.service), self._settings.key)

    async def commit(self, record: CallRecord) -> None:
        item = (self.to_row(record), record.started)
        if self._pending >= self._settings.queue_max:
            if self.fail_closed:
                raise AuditUnavailable("audit queue is full")
            self._lose(1)
            self.unconfirmed += 1
            return
        loop = asyncio.get_running_loop()
        if not self.fail_closed and not self.healthy:
            self._hand(_Entry(item, None), loop)
            self.unconfirmed += 1
            return
        due = time.monotonic() + self._settings.commit_timeout
        entry = _Entry(item, loop.create_future(), due=due)
        self._hand(entry, loop)
        # a bare future and a timer: the cheapest wait with a deadline on 3.11
        if await self._wait(entry, loop) == _COMMITTED:
            return
        with self._claim:
            if entry.state == QUEUED and self.fail_closed:
                entry.state = ABANDONED
        if entry.state == ABANDONED:
            raise AuditUnavailable("audit commit timed out")
        if entry.state == QUEUED:
            self.unconfirmed += 1  # fail-open: it stays queued and is written later
            return
        # Inside the store's transaction: its outcome is the answer, so the record never
        # says "served" for a call refused, or the other way round.  Past ``due`` the
        # store rolls back instead of committing: this waits for the statement and the
        # commit under way, no longer.
        if not entry.settled:
            entry.fut = loop.create_future()
            await entry.fut  # AuditUnavailable if the batch was rolled back or failed
        elif entry.refused is not None:
            raise AuditUnavailable(entry.refused)

    async def _wait(self, entry: _Entry, loop: asyncio.AbstractEventLoop) -> str:
        fut = entry.fut
        assert fut is not None
        timer = loop.call_later(self._settings.commit_timeout, _expire, fut)
        try:
            return await fut
        finally:
            timer.cancel()

    def _hand(self, entry: _Entry, loop: asyncio.AbstractEventLoop) -> None:
        self._pending += 1
        if not self._outbox:
            loop.call_soon(self._pass)
        self._outbox.append(entry)

    def _pass(self) -> None:
        if self._outbox:
            out, self._outbox = self._outbox, []
            self._inbox.put(out)

    def _lose(self, n: int) -> None:
        before, self.lost = self.lost, self.lost + n
        if before == 0 or before // 1000 != self.lost // 1000:
            log.error("audit backlog full: %d records lost so far", self.lost)

    def _settle(self, out: _Outcome) -> None:
        """On the loop: answer the batch's callers and account for what left the writer."""
        self._pending -= out.resolved
        if out.lost:
            self._lose(out.lost)
        for e in out.entries:
            served = (out.ok and e.state == COMMITTING) or not self.fail_closed
            e.settled, e.refused = True, None if served else out.error or "audit store unavailable"
            fut = e.fut
            if fut is None or fut.done():
                continue  # a caller between its two waits reads e.refused
            if e.refused is None:
                fut.set_result(_COMMITTED)
                if not out.ok:
                    self.unconfirmed += 1
            else:
                fut.set_exception(AuditUnavailable(e.refused))
                fut.exception()  # its caller may have gone: never "exception not retrieved"
        if self._on_write is not None and out.records:
            self._on_write(out.records, out.seconds, out.ok)

    # -- the writer's thread ----------------------------------------------------------

    def _report(self, fn: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            self._loop.call_soon_threadsafe(fn, *args)

    def _thread_main(self, opened: asyncio.Future[None]) -> None:
        try:
            try:
                self._store.open(key_fingerprint(self._settings.key))
            except StoreError as exc:
                # Come up refusing calls (or buffering them) and keep trying: a database
                # server that starts after the gateway must not need an operator.
                self._failed(str(exc))
        except BaseException as exc:  # a key mismatch, or a bug: start() refuses
            with contextlib.suppress(Exception):
                self._store.close()
            self._report(_resolve, opened, exc)
            return
        self.free_bytes = self._store.free_bytes()
        self._report(_resolve, opened, None)
        try:
            self._serve()
        finally:
            with contextlib.suppress(Exception):
                self._store.close()
            if self._stopped is not None:
                self._report(_resolve, self._stopped, None)

    def _serve(self) -> None:
        limit = self._settings.batch_max
        backlog: collections.deque[Item] = collections.deque()  # fail-open, oldest first
        carry: list[_Entry] = []  # handed over beyond the last batch's limit
        while True:
            first: list[_Entry] | object = []
            if not carry:
                ok = self.healthy and not backlog
                idle = _SPACE_EVERY if ok else self._settings.retry_interval
                try:
                    first = self._inbox.get(timeout=idle)
                except queue.Empty:
                    if ok:
                        self.free_bytes = self._store.free_bytes()  # for the metric
                    else:
                        self._recover(backlog)
                    continue
            batch, carry, stop = self._gather(carry, first, limit)
            if stop:
                self._flush(backlog, batch, len(backlog), last=True)
                return
            self._flush(backlog, batch, min(len(backlog), limit))

    def _gather(
        self, batch: list[_Entry], nxt: list[_Entry] | object, limit: int
    ) -> tuple[list[_Entry], list[_Entry], bool]:
        """What waits, up to ``limit`` (and what is left over); everything once close() asked."""
        stop = False
        while True:
            if isinstance(nxt, list):
                batch.extend(nxt)
            else:
                stop = True  # _STOP
            if len(batch) >= limit and not stop:
                break
            try:
                nxt = self._inbox.get_nowait()
            except queue.Empty:
                break
        if stop:
            return batch, [], True
        return batch[:limit], batch[limit:], False

    def _flush(
        self,
        backlog: collections.deque[Item],
        batch: list[_Entry],
        n_old: int,
        *,
        last: bool = False,
    ) -> None:
        old = [backlog.popleft() for _ in range(n_old)]
        ok, error, records, seconds = self._write(old, batch)
        lost = 0
        if ok or self.fail_closed:
            # written, or refused: either way these records have left the writer
            resolved = len(old) + len(batch)
        else:
            kept = [e.item for e in batch if e.state != ABANDONED]
            resolved = len(batch) - len(kept)
            if last:
                lost = len(old) + len(kept)
                resolved += lost
                if lost:
                    log.error("audit: %d records could not be written before stopping", lost)
            else:
                # back to the front, in order; commit() bounds all that is pending, this too
                backlog.extendleft(reversed([*old, *kept]))
        self._report(self._settle, _Outcome(batch, ok, error, resolved, lost, records, seconds))

    def _write(self, old: list[Item], entries: list[_Entry]) -> tuple[bool, str | None, int, float]:
        if not old and not entries:
            return True, None, 0, 0.0
        taken = [0]
        due = [math.inf]

        def take() -> list[Item]:
            with self._claim:
                live = [e for e in entries if e.state == QUEUED]
                for e in live:
                    e.state = COMMITTING
            items = [*old, *(e.item for e in live)]
            taken[0] = len(items)
            if self.fail_closed:
                due[0] = min((e.due for e in live), default=math.inf)
            return items

        def in_time() -> bool:
            return time.monotonic() < due[0]

        t0 = perf_counter()
        try:
            head = self._store.append(take, in_time)
        except (StoreError, KeyMismatch, LateCommit) as exc:
            self._failed(str(exc))
            return False, self.last_error, taken[0] or len(old) + len(entries), perf_counter() - t0
        except Exception as exc:  # a bug here must not leave every caller waiting
            log.exception("audit write failed")
            self._failed(f"audit writer: {exc!r}")
            return False, self.last_error, taken[0] or len(old) + len(entries), perf_counter() - t0
        if head is not None:
            self.head = head
        self.free_bytes = self._store.free_bytes()
        self._recovered()
        return True, None, taken[0], perf_counter() - t0

    def _recover(self, backlog: collections.deque[Item]) -> None:
        """Idle while unhealthy: write the backlog, or probe, so health recovers unaided."""
        if backlog:
            self._flush(backlog, [], min(len(backlog), self._settings.batch_max))
            return
        try:
            self._store.probe(iso_utc(time.time()))
        except (StoreError, KeyMismatch) as exc:
            self._failed(str(exc))
        else:
            self._recovered()

    def _failed(self, error: str) -> None:
        if self.healthy:
            log.error("audit store cannot be written: %s", error)
        self.healthy, self.last_error = False, error

    def _recovered(self) -> None:
        if not self.healthy:
            log.warning("audit store writable again")
        self.healthy, self.last_error = True, None

    # -- sealing -------------------------------------------------------------------

    async def seal_now(self, *, include_open: bool = False) -> int:
        """Seal what is due now (tests and shutdown use it); returns the number sealed."""
        # always the same thread: what a run allocates and frees stays in one malloc arena
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._seal_thread, self._seal_sync, include_open)

    def _seal_sync(self, include_open: bool) -> int:
        seed = self._settings.seal_seed
        if seed is None:
            return 0
        reader = self._store.reader()
        try:
            run = seal_due(
                reader,
                seed=seed,
                segmenter=self.segmenter,
                grace=self._settings.seal_grace,
                include_open=include_open,
                chains=[self.chain],  # each chain sealed by its own instance's key
            )
        finally:
            reader.close()
        for seal in run.sealed:
            # A second witness outside the store: the seal digest also goes to the log.
            log.info(
                "audit segment sealed",
                extra={
                    "fields": {
                        "chain": seal.chain,
                        "segment": seal.segment,
                        "records": seal.count,
                        "lastSeq": seal.last_seq,
                        "sealHash": seal.seal_hash,
                        "keyId": seal.key_id,
                    }
                },
            )
        self.seal.sealed_total += len(run.sealed)
        self.seal.problems = [f.render() for f in run.problems]
        if run.problems:
            first = run.problems[0].render()
            self.seal.error = f"not sealed, the segment fails verification: {first}"
            log.error("audit: %s", self.seal.error)
        else:
            self.seal.error = None
        if run.sealed:
            self.seal.last_at = time.time()
        return len(run.sealed)

    async def _seal_loop(self) -> None:
        while True:
            try:
                await self.seal_now()
            except (StoreError, OSError) as exc:
                self.seal.error = str(exc)
            except Exception:  # the sealer must never stop for good
                log.exception("audit sealer failed")
            await asyncio.sleep(self._settings.seal_interval)


def _expire(fut: asyncio.Future[str]) -> None:
    if not fut.done():
        fut.set_result(_EXPIRED)


def _resolve(fut: asyncio.Future[None], exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)
