"""What the gateway costs in front of a SOAP service: direct zeep calls vs LC2 calls.

Starts the spyne test service (``tests/soap_server.py``) and the gateway, each
in a process of its own on 127.0.0.1, then makes the same lookups twice at a
fixed concurrency for a fixed number of requests:

(a) directly: zeep's AsyncClient calls ``GetFisher`` on the SOAP service
    (zeep builds, sends and fully parses each call);
(b) through the gateway: ``GET /api/v1/fisher?personalId=...`` with LC2
    headers and Basic credentials; the gateway validates, audits (durable
    SQLite commit before each answer), calls the same service with its SOAP
    adapter, maps the rows and answers LC2 JSON.

It prints one table with requests/second and p50/p99 latency of both, and the
ratios gateway/direct.  Every phase is bounded in count and in time, and both
servers are stopped (by their process group id) on every exit path.  It is a
measurement to run by hand, not a test:

    python bench/soap_overhead.py [--requests 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.auth import hash_password  # noqa: E402 - the checkout's own modules
from tests.support import FISHER_OUTPUT, OFFICE, OFFICER, PEOPLE  # noqa: E402

__all__ = ["main"]

PASSWORD = "bench-password"
PHASE_LIMIT = 120.0  # seconds: a phase that takes longer is cut short and reported


@dataclass(frozen=True)
class Result:
    name: str
    done: int
    failed: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_http(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def _process(args: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # its own group: only what this script started
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _gateway_config(work: Path, soap_port: int, gw_port: int, concurrency: int) -> Path:
    cfg = {
        "listen": {"host": "127.0.0.1", "port": gw_port},
        "admin": {"enabled": False},
        "consumers": {"lc2": {"username": "bench", "password_hash": hash_password(PASSWORD)}},
        "audit": {"path": str(work / "audit.sqlite"), "key": "${BENCH_AUDIT_KEY}"},
        "lookups": {"sex": {"1": "ชาย", "2": "หญิง"}},
        "backends": {
            "vessels": {
                "type": "soap",
                "wsdl": f"http://127.0.0.1:{soap_port}/?wsdl",
                "pool_size": concurrency,
                "query_timeout": 10,
                "health": {"interval": 30, "timeout": 5},
            }
        },
        "services": {
            "fisher": {
                "backend": "vessels",
                "path": "fisher",
                "params": {"personalId": {"type": "citizen_id"}},
                "operation": {
                    "name": "GetFisher",
                    "request": {"personalId": "{personalId}"},
                    "rows": "GetFisherResponse/GetFisherResult/FisherRecord",
                },
                "output": FISHER_OUTPUT,
            }
        },
    }
    path = work / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


async def _drive(
    name: str, call: Callable[[int], Awaitable[bool]], total: int, concurrency: int
) -> Result:
    latencies: list[float] = []
    failed = 0
    next_i = 0
    deadline = time.monotonic() + PHASE_LIMIT

    async def worker() -> None:
        nonlocal next_i, failed
        while next_i < total and time.monotonic() < deadline:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            ok = await call(i)
            latencies.append(time.perf_counter() - t0)
            failed += not ok

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, len(latencies), failed, time.perf_counter() - started, latencies)


async def _direct(soap_url: str, total: int, concurrency: int, warmup: int) -> Result:
    import zeep
    from zeep.transports import AsyncTransport

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as http:
        with httpx.Client(timeout=10) as wsdl_http:
            # zeep ships no type hints (adapters/soap.py says so the same way)
            transport = AsyncTransport(client=http, wsdl_client=wsdl_http)  # type: ignore[no-untyped-call]
            client = await asyncio.to_thread(
                zeep.AsyncClient, soap_url + "?wsdl", transport=transport
            )
        pids = [p["pid"] for p in PEOPLE]

        async def call(i: int) -> bool:
            try:
                result = await client.service.GetFisher(personalId=pids[i % len(pids)])
            except Exception:
                return False
            return result is not None

        await _drive("warm-up", call, warmup, concurrency)
        return await _drive("direct zeep -> SOAP", call, total, concurrency)


async def _through_gateway(gw_url: str, total: int, concurrency: int, warmup: int) -> Result:
    auth = "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
    headers = {
        "Authorization": auth,
        "X-Office-Request": OFFICE,
        "X-User-Request": OFFICER,
        "User-Agent": "Linkage Center 2/bench",
    }
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10, headers=headers) as http:
        pids = [p["pid"] for p in PEOPLE]

        async def call(i: int) -> bool:
            try:
                resp = await http.get(
                    gw_url + "/api/v1/fisher", params={"personalId": pids[i % len(pids)]}
                )
            except httpx.HTTPError:
                return False
            return resp.status_code == 200

        await _drive("warm-up", call, warmup, concurrency)
        return await _drive("gateway -> SOAP", call, total, concurrency)


def _table(direct: Result, gateway: Result, concurrency: int) -> str:
    rows = [
        f"{'path':<22} {'requests':>8} {'failed':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}",
    ]
    for r in (direct, gateway):
        rows.append(
            f"{r.name:<22} {r.done:>8} {r.failed:>6} {r.rps:>9.1f} "
            f"{r.pct(0.50):>8.2f} {r.pct(0.99):>8.2f}"
        )
    rows.append(
        f"{'ratio gateway/direct':<22} {'':>8} {'':>6} {gateway.rps / direct.rps:>9.2f} "
        f"{gateway.pct(0.5) / direct.pct(0.5):>8.2f} {gateway.pct(0.99) / direct.pct(0.99):>8.2f}"
    )
    rows.append(f"(concurrency {concurrency}; {os.cpu_count()} CPUs; loopback)")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--requests", type=int, default=2000, help="per path (max 100000)")
    ap.add_argument("--concurrency", type=int, default=8, help="calls in flight (max 256)")
    ap.add_argument("--warmup", type=int, default=100)
    args = ap.parse_args()
    total = max(1, min(args.requests, 100_000))
    concurrency = max(1, min(args.concurrency, 256))
    warnings.simplefilter("ignore", DeprecationWarning)  # zeep's and spyne's, not ours

    soap_port, gw_port = _free_port(), _free_port()
    env = {**os.environ, "BENCH_AUDIT_KEY": os.urandom(24).hex(), "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="lc2-soap-bench-") as tmp:
        work = Path(tmp)
        soap_cmd = [sys.executable, "-m", "tests.soap_server", "--port", str(soap_port)]
        with _process(soap_cmd, work / "soap.log", env):
            soap_url = f"http://127.0.0.1:{soap_port}/"
            _wait_http(soap_url + "?wsdl", time.monotonic() + 20)
            cfg = _gateway_config(work, soap_port, gw_port, concurrency)
            gw_cmd = [sys.executable, "-m", "gateway", "serve", "-c", str(cfg)]
            with _process(gw_cmd, work / "gateway.log", env):
                gw_url = f"http://127.0.0.1:{gw_port}"
                _wait_http(gw_url + "/health", time.monotonic() + 30)
                direct = asyncio.run(_direct(soap_url, total, concurrency, args.warmup))
                through = asyncio.run(_through_gateway(gw_url, total, concurrency, args.warmup))
    print(_table(direct, through, concurrency))
    if direct.failed or through.failed:
        print(f"warning: {direct.failed + through.failed} calls failed", file=sys.stderr)


if __name__ == "__main__":
    main()
