"""Does a hung legacy backend slow down the services on the other backends?

The gateway runs as a real process (``python -m gateway serve``) with two
services on two backends:

``fisher``  SQLite, the healthy service under load
``remote``  PostgreSQL, reached through a port this script controls (a relay
            to the real server, or a server that accepts and never answers)

The healthy service is loaded at fixed concurrency for a fixed duration in
each phase, while a trickle of calls goes to ``remote`` and a sampler reads
``/health`` every few milliseconds:

a  nothing hung
b  the PostgreSQL port hangs (circuit breaker on, as configured by default)
c  still hung, circuit breaker switched off by a live reload: every trickle
   call now waits for its timeout inside the remote backend's bulkhead

a and b alternate ``--rounds`` times (the medians are compared), c runs last.

Targets (issue 5): throughput b/a >= 0.9; ``/health`` p99 < 5 ms throughout.

    .venv/bin/python bench/resilience.py [--duration 10] [--concurrency 16]

The load comes from wrk when it is installed, otherwise from an aiohttp loop
in this process; the table says which.  Needs PostgreSQL (LC2_TEST_PG_DSN,
default postgresql://postgres@127.0.0.1:5432/postgres); only ``SELECT``s run
there.  Everything listens on 127.0.0.1 and stops at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.security.admin import read_token, token_path  # noqa: E402
from tests.faults import FaultPort, free_port  # noqa: E402
from tests.support import (  # noqa: E402
    PASSWORD_HASH,
    PEOPLE,
    SQLITE_QUERY,
    TEST_ENV,
    fisher_service,
    lc2_headers,
    make_sqlite_db,
)

PID = PEOPLE[0]["pid"]
PG_DSN = os.environ.get("LC2_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
# No table needed on the server: the "legacy row" is made by the query itself.
REMOTE_QUERY = "SELECT CAST(:personalId AS text) AS pid, 'x' AS name"


def write_config(
    path: Path, tmp: Path, port: int, admin: int, remote_port: int, circuit: bool
) -> None:
    db = tmp / "legacy.sqlite"
    if not db.exists():
        make_sqlite_db(db)
    where = urlsplit(PG_DSN)
    remote_dsn = f"postgresql://{where.username or 'postgres'}@127.0.0.1:{remote_port}{where.path}"
    cfg: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": port},
        "admin": {"enabled": True, "host": "127.0.0.1", "port": admin},
        "logging": {"level": "WARNING", "access": True},
        "consumers": {
            "lc2": {
                "username": "Linkage Service",
                # the test consumer of tests/support.py (a light scrypt, for speed)
                "password_hash": PASSWORD_HASH,
            }
        },
        "audit": {"path": str(tmp / "audit.sqlite"), "key": "${AUDIT_KEY}"},
        "lookups": {"sex": {"1": "ชาย", "2": "หญิง"}},
        "backends": {
            "local": {"type": "sqlite", "path": str(db), "pool_size": 4},
            "remote": {
                "type": "postgresql",
                "dsn": remote_dsn,
                "pool_size": 4,
                "acquire_timeout": 1.0,
                "query_timeout": 2.0,
                "health": {"interval": 1.0, "timeout": 0.5},
                "circuit": {"enabled": circuit, "open_for": 5.0},
            },
        },
        "services": {
            "fisher": fisher_service("local", SQLITE_QUERY),
            "remote": {
                "backend": "remote",
                "path": "remote",
                "params": {"personalId": {"type": "citizen_id"}},
                "operation": {"query": REMOTE_QUERY},
                "output": {"personalId": {"column": "pid", "transform": ["pid"]}, "name": "name"},
            },
        },
    }
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), "utf-8")


# --- measurement ----------------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class HealthSampler(threading.Thread):
    """GET /health every ``every`` seconds, in its own thread.

    The gateway closes a connection after a health answer, so each sample includes a
    connect on loopback (http.client opens the next connection by itself).
    """

    def __init__(self, port: int, every: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.every = every
        self.samples: list[tuple[float, float, int]] = []  # (when, seconds, status)
        self._stop_flag = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while not self._stop_flag.is_set():
            t0 = time.perf_counter()
            try:
                conn.request("GET", "/health")
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                status = 0
            self.samples.append((t0, time.perf_counter() - t0, status))
            self._stop_flag.wait(self.every)
        conn.close()

    def stop(self) -> None:
        self._stop_flag.set()
        self.join(10)

    def between(self, start: float, end: float) -> list[tuple[float, float, int]]:
        return [s for s in self.samples if start <= s[0] < end]


@dataclass
class Trickle:
    """A few callers of the remote service, each pausing between calls."""

    base: str
    callers: int = 4
    pause: float = 0.1
    calls: list[tuple[float, float, int, str]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, session: aiohttp.ClientSession) -> None:
        self._tasks = [asyncio.create_task(self._caller(session)) for _ in range(self.callers)]

    async def _caller(self, session: aiohttp.ClientSession) -> None:
        url = f"{self.base}/api/v1/remote"
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                async with session.get(
                    url, params={"personalId": PID}, headers=lc2_headers()
                ) as resp:
                    body = await resp.json()
                    status, code = resp.status, str(body.get("responseCode"))
            except (aiohttp.ClientError, TimeoutError):
                status, code = 0, "none"
            self.calls.append((t0, time.perf_counter() - t0, status, code))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.pause)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def between(self, start: float, end: float) -> list[tuple[float, float, int, str]]:
        return [c for c in self.calls if start <= c[0] < end]


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    non_2xx: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def _wrk_ms(text: str, label: str) -> float:
    m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


async def load_wrk(url: str, concurrency: int, seconds: float) -> LoadResult:
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    for k, v in lc2_headers().items():
        cmd += ["-H", f"{k}: {v}"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out = (await proc.communicate())[0].decode()
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    if proc.returncode != 0 or not m:
        raise RuntimeError("wrk failed:\n" + out)
    span = float(m.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[m.group(3)]
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return LoadResult(
        "wrk",
        int(m.group(1)),
        span,
        int(non.group(1)) if non else 0,
        _wrk_ms(out, "50%"),
        _wrk_ms(out, "99%"),
    )


async def load_aiohttp(url: str, concurrency: int, seconds: float) -> LoadResult:
    latencies: list[float] = []
    non_2xx = 0
    headers = lc2_headers()
    deadline = time.perf_counter() + seconds

    async def caller(session: aiohttp.ClientSession) -> None:
        nonlocal non_2xx
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            async with session.get(url, headers=headers) as resp:
                await resp.read()
                non_2xx += resp.status >= 300
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(caller(session) for _ in range(concurrency)))
    span = time.perf_counter() - t0
    return LoadResult(
        "aiohttp",
        len(latencies),
        span,
        non_2xx,
        pct(latencies, 50) * 1000,
        pct(latencies, 99) * 1000,
    )


# --- the gateway process ----------------------------------------------------------------------


@contextlib.contextmanager
def gateway(config: Path, log: Path, admin: int) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "-c", str(config)],
            cwd=ROOT,
            env={**os.environ, **TEST_ENV},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("gateway exited:\n" + log.read_text("utf-8", "replace"))
                with contextlib.suppress(OSError):
                    url = f"http://127.0.0.1:{admin}/ready"
                    with urllib.request.urlopen(url, timeout=1) as r:
                        if r.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError("gateway not ready")
                time.sleep(0.1)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


async def wait_health(
    base: str, backend: str, status: str, circuit: str | None = None, within: float = 30
) -> None:
    deadline = time.perf_counter() + within
    async with aiohttp.ClientSession() as s:
        while time.perf_counter() < deadline:
            async with s.get(f"{base}/health") as resp:
                b = (await resp.json())["backends"][backend]
                if b["status"] == status and circuit in (None, b["circuit"]):
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"backend {backend} not {status} within {within}s")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended (each wrk run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Phase:
    name: str
    load: LoadResult
    start: float
    end: float
    cpu: float  # seconds of gateway CPU during the phase
    own_cpu: float  # ... of this process (sampler, trickle, the hung port)
    wrk_cpu: float  # ... of wrk (0 with the aiohttp load, which is in own_cpu)
    health: list[tuple[float, float, int]] = field(default_factory=list)
    trickle: list[tuple[float, float, int, str]] = field(default_factory=list)  # by start


async def run(duration: float, concurrency: int, rounds: int, use_wrk: bool) -> list[Phase]:
    tmp = Path(tempfile.mkdtemp(prefix="lc2gw-bench-"))
    port, admin = free_port(), free_port()
    where = urlsplit(PG_DSN)
    relay = await FaultPort(where.hostname or "127.0.0.1", where.port or 5432).start()
    config = tmp / "gateway.yaml"
    write_config(config, tmp, port, admin, relay.port, circuit=True)
    base = f"http://127.0.0.1:{port}"
    admin_base = f"http://127.0.0.1:{admin}"  # backends by name: the operators' listener
    query = urlencode({"personalId": PID})
    url = f"{base}/api/v1/fisher?{query}"
    load = load_wrk if use_wrk else load_aiohttp
    phases: list[Phase] = []
    try:
        with gateway(config, tmp / "gateway.log", admin) as proc:
            await wait_health(admin_base, "remote", "up")
            await load(url, concurrency, 2.0)  # warm-up, not reported
            sampler = HealthSampler(port)
            sampler.start()
            trickle = Trickle(base)
            async with aiohttp.ClientSession() as session:
                trickle.start(session)

                async def phase(name: str) -> None:
                    c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
                    o0, w0 = time.process_time(), children_cpu()
                    result = await load(url, concurrency, duration)
                    c1, t1 = cpu_seconds(proc.pid), time.perf_counter()
                    o1, w1 = time.process_time(), children_cpu()
                    phases.append(Phase(name, result, t0, t1, c1 - c0, o1 - o0, w1 - w0))

                # a and b alternate, so that drift on the machine hits both alike
                for _ in range(rounds):
                    await relay.set_mode("forward")
                    await wait_health(admin_base, "remote", "up", circuit="closed")
                    await phase("a  nothing hung")
                    await relay.set_mode("hang")
                    await phase("b  remote hung, circuit on")
                write_config(config, tmp, port, admin, relay.port, circuit=False)
                token = read_token(token_path(tmp / "var" / "quota.sqlite"))
                async with session.post(
                    f"http://127.0.0.1:{admin}/-/reload",
                    headers={"Authorization": f"Bearer {token}"},
                ) as r:
                    if r.status != 200:
                        raise RuntimeError(f"reload refused: {await r.text()}")
                await phase("c  remote hung, circuit off")
                await trickle.stop()  # the calls still running end first
            sampler.stop()
            for p in phases:
                p.health = sampler.between(p.start, p.end)
                p.trickle = trickle.between(p.start, p.end)
    finally:
        await relay.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return phases


def report(phases: list[Phase], concurrency: int, duration: float) -> None:
    tool = phases[0].load.tool
    print(
        f"\nhealthy service GET /api/v1/fisher: {tool}, {concurrency} connections, "
        f"{duration:g}s per phase; /health sampled every 10 ms; trickle: 4 callers of "
        f"/api/v1/remote, 100 ms apart; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}; CPU of the gateway, wrk and this process, in cores\n"
    )
    head = (
        f"{'phase':<30}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}"
        f"{'gw CPU':>7}{'wrk':>5}{'own':>5}  "
        f"{'/health n':>9}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}  trickle answers"
    )
    print(head)
    print("-" * (len(head) + 20))
    for p in phases:
        h = [s[1] * 1000 for s in p.health]
        bad = sum(1 for s in p.health if s[2] not in (200, 503))
        codes = Counter(f"{c[2]}/{c[3]}" for c in p.trickle)
        slow = max((c[1] for c in p.trickle), default=0.0)
        trickle = ", ".join(f"{k} x{v}" for k, v in sorted(codes.items()))
        span = p.end - p.start
        print(
            f"{p.name:<30}{p.load.rps:>9.0f}{p.load.p50_ms:>8.2f}{p.load.p99_ms:>8.2f}"
            f"{p.load.non_2xx:>8}{p.cpu / span:>7.0%}{p.wrk_cpu / span:>5.0%}"
            f"{p.own_cpu / span:>5.0%}  "
            f"{len(h):>9}{pct(h, 50):>8.2f}{pct(h, 99):>8.2f}"
            f"{max(h, default=float('nan')):>8.2f}  {trickle} (slowest {slow:.2f}s)"
            + (f"  /health errors {bad}" if bad else "")
        )
    rps = {k: [p.load.rps for p in phases if p.name[0] == k] for k in "abc"}
    a = statistics.median(rps["a"])
    everything = [s[1] * 1000 for p in phases for s in p.health]
    print()
    for k in "bc":
        ratio = statistics.median(rps[k]) / a
        print(
            f"throughput {k}/a (medians of {len(rps[k])} and {len(rps['a'])}): {ratio:.3f}"
            "  (target >= 0.9)"
        )
    print(
        f"/health over all phases: n={len(everything)} p50 {statistics.median(everything):.2f} ms"
        f"  p99 {pct(everything, 99):.2f} ms  max {max(everything):.2f} ms  (target p99 < 5 ms)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    ap.add_argument("--concurrency", type=int, default=16, help="connections on the healthy path")
    ap.add_argument("--rounds", type=int, default=3, help="a/b pairs (c runs once, at the end)")
    ap.add_argument("--no-wrk", action="store_true", help="use the aiohttp loop even with wrk")
    args = ap.parse_args()
    use_wrk = shutil.which("wrk") is not None and not args.no_wrk
    phases = asyncio.run(run(args.duration, args.concurrency, args.rounds, use_wrk))
    report(phases, args.concurrency, args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
