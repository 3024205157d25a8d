"""CPU cost of each pipeline stage, per call, without HTTP or a network in the way.

Runs in its own process against one source tree (the checkout or a patched
copy), with the benchmark's generated config and real rows fetched once from
the benchmark database, and times every pure-CPU step of a call with
the thread's CPU clock: best of several repeats of many iterations, so the
figures move little on a busy machine.  Prints one JSON object.

The last stages, ``whole call``, are what the app's dispatch does without HTTP:
the front door (client address), the route, and ``Pipeline.call`` with the
production guard, hub and audit writer (a real SQLite store, committed
by its own thread) around an adapter that returns the fetched rows at once (the
sandbox case answers from the service's sandbox rows), so the glue between the
stages is timed too.  Only the loop thread's CPU counts, not the writer
thread's nor the wait for its commit; the second figure leaves the hand-over to
the writer out (the records then go nowhere), because its system calls vary more
from run to run than the glue costs.

    python -m bench.stages --config GW.yaml [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["main", "time_call"]


def time_call(fn: Callable[[], object], *, number: int, repeat: int = 5) -> float:
    """Best microseconds per call over ``repeat`` rounds of ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.thread_time_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.thread_time_ns() - t0) / number / 1000)
    return best


def _time_async(
    loop: asyncio.AbstractEventLoop, fn: Callable[[], Awaitable[object]], number: int
) -> float:
    async def rounds() -> float:
        best = float("inf")
        for _ in range(5):
            t0 = time.thread_time_ns()
            for _ in range(number):
                await fn()
            best = min(best, (time.thread_time_ns() - t0) / number / 1000)
        return best

    return loop.run_until_complete(rounds())


def _measure(config: Path, cases: list[tuple[str, str, str]], number: int) -> dict[str, Any]:
    # The gateway is whatever tree is on PYTHONPATH (the checkout or a patched copy), so
    # its modules are looked up by name rather than imported for the type checker.
    def mod(name: str) -> Any:
        return importlib.import_module(name)

    from aiohttp.test_utils import make_mocked_request
    from prometheus_client import CollectorRegistry

    from bench.workload import OFFICE, OFFICER, authorization

    settings = mod("gateway.config.build").load_settings(config)
    lc2 = settings.lc2
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    creds = mod("gateway.auth").CredentialStore(settings.consumers)
    metrics = mod("gateway.metrics").Metrics(
        CollectorRegistry(), services=list(settings.services), backends=list(settings.backends),
        version=settings.version,
    )
    audit = mod("gateway.audit").AuditWriter(settings.audit, settings.services)
    access = mod("gateway.logs").AccessLog(settings.logging.access)
    new_record = mod("gateway.pipeline").new_record
    request_mod = mod("gateway.request")
    success_response = mod("gateway.respond").success_response
    headers = {
        "Authorization": authorization(),
        "X-Office-Request": OFFICE,
        "X-User-Request": OFFICER,
        "User-Agent": "Linkage Center 2/bench",
    }

    async def fetch(svc: Any, pid: str) -> list[dict[str, Any]]:
        backend = settings.backends[svc.backend]
        adapter = backend.factory.create(backend.name, backend.options, backend.limits)
        await adapter.open()
        try:
            query = make_mocked_request("GET", f"/?personalId={pid}").query
            params = request_mod.parse_params(svc, lc2, query, {})
            return [dict(r) for r in await adapter.fetch(svc.operation, params)]
        finally:
            await adapter.close()

    loop.run_until_complete(creds.authenticate(headers["Authorization"]))  # scrypt once
    whole = _WholeCall(settings, loop)
    out: dict[str, Any] = {}
    for label, service, pid in cases:
        sandbox = service == "sandbox"
        svc = settings.services["fisher" if sandbox else service]
        request = make_mocked_request("GET", f"{svc.data_path}?personalId={pid}", headers=headers)
        rows = list(svc.sandbox_rows) if sandbox else loop.run_until_complete(fetch(svc, pid))
        out[label] = _stages(
            loop, number, svc=svc, rows=rows, request=request, lc2=lc2, creds=creds,
            metrics=metrics, audit=audit, access=access, new_record=new_record,
            request_mod=request_mod, success_response=success_response,
        )
        if sandbox:  # the whole call goes by the sandbox URL
            request = make_mocked_request(
                "GET", f"{svc.sandbox_path}?personalId={pid}", headers=headers
            )
        out[label].update(whole.time(svc, request, rows, max(1, number // 4)))
    whole.close()
    loop.close()
    return out


class _Rows:
    """An adapter that answers every fetch with the same rows, at once."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def fetch(self, operation: Any, params: Any) -> list[dict[str, Any]]:
        return self.rows

    async def probe(self) -> None:
        return None


class _Committed:
    """A durable observer that has stored every record as soon as it is handed one."""

    async def commit(self, record: Any) -> None:
        return None


class _WholeCall:
    """The app's dispatch (door, route, ``Pipeline.call``) as the runtime wires it, the
    backends replaced by :class:`_Rows`."""

    def __init__(self, settings: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.rt = rt = importlib.import_module("gateway.runtime").Runtime(settings)
        loop.run_until_complete(rt.audit.start())
        loop.run_until_complete(rt.quotas.open())
        loop.run_until_complete(rt.lockouts.store.open())
        self.door = importlib.import_module("gateway.security.front").FrontDoor(rt.lockouts)

    def time(
        self, svc: Any, request: Any, rows: list[dict[str, Any]], number: int
    ) -> dict[str, float]:
        gen = self.rt.current
        gen.guards[svc.backend].adapter = _Rows(rows)
        door, security = self.door, gen.settings.security

        async def call() -> Any:
            client = door.admit(request, security)
            match = gen.router.match(request.path)
            if match is None or match.service is not svc:
                raise RuntimeError(f"{request.path} is not a route of {svc.name}")
            return await gen.pipeline.call(
                match.service, request, sandbox_url=match.kind == "sandbox",
                path_params=match.path_params, client=client,
            )

        response = self.loop.run_until_complete(call())
        if response.status != 200:  # a refusal is not the call path being measured
            raise RuntimeError(f"pipeline.call answered {response.status}: {response.text}")
        out = {"whole call": _time_async(self.loop, call, number)}
        # The hand-over to the writer thread and the wake-up by its commit cost the loop
        # ~180 us of system calls that no compiler changes and that vary from run to run;
        # without them the glue's own cost shows (the durable observer answers at once).
        hub = self.rt.hub
        durable, hub.durable = hub.durable, _Committed()
        try:
            out["whole call, audit commit at once"] = _time_async(self.loop, call, number)
        finally:
            hub.durable = durable
        return out

    def close(self) -> None:
        rt = self.rt
        self.loop.run_until_complete(rt.audit.close())
        self.loop.run_until_complete(rt.quotas.close())
        self.loop.run_until_complete(rt.lockouts.store.close())


def _stages(
    loop: asyncio.AbstractEventLoop,
    number: int,
    *,
    svc: Any,
    rows: list[dict[str, Any]],
    request: Any,
    lc2: Any,
    creds: Any,
    metrics: Any,
    audit: Any,
    access: Any,
    new_record: Any,
    request_mod: Any,
    success_response: Any,
) -> dict[str, float]:
    from bench.workload import OFFICE, OFFICER

    mapped = svc.mapper.map_rows(rows)
    rec = new_record(request, lc2.headers.request_id, "data")
    rec.service, rec.consumer, rec.office, rec.officer = svc.name, "lc2", OFFICE, OFFICER
    rec.status, rec.code, rec.rows, rec.duration = 200, "000", len(mapped.rows), 0.004
    rec.backend_duration = 0.002
    rec.timings.update(request=1e-4, plan=1e-5, execute=2e-3, normalise=1e-4, audit=1e-3)
    query = request.query
    header = request.headers["Authorization"]

    # the gateway's own formatter; a tree from before it had one wrote the header inline
    formatter = getattr(importlib.import_module("gateway.pipeline"), "server_timing", None)

    def server_timing() -> str:
        if formatter is not None:
            return str(formatter(rec.timings))
        return ", ".join(f"{k};dur={v * 1000:.2f}" for k, v in rec.timings.items())

    stage: dict[str, float] = {
        "rows": float(len(rows)),
        "new_record": time_call(
            lambda: new_record(request, lc2.headers.request_id, "data"), number=number
        ),
        "credentials (cached)": _time_async(loop, lambda: creds.authenticate(header), number),
        "parse_params": time_call(
            lambda: request_mod.parse_params(svc, lc2, query, {}), number=number
        ),
        "map_rows": time_call(lambda: svc.mapper.map_rows(rows), number=number),
        "success_response": time_call(
            lambda: success_response(lc2, mapped.rows, {"X-Request-Id": "x" * 32}),
            number=number,
        ),
        "audit.to_row": time_call(lambda: audit.to_row(rec), number=number),
        "metrics.observe": time_call(lambda: metrics.observe(rec), number=number),
        "access_log.observe": time_call(lambda: access.observe(rec), number=number),
        "server_timing": time_call(server_timing, number=number),
    }
    stage["sum of stages"] = sum(v for k, v in stage.items() if k != "rows")
    return stage


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--pid-single", required=True)
    p.add_argument("--pid-owner", required=True)
    p.add_argument("--number", type=int, default=2000)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    cases = [  # (label, service, citizen ID)
        ("single", "fisher", args.pid_single),
        ("rows10", "vessel", args.pid_owner),
        ("sandbox", "sandbox", args.pid_single),
    ]
    result = _measure(args.config, cases, args.number)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
