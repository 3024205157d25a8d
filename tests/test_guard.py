"""Bulkhead, retry budget and breaker wiring around an adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from gateway.adapter import PoolStats, Row, within
from gateway.breaker import Breaker
from gateway.config.models import CircuitConfig
from gateway.errors import (
    BackendBusy,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
)
from gateway.guard import BackendGuard, Bulkhead, RetryBudget
from tests.support import state_of


class ScriptedAdapter:
    """An adapter whose calls follow a script: a row list, an exception, or a wait."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls = 0
        self.release = asyncio.Event()

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def probe(self) -> None: ...

    def pool_stats(self) -> PoolStats:
        return PoolStats(0, 0)

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if step == "wait":
            await self.release.wait()
            return []
        if isinstance(step, BaseException):
            raise step
        rows: Sequence[Row] = step
        return rows


def guard(
    adapter: ScriptedAdapter,
    *,
    limit: int = 2,
    queue: int = 1,
    timeout: float = 0.2,
    retries: int = 1,
    budget: float = 0.1,
    breaker: Breaker | None = None,
) -> BackendGuard:
    return BackendGuard(
        "db",
        adapter,
        breaker=breaker,
        bulkhead=Bulkhead(limit, queue, timeout),
        budget=RetryBudget(budget),
        retries=retries,
        time_budget=max(timeout, 5.0),
    )


async def test_bulkhead_refuses_at_once_when_queue_is_full() -> None:
    adapter = ScriptedAdapter(["wait"])
    g = guard(adapter, limit=2, queue=1, timeout=5)
    running = [asyncio.create_task(g.fetch(None, {})) for _ in range(3)]  # 2 in, 1 waiting
    await asyncio.sleep(0.01)
    assert (g.bulkhead.active, g.bulkhead.waiting) == (2, 1)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(BackendBusy, match="2 calls running and 1 waiting"):
        await g.fetch(None, {})
    assert loop.time() - t0 < 0.05
    adapter.release.set()
    await asyncio.gather(*running)
    assert (g.bulkhead.active, g.bulkhead.waiting) == (0, 0)


async def test_bulkhead_queue_wait_is_bounded() -> None:
    adapter = ScriptedAdapter(["wait"])
    g = guard(adapter, limit=1, queue=5, timeout=0.1)
    first = asyncio.create_task(g.fetch(None, {}))
    await asyncio.sleep(0.01)
    with pytest.raises(BackendBusy, match=r"no free slot within 0\.1s"):
        await g.fetch(None, {})
    adapter.release.set()
    await first


async def test_dead_connection_is_retried_once_within_budget() -> None:
    adapter = ScriptedAdapter([BackendUnavailable("connection reset", retryable=True), [{"A": 1}]])
    g = guard(adapter)
    assert await g.fetch(None, {}) == [{"A": 1}]
    assert adapter.calls == 2 and g.retried == 1


async def test_timeouts_are_never_retried() -> None:
    adapter = ScriptedAdapter([BackendTimeout("slow"), [{"A": 1}]])
    g = guard(adapter)
    with pytest.raises(BackendTimeout):
        await g.fetch(None, {})
    assert adapter.calls == 1


async def test_retry_budget_limits_retries() -> None:
    adapter = ScriptedAdapter([BackendUnavailable("down", retryable=True)])
    g = guard(adapter, budget=0.1)
    for _ in range(30):
        with pytest.raises(BackendUnavailable):
            await g.fetch(None, {})
    # the bucket starts full (10) and earns 0.1 per call: about 12 retries for 30 calls, not 30
    assert 10 <= g.retried <= 14
    assert adapter.calls == 30 + g.retried


async def test_no_retry_when_disabled() -> None:
    adapter = ScriptedAdapter([BackendUnavailable("down", retryable=True), [{"A": 1}]])
    g = guard(adapter, retries=0)
    with pytest.raises(BackendUnavailable):
        await g.fetch(None, {})


async def test_breaker_sees_failures_but_not_local_refusals_or_bad_input() -> None:
    cfg = CircuitConfig(
        failure_threshold=2,
        error_rate=1.0,
        window=10,
        min_calls=100,
        open_for=30,
        half_open_calls=1,
    )
    breaker = Breaker("db", cfg)
    adapter = ScriptedAdapter(
        [
            BackendRejected("INVALID", "bad id"),
            BackendBusy("pool"),
            BackendTimeout("slow"),
            BackendTimeout("slow"),
        ]
    )
    g = guard(adapter, breaker=breaker, retries=0)
    for exc in (BackendRejected, BackendBusy, BackendTimeout):
        with pytest.raises(exc):
            await g.fetch(None, {})
    assert state_of(breaker) == "closed"
    with pytest.raises(BackendTimeout):
        await g.fetch(None, {})
    assert state_of(breaker) == "open"
    with pytest.raises(CircuitOpen):
        await g.fetch(None, {})
    assert adapter.calls == 4  # the open circuit never reached the adapter


async def test_a_failed_connect_is_not_retried() -> None:
    adapter = ScriptedAdapter([BackendUnavailable("could not connect within 2s"), [{"A": 1}]])
    g = guard(adapter)
    with pytest.raises(BackendUnavailable):
        await g.fetch(None, {})
    assert adapter.calls == 1 and g.retried == 0


# -- the bulkhead's own queue: slots handed over in order, none lost to a race --------------


async def test_a_freed_slot_goes_to_the_longest_waiter_not_a_newcomer() -> None:
    bulkhead = Bulkhead(1, 5, 5.0)
    order: list[str] = []
    gate = asyncio.Event()

    async def call(name: str) -> None:
        async with bulkhead:
            order.append(name)
            await gate.wait()

    first = asyncio.create_task(call("first"))
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(call(n)) for n in ("second", "third")]
    await asyncio.sleep(0)
    gate.set()
    late = asyncio.create_task(call("late"))  # arrives as the first slot is freed
    await asyncio.gather(first, *waiters, late)
    assert order == ["first", "second", "third", "late"]
    assert (bulkhead.active, bulkhead.waiting) == (0, 0)


async def test_a_waiter_cancelled_as_its_slot_arrives_passes_it_on() -> None:
    bulkhead = Bulkhead(1, 5, 5.0)
    held, done = asyncio.Event(), asyncio.Event()
    entered: list[str] = []
    tasks: dict[str, asyncio.Task[None]] = {}

    async def holder() -> None:
        async with bulkhead:
            held.set()
            await done.wait()
        # the slot is handed to "doomed", which is cancelled before it can run
        tasks["doomed"].cancel()

    async def waiter(name: str) -> None:
        async with bulkhead:
            entered.append(name)

    h = asyncio.create_task(holder())
    await held.wait()
    tasks["doomed"] = asyncio.create_task(waiter("doomed"))
    after = asyncio.create_task(waiter("after"))
    await asyncio.sleep(0)
    assert bulkhead.waiting == 2
    done.set()
    await h
    with pytest.raises(asyncio.CancelledError):
        await tasks["doomed"]
    await asyncio.wait_for(after, 1.0)  # the slot was passed on, not lost
    assert entered == ["after"]
    assert (bulkhead.active, bulkhead.waiting) == (0, 0)


async def test_a_waiter_that_times_out_leaves_the_queue_and_the_count() -> None:
    bulkhead = Bulkhead(1, 5, 0.05)
    gate = asyncio.Event()

    async def holder() -> None:
        async with bulkhead:
            await gate.wait()

    h = asyncio.create_task(holder())
    await asyncio.sleep(0)
    for _ in range(3):
        with pytest.raises(BackendBusy):
            async with bulkhead:
                pass
    assert (bulkhead.active, bulkhead.waiting) == (1, 0)
    gate.set()
    await h
    assert (bulkhead.active, bulkhead.waiting) == (0, 0)
    async with bulkhead:  # and the slot is free again
        assert bulkhead.active == 1


# -- within(): asyncio.timeout's semantics, cheaper ------------------------------------------


async def test_within_turns_its_own_deadline_into_timeout_error() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(TimeoutError):
        async with within(0.05):
            await asyncio.sleep(5)
    assert 0.04 <= loop.time() - t0 < 1.0
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_within_leaves_a_body_that_ends_in_time_alone() -> None:
    async with within(1.0):
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)  # no late cancellation arrives


async def test_within_keeps_a_cancellation_from_outside_a_cancellation() -> None:
    started = asyncio.Event()

    async def body() -> None:
        async with within(5.0):
            started.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_within_nested_the_inner_deadline_is_a_timeout_the_outer_body_sees() -> None:
    async with within(5.0):
        with pytest.raises(TimeoutError):
            async with within(0.02):
                await asyncio.sleep(5)
        await asyncio.sleep(0)  # the outer one is not spent
