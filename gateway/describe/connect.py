"""``check --connect``: open every backend for real and probe it, as the gateway would.

Each backend is built by its adapter factory from the checked settings,
opened (``adapter.open``: a pool, a WSDL download), probed once with its own
``health.timeout`` and closed again, all backends at once.  Nothing is
queried beyond the adapter's probe.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from time import perf_counter

from gateway.config.runtime import Backend, Settings

__all__ = ["OPEN_TIMEOUT", "BackendCheck", "check_backends", "print_report"]

OPEN_TIMEOUT = 30.0  # seconds for adapter.open (connecting, loading a WSDL)


@dataclass(frozen=True, slots=True)
class BackendCheck:
    name: str
    type: str
    ok: bool
    seconds: float
    error: str | None = None


async def _check(backend: Backend) -> BackendCheck:
    t0 = perf_counter()
    stage = "open"
    try:
        adapter = backend.factory.create(backend.name, backend.options, backend.limits)
    except Exception as exc:  # a factory that can not even build the adapter
        return BackendCheck(backend.name, backend.type, False, 0.0, f"create: {exc}")
    try:
        await asyncio.wait_for(adapter.open(), OPEN_TIMEOUT)
        stage = "probe"
        await asyncio.wait_for(adapter.probe(), backend.health.timeout)
    except TimeoutError:
        limit = OPEN_TIMEOUT if stage == "open" else backend.health.timeout
        return BackendCheck(
            backend.name,
            backend.type,
            False,
            perf_counter() - t0,
            f"{stage}: no answer in {limit:g}s",
        )
    except Exception as exc:  # whatever the driver raises is the operator's answer
        reason = str(exc) or type(exc).__name__
        return BackendCheck(
            backend.name, backend.type, False, perf_counter() - t0, f"{stage}: {reason}"
        )
    finally:
        with contextlib.suppress(Exception):
            await adapter.close()
    return BackendCheck(backend.name, backend.type, True, perf_counter() - t0)


async def check_backends(settings: Settings) -> list[BackendCheck]:
    checks = await asyncio.gather(*(_check(b) for b in settings.backends.values()))
    return sorted(checks, key=lambda c: c.name)


def print_report(checks: list[BackendCheck]) -> int:
    """Print one line per backend; 0 if every backend answered, else 1."""
    print("backends:")
    for c in checks:
        if c.ok:
            print(f"  {c.name} ({c.type}): OK, open and probe in {c.seconds * 1000:.0f} ms")
        else:
            print(f"  {c.name} ({c.type}): FAILED, {c.error}")
    failed = sum(1 for c in checks if not c.ok)
    if failed:
        print(f"{failed} of {len(checks)} backend(s) failed")
    return 1 if failed else 0
