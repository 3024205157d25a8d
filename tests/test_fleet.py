"""Three gateways behind HAProxy, each its own host, sharing state and audit on PostgreSQL.

Each gateway runs ``lc2-gateway serve`` in its own network namespace, joined
to a bridge in the root namespace by a veth pair, with its own address.
HAProxy runs deploy/haproxy/haproxy.cfg (only the bind line and the server
addresses changed) in the root namespace.  PostgreSQL listens on loopback
only, so the gateways reach it through TCP forwarders on the bridge
address: one for the audit store, one for the shared state store, which is
the one cut to make the store unreachable.  Every wait is bounded, and the
namespaces, links and processes are removed whatever happens.

Each gateway listens on port 8080 inside its own namespace, where no other
process can hold it; HAProxy's port in the root namespace is a free one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from gateway.config.build import load_settings
from tests.audit_support import write_config
from tests.conftest import PgServer
from tests.forwarder import Forwarder
from tests.gateway_process import CLI, ROOT, _die_with_parent
from tests.support import PEOPLE, basic, free_port, lc2_headers, make_pid, sqlite_backend

IP = shutil.which("ip") or "/usr/sbin/ip"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
PORT = 8080
PID = PEOPLE[0]["pid"]
MAINTENANCE_BOUND = 3.0  # a switch is seen by every gateway within this many seconds


def _tools() -> None:
    missing = [t for t in (IP, HAPROXY) if not os.access(t, os.X_OK)]
    if os.geteuid() != 0:
        missing.append("root (ip netns)")
    if missing:
        why = f"the fleet test needs {', '.join(missing)} (apt-get install haproxy iproute2)"
        if os.environ.get("CI") == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


def _ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=10)


def _http(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> int:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as err:
        err.read()
        return int(err.code)


def _wait(pred: Any, what: str, bound: float) -> float:
    """Poll ``pred()`` until true; the seconds it took, or fail after ``bound``."""
    started = time.monotonic()
    while True:
        try:
            if pred():
                return time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > bound:
            raise AssertionError(f"{what} (after {bound} s)")
        time.sleep(0.05)


class Forwarders:
    """Two forwarders to PostgreSQL on the bridge address, on a loop of their own."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.loop = asyncio.new_event_loop()
        self.audit = Forwarder(*target)
        self.state = Forwarder(*target)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._run(self.audit.start(host))
        self._run(self.state.start(host))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def cut_state(self) -> None:
        self.loop.call_soon_threadsafe(self.state.drop)

    def restore_state(self) -> None:
        self.loop.call_soon_threadsafe(self.state.restore)

    def close(self) -> None:
        for f in (self.audit, self.state):
            self._run(f.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclass
class Gateway:
    name: str
    ns: str
    address: str
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{PORT}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [IP, "netns", "exec", self.ns, *CLI, "serve", "-c", str(self.config)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        _wait(self.healthy, f"{self.name} not healthy:\n{self.log.read_text()[-3000:]}", 30)

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
        return _http(f"{self.url}/health", timeout=2) == 200

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=30)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class Fleet:
    tmp: Path
    pg: PgServer
    quota: int = 150  # an officer's calls a day
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    gateways: list[Gateway] = field(default_factory=list)
    haproxy: subprocess.Popen[bytes] | None = None
    forwarders: Forwarders | None = None
    lb: str = ""
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    @property
    def net(self) -> str:
        n = int(self.tag, 16)
        return f"10.{100 + n % 100}.{(n >> 8) % 250 + 1}"

    @property
    def audit_schema(self) -> str:
        return f"audit_{self.tag}"

    @property
    def state_schema(self) -> str:
        return f"state_{self.tag}"

    def network(self, n: int) -> None:
        bridge = f"lc2b{self.tag}"
        _ip("link", "add", bridge, "type", "bridge")
        self.links.append(bridge)
        _ip("addr", "add", f"{self.net}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for i in range(1, n + 1):
            ns, host, peer = f"lc2n{self.tag}{i}", f"lc2h{self.tag}{i}", f"lc2p{self.tag}{i}"
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("link", "add", host, "type", "veth", "peer", "name", peer)
            self.links.append(host)
            _ip("link", "set", peer, "netns", ns)
            _ip("link", "set", host, "master", bridge, "up")
            _ip("-n", ns, "addr", "add", f"{self.net}.{10 + i}/24", "dev", peer)
            _ip("-n", ns, "link", "set", peer, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def configs(self, n: int) -> None:
        parts = urlsplit(self.pg.dsn)
        self.forwarders = Forwarders(
            f"{self.net}.1", (parts.hostname or "127.0.0.1", parts.port or 5432)
        )

        def dsn(f: Forwarder) -> str:
            return parts._replace(netloc=f"{parts.username}@{self.net}.1:{f.port}").geturl()

        shared_key = self.tmp / "audit.key"
        shared_key.write_text(uuid.uuid4().hex * 2 + "\n", encoding="ascii")
        for i in range(1, n + 1):
            d = self.tmp / f"gw{i}"
            d.mkdir()
            top = {
                "listen": {"host": "0.0.0.0", "port": PORT},
                # calls wait for the legacy database rather than being turned away
                "backends": {
                    "legacy": sqlite_backend(
                        d / "legacy.sqlite", acquire_timeout=30, max_queue=1000
                    )
                },
                "admin": {"enabled": False},
                "limits": {
                    "store": str(d / "quota.sqlite"),
                    "quotas": [
                        {
                            "name": "officer-daily",
                            "scope": "officer",
                            "per": "day",
                            "limit": self.quota,
                        }
                    ],
                },
                "state": {
                    "store": "postgresql",
                    "on_unreachable": "fail_closed",
                    "postgresql": {"dsn": dsn(self.forwarders.state), "schema": self.state_schema},
                },
                "security": {
                    "trusted_proxies": [f"{self.net}.1/32"],
                    "auth_failures": {"per_address": 6, "per_username": 100, "lockout": 300},
                },
                "maintenance": {"file": str(d / "maintenance")},
            }
            path = write_config(
                d,
                top=top,
                store="postgresql",
                postgresql={"dsn": dsn(self.forwarders.audit), "schema": self.audit_schema},
                instance=f"gw{i}",
                key_file=str(shared_key),
                seal_key_file=str(self.tmp / "audit-seal.key"),
                seal_interval=3600,
            )
            load_settings(path)  # the first makes the seal key all three share
            self.gateways.append(
                Gateway(
                    f"gw{i}",
                    self.namespaces[i - 1],
                    f"{self.net}.{10 + i}",
                    path,
                    self.tmp / f"gw{i}.log",
                )
            )

    def start_haproxy(self) -> None:
        text = (ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text(encoding="utf-8")
        port = free_port()
        lines = []
        for line in text.splitlines():
            if line.strip().startswith("bind "):
                line = f"    bind 127.0.0.1:{port}"
            elif line.strip().startswith("server "):
                if not line.strip().startswith("server gw1 "):
                    continue
                line = "\n".join(
                    f"    server {g.name} {g.address}:{PORT} check" for g in self.gateways
                )
            lines.append(line)
        cfg = self.tmp / "haproxy.cfg"
        cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
        check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        with (self.tmp / "haproxy.log").open("wb") as out:
            self.haproxy = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(cfg)],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.lb = f"http://127.0.0.1:{port}"
        _wait(lambda: _http(f"{self.lb}/health", timeout=2) == 200, "HAProxy not serving", 15)
        time.sleep(1.5)  # every server's checks have risen (rise 2, inter 500 ms)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )

    def close(self) -> None:
        for g in self.gateways:
            g.kill()
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
        if self.forwarders is not None:
            self.forwarders.close()
        for ns in self.namespaces:
            subprocess.run([IP, "netns", "del", ns], capture_output=True, timeout=10)
        for link in self.links:
            subprocess.run([IP, "link", "del", link], capture_output=True, timeout=10)


@pytest.fixture
def fleet(tmp_path: Path, pg_server: PgServer) -> Iterator[Fleet]:
    _tools()
    f = Fleet(tmp_path, pg_server)
    try:
        f.network(3)
        f.configs(3)
        for g in f.gateways:
            g.start()
        f.start_haproxy()
        yield f
    finally:
        f.close()


@dataclass
class Answer:
    at: float
    rid: str
    status: int | str  # the HTTP status, or the connection error


class Load:
    """Steady bounded load through the balancer: ``workers`` callers, one call at a time each."""

    def __init__(self, lb: str, workers: int = 6) -> None:
        self.lb = lb
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(w,), daemon=True) for w in range(workers)
        ]
        for t in self._threads:
            t.start()

    def _run(self, worker: int) -> None:
        n = 0
        while not self._stop.is_set() and n < 5000:
            n += 1
            rid = f"load-{worker}-{n}"
            # officers by turn, so the daily quota of 150 is never what refuses a call here
            officer = make_pid(f"3100{worker:02d}{n % 97:06d}")
            headers = lc2_headers(**{"X-Request-Id": rid, "X-User-Request": officer})
            try:
                status: int | str = _http(f"{self.lb}/api/v1/fisher?personalId={PID}", headers)
            except OSError as exc:
                status = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.answers.append(Answer(time.monotonic(), rid, status))

    def stop(self) -> list[Answer]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        return self.answers


async def _audit_200s(pg: PgServer, schema: str) -> dict[str, int]:
    conn = await asyncpg.connect(pg.dsn)
    try:
        rows = await conn.fetch(
            f'SELECT request_id, count(*) AS n FROM "{schema}".audit_log '
            "WHERE status = 200 GROUP BY request_id"
        )
        return {r["request_id"]: int(r["n"]) for r in rows}
    finally:
        await conn.close()


async def _chains_of(pg: PgServer, schema: str, prefix: str) -> dict[str, int]:
    conn = await asyncpg.connect(pg.dsn)
    try:
        rows = await conn.fetch(
            f'SELECT chain, count(*) AS n FROM "{schema}".audit_log '
            "WHERE status = 200 AND request_id LIKE $1 GROUP BY chain",
            prefix + "%",
        )
        return {r["chain"]: int(r["n"]) for r in rows}
    finally:
        await conn.close()


def test_a_fleet_of_three_behind_haproxy_loses_nothing_and_shares_its_limits(
    fleet: Fleet,
) -> None:
    gw1, gw2, gw3 = fleet.gateways
    lb = fleet.lb

    # --- steady load; gw1 SIGKILLed and restarted; gw2 drained, then SIGTERMed -------------
    load = Load(lb)
    time.sleep(2)
    killed_at = time.monotonic()
    gw1.signal(signal.SIGKILL)
    gw1.wait()
    time.sleep(1)
    gw1.start()
    time.sleep(1.5)  # HAProxy's checks rise again (rise 2, inter 500 ms)
    settled = time.monotonic()
    drained = fleet.cli("maintenance", "on", "--local", "-c", str(gw2.config), "-m", "patching")
    assert drained.returncode == 0, drained.stderr
    _wait(lambda: _http(f"{gw2.url}/health") == 503, "gw2 not in maintenance", MAINTENANCE_BOUND)
    time.sleep(1.5)  # HAProxy's check (inter 500 ms, fall 1) takes it out of rotation
    gw2.signal(signal.SIGTERM)
    assert gw2.wait() == 0
    time.sleep(1.5)
    answers = load.stop()

    ok = {a.rid for a in answers if a.status == 200}
    failed = [a for a in answers if a.status != 200]
    assert len(ok) > 100, f"too little load to prove anything: {len(answers)} calls"
    # only calls running on the killed gateway failed: at most one per caller, all then
    assert len(failed) <= 6, failed
    assert all(killed_at <= a.at < settled for a in failed), failed
    audited = asyncio.run(_audit_200s(fleet.pg, fleet.audit_schema))
    missing = [rid for rid in ok if audited.get(rid) != 1]
    assert not missing, f"{len(missing)} calls answered 200 without exactly one audit record"
    assert all(n == 1 for n in audited.values()), "a call was answered twice"

    # gw2 patched: back in service
    assert fleet.cli("maintenance", "off", "--local", "-c", str(gw2.config)).returncode == 0
    gw2.start()
    time.sleep(1.5)

    # --- a daily quota of 150 hammered by 600 concurrent calls over the three --------------
    officer = make_pid("310099900011")

    def quota_call(n: int) -> int:
        headers = lc2_headers(**{"X-Request-Id": f"quota-{n}", "X-User-Request": officer})
        return _http(f"{lb}/api/v1/fisher?personalId={PID}", headers, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(100) as pool:
        statuses = list(pool.map(quota_call, range(600)))
    assert statuses.count(200) == 150, {s: statuses.count(s) for s in set(statuses)}
    assert statuses.count(429) == 450
    spread = asyncio.run(_chains_of(fleet.pg, fleet.audit_schema, "quota-"))
    assert set(spread) == {"gw1", "gw2", "gw3"} and sum(spread.values()) == 150, spread

    # who-accessed, from any one server's config, answers over every instance's chain
    who = fleet.cli("audit", "who-accessed", PID, "-c", str(gw3.config), "--format", "jsonl")
    assert who.returncode == 0, who.stderr
    rows = [json.loads(line) for line in who.stdout.splitlines() if line.strip()]
    served = {r["request_id"] for r in rows if r["status"] == 200}
    assert len({rid for rid in served if rid.startswith("quota-")}) == 150

    # --- maintenance switched at one gateway is seen by all ---------------------------------
    on = fleet.cli("maintenance", "on", "-c", str(gw3.config), "-m", "fleet upgrade")
    assert on.returncode == 0, on.stderr
    for g in fleet.gateways:
        _wait(
            lambda g=g: _http(f"{g.url}/health") == 503,
            f"{g.name} did not see the fleet's switch",
            MAINTENANCE_BOUND,
        )
    assert fleet.cli("maintenance", "off", "-c", str(gw1.config)).returncode == 0
    for g in fleet.gateways:
        _wait(g.healthy, f"{g.name} did not see the switch off", MAINTENANCE_BOUND)

    # --- the shared store cut and restored: fail_closed holds, the fleet recovers ----------
    pids = [g.proc.pid for g in fleet.gateways if g.proc is not None]
    assert fleet.forwarders is not None
    direct = f"{gw3.url}/api/v1/fisher?personalId={PID}"
    assert _http(direct, lc2_headers()) == 200  # this address's sign-in is now remembered
    fleet.forwarders.cut_state()
    for g in fleet.gateways:
        _wait(lambda g=g: _http(f"{g.url}/health") == 503, f"{g.name} still healthy", 10)
    # a quota applies and can not be decided: refused, not served
    assert _http(direct, lc2_headers()) == 503
    fleet.forwarders.restore_state()
    for g in fleet.gateways:
        _wait(g.healthy, f"{g.name} did not recover", 15)
    time.sleep(1.5)
    assert _http(f"{lb}/api/v1/fisher?personalId={PID}", lc2_headers()) == 200
    assert [g.proc.pid for g in fleet.gateways if g.proc is not None] == pids  # no restart

    # --- failed sign-ins counted across the fleet -------------------------------------------
    guesses = [
        _http(
            f"{lb}/api/v1/fisher?personalId={PID}",
            lc2_headers(Authorization=basic(password=f"g{i}")),
        )
        for i in range(9)
    ]
    assert guesses == [401] * 6 + [429] * 3

    # --- the three chains verify -------------------------------------------------------------
    verify = fleet.cli("audit", "verify", "-c", str(gw1.config))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for g in fleet.gateways:
        assert f"chain {g.name}:" in verify.stdout
