"""Fault injection against real servers: legacy systems die, hang, babble and come back.

Every scenario runs a bounded concurrent client loop against two services on
two backends, breaks one backend, and checks what LC2 and the operator see:

* the service on the healthy backend answers every call 200 throughout;
* the service on the broken backend is answered with 503 ``301``/``310`` or
  504 ``302``, each call within its timeout plus a small slack (every call's
  latency is measured), never a hang;
* ``/health`` shows the backend down with its circuit open, ``/metrics``
  shows ``lc2_gateway_backend_up 0``, ``lc2_gateway_circuit_state 2`` and the
  failed calls by code (the counts equal what the clients saw);
* once the backend is back the gateway recovers by itself: calls 200, health
  up, circuit closed, without a restart;
* every answered call has its audit row, same request id, same status.

The faults: a private PostgreSQL cluster restarted and stopped mid-load
(:class:`tests.faults.PrivatePostgres`), MariaDB connections killed by the
server (``KILL``), and a backend port that hangs, refuses or answers garbage
(:class:`tests.faults.FaultPort`).  Reloads under load close the file: the
config is rewritten and reloaded in-process and through SIGHUP to a real
``python -m gateway serve`` while calls run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncmy
import asyncpg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.adapter import BackendUnavailable, PoolStats
from gateway.app import build_admin_app, build_app
from gateway.config.build import load_settings
from gateway.health import HealthMonitor
from gateway.runtime import Runtime
from tests.conftest import MysqlServer, PgServer
from tests.faults import FaultPort, Mode, PrivatePostgres
from tests.support import (
    PEOPLE,
    SQLITE_QUERY,
    TEST_ENV,
    Client,
    MakeClient,
    audit_rows,
    base_config,
    fisher_service,
    free_port,
    lc2_headers,
    make_sqlite_db,
    settings_from,
    sqlite_backend,
)

ROOT = Path(__file__).resolve().parent.parent

# Limits of the backend under fault.  A call waits either for a connection
# (acquire_timeout) or for its query (query_timeout), never both in full, and
# never twice: only a call that met a dead pooled connection is retried, and
# that failure is quick.  The load never exceeds the bulkhead, so no call also
# waits for a slot.
ACQUIRE = 1.0
QUERY = 1.0
SLACK = 0.3
BOUND = ACQUIRE / 2 + max(ACQUIRE, QUERY) + SLACK
FAILED = {503: {"301", "310"}, 504: {"302"}}  # what a broken backend may answer

PG_QUERY = (
    "SELECT pid, fullname, sex, birth_date, moo FROM fisher_reg "
    "WHERE regexp_replace(pid, '[- ]', '', 'g') = :personalId"
)
MYSQL_QUERY = (
    "SELECT PID, FULLNAME, SEX, BIRTH_DATE, MOO FROM FISHER_REG "
    "WHERE REPLACE(REPLACE(TRIM(PID), '-', ''), ' ', '') = :personalId"
)
# Each call holds its connection for 50 ms, so a KILL lands in the middle of a query.
MYSQL_BUSY_QUERY = (
    "SELECT PID, FULLNAME, SEX, BIRTH_DATE, MOO FROM FISHER_REG, (SELECT SLEEP(0.05) AS z) AS w "
    "WHERE REPLACE(REPLACE(TRIM(PID), '-', ''), ' ', '') = :personalId"
)
PID = PEOPLE[0]["pid"]


# --- legacy data on the real servers ----------------------------------------------------------


async def _load_pg(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS fisher_reg; CREATE TABLE fisher_reg (pid CHAR(17), "
            "fullname VARCHAR(100), sex CHAR(1), birth_date CHAR(8), moo VARCHAR(2))"
        )
        await conn.executemany(
            "INSERT INTO fisher_reg VALUES ($1, $2, $3, $4, $5)",
            [(p["PID"], p["FULLNAME"], p["SEX"], p["BIRTH_DATE"], p["MOO"]) for p in PEOPLE],
        )
    finally:
        await conn.close()


async def _mysql(server: MysqlServer, database: str | None = None) -> asyncmy.Connection:
    return await asyncmy.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        database=database,
        connect_timeout=5,
        autocommit=True,
    )


async def _load_mysql(server: MysqlServer) -> None:
    conn = await _mysql(server, server.database)
    try:
        async with conn.cursor() as cur:
            await cur.execute("DROP TABLE IF EXISTS FISHER_REG")
            await cur.execute(
                "CREATE TABLE FISHER_REG (PID CHAR(17), FULLNAME VARCHAR(100), SEX CHAR(1), "
                "BIRTH_DATE CHAR(8), MOO VARCHAR(2)) CHARACTER SET utf8mb4"
            )
            for p in PEOPLE:
                await cur.execute(
                    "INSERT INTO FISHER_REG VALUES (%s, %s, %s, %s, %s)",
                    (p["PID"], p["FULLNAME"], p["SEX"], p["BIRTH_DATE"], p["MOO"]),
                )
    finally:
        conn.close()


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.create()
        pg.start()
        asyncio.run(_load_pg(pg.dsn))
        yield pg
    finally:
        pg.remove()


@pytest.fixture(scope="module")
def loaded_pg(pg_server: PgServer) -> PgServer:
    asyncio.run(_load_pg(pg_server.dsn))
    return pg_server


@pytest.fixture(scope="module")
def loaded_mysql(mysql_server: MysqlServer) -> MysqlServer:
    asyncio.run(_load_mysql(mysql_server))
    return mysql_server


def _guarded(kind: str, **options: Any) -> dict[str, Any]:
    """A network backend with short limits, a fast probe and a quick circuit."""
    return {
        "type": kind,
        **options,
        "pool_size": 4,
        "acquire_timeout": ACQUIRE,
        "query_timeout": QUERY,
        "connect_timeout": 5,
        "health": {"interval": 0.2, "timeout": 0.5},
        "circuit": {"failure_threshold": 5, "open_for": 1.0},
    }


def pg_backend(dsn: str) -> dict[str, Any]:
    return _guarded("postgresql", dsn=dsn)


def mysql_backend(server: MysqlServer, port: int | None = None) -> dict[str, Any]:
    return _guarded(
        "mysql",
        host=server.host,
        port=port or server.port,
        user=server.user,
        **({"password": "${MYSQL_PASSWORD}"} if server.password else {}),
        database=server.database,
    )


def service(backend: str, query: str, path: str) -> dict[str, Any]:
    return {**fisher_service(backend, query), "path": path}


# --- load, observation, verdicts --------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    service: str
    request_id: str
    status: int  # 0: no answer within HARD_LIMIT (a hang)
    code: str
    latency: float
    started: float  # perf_counter
    detail: str | None = None  # the error's detail, to read a failure


HARD_LIMIT = 15.0


@dataclass
class Load:
    """A bounded concurrent client loop: ``workers`` callers per service until stopped."""

    session: aiohttp.ClientSession
    base: str
    workers: Mapping[str, int]
    pause: float = 0.01
    max_calls: int = 3000  # per caller: a runaway loop still ends
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # calls that got no HTTP answer at all
    sent: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> Load:
        for svc, n in self.workers.items():
            for w in range(n):
                self._tasks.append(asyncio.create_task(self._caller(svc, w)))
        return self

    async def _caller(self, svc: str, worker: int) -> None:
        url = f"{self.base}/api/v1/{svc}"
        for n in range(self.max_calls):
            if self._stop.is_set():
                return
            rid = f"{svc}.{worker}.{n}"
            headers = lc2_headers(**{"X-Request-Id": rid})
            self.sent += 1
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(HARD_LIMIT):
                    async with self.session.get(
                        url, params={"personalId": PID}, headers=headers
                    ) as resp:
                        body = await resp.json()
                        status, code = resp.status, str(body.get("responseCode"))
                        assert resp.headers["X-Request-Id"] == rid
            except TimeoutError:
                status, code, body = 0, "hang", {}
            except aiohttp.ClientError as exc:
                self.errors.append(f"{rid}: {exc!r}")
                continue
            latency = time.perf_counter() - t0
            self.outcomes.append(Outcome(svc, rid, status, code, latency, t0, body.get("detail")))
            await asyncio.sleep(self.pause)

    async def stop(self) -> list[Outcome]:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        return self.outcomes

    def of(self, svc: str, since: float = 0.0) -> list[Outcome]:
        return [o for o in self.outcomes if o.service == svc and o.started >= since]


async def load_for(seconds: float) -> None:
    await asyncio.sleep(seconds)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def metric(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@dataclass
class View:
    """What an operator sees: /health of the gateway and the admin /metrics."""

    health_status: int
    health: dict[str, Any]
    metrics: Samples
    health_latency: float

    def backend(self, name: str) -> dict[str, Any]:
        b: dict[str, Any] = self.health["backends"][name]
        return b

    def up(self, backend: str) -> float | None:
        return metric(self.metrics, "lc2_gateway_backend_up", backend=backend)

    def circuit(self, backend: str) -> float | None:
        return metric(self.metrics, "lc2_gateway_circuit_state", backend=backend)

    def requests(self, svc: str, status: int, code: str) -> float:
        name = "lc2_gateway_requests_total"
        labels = {"service": svc, "kind": "data", "status": str(status), "code": code}
        return metric(self.metrics, name, **labels) or 0.0

    def retries(self, backend: str) -> float:
        return metric(self.metrics, "lc2_gateway_backend_retries_total", backend=backend) or 0.0


BOUNDED = aiohttp.ClientTimeout(total=HARD_LIMIT)  # the test's own calls never wait forever


async def look(base: str, admin: str, session: aiohttp.ClientSession) -> View:
    t0 = time.perf_counter()
    # the operators' view: backends by name are on the admin listener only
    async with session.get(f"{admin}/health", timeout=BOUNDED) as resp:
        health_status, health = resp.status, await resp.json()
    latency = time.perf_counter() - t0
    async with session.get(f"{admin}/metrics", timeout=BOUNDED) as resp:
        metrics = parse_metrics(await resp.text())
    return View(health_status, health, metrics, latency)


async def wait_until(
    what: str, check: Callable[[], Awaitable[bool]], within: float, every: float = 0.05
) -> float:
    """Poll ``check`` until it holds; the seconds it took.  Fails the test past ``within``."""
    t0 = time.perf_counter()
    while not await check():
        if time.perf_counter() - t0 > within:
            raise AssertionError(f"not within {within:g}s: {what}")
        await asyncio.sleep(every)
    return time.perf_counter() - t0


def assert_all_ok(outcomes: list[Outcome], svc: str) -> None:
    assert outcomes, f"no call was made to {svc}"
    bad = [o for o in outcomes if o.status != 200]
    assert not bad, f"{svc}: {len(bad)} of {len(outcomes)} calls failed, e.g. {bad[:3]}"


def assert_failed_fast(outcomes: list[Outcome], svc: str, bound: float = BOUND) -> Counter[str]:
    """Every call answered 200 or a backend-failure code, each within ``bound`` seconds."""
    wrong = [o for o in outcomes if o.status != 200 and o.code not in FAILED.get(o.status, ())]
    assert not wrong, f"{svc}: unexpected answers {wrong[:5]}"

    slow = sorted((o for o in outcomes if o.latency > bound), key=lambda o: -o.latency)
    assert not slow, f"{svc}: {len(slow)} calls took longer than {bound:g}s, worst " + ", ".join(
        f"{o.status}/{o.code} {o.latency:.3f}s" for o in slow[:5]
    )
    return Counter(o.code for o in outcomes)


def assert_metrics_match(view: View, outcomes: list[Outcome], svc: str) -> None:
    """requests_total by status and code counts exactly the answers the callers saw."""
    seen = Counter((o.status, o.code) for o in outcomes if o.service == svc)
    for (status, code), n in seen.items():
        assert view.requests(svc, status, code) == n, (svc, status, code, n)


def assert_audited(audit_path: Path, outcomes: list[Outcome]) -> None:
    """No acknowledged call is missing from the audit: one row each, same status."""
    rows = audit_rows(audit_path)
    by_id: dict[str, list[int]] = {}
    for r in rows:
        by_id.setdefault(r["request_id"], []).append(r["status"])
    missing = [o for o in outcomes if o.request_id not in by_id]
    assert not missing, f"{len(missing)} answered calls have no audit row, e.g. {missing[:3]}"
    wrong = [o for o in outcomes if by_id[o.request_id] != [o.status]]
    assert not wrong, [(o.request_id, o.status, by_id[o.request_id]) for o in wrong[:5]]


STOP_LIMIT = 20.0


async def _cancel_everything_else() -> None:
    """Cancel every other task of the loop, again and again, until all have ended."""
    me = asyncio.current_task()
    for _ in range(100):
        others = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if not others:
            return
        for t in others:
            t.cancel()
        await asyncio.wait(others, timeout=0.1)


class Gateway:
    """The gateway under test, in this process: LC2 listener, admin listener, one session."""

    def __init__(self, rt: Runtime, client: Client, admin: Client) -> None:
        self.rt = rt
        self.client = client
        self.base = str(client.make_url("")).rstrip("/")
        self.admin = str(admin.make_url("")).rstrip("/")
        self.session = client.session
        self.direct: list[Outcome] = []  # calls made by wait_recovered and the test itself

    @classmethod
    async def start(cls, rt: Runtime, aiohttp_client: MakeClient) -> Gateway:
        client = await aiohttp_client(build_app(rt))
        admin = await aiohttp_client(build_admin_app(rt))
        return cls(rt, client, admin)

    async def stop(self) -> None:
        """Stop the gateway (its audit is flushed); one that does not stop fails the test."""
        try:
            async with asyncio.timeout(STOP_LIMIT):
                await self.client.close()
        except TimeoutError:
            await _cancel_everything_else()  # so that the failure is reported, not a hang
            raise AssertionError(f"the gateway did not stop within {STOP_LIMIT:g}s") from None

    def load(self, workers: Mapping[str, int], pause: float = 0.01) -> Load:
        return Load(self.session, self.base, workers, pause=pause).start()

    async def view(self) -> View:
        return await look(self.base, self.admin, self.session)

    async def call(self, svc: str) -> int:
        """One call of the test's own (kept, so metrics and audit can account for it)."""
        rid = f"{svc}.direct.{len(self.direct)}"
        t0 = time.perf_counter()
        async with self.session.get(
            f"{self.base}/api/v1/{svc}",
            params={"personalId": PID},
            headers=lc2_headers(**{"X-Request-Id": rid}),
            timeout=BOUNDED,
        ) as resp:
            body = await resp.json()
            latency = time.perf_counter() - t0
            self.direct.append(
                Outcome(
                    svc, rid, resp.status, body["responseCode"], latency, t0, body.get("detail")
                )
            )
            return resp.status

    async def wait_down(self, backend: str, svc: str, within: float = 8.0) -> View:
        """Until health says down with the circuit open and metrics agree; that view."""
        seen: dict[str, View] = {}

        async def down() -> bool:
            v = await self.view()
            b = v.backend(backend)
            assert v.health_latency < 0.25, f"/health took {v.health_latency:.3f}s"
            failed = sum(v.requests(svc, s, c) for s, codes in FAILED.items() for c in codes)
            if (
                b["status"] == "down"
                and b["circuit"] == "open"
                and v.health["status"] == "degraded"
                and v.health_status == 200
                and v.up(backend) == 0
                and v.circuit(backend) == 2
                and failed > 0
            ):
                seen["view"] = v
                return True
            return False

        await wait_until(f"{backend} shown down with its circuit open", down, within)
        return seen["view"]

    async def wait_recovered(self, backend: str, svc: str, within: float = 10.0) -> float:
        async def recovered() -> bool:
            if await self.call(svc) != 200:
                return False
            v = await self.view()
            b = v.backend(backend)
            return (
                b["status"] == "up"
                and b["circuit"] == "closed"
                and v.health["status"] == "up"
                and v.up(backend) == 1
                and v.circuit(backend) == 0
            )

        return await wait_until(f"{backend} recovered by itself", recovered, within)


async def in_process(
    cfg: dict[str, Any], aiohttp_client: MakeClient, env: Mapping[str, str]
) -> Gateway:
    rt = Runtime(settings_from(cfg, env=env))
    return await Gateway.start(rt, aiohttp_client)


def mysql_env(server: MysqlServer) -> dict[str, str]:
    return {"MYSQL_PASSWORD": server.password} if server.password else {}


# --- PostgreSQL restarted and stopped mid-load ------------------------------------------------


async def test_postgresql_restart_and_outage_mid_load(
    tmp_path: Path,
    private_pg: PrivatePostgres,
    loaded_mysql: MysqlServer,
    aiohttp_client: MakeClient,
) -> None:
    cfg = base_config(
        tmp_path,
        {"pg": pg_backend(private_pg.dsn), "maria": mysql_backend(loaded_mysql)},
        {
            "pgfisher": service("pg", PG_QUERY, "pgfisher"),
            "fisher": service("maria", MYSQL_QUERY, "fisher"),
        },
    )
    gw = await in_process(cfg, aiohttp_client, mysql_env(loaded_mysql))
    await gw.wait_recovered("pg", "pgfisher")  # both backends up before the load starts
    load = gw.load({"pgfisher": 3, "fisher": 2})
    await load_for(0.5)

    # 1. a restart (pg_ctl restart -m fast): sessions are terminated, the server is gone
    #    for a moment; dead pooled connections are replaced, a few calls may get 503
    t_restart = time.perf_counter()
    await asyncio.to_thread(private_pg.restart)
    await gw.wait_recovered("pg", "pgfisher")
    await load_for(0.5)
    after_restart = load.of("pgfisher", since=t_restart)
    assert_failed_fast(after_restart, "pgfisher")
    assert after_restart[-1].status == 200

    # 2. an outage: stopped, then started again a few seconds later
    await asyncio.to_thread(private_pg.stop)
    down = await gw.wait_down("pg", "pgfisher")
    assert "pg" in down.health["backends"] and down.backend("maria")["status"] == "up"
    await load_for(1.0)  # the circuit is open: LC2 gets 310 in microseconds meanwhile
    await asyncio.to_thread(private_pg.start)
    await gw.wait_recovered("pg", "pgfisher")
    await load_for(0.3)
    outcomes = await load.stop()

    assert not load.errors, load.errors[:5]
    assert_all_ok(load.of("fisher"), "fisher")
    codes = assert_failed_fast(load.of("pgfisher"), "pgfisher")
    assert codes["301"] > 0 and codes["310"] > 0, codes
    fast = [o.latency for o in load.of("pgfisher") if o.code == "310"]
    assert max(fast) < 0.25, max(fast)
    assert load.of("pgfisher")[-1].status == 200
    v = await gw.view()
    assert_metrics_match(v, outcomes + gw.direct, "pgfisher")
    assert_metrics_match(v, outcomes + gw.direct, "fisher")
    await gw.stop()
    assert_audited(tmp_path / "audit.sqlite", outcomes + gw.direct)


# --- MariaDB connections killed by the server -------------------------------------------------


async def _kill_gateway_connections(server: MysqlServer) -> int:
    conn = await _mysql(server)
    killed = 0
    try:
        async with conn.cursor() as cur:
            await cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST "
                "WHERE DB = %s AND ID <> CONNECTION_ID()",
                (server.database,),
            )
            for (thread,) in await cur.fetchall():
                try:
                    await cur.execute(f"KILL {int(thread)}")
                    killed += 1
                except asyncmy.errors.OperationalError:  # 1094: gone meanwhile
                    pass
    finally:
        conn.close()
    return killed


async def test_mariadb_connections_killed_mid_load(
    tmp_path: Path,
    loaded_mysql: MysqlServer,
    loaded_pg: PgServer,
    aiohttp_client: MakeClient,
) -> None:
    cfg = base_config(
        tmp_path,
        {"maria": mysql_backend(loaded_mysql), "pg": pg_backend(loaded_pg.dsn)},
        {
            "fisher": service("maria", MYSQL_BUSY_QUERY, "fisher"),
            "pgfisher": service("pg", PG_QUERY, "pgfisher"),
        },
    )
    gw = await in_process(cfg, aiohttp_client, mysql_env(loaded_mysql))
    await gw.wait_recovered("maria", "fisher")
    load = gw.load({"fisher": 3, "pgfisher": 2})
    await load_for(0.5)
    killed = 0
    t_kill = time.perf_counter()
    for _ in range(4):
        killed += await _kill_gateway_connections(loaded_mysql)
        await asyncio.sleep(0.3)
    assert killed >= 4, killed
    await gw.wait_recovered("maria", "fisher")
    await load_for(0.5)
    outcomes = await load.stop()

    assert not load.errors, load.errors[:5]
    assert_all_ok(load.of("pgfisher"), "pgfisher")
    hit = load.of("fisher", since=t_kill)
    codes = assert_failed_fast(hit, "fisher")
    # A killed session is not a dead server: the call is retried on a fresh connection
    # (within the retry budget), the probe keeps succeeding, health stays up.
    v = await gw.view()
    assert v.retries("maria") > 0, "no call was retried after its connection was killed"
    assert codes["000"] > 0 and load.of("fisher")[-1].status == 200
    assert v.backend("maria")["status"] == "up" and v.up("maria") == 1
    assert_metrics_match(v, outcomes + gw.direct, "fisher")
    assert_metrics_match(v, outcomes + gw.direct, "pgfisher")
    await gw.stop()
    assert_audited(tmp_path / "audit.sqlite", outcomes + gw.direct)


# --- a backend that hangs, refuses or answers garbage -----------------------------------------


@pytest.mark.parametrize("mode", ["hang", "refuse", "garbage"])
@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
async def test_backend_fault_is_contained_reported_and_recovered(
    kind: str,
    mode: Mode,
    loaded_pg: PgServer,
    loaded_mysql: MysqlServer,
    tmp_path: Path,
    aiohttp_client: MakeClient,
) -> None:
    env: dict[str, str] = {}
    if kind == "postgresql":
        pg = loaded_pg
        where = urlsplit(pg.dsn)
        port = await FaultPort(where.hostname or "127.0.0.1", where.port or 5432).start()
        broken = pg_backend(f"postgresql://postgres@127.0.0.1:{port.port}/{pg.database}")
        query = PG_QUERY
    else:
        my = loaded_mysql
        port = await FaultPort(my.host, my.port).start()
        broken = mysql_backend(my, port.port)
        query = MYSQL_QUERY
        env = mysql_env(my)
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    cfg = base_config(
        tmp_path,
        {"legacy": broken, "local": sqlite_backend(db)},
        {
            "remote": service("legacy", query, "remote"),
            "fisher": service("local", SQLITE_QUERY, "fisher"),
        },
    )
    try:
        gw = await in_process(cfg, aiohttp_client, env)
        await gw.wait_recovered("legacy", "remote")
        load = gw.load({"remote": 3, "fisher": 2}, pause=0.02)
        await load_for(0.5)

        t_fault = time.perf_counter()
        await port.set_mode(mode)
        down = await gw.wait_down("legacy", "remote")
        assert down.backend("local")["status"] == "up"
        await load_for(0.5)
        t_back = time.perf_counter()
        await port.set_mode("forward")
        took = await gw.wait_recovered("legacy", "remote")
        await load_for(0.3)
        outcomes = await load.stop()
    finally:
        await port.close()

    assert not load.errors, load.errors[:5]
    assert_all_ok(load.of("fisher"), "fisher")
    during = [o for o in load.of("remote", since=t_fault) if o.started < t_back]
    codes = assert_failed_fast(load.of("remote"), "remote")
    assert any(o.status != 200 for o in during), codes
    assert codes["310"] > 0, codes  # the open circuit answered, without touching the backend
    if mode == "hang":
        assert codes["302"] + codes["301"] > 0, codes
    assert took < 1.0 + 0.2 + 2.0, took  # open_for + one probe interval + slack
    v = await gw.view()
    assert_metrics_match(v, outcomes + gw.direct, "remote")
    assert_metrics_match(v, outcomes + gw.direct, "fisher")
    await gw.stop()
    assert_audited(tmp_path / "audit.sqlite", outcomes + gw.direct)


# --- reload under load ------------------------------------------------------------------------

SLOW_SQLITE_QUERY = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 300000) "
    "SELECT PID, FULLNAME, SEX, BIRTH_DATE, MOO FROM FISHER_REG, (SELECT max(x) FROM c) "
    "WHERE REPLACE(REPLACE(TRIM(PID), '-', ''), ' ', '') = :personalId"
)


def reload_config(tmp_path: Path, pg: PgServer) -> dict[str, Any]:
    db = tmp_path / "legacy.sqlite"
    if not db.exists():
        make_sqlite_db(db)
    cfg = base_config(
        tmp_path,
        {"local": sqlite_backend(db, query_timeout=5), "pg": pg_backend(pg.dsn)},
        {
            "fisher": service("local", SQLITE_QUERY, "fisher"),
            "slow": service("local", SLOW_SQLITE_QUERY, "slow"),
            "pgfisher": service("pg", PG_QUERY, "pgfisher"),
        },
    )
    cfg["admin"] = {"enabled": True, "host": "127.0.0.1", "port": free_port()}
    return cfg


def write(path: Path, cfg: Mapping[str, Any]) -> str:
    path.write_text(yaml.safe_dump(dict(cfg), allow_unicode=True, sort_keys=False), "utf-8")
    return load_settings(path).version


def edits() -> list[Callable[[dict[str, Any]], None]]:
    """Config changes of every kind a reload handles: each yields a new config version."""

    def describe(c: dict[str, Any]) -> None:
        c["services"]["fisher"]["description"] = "fisher register v2"

    def new_pg_pool(c: dict[str, Any]) -> None:
        c["backends"]["pg"]["query_timeout"] = 2  # changed backend: new pool, old one retired

    def new_sqlite_adapter(c: dict[str, Any]) -> None:
        c["backends"]["local"]["pool_size"] = 3

    def add_service(c: dict[str, Any]) -> None:
        c["services"]["extra"] = service("local", SQLITE_QUERY, "extra")

    def new_breaker(c: dict[str, Any]) -> None:
        c["backends"]["pg"]["circuit"] = {"failure_threshold": 7, "open_for": 2.0}

    return [describe, new_pg_pool, new_sqlite_adapter, add_service, new_breaker]


BROKEN = {
    "bad YAML": "backends: {unclosed: [\n",
    "unknown key": None,  # the current file plus an unknown top-level key
}


def break_config(path: Path, kind: str) -> None:
    text = BROKEN[kind] or path.read_text("utf-8") + "\nbackend_pools: 3\n"
    path.write_text(text, "utf-8")


def reload_ok(v: View) -> float | None:
    return metric(v.metrics, "lc2_gateway_config_last_reload_successful")


def config_version(v: View) -> str | None:
    for (name, labels), _ in v.metrics.items():
        if name == "lc2_gateway_build_info":
            return dict(labels)["config_version"]
    return None


async def test_reload_under_load_in_process(
    tmp_path: Path,
    loaded_pg: PgServer,
    aiohttp_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, val in TEST_ENV.items():
        monkeypatch.setenv(k, val)
    cfg = reload_config(tmp_path, loaded_pg)
    path = tmp_path / "gateway.yaml"
    write(path, cfg)
    rt = Runtime(load_settings(path))
    gw = await Gateway.start(rt, aiohttp_client)
    await gw.wait_recovered("pg", "pgfisher")
    load = gw.load({"fisher": 3, "pgfisher": 3, "slow": 2}, pause=0.005)
    await load_for(0.3)

    # the adapters themselves, held: an id() of one already freed can come back for the next
    pg_adapters = [rt.current.adapters["pg"]]
    for edit in edits():
        edit(cfg)
        version = write(path, cfg)
        ok, message = await rt.reload(path)
        assert ok, message
        pg_adapters.append(rt.current.adapters["pg"])
        v = await gw.view()
        assert reload_ok(v) == 1 and config_version(v) == version
        await load_for(0.25)
    # two PostgreSQL pools were replaced while calls ran
    assert len({id(a) for a in pg_adapters}) == 3
    assert await gw.call("extra") == 200

    for kind in BROKEN:
        break_config(path, kind)
        ok, message = await rt.reload(path)
        assert not ok, kind
        v = await gw.view()
        assert reload_ok(v) == 0 and config_version(v) == version, kind
        await load_for(0.2)
        assert await gw.call("extra") == 200  # the old config keeps serving
    version = write(path, cfg)
    assert (await rt.reload(path))[0]
    assert reload_ok(await gw.view()) == 1
    await load_for(0.2)
    outcomes = await load.stop()

    assert not load.errors, load.errors[:5]
    assert load.sent == len(outcomes)  # every call sent was answered
    for svc in ("fisher", "pgfisher", "slow"):
        assert_all_ok(load.of(svc), svc)
    assert len(load.of("slow")) >= 4
    await gw.stop()
    assert_audited(tmp_path / "audit.sqlite", outcomes + gw.direct)


class Served:
    """``python -m gateway serve`` as a child process, its output in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "-c", str(config)],
            cwd=ROOT,
            env={**os.environ, **TEST_ENV},
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, admin: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{admin}/ready", timeout=1) as r,
            ):
                if r.status == 200:
                    return
            time.sleep(0.1)
        raise AssertionError("gateway not ready: " + self.output())

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self._out.close()

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")


async def test_reload_under_load_by_sighup(tmp_path: Path, loaded_pg: PgServer) -> None:
    cfg = reload_config(tmp_path, loaded_pg)
    cfg["listen"] = {"host": "127.0.0.1", "port": free_port()}
    path = tmp_path / "gateway.yaml"
    with _env(TEST_ENV):  # load_settings in write() reads ${AUDIT_KEY}
        version = write(path, cfg)
    base = f"http://127.0.0.1:{cfg['listen']['port']}"
    admin = f"http://127.0.0.1:{cfg['admin']['port']}"
    served = Served(path, tmp_path / "gateway.log")
    try:
        await asyncio.to_thread(served.wait_ready, admin)
        async with aiohttp.ClientSession() as session:
            load = Load(session, base, {"fisher": 3, "pgfisher": 3, "slow": 2}, pause=0.005)
            load.start()

            async def view() -> View:
                return await look(base, admin, session)

            await load_for(0.3)
            for edit in edits()[:3]:
                edit(cfg)
                with _env(TEST_ENV):
                    new = write(path, cfg)
                served.proc.send_signal(signal.SIGHUP)

                async def swapped(new: str = new) -> bool:
                    v = await view()
                    return config_version(v) == new and reload_ok(v) == 1

                await wait_until("SIGHUP reload applied", swapped, 10)
                version = new
                await load_for(0.25)

            break_config(path, "unknown key")
            served.proc.send_signal(signal.SIGHUP)

            async def refused() -> bool:
                return reload_ok(await view()) == 0

            await wait_until("broken config refused", refused, 10)
            assert config_version(await view()) == version
            await load_for(0.3)
            outcomes = await load.stop()
            assert served.proc.poll() is None
    finally:
        code = await asyncio.to_thread(served.stop)
    assert code == 0, served.output()
    assert "config reload refused" in served.output()
    assert not load.errors, load.errors[:5]
    assert load.sent == len(outcomes)
    for svc in ("fisher", "pgfisher", "slow"):
        assert_all_ok(load.of(svc), svc)
    assert_audited(tmp_path / "audit.sqlite", outcomes)


@contextlib.contextmanager
def _env(values: Mapping[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- one failure each, reduced to a single call -----------------------------------------------


async def _through_port(
    tmp_path: Path,
    aiohttp_client: MakeClient,
    kind: str,
    pg: PgServer,
    my: MysqlServer,
    pool_size: int = 4,
) -> tuple[Gateway, FaultPort]:
    if kind == "postgresql":
        where = urlsplit(pg.dsn)
        port = await FaultPort(where.hostname or "127.0.0.1", where.port or 5432).start()
        backend = pg_backend(f"postgresql://postgres@127.0.0.1:{port.port}/{pg.database}")
        query = PG_QUERY
    else:
        port = await FaultPort(my.host, my.port).start()
        backend, query = mysql_backend(my, port.port), MYSQL_QUERY
    backend["health"] = {"interval": 60, "timeout": 0.5}  # only the calls touch the backend
    backend["pool_size"] = pool_size
    cfg = base_config(tmp_path, {"legacy": backend}, {"remote": service("legacy", query, "remote")})
    return await in_process(cfg, aiohttp_client, mysql_env(my)), port


async def test_query_timeout_on_a_hung_postgresql_is_answered_on_time(
    tmp_path: Path, loaded_pg: PgServer, loaded_mysql: MysqlServer, aiohttp_client: MakeClient
) -> None:
    """504 at query_timeout, not query_timeout + acquire_timeout.

    asyncpg gives a connection back only once the server acknowledged the cancel
    of the timed-out query; a hung server never does, and the call used to wait
    for that (up to acquire_timeout) before answering.
    """
    gw, port = await _through_port(tmp_path, aiohttp_client, "postgresql", loaded_pg, loaded_mysql)
    try:
        assert await gw.call("remote") == 200  # a pooled connection, then the server hangs
        await port.set_mode("hang")
        assert await gw.call("remote") == 504
    finally:
        await port.close()
    hung = gw.direct[-1]
    assert hung.code == "302"
    assert hung.latency < QUERY + 0.3, f"504 after {hung.latency:.3f}s, query_timeout {QUERY:g}s"


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
async def test_a_connect_that_timed_out_is_not_retried(
    kind: str,
    tmp_path: Path,
    loaded_pg: PgServer,
    loaded_mysql: MysqlServer,
    aiohttp_client: MakeClient,
) -> None:
    """503 at acquire_timeout, not twice that: timeouts are never retried.

    A connect that does not complete within acquire_timeout is reported as
    BackendUnavailable, which the guard used to retry like a dead connection.
    """
    gw, port = await _through_port(tmp_path, aiohttp_client, kind, loaded_pg, loaded_mysql)
    try:
        await port.set_mode("hang")  # nothing pooled yet: the call has to connect
        assert await gw.call("remote") == 503
        view = await gw.view()
    finally:
        await port.close()
    hung = gw.direct[-1]
    assert hung.code == "301"
    assert view.retries("legacy") == 0
    assert hung.latency < ACQUIRE + 0.3, f"503 after {hung.latency:.3f}s, acquire {ACQUIRE:g}s"


@pytest.mark.parametrize("mode", ["hang", "slow"])
@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
async def test_a_call_spends_one_time_budget_however_long_it_queues(
    kind: str,
    mode: Mode,
    tmp_path: Path,
    loaded_pg: PgServer,
    loaded_mysql: MysqlServer,
    aiohttp_client: MakeClient,
) -> None:
    """Slot wait, connection wait and query share max(acquire_timeout, query_timeout).

    Four times as many calls as the bulkhead admits, against a backend that never
    answers or answers each packet 2 s late: the calls that queued for a slot used
    to get a full acquire_timeout again for their connection, and so an answer at
    twice the bound.
    """
    gw, port = await _through_port(
        tmp_path, aiohttp_client, kind, loaded_pg, loaded_mysql, pool_size=2
    )
    budget = max(ACQUIRE, QUERY)
    try:
        assert await gw.call("remote") == 200  # a pooled connection, then the fault
        await port.set_mode(mode)
        statuses = await asyncio.gather(*(gw.call("remote") for _ in range(8)))
    finally:
        await port.close()
    calls = gw.direct[1:]
    refused = {503: {"301", "304", "310"}, 504: {"302"}}  # 304: the bulkhead's queue
    assert all(o.code in refused.get(o.status, ()) for o in calls), calls
    assert set(statuses) <= {503, 504}, statuses
    slowest = max(o.latency for o in calls)
    print(f"{kind} {mode}: slowest of {len(calls)} answers {slowest:.3f}s, budget {budget:g}s")
    assert slowest < 1.5 * budget, (
        f"answered after {slowest:.3f}s, budget {budget:g}s: "
        + "; ".join(f"{o.status} {o.code} {o.latency:.3f}s {o.detail}" for o in calls)
    )


def _pg_fatal(code: str, message: str) -> bytes:
    fields = f"SFATAL\0VFATAL\0C{code}\0M{message}\0\0".encode()
    return b"E" + (len(fields) + 4).to_bytes(4, "big") + fields


async def test_postgresql_session_ended_while_pooled_is_a_dead_connection(
    tmp_path: Path, loaded_pg: PgServer, loaded_mysql: MysqlServer, aiohttp_client: MakeClient
) -> None:
    """Not 502 "backend error": the session is gone, the call is retried on a fresh one.

    When PostgreSQL stops or restarts it sends each idle session FATAL 57P01 and
    closes it.  A query issued after the error arrived but before the close was
    seen failed inside asyncpg ("cannot switch to state 12; another operation (2)
    is in progress", an InternalClientError) and was answered 502 303.  Here the
    FATAL is delivered and the socket left open, which makes that window permanent.
    """
    gw, port = await _through_port(
        tmp_path, aiohttp_client, "postgresql", loaded_pg, loaded_mysql, pool_size=1
    )
    try:
        await gw.wait_recovered("legacy", "remote")  # one session, idle in the pool
        assert port.send_to_clients(_pg_fatal("57P01", "terminating connection")) == 1
        await asyncio.sleep(0.05)
        status = await gw.call("remote")
    finally:
        await port.close()
    assert (status, gw.direct[-1].code) == (200, "000"), gw.direct[-1]


class _ProbeEndsAsCloseBegins:
    """An adapter whose probe fails at once, and starts the monitor's close() as it does.

    ``bounded``: the probe's round trip is itself bounded by ``asyncio.wait_for``,
    as the SQLite adapter's queries and connection slots are.
    """

    def __init__(self, bounded: bool) -> None:
        self.bounded = bounded
        self.monitor: HealthMonitor | None = None
        self.closing: asyncio.Task[None] | None = None

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> list[dict[str, object]]:
        return []

    async def probe(self) -> None:
        if self.bounded:
            await asyncio.wait_for(self._round_trip(), 1)
        else:
            await self._round_trip()

    async def _round_trip(self) -> None:
        assert self.monitor is not None
        if self.closing is None:  # close() runs just as this probe's result is delivered
            self.closing = asyncio.create_task(self.monitor.close())
        raise BackendUnavailable("connection refused")

    def pool_stats(self) -> PoolStats:
        return PoolStats(size=0, in_use=0)


@pytest.mark.parametrize("bounded", [False, True], ids=["probe", "probe-in-wait_for"])
async def test_health_monitor_closes_when_a_probe_ends_as_it_is_cancelled(
    bounded: bool, tmp_path: Path
) -> None:
    """Shutdown and reload must not hang on a probe of a failing backend.

    ``HealthMonitor.close()`` cancels each probe loop and waits for it.  On
    Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives once
    the call it waits for has finished (in ``probe_once``, or inside an
    adapter: the SQLite adapter bounds its queries with it): ``probe_once``
    then records the probe's outcome, the loop goes on probing, and
    ``close()`` (so a SIGTERM, or the retirement of the old config after a
    reload) waits forever.  Probes that end within a millisecond (a refused
    or babbling backend, a local SQLite file) make the window easy to hit: the
    fault scenarios above hung in ``client.close()`` one run in three.
    """
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    settings = settings_from(
        base_config(
            tmp_path,
            {"legacy": sqlite_backend(db, health={"interval": 0.05, "timeout": 1})},
            {"fisher": service("legacy", SQLITE_QUERY, "fisher")},
        )
    )
    adapter = _ProbeEndsAsCloseBegins(bounded)
    monitor = HealthMonitor(settings.backends, {"legacy": adapter})
    adapter.monitor = monitor
    await monitor.start()
    await wait_until("the first probe", lambda: _true(adapter.closing is not None), 5)
    closing = adapter.closing
    assert closing is not None
    done, _ = await asyncio.wait({closing}, timeout=2)
    if not done:  # let the test end even so: stop the loop the monitor could not stop
        for task in monitor._tasks:
            task.cancel()
            task.cancel()
        await asyncio.wait({closing}, timeout=2)
    assert done, "HealthMonitor.close() did not return: its probe loop swallowed the cancel"


async def _true(value: bool) -> bool:
    return value


SLOWEST_SQLITE_QUERY = SLOW_SQLITE_QUERY.replace("300000", "6000000")  # about a second


async def _gateway_sessions(pg: PgServer, application: str) -> int:
    conn = await asyncpg.connect(pg.dsn, timeout=10)
    try:
        n: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            pg.database,
            application,
        )
        return n
    finally:
        await conn.close()


async def test_reloads_leave_no_pool_open_when_an_older_config_retires_last(
    tmp_path: Path,
    loaded_pg: PgServer,
    aiohttp_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replaced backend's pool is closed even if generations retire out of order.

    A kept adapter used to change owner only when the generation before it
    retired.  With a call still running on an older generation, a newer one
    can retire first: it did not own the adapter yet, so it did not close it,
    and the older one handed it to a generation already gone.  The pool stayed
    open, on the legacy database, until the process ended.
    """
    for k, val in TEST_ENV.items():
        monkeypatch.setenv(k, val)
    app_name = f"lc2gw-leak-{os.getpid()}"
    cfg = reload_config(tmp_path, loaded_pg)
    cfg["backends"]["local"]["query_timeout"] = 10
    cfg["backends"]["pg"]["server_settings"] = {"application_name": app_name}
    cfg["services"]["slowest"] = service("local", SLOWEST_SQLITE_QUERY, "slowest")
    path = tmp_path / "gateway.yaml"
    write(path, cfg)
    rt = Runtime(load_settings(path))
    gw = await Gateway.start(rt, aiohttp_client)

    async def reload(change: Callable[[dict[str, Any]], None]) -> None:
        change(cfg)
        write(path, cfg)
        ok, message = await rt.reload(path)
        assert ok, message
        await asyncio.sleep(0.1)  # idle generations retire meanwhile

    def pg_timeout(seconds: float) -> Callable[[dict[str, Any]], None]:
        return lambda c: c["backends"]["pg"].__setitem__("query_timeout", seconds)

    def describe(text: str) -> Callable[[dict[str, Any]], None]:
        return lambda c: c["services"]["fisher"].__setitem__("description", text)

    await reload(pg_timeout(2))  # generation 1 opens pool B
    assert await gw.call("pgfisher") == 200
    await reload(describe("two"))  # generation 2 keeps B
    slow = asyncio.create_task(gw.call("slowest"))  # ... and has a call running
    await asyncio.sleep(0.2)
    await reload(describe("three"))  # generation 3 keeps B; 2 waits for its call
    await reload(pg_timeout(3))  # generation 4 replaces B; 3 retires at once
    assert await slow == 200
    assert await gw.call("pgfisher") == 200
    await gw.stop()

    async def closed() -> bool:
        return await _gateway_sessions(loaded_pg, app_name) == 0

    left = await _gateway_sessions(loaded_pg, app_name)
    with contextlib.suppress(AssertionError):
        await wait_until("the gateway's sessions to end", closed, 3)
        left = 0
    assert left == 0, f"{left} PostgreSQL sessions of a stopped gateway still open"
