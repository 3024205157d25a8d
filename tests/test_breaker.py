"""Circuit breaker states and transitions, on a controlled clock."""

from __future__ import annotations

import pytest

from gateway.breaker import Breaker
from gateway.config.models import CircuitConfig
from gateway.errors import CircuitOpen
from tests.support import state_of

CFG = CircuitConfig(
    failure_threshold=3,
    error_rate=0.5,
    window=10.0,
    min_calls=6,
    open_for=5.0,
    half_open_calls=1,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(cfg: CircuitConfig = CFG) -> tuple[Breaker, Clock, list[str]]:
    clock = Clock()
    seen: list[str] = []
    b = Breaker("db", cfg, on_change=lambda _n, s: seen.append(s), clock=clock)
    return b, clock, seen


def test_consecutive_failures_open_and_time_half_opens() -> None:
    b, clock, seen = make()
    for _ in range(2):
        b.before_call()
        b.on_failure("refused")
    assert state_of(b) == "closed"
    b.before_call()
    b.on_failure("refused")
    assert state_of(b) == "open" and seen == ["open"]
    with pytest.raises(CircuitOpen) as info:
        b.before_call()
    assert info.value.headers["Retry-After"] == "5"
    clock.now += 5.0
    b.before_call()  # the trial call
    assert state_of(b) == "half_open"
    with pytest.raises(CircuitOpen):
        b.before_call()  # only one trial at a time
    b.on_success()
    assert state_of(b) == "closed" and seen == ["open", "half_open", "closed"]
    b.before_call()


def test_failed_trial_opens_again() -> None:
    b, clock, seen = make()
    for _ in range(3):
        b.on_failure("timeout")
    clock.now += 5.0
    b.before_call()
    b.on_failure("timeout")
    assert state_of(b) == "open"
    assert b.retry_after() == pytest.approx(5.0)
    assert seen == ["open", "half_open", "open"]


def test_a_success_resets_the_consecutive_count() -> None:
    only_consecutive = CircuitConfig(
        failure_threshold=3,
        error_rate=1.0,
        window=10.0,
        min_calls=1000,
        open_for=5.0,
        half_open_calls=1,
    )
    b, _, _ = make(only_consecutive)
    for _ in range(10):
        b.on_failure("x")
        b.on_failure("x")
        b.on_success()
    assert state_of(b) == "closed"  # never 3 in a row


def test_error_rate_over_the_window_opens() -> None:
    cfg = CircuitConfig(
        failure_threshold=100,
        error_rate=0.5,
        window=10.0,
        min_calls=6,
        open_for=5.0,
        half_open_calls=1,
    )
    b, _, _ = make(cfg)
    for _ in range(3):
        b.on_success()
        b.on_failure("slow")
    assert state_of(b) == "open"  # 3 of 6 failed
    # old failures leave the window
    b2, clock2, _ = make(cfg)
    for _ in range(2):
        b2.on_failure("x")
    clock2.now += 11.0
    for _ in range(4):
        b2.on_success()
    b2.on_failure("x")
    assert state_of(b2) == "closed"  # 1 of 5 within the window


def test_rate_needs_min_calls() -> None:
    cfg = CircuitConfig(
        failure_threshold=100,
        error_rate=0.5,
        window=10.0,
        min_calls=6,
        open_for=5.0,
        half_open_calls=1,
    )
    b, _, _ = make(cfg)
    b.on_failure("x")
    b.on_failure("x")
    assert state_of(b) == "closed"  # 100% but only 2 calls


def test_good_probe_moves_open_to_half_open() -> None:
    b, _, seen = make()
    for _ in range(3):
        b.on_failure("down")
    b.on_probe(False)
    assert state_of(b) == "open"
    b.on_probe(True)
    assert state_of(b) == "half_open"
    b.before_call()
    b.on_success()
    assert seen[-1] == "closed"


def test_released_trial_frees_the_slot() -> None:
    b, clock, _ = make()
    for _ in range(3):
        b.on_failure("down")
    clock.now += 5.0
    b.before_call()
    b.on_released()  # cancelled: no outcome
    b.before_call()  # another trial may go
    assert state_of(b) == "half_open"
