"""The breaker's error rate over its window of time buckets, at every boundary.

A rate that is off (a product instead of a quotient, a bucket counted a lap too long, a
bucket not emptied when reused) opens the circuit of a healthy backend or keeps a failing
one in use.  Counted on a controlled clock; the consecutive-failure rule is set out of reach
so that only the rate decides.
"""

from __future__ import annotations

import pytest

from gateway.breaker import Breaker
from gateway.config.models import CircuitConfig
from gateway.errors import CircuitOpen
from tests.support import state_of

RATE_ONLY = CircuitConfig(
    failure_threshold=1000,
    error_rate=0.5,
    window=10.0,  # ten buckets of one second
    min_calls=6,
    open_for=5.0,
    half_open_calls=1,
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _breaker(start: float = 1000.0) -> tuple[Breaker, Clock]:
    clock = Clock(start)
    return Breaker("db", RATE_ONLY, clock=clock), clock


def _calls(b: Breaker, outcomes: str) -> None:
    for ok in outcomes:
        b.before_call()
        if ok == "S":
            b.on_success()
        else:
            b.on_failure("refused")


def test_a_rate_under_half_keeps_the_circuit_closed() -> None:
    b, _ = _breaker()
    assert b.retry_after() == 0.0  # never opened: nothing to wait for
    _calls(b, "SSSSSSSSSF")
    assert state_of(b) == "closed"  # 1 of 10
    b, _ = _breaker()
    _calls(b, "SSSSFF")
    assert state_of(b) == "closed"  # 2 of 6


def test_half_of_the_minimum_number_of_calls_opens_it_not_fewer() -> None:
    b, _ = _breaker()
    _calls(b, "SSSFF")
    assert state_of(b) == "closed"  # 2 of 5: too few calls to judge, and under half
    _calls(b, "F")
    assert state_of(b) == "open"  # 3 of 6: exactly the rate


@pytest.mark.parametrize("start", [0.0, 3.5])
def test_the_first_seconds_of_the_clock_count_only_real_calls(start: float) -> None:
    # time.monotonic can start near zero: an empty bucket of epoch 0 must hold nothing
    b, _ = _breaker(start)
    _calls(b, "SSSFF")
    assert state_of(b) == "closed"
    _calls(b, "F")
    assert state_of(b) == "open"


def test_calls_of_the_last_ten_seconds_count() -> None:
    b, clock = _breaker()
    _calls(b, "FFS")
    clock.now += 9.0  # the bucket of the first calls is the oldest of the window
    _calls(b, "SSF")
    assert state_of(b) == "open"  # 3 of 6


def test_calls_older_than_the_window_are_forgotten() -> None:
    b, clock = _breaker()
    _calls(b, "FFS")
    clock.now += 10.0  # a lap later: the same bucket, emptied before it is reused
    _calls(b, "SSF")
    assert state_of(b) == "closed"  # 1 of 3
    _calls(b, "FFF")
    assert state_of(b) == "open"  # 4 of 6


def test_each_bucket_keeps_its_own_second() -> None:
    b, clock = _breaker()
    for _ in range(3):
        _calls(b, "F")
        clock.now += 1.0
    for _ in range(3):
        _calls(b, "S")
        clock.now += 1.0
    assert state_of(b) == "closed"
    clock.now += 0.5
    _calls(b, "F")
    assert state_of(b) == "open"  # 4 of 7 within ten seconds


def _half_open(b: Breaker, clock: Clock) -> None:
    _calls(b, "SSSFFF")
    assert state_of(b) == "open"
    clock.now += RATE_ONLY.open_for
    assert b.retry_after() == 0.0


def test_a_refused_trial_says_retry_after_one_second() -> None:
    b, clock = _breaker()
    _half_open(b, clock)
    b.before_call()  # the one trial call
    assert state_of(b) == "half_open"
    with pytest.raises(CircuitOpen) as info:
        b.before_call()
    assert info.value.headers["Retry-After"] == "1"


def test_a_trial_released_twice_frees_one_slot_only() -> None:
    b, clock = _breaker()
    _half_open(b, clock)
    b.before_call()
    b.on_released()
    b.on_released()  # a second release of the same trial must not make room for two
    b.before_call()
    with pytest.raises(CircuitOpen):
        b.before_call()


def test_a_failed_trial_opens_again_and_the_next_wait_allows_a_new_trial() -> None:
    b, clock = _breaker()
    _half_open(b, clock)
    b.before_call()
    b.on_failure("still down")
    assert state_of(b) == "open"
    assert b.retry_after() == RATE_ONLY.open_for
    with pytest.raises(CircuitOpen):
        b.before_call()
    clock.now += RATE_ONLY.open_for
    b.before_call()  # the trial count starts again from zero
    b.on_success()
    assert state_of(b) == "closed"


def test_after_a_recovery_the_consecutive_count_starts_from_zero() -> None:
    clock = Clock(1000.0)
    cfg = RATE_ONLY.model_copy(update={"failure_threshold": 3, "min_calls": 1000})
    b = Breaker("db", cfg, clock=clock)
    _calls(b, "FFF")
    assert state_of(b) == "open"
    clock.now += RATE_ONLY.open_for
    _calls(b, "S")  # the trial succeeds
    assert state_of(b) == "closed"
    _calls(b, "FF")
    assert state_of(b) == "closed"
    _calls(b, "F")
    assert state_of(b) == "open"
