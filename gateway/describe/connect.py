"""``check --connect``: open every backend for real and prove each service's mapping on it.

Each backend is built by its adapter factory from the checked settings,
opened (``adapter.open``: a pool, a WSDL download), probed once with its own
``health.timeout``; then, for an adapter that can describe a result
(:class:`~gateway.adapter.DescribesResult`), every service on it has its
result columns learnt without reading data (a prepared statement, a
``LIMIT 0`` form, the WSDL's types) and each output column the result does
not have is reported with its YAML line.  All backends at once; each is
closed again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter

from gateway.adapter import Adapter, BackendError, DescribesResult, PrepareError
from gateway.config.loader import Path_, Problem
from gateway.config.models import FieldConfig
from gateway.config.runtime import Backend, Service, Settings

__all__ = ["OPEN_TIMEOUT", "BackendCheck", "check_backends", "output_columns"]

OPEN_TIMEOUT = 30.0  # seconds for adapter.open (connecting, loading a WSDL)

LineOf = Callable[[Path_], int | None]


@dataclass(frozen=True, slots=True)
class BackendCheck:
    name: str
    type: str
    ok: bool
    seconds: float
    error: str | None = None
    problems: tuple[Problem, ...] = field(default=())  # of the services on this backend
    described: int = 0  # services whose result columns were compared


def output_columns(output: Mapping[str, FieldConfig], at: Path_) -> Iterator[tuple[Path_, str]]:
    """``(path of the column: key, column)`` of every output field reading a column."""
    for name, f in output.items():
        if f.fields is not None:
            yield from output_columns(f.fields, (*at, name, "fields"))
        elif f.column is not None:
            yield (*at, name, "column"), f.column


async def _columns(
    adapter: Adapter, services: Sequence[Service], limit: float, line_of: LineOf
) -> tuple[list[Problem], int]:
    if not isinstance(adapter, DescribesResult):
        return [], 0
    problems: list[Problem] = []
    described = 0

    def add(path: Path_, message: str) -> None:
        problems.append(Problem(path, line_of(path), message))

    for svc in services:
        at: Path_ = ("services", svc.name)
        try:
            got = await asyncio.wait_for(adapter.result_columns(svc.operation), limit)
        except PrepareError as exc:
            add((*at, "operation", *exc.path), str(exc))
            continue
        except TimeoutError:
            add((*at, "operation"), f"the backend did not describe the result in {limit:g}s")
            continue
        except BackendError as exc:
            add((*at, "operation"), f"the backend refused the operation: {exc.detail or exc}")
            continue
        if got is None:
            continue
        described += 1
        have = {c.lower() for c in got}
        for path, column in output_columns(svc.config.output, (*at, "output")):
            if column.lower() not in have:
                add(
                    path,
                    f"column {column!r} is not in the backend's result "
                    f"(it has: {', '.join(sorted(got)) or 'nothing'})",
                )
    return problems, described


async def _check(backend: Backend, services: Sequence[Service], line_of: LineOf) -> BackendCheck:
    t0 = perf_counter()
    stage = "open"
    try:
        adapter = backend.factory.create(backend.name, backend.options, backend.limits)
    except Exception as exc:  # a factory that can not even build the adapter
        return BackendCheck(backend.name, backend.type, False, 0.0, f"create: {exc}")
    try:
        await asyncio.wait_for(adapter.open(), OPEN_TIMEOUT)
        stage = "probe"
        await asyncio.wait_for(adapter.probe(), backend.config.health.timeout)
        stage = "describe"
        timeout = max(backend.config.health.timeout, backend.limits.query_timeout)
        problems, described = await _columns(adapter, services, timeout, line_of)
    except TimeoutError:
        limit = OPEN_TIMEOUT if stage == "open" else backend.config.health.timeout
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
    return BackendCheck(
        backend.name, backend.type, True, perf_counter() - t0, None, tuple(problems), described
    )


async def check_backends(
    settings: Settings, line_of: LineOf = lambda _: None
) -> list[BackendCheck]:
    on: dict[str, list[Service]] = {b: [] for b in settings.backends}
    for svc in settings.services.values():
        on[svc.backend].append(svc)
    checks = await asyncio.gather(
        *(_check(b, on[b.name], line_of) for b in settings.backends.values())
    )
    return sorted(checks, key=lambda c: c.name)
