"""What stands between the pipeline and an adapter: bulkhead, breaker, retry budget.

* One time budget per call, ``max(acquire_timeout, query_timeout)``: the
  slot wait, the connection wait, the query and a retry all take from it
  (:func:`gateway.adapter.time_left`), so a call is answered within it
  whatever the backend does.
* Bulkhead: at most ``max_concurrency`` calls in the backend and at most
  ``max_queue`` waiting, each for at most ``acquire_timeout``; beyond that the
  caller gets 503 at once.  One slow legacy system can then hold only its own
  share of the gateway, never the calls bound for other backends.
* Circuit breaker (:mod:`gateway.breaker`): fail fast while a backend is down.
* Retry: reads are idempotent, so a call that failed because its connection
  was dead (a database restart, a reset) may be tried once more on a fresh
  connection, but only while retries stay under ``retry.budget`` of the
  calls, so retries can never multiply the load on a struggling system.
  Timeouts are never retried: that would only double the wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.adapter import Adapter, Row, TimeBudget, time_left
from gateway.breaker import Breaker
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

__all__ = ["BackendGuard", "Bulkhead", "RetryBudget"]

# Failures that say something about the backend's health; a local refusal
# (BackendBusy) or an answer about the caller's input does not.
_FAILURES = (BackendUnavailable, BackendTimeout, BackendError, BackendBadResponse, BackendTLSError)


class Bulkhead:
    def __init__(self, limit: int, max_queue: int, timeout: float) -> None:
        self.limit = limit
        self.max_queue = max_queue
        self.timeout = timeout
        self._sem = asyncio.Semaphore(limit)
        self.active = 0
        self.waiting = 0

    def slot(self) -> Bulkhead:
        """``async with bulkhead.slot():`` holds one of the ``limit`` slots."""
        return self

    # The bulkhead is its own context manager (not an asynccontextmanager): no generator
    # object and no wrapper per call, and mypyc compiles it (it has no async generators).
    async def __aenter__(self) -> None:
        if self._sem.locked():
            if self.waiting >= self.max_queue:
                raise BackendBusy(f"{self.limit} calls running and {self.waiting} waiting")
            self.waiting += 1
            try:
                # asyncio.timeout, not wait_for: no task per waiting call
                async with asyncio.timeout(time_left(self.timeout)):
                    await self._sem.acquire()
            except TimeoutError:
                raise BackendBusy(f"no free slot within {self.timeout:g}s") from None
            finally:
                self.waiting -= 1
        else:
            await self._sem.acquire()
        self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        self.active -= 1
        self._sem.release()


class RetryBudget:
    """Token bucket: each call earns ``ratio`` of a retry; a retry spends one."""

    def __init__(self, ratio: float, cap: float = 10.0) -> None:
        self.ratio = ratio
        self.cap = cap
        self.tokens = cap if ratio > 0 else 0.0

    def deposit(self) -> None:
        self.tokens = min(self.cap, self.tokens + self.ratio)

    def spend(self) -> bool:
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class BackendGuard:
    def __init__(
        self,
        name: str,
        adapter: Adapter,
        *,
        breaker: Breaker | None,
        bulkhead: Bulkhead,
        budget: RetryBudget,
        retries: int,
        time_budget: float,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.breaker = breaker
        self.bulkhead = bulkhead
        self.budget = budget
        self.retries = retries
        self.time_budget = time_budget
        self.retried = 0  # read by metrics at scrape time

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        breaker = self.breaker
        if breaker is not None:
            breaker.before_call()
        try:
            with TimeBudget(self.time_budget):
                async with self.bulkhead.slot():
                    rows = await self._with_retry(operation, params)
        except (BackendRejected, BackendNoRecord):
            if breaker is not None:
                breaker.on_success()  # the backend answered; the input was the problem
            raise
        except BackendFault as exc:
            if breaker is not None:
                breaker.on_failure(exc.detail or "fault")
            raise
        except _FAILURES as exc:
            if breaker is not None:
                breaker.on_failure(exc.detail or type(exc).__name__)
            raise
        except BaseException:
            if breaker is not None:
                breaker.on_released()
            raise
        if breaker is not None:
            breaker.on_success()
        return rows

    async def _with_retry(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        self.budget.deposit()
        attempt = 0
        while True:
            try:
                return await self.adapter.fetch(operation, params)
            except BackendUnavailable as exc:
                if not exc.retryable or attempt >= self.retries or not self.budget.spend():
                    raise
                attempt += 1
                self.retried += 1
