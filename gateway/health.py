"""Backend health, probed in the background and read from a cache.

A health endpoint must answer in microseconds even when a backend hangs, so
nothing on the request path probes anything: one task per backend calls the
adapter's cheap ``probe`` on an interval, bounded by a timeout, and stores
the outcome here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from time import perf_counter
from typing import Literal

from gateway.adapter import Adapter
from gateway.breaker import Breaker
from gateway.config.runtime import Backend

__all__ = ["BackendHealth", "HealthMonitor", "Status"]

log = logging.getLogger("lc2_gateway.health")

Status = Literal["up", "down", "unknown"]


@dataclass(frozen=True, slots=True)
class BackendHealth:
    status: Status = "unknown"
    checked_at: float | None = None  # unix time of the last probe
    last_ok_at: float | None = None
    latency: float | None = None  # seconds
    error: str | None = None
    circuit: str | None = None  # closed | open | half_open, when a breaker is configured

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "circuit": self.circuit,
            "checkedAt": _iso(self.checked_at),
            "lastOkAt": _iso(self.last_ok_at),
            "latencyMs": None if self.latency is None else round(self.latency * 1000, 3),
            "error": self.error,
        }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


HealthHook = Callable[[str, BackendHealth], None]


class HealthMonitor:
    def __init__(
        self,
        backends: Mapping[str, Backend],
        adapters: Mapping[str, Adapter],
        *,
        breakers: Mapping[str, Breaker] | None = None,
        on_change: HealthHook | None = None,
        initial: Mapping[str, BackendHealth] | None = None,
    ) -> None:
        self._backends = backends
        self._adapters = adapters
        self._breakers = breakers or {}
        self._on_change = on_change
        # a reload keeps what is known of a backend instead of flashing "unknown"
        self._state: dict[str, BackendHealth] = {
            name: (initial or {}).get(name, BackendHealth()) for name in backends
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    def get(self, backend: str) -> BackendHealth:
        """Probe result and circuit state together: active and passive health in one view."""
        h = self._state[backend]
        breaker = self._breakers.get(backend)
        if breaker is None:
            return h
        if breaker.state == "open" and h.status == "up":
            why = f"circuit open after failed calls: {breaker.last_error}"
            return replace(h, status="down", error=why, circuit="open")
        return replace(h, circuit=breaker.state)

    def all(self) -> Mapping[str, BackendHealth]:
        return {name: self.get(name) for name in self._state}

    async def start(self) -> None:
        for name in self._backends:
            self._tasks.append(asyncio.create_task(self._loop(name), name=f"health-{name}"))

    async def close(self) -> None:
        # the flag ends a loop whose cancel was swallowed inside a probe (3.11's wait_for
        # drops a cancel that arrives as the awaited call finishes, and adapters use it)
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def probe_once(self, name: str) -> BackendHealth:
        cfg = self._backends[name].config.health
        prev = self._state[name]
        t0, now = perf_counter(), time.time()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # arrives as the probe finishes, and close() would then wait forever
            async with asyncio.timeout(cfg.timeout):
                await self._adapters[name].probe()
        except TimeoutError:
            new = BackendHealth(
                "down", now, prev.last_ok_at, None, f"probe timed out ({cfg.timeout:g}s)"
            )
        except Exception as exc:  # any failure of a probe means "down", with its reason
            new = BackendHealth("down", now, prev.last_ok_at, None, str(exc) or type(exc).__name__)
        else:
            new = BackendHealth("up", now, now, perf_counter() - t0, None)
        if new.status != prev.status:
            level = logging.INFO if new.status == "up" else logging.WARNING
            log.log(
                level, "backend %s is %s%s", name, new.status, f": {new.error}" if new.error else ""
            )
        self._state[name] = new
        breaker = self._breakers.get(name)
        if breaker is not None:
            breaker.on_probe(new.status == "up")
        if self._on_change is not None:
            self._on_change(name, new)
        return new

    async def _loop(self, name: str) -> None:
        interval = self._backends[name].config.health.interval
        while not self._closing:
            await self.probe_once(name)
            if self._closing:
                return
            await asyncio.sleep(interval)
