"""The shared state store on a real PostgreSQL: several gateways, one set of counters.

Each gateway here is a full :class:`Runtime` with its own audit file, its own
SQLite quota file (unused) and its own connection pool to the shared store,
as separate servers would have.  A TCP forwarder in front of PostgreSQL
plays the network between a gateway and the store: cutting it makes the
store unreachable without stopping the real server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from prometheus_client import generate_latest

from gateway.app import build_app, build_runtime
from gateway.audit.config import PgAuditSettings
from gateway.cli import main
from gateway.config.models import LimitsConfig, QuotaRule
from gateway.quota import QuotaStore
from gateway.runtime import Runtime
from gateway.sharedstate import SharedState
from tests.conftest import PgServer
from tests.forwarder import Forwarder
from tests.support import (
    PEOPLE,
    TEST_ENV,
    Client,
    MakeClient,
    audit_rows,
    basic,
    lc2_headers,
    settings_from,
)
from tests.test_runtime import write_config
from tests.test_security_auth import _config, _get

Q = {"personalId": PEOPLE[0]["pid"]}


def _dsn_via(pg: PgServer, port: int) -> str:
    parts = urlsplit(pg.dsn)
    return parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}").geturl()


@pytest.fixture
def schema() -> str:
    return f"lc2_state_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def audit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment the command line reads the configs' secrets from."""
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
async def forwarder(pg_server: PgServer) -> AsyncIterator[Forwarder]:
    parts = urlsplit(pg_server.dsn)
    fwd = Forwarder(parts.hostname or "127.0.0.1", parts.port or 5432)
    await fwd.start()
    yield fwd
    await fwd.close()


def _state(dsn: str, schema: str, mode: str = "fail_closed") -> dict[str, Any]:
    return {
        "store": "postgresql",
        "on_unreachable": mode,
        "postgresql": {"dsn": dsn, "schema": schema, "command_timeout": 2, "connect_timeout": 2},
    }


def _gateway_config(tmp: Path, state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = _config(tmp, state=state, **extra)
    cfg["audit"]["instance"] = tmp.name
    # hundreds of calls at once wait for the legacy database rather than being turned away
    cfg["backends"]["legacy"].update(acquire_timeout=30, max_queue=1000)
    return cfg


async def _fleet(
    aiohttp_client: MakeClient, tmp_path: Path, state: dict[str, Any], n: int = 3, **extra: Any
) -> list[tuple[Runtime, Client]]:
    out = []
    for i in range(n):
        cfg = _gateway_config(tmp_path / f"gw{i}", state, **extra)
        cfg["maintenance"] = {"file": str(tmp_path / f"gw{i}" / "maintenance")}
        write_config(tmp_path / f"gw{i}.yaml", cfg)  # for the command line
        rt = build_runtime(settings_from(cfg))
        out.append((rt, await aiohttp_client(build_app(rt))))
    return out


async def _health(client: Client) -> dict[str, Any]:
    resp = await client.get("/health")
    body: dict[str, Any] = await resp.json()
    return body


# --- atomic counting --------------------------------------------------------------------------


async def test_a_daily_quota_of_150_hammered_by_600_calls_over_three_gateways_gives_150(
    tmp_path: Path, aiohttp_client: MakeClient, pg_server: PgServer, schema: str
) -> None:
    quotas = [{"name": "officer-daily", "scope": "officer", "per": "day", "limit": 150}]
    fleet = await _fleet(
        aiohttp_client,
        tmp_path,
        _state(pg_server.dsn, schema),
        limits={"quotas": quotas, "store": str(tmp_path / "q.sqlite")},
    )

    async def call(i: int) -> int:
        client = fleet[i % 3][1]
        resp = await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())
        await resp.read()
        return resp.status

    statuses = await asyncio.gather(*(call(i) for i in range(600)))
    assert statuses.count(200) == 150 and statuses.count(429) == 450, {
        s: statuses.count(s) for s in set(statuses)
    }
    for _, client in fleet:
        await client.close()
    served = sum(
        [r["status"] for r in audit_rows(tmp_path / f"gw{i}" / "audit.sqlite")].count(200)
        for i in range(3)
    )
    assert served == 150  # every call answered 200 is in the audit, on its gateway's chain
    conn = await asyncpg.connect(pg_server.dsn)
    try:
        calls = await conn.fetchval(f'SELECT sum(calls) FROM "{schema}".quota_counter')
    finally:
        await conn.close()
    assert calls == 150  # the refused 450 used nothing


async def test_a_call_refused_by_one_rule_counts_under_none(
    pg_server: PgServer, schema: str
) -> None:
    pg = PgAuditSettings(pg_server.dsn, None, schema, 2, 2.0, 2.0)
    store = SharedState(pg, fail_closed=True)
    try:
        day = [("daily", "officer-1", "2026-12-06", 5), ("minute", "office-1", "10:00", 2)]
        assert [await store.quota_take(day) for _ in range(3)] == [0, 0, 2]
        other = [("daily", "officer-1", "2026-12-06", 5), ("minute", "office-1", "10:01", 2)]
        assert await store.quota_take(other) == 0
        counts = await store.run(
            lambda c: c.fetch(f'SELECT rule, win, calls FROM "{schema}".quota_counter')
        )
        # the third call was refused by the minute rule and not counted by the daily one
        assert {(r["rule"], r["win"]): r["calls"] for r in counts} == {
            ("daily", "2026-12-06"): 3,
            ("minute", "10:00"): 2,
            ("minute", "10:01"): 1,
        }
    finally:
        await store.close()


async def test_counters_of_windows_long_over_are_swept_at_start(
    tmp_path: Path, pg_server: PgServer, schema: str
) -> None:
    pg = PgAuditSettings(pg_server.dsn, None, schema, 2, 2.0, 2.0)
    store = SharedState(pg, fail_closed=True)
    try:
        await store.quota_take([("daily", "officer-1", "2020-01-01T00:00:00+07:00", 5)])
        await store.quota_take([("daily", "officer-1", "2999-01-01T00:00:00+07:00", 5)])
        rule = QuotaRule(name="daily", scope="officer", per="day", limit=5)
        limits = LimitsConfig(quotas=[rule], store=tmp_path / "q.sqlite", timezone="Asia/Bangkok")
        quotas = QuotaStore(limits, store)
        await quotas.open()
        await quotas.close()
        left = await store.run(lambda c: c.fetch(f'SELECT win FROM "{schema}".quota_counter'))
        assert [r["win"] for r in left] == ["2999-01-01T00:00:00+07:00"]
    finally:
        await store.close()


async def test_failed_sign_ins_are_counted_across_gateways(
    tmp_path: Path, aiohttp_client: MakeClient, pg_server: PgServer, schema: str
) -> None:
    limits = {"per_address": 6, "per_username": 100, "window": 60, "lockout": 60}
    fleet = await _fleet(
        aiohttp_client,
        tmp_path,
        _state(pg_server.dsn, schema),
        security={"auth_failures": limits},
    )
    answers = [
        await _get(fleet[i % 3][1], Authorization=basic(password=f"guess-{i}")) for i in range(9)
    ]
    # two guesses at each gateway locked the address for the whole fleet
    assert answers[:6] == [(401, "103")] * 6
    assert answers[6:] == [(429, "105")] * 3
    for _, client in fleet:
        assert await _get(client) == (429, "105")  # the right password too, anywhere


# --- maintenance and generations --------------------------------------------------------------


async def test_maintenance_switched_at_one_gateway_is_seen_by_all_within_three_seconds(
    tmp_path: Path,
    aiohttp_client: MakeClient,
    pg_server: PgServer,
    schema: str,
    audit_env: None,
) -> None:
    state = _state(pg_server.dsn, schema)
    fleet = await _fleet(aiohttp_client, tmp_path, state)
    path = tmp_path / "gw0.yaml"  # the operator's command line, on any one of the servers
    on = await asyncio.to_thread(main, ["maintenance", "on", "-c", str(path), "-m", "patching"])
    assert on == 0
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not all(rt.maintenance.active for rt, _ in fleet):
        # each polls once a second: 3 s leaves two for a busy machine
        assert loop.time() - started < 3.0, "not every gateway saw the switch"
        await asyncio.sleep(0.05)
    for _, client in fleet:
        resp = await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())
        body = await resp.json()
        assert resp.status == 503 and body["responseCode"] == "502"
        assert (await _health(client))["maintenance"] == "patching"
    assert await asyncio.to_thread(main, ["maintenance", "off", "-c", str(path)]) == 0
    started = loop.time()
    while any(rt.maintenance.active for rt, _ in fleet):
        assert loop.time() - started < 3.0, "not every gateway saw it off"
        await asyncio.sleep(0.05)
    # every instance recorded which config it runs
    gens = await fleet[0][0].shared.generations()  # type: ignore[union-attr]
    assert set(gens) == {"gw0", "gw1", "gw2"}


async def test_maintenance_local_drains_one_gateway_of_the_fleet(
    tmp_path: Path,
    aiohttp_client: MakeClient,
    pg_server: PgServer,
    schema: str,
    audit_env: None,
) -> None:
    fleet = await _fleet(aiohttp_client, tmp_path, _state(pg_server.dsn, schema), n=2)
    argv = ["maintenance", "on", "--local", "-c", str(tmp_path / "gw1.yaml"), "-m", "patch"]
    assert await asyncio.to_thread(main, argv) == 0
    await _until(lambda: _maintenance(fleet[1][1]), "the drained gateway did not see its switch")
    assert (await fleet[1][1].get("/health")).status == 503
    await asyncio.sleep(1.5)  # past a poll of the other gateway: it stays in service
    assert not fleet[0][0].maintenance.active
    assert (await fleet[0][1].get("/api/v1/fisher", params=Q, headers=lc2_headers())).status == 200


async def _maintenance(client: Client) -> bool:
    return bool((await _health(client))["maintenance"] == "patch")


# --- an unreachable store ---------------------------------------------------------------------


async def _until(pred: Any, what: str, bound: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await pred():
        assert loop.time() - started < bound, what
        await asyncio.sleep(0.1)


async def _behind(
    aiohttp_client: MakeClient,
    tmp_path: Path,
    pg_server: PgServer,
    schema: str,
    forwarder: Forwarder,
    mode: str,
    n: int,
) -> list[tuple[Runtime, Client]]:
    """``n`` gateways with an officer quota, reaching the store through ``forwarder``."""
    quotas = [{"name": "officer-daily", "scope": "officer", "per": "day", "limit": 1000}]
    return await _fleet(
        aiohttp_client,
        tmp_path,
        _state(_dsn_via(pg_server, forwarder.port), schema, mode),
        n=n,
        limits={"quotas": quotas, "store": str(tmp_path / "q.sqlite")},
    )


async def test_fail_closed_refuses_quota_calls_while_the_store_is_cut_and_recovers(
    tmp_path: Path,
    aiohttp_client: MakeClient,
    pg_server: PgServer,
    schema: str,
    forwarder: Forwarder,
) -> None:
    fleet = await _behind(aiohttp_client, tmp_path, pg_server, schema, forwarder, "fail_closed", 2)
    client = fleet[0][1]
    assert (await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())).status == 200
    forwarder.drop()
    resp = await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())
    body = await resp.json()
    assert resp.status == 503 and body["responseCode"] == "503", body
    health = await _health(client)
    assert health["status"] == "down"
    assert health["state"] == {"status": "down", "error": "unavailable"}
    metrics = generate_latest(fleet[0][0].metrics.registry).decode()
    assert "lc2_gateway_state_store_up 0.0" in metrics
    assert "lc2_gateway_state_store_fail_closed 1.0" in metrics

    forwarder.restore()

    async def serving() -> bool:
        r = await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())
        await r.read()
        return r.status == 200

    await _until(serving, "the gateway did not recover after the store came back")
    assert (await _health(client))["state"]["status"] == "up"
    # the other gateway recovers by itself too: its maintenance poll probes the store
    await _until(lambda: _state_up(fleet[1][1]), "the idle gateway did not see the store come back")
    for _, c in fleet:
        await c.close()
    rows = audit_rows(tmp_path / "gw0" / "audit.sqlite")
    assert [r["code"] for r in rows if r["status"] == 503] == ["503"]  # the refusal is audited


async def _state_up(client: Client) -> bool:
    return bool((await _health(client))["state"]["status"] == "up")


async def test_fail_open_serves_and_counts_uncounted_calls_while_the_store_is_cut(
    tmp_path: Path,
    aiohttp_client: MakeClient,
    pg_server: PgServer,
    schema: str,
    forwarder: Forwarder,
) -> None:
    [(rt, client)] = await _behind(
        aiohttp_client, tmp_path, pg_server, schema, forwarder, "fail_open", 1
    )
    forwarder.drop()
    for _ in range(3):
        resp = await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())
        assert resp.status == 200
    health = await _health(client)
    assert health["status"] == "degraded"
    assert health["state"]["status"] == "down"
    metrics = generate_latest(rt.metrics.registry).decode()
    assert "lc2_gateway_state_store_uncounted_calls_total 3.0" in metrics
    assert "lc2_gateway_state_store_fail_closed 0.0" in metrics
    forwarder.restore()
    await _until(lambda: _state_up(client), "the gateway did not see the store come back")
