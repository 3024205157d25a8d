"""The adapter interface: everything a backend in ``adapters/`` implements.

This module is the only part of the gateway an adapter may import.  An adapter
package registers an :class:`AdapterFactory` under the entry-point group
``lc2_gateway.adapters``; the YAML ``type:`` of a backend names it.

Life cycle, driven by the gateway:

1. at config load, ``factory.options_model`` validates the backend block and
   ``factory.operation_model`` each service's ``operation:`` block;
   ``factory.prepare`` compiles an operation once (e.g. rewrites ``:name``
   placeholders into the driver's style) - nothing is parsed per request;
2. ``factory.create`` builds the adapter, ``open`` connects its pool;
3. ``fetch`` runs a prepared operation with bound parameters and returns rows
   as mappings of legacy column name to driver value; ``probe`` is the cheap
   health check the background monitor calls;
4. ``close`` releases everything.

Adapters signal failures only with the backend errors re-exported here
(unavailable 503, busy 503, timeout 504, error 502, and for services that
answer with documents: fault 502, rejected 400, no record 404, bad response
502, TLS 502), so the gateway answers consistently whatever the backend.
Timeouts are enforced inside the adapter because only the driver knows how to
cancel work on the server (asyncpg cancels the query, SQLite interrupts it).
Each wait takes :func:`time_left` of its limit: a call's slot wait, connection
wait and query share one budget that the guard sets (see gateway/guard.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from gateway.errors import (
    BackendBadResponse,
    BackendBusy,
    BackendError,
    BackendFault,
    BackendNoRecord,
    BackendRejected,
    BackendTimeout,
    BackendTLSError,
    BackendUnavailable,
)

__all__ = [
    "Adapter",
    "AdapterFactory",
    "BackendBadResponse",
    "BackendBusy",
    "BackendError",
    "BackendFault",
    "BackendLimits",
    "BackendNoRecord",
    "BackendRejected",
    "BackendTLSError",
    "BackendTimeout",
    "BackendUnavailable",
    "DescribesResult",
    "OptionsModel",
    "PoolStats",
    "PrepareError",
    "Row",
    "StreamingAdapter",
    "TimeBudget",
    "time_left",
    "within",
]

Row = Mapping[str, object]


# When the current call must be answered (time.monotonic(), the clock of asyncio's loop);
# None outside a call (health probes).
_deadline: ContextVar[float | None] = ContextVar("lc2_gateway_call_deadline", default=None)
_FLOOR = 0.001  # a spent budget still lets a wait start, so it fails the way it always does


class TimeBudget:
    """Every wait of the call inside shares ``seconds`` (see :func:`time_left`).

    A class rather than ``@contextmanager``: it runs on every backend call.
    """

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def __enter__(self) -> None:
        self._token = _deadline.set(time.monotonic() + self._seconds)

    def __exit__(self, *exc: object) -> None:
        _deadline.reset(self._token)


def time_left(limit: float) -> float:
    """``limit``, or what is left of the current call's budget if that is less."""
    deadline = _deadline.get()
    if deadline is None:
        return limit
    return max(_FLOOR, min(limit, deadline - time.monotonic()))


class within:
    """``async with within(seconds):`` raises :class:`TimeoutError` once ``seconds`` pass.

    The semantics of :func:`asyncio.timeout` for a delay (the body's task is cancelled at
    the deadline and the cancellation turned into ``TimeoutError``; a cancellation from
    outside stays a cancellation), at half its cost: asyncio's class keeps a state
    machine and a rescheduling API the call path never uses (3.0 against 6.5 µs a wait
    under uvloop).  Written here because every backend call enters one or more.
    """

    __slots__ = ("_cancelling", "_delay", "_expired", "_handle", "_task")

    def __init__(self, delay: float) -> None:
        self._delay = delay

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("within() is used outside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._expired = False
        self._handle = task.get_loop().call_later(self._delay, self._expire)

    def _expire(self) -> None:
        self._expired = True
        self._task.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        self._handle.cancel()
        if (
            self._expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc


class OptionsModel(BaseModel):
    """Base for adapter option models: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class PrepareError(ValueError):
    """An operation that can not be compiled; ``path`` points inside ``operation:``."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, slots=True)
class BackendLimits:
    """Limits common to every backend, set in YAML next to ``type:``."""

    pool_size: int
    acquire_timeout: float
    query_timeout: float

    def acquire_failed(
        self, active: int, waited: float | None = None
    ) -> BackendBusy | BackendUnavailable:
        """The error for no connection within the wait (``acquire_timeout``, or what was left
        of the call's budget: ``waited``), ``active`` calls running.

        Busy when every connection of the pool was in use; otherwise the pool had room and
        the time went into connecting to the server, which is unavailable.
        """
        wait = self.acquire_timeout if waited is None else waited
        if active >= self.pool_size:
            return BackendBusy(f"all {self.pool_size} connections busy for {wait:.3g}s")
        return BackendUnavailable(f"could not connect within {wait:.3g}s")


@dataclass(frozen=True, slots=True)
class PoolStats:
    size: int
    in_use: int


@runtime_checkable
class Adapter(Protocol):
    async def open(self) -> None:
        """Create the pool.  Must not fail if the backend is down: connect lazily."""

    async def close(self) -> None: ...

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        """Run a prepared operation; raise only the backend errors of this module."""

    async def probe(self) -> None:
        """Cheapest round trip that proves the backend answers; raise on failure."""

    def pool_stats(self) -> PoolStats: ...


@runtime_checkable
class StreamingAdapter(Adapter, Protocol):
    """An adapter that can also read a whole result in batches (``lc2-gateway profile``).

    Never used by a call: a service answers one citizen's rows through ``fetch``.
    """

    def stream(
        self, operation: Any, params: Mapping[str, object], batch: int
    ) -> AsyncIterator[Sequence[Row]]:
        """Rows of a prepared operation, at most ``batch`` at a time, through a server-side
        cursor (memory bounded by the batch, not the table; ``max_rows`` does not apply);
        each batch within ``query_timeout``.  Stopping early ends the statement."""


@runtime_checkable
class DescribesResult(Protocol):
    """An adapter that can tell, without reading data, what a prepared operation returns.

    ``check --connect`` compares these names with the output columns of each
    service, so a misspelt column fails the check instead of being served as
    null.  Optional: an adapter without it is only opened and probed.
    """

    async def result_columns(self, operation: Any) -> Collection[str] | None:
        """The result's column names (as ``fetch`` keys rows), or None if they can not be
        known; raise :class:`PrepareError` when the operation does not fit the backend."""


class AdapterFactory(Protocol):
    type_name: ClassVar[str]
    options_model: ClassVar[type[OptionsModel]]
    operation_model: ClassVar[type[OptionsModel]]

    def prepare(self, options: Any, operation: Any, param_names: Sequence[str]) -> Any:
        """Compile an operation once; raise PrepareError naming what is wrong."""

    def create(self, name: str, options: Any, limits: BackendLimits) -> Adapter: ...
