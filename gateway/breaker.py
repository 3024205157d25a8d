"""Circuit breaker per backend: stop sending calls to a backend that is failing.

closed     calls flow; failures are counted (consecutive, and as a rate over
           a sliding window of time buckets)
open       calls are refused at once (503 with Retry-After) until ``open_for``
           has passed, so a dead legacy system costs LC2 nothing but a fast no
half_open  a few trial calls go through; a success closes the circuit, a
           failure opens it again

A successful background probe while open moves the circuit to half-open
early, so active health checks and real call outcomes feed one state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

from gateway.config.models import CircuitConfig
from gateway.errors import CircuitOpen

__all__ = ["Breaker", "State"]

log = logging.getLogger("lc2_gateway.breaker")

State = Literal["closed", "open", "half_open"]
_BUCKETS = 10


class Breaker:
    def __init__(
        self,
        name: str,
        cfg: CircuitConfig,
        *,
        on_change: Callable[[str, State], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.state: State = "closed"
        self._on_change = on_change
        self._clock = clock
        self._consecutive = 0
        self._opened_at = 0.0
        self._trials = 0
        self._bucket_span = cfg.window / _BUCKETS
        self._calls = [0] * _BUCKETS
        self._fails = [0] * _BUCKETS
        self._bucket_epoch = [0] * _BUCKETS
        self.last_error: str | None = None

    # -- window -----------------------------------------------------------------

    def _slot(self, now: float) -> int:
        epoch = int(now / self._bucket_span)
        i = epoch % _BUCKETS
        if self._bucket_epoch[i] != epoch:  # the bucket is from an older lap: reuse it
            self._bucket_epoch[i] = epoch
            self._calls[i] = self._fails[i] = 0
        return i

    def _rate(self, now: float) -> tuple[int, float]:
        oldest = int(now / self._bucket_span) - _BUCKETS + 1
        calls = fails = 0
        for i in range(_BUCKETS):
            if self._bucket_epoch[i] >= oldest:
                calls += self._calls[i]
                fails += self._fails[i]
        return calls, (fails / calls if calls else 0.0)

    # -- transitions --------------------------------------------------------------

    def _move(self, to: State, why: str) -> None:
        if to == self.state:
            return
        level = logging.INFO if to == "closed" else logging.WARNING
        log.log(level, "circuit of backend %s: %s -> %s (%s)", self.name, self.state, to, why)
        self.state = to
        if to == "open":
            self._opened_at = self._clock()
        if to != "half_open":
            self._trials = 0
        if to == "closed":
            self._consecutive = 0
        if self._on_change is not None:
            self._on_change(self.name, to)

    def retry_after(self) -> float:
        return max(0.0, self._opened_at + self.cfg.open_for - self._clock())

    # -- the call path ----------------------------------------------------------------

    def before_call(self) -> None:
        """Raise CircuitOpen unless a call may go to the backend now."""
        if self.state == "closed":
            return
        if self.state == "open":
            if self.retry_after() > 0:
                raise CircuitOpen(self.name, self.retry_after(), self.last_error)
            self._move("half_open", f"{self.cfg.open_for:g}s passed")
        if self._trials >= self.cfg.half_open_calls:
            raise CircuitOpen(self.name, 1.0, self.last_error)
        self._trials += 1

    def on_success(self) -> None:
        now = self._clock()
        i = self._slot(now)
        self._calls[i] += 1
        self._consecutive = 0
        if self.state == "half_open":
            self._move("closed", "trial call succeeded")

    def on_failure(self, error: str) -> None:
        now = self._clock()
        i = self._slot(now)
        self._calls[i] += 1
        self._fails[i] += 1
        self._consecutive += 1
        self.last_error = error
        if self.state == "half_open":
            self._move("open", f"trial call failed: {error}")
            return
        if self.state == "closed":
            if self._consecutive >= self.cfg.failure_threshold:
                self._move("open", f"{self._consecutive} consecutive failures: {error}")
                return
            calls, rate = self._rate(now)
            if calls >= self.cfg.min_calls and rate >= self.cfg.error_rate:
                self._move("open", f"{rate:.0%} of {calls} calls failed: {error}")

    def on_released(self) -> None:
        """A trial call ended without an outcome (cancelled, refused locally)."""
        if self.state == "half_open" and self._trials > 0:
            self._trials -= 1

    def on_probe(self, ok: bool) -> None:
        """Active health feeds the same state: a good probe ends the wait early."""
        if ok and self.state == "open":
            self._move("half_open", "health probe succeeded")
