"""Quotas, reload, maintenance and circuit state through the real gateway on SQLite."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from gateway.app import build_admin_app, build_app
from gateway.config.build import load_settings
from gateway.quota import window
from gateway.runtime import Runtime
from gateway.security.admin import read_token, token_path
from tests.support import (
    NO_RECORD_PID,
    OFFICER,
    PEOPLE,
    SQLITE_QUERY,
    TEST_ENV,
    Client,
    MakeClient,
    assert_sqlite_free,
    audit_rows,
    base_config,
    fisher_service,
    lc2_headers,
    make_pid,
    make_sqlite_db,
    others_turn,
    sqlite_backend,
)


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    db = tmp_path / "legacy.sqlite"
    if not db.exists():
        make_sqlite_db(db)
    services = {"fisher": fisher_service("legacy", SQLITE_QUERY)}
    services.update(extra.pop("services", {}))
    return base_config(tmp_path, {"legacy": sqlite_backend(db)}, services, **extra)


async def start(
    tmp_path: Path, aiohttp_client: MakeClient, cfg: dict[str, Any], monkeypatch: Any
) -> tuple[Runtime, Client, Path]:
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    path = write_config(tmp_path / "gateway.yaml", cfg)
    rt = Runtime(load_settings(path))
    client = await aiohttp_client(build_app(rt))
    return rt, client, path


Q = {"personalId": PEOPLE[0]["pid"]}


# --- quotas -----------------------------------------------------------------------------


def test_windows_follow_the_configured_time_zone() -> None:
    bkk = ZoneInfo("Asia/Bangkok")
    late = dt.datetime(2026, 10, 5, 23, 59, 30, tzinfo=bkk)
    key, left = window("day", late)
    assert key == "2026-10-05T00:00:00+07:00" and left == 30
    assert window("minute", late) == ("2026-10-05T23:59:00+07:00", 30)
    assert window("hour", late)[0] == "2026-10-05T23:00:00+07:00"


async def test_officer_quota_answers_429_and_refused_calls_use_nothing(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: Any
) -> None:
    limits = {
        "store": str(tmp_path / "quota.sqlite"),
        "quotas": [
            {"name": "officer-daily", "scope": "officer", "per": "day", "limit": 3},
            {"name": "office-minute", "scope": "office", "per": "minute", "limit": 4},
        ],
    }
    _, client, _ = await start(
        tmp_path, aiohttp_client, config(tmp_path, limits=limits), monkeypatch
    )
    statuses = [
        (await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())).status
        for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    refused = await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())
    body = await refused.json()
    assert refused.status == 429 and body["responseCode"] == "204"
    assert body["quota"] == {"rule": "officer-daily", "limit": 3, "per": "day", "scope": "officer"}
    assert 0 < int(refused.headers["Retry-After"]) <= 86400
    # another officer of the same office: the officer rule does not apply, the office one does
    other = make_pid("310050099887")
    ok = await client.get(
        "/api/v1/fisher", params=Q, headers=lc2_headers(**{"X-User-Request": other})
    )
    assert ok.status == 200  # the refused call above did not count against the office
    office_full = await client.get(
        "/api/v1/fisher", params=Q, headers=lc2_headers(**{"X-User-Request": other})
    )
    assert office_full.status == 429
    assert (await office_full.json())["quota"]["rule"] == "office-minute"
    # sandbox calls do not count unless a rule says so
    sandbox = await client.get("/api/v1/fisher/sandbox", params=Q, headers=lc2_headers())
    assert sandbox.status == 200
    await client.close()
    rows = audit_rows(tmp_path / "audit.sqlite")
    assert [r["status"] for r in rows].count(429) == 2


async def test_quota_counters_survive_a_restart(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: Any
) -> None:
    limits = {
        "store": str(tmp_path / "quota.sqlite"),
        "quotas": [{"name": "officer-daily", "scope": "officer", "per": "day", "limit": 2}],
    }
    cfg = config(tmp_path, limits=limits)
    _, client, _ = await start(tmp_path, aiohttp_client, cfg, monkeypatch)
    for _ in range(2):
        assert (await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())).status == 200
    await client.close()
    _, again, _ = await start(tmp_path, aiohttp_client, cfg, monkeypatch)
    assert (await again.get("/api/v1/fisher", params=Q, headers=lc2_headers())).status == 429


async def test_quota_counting_waits_for_the_writers_turn(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: Any
) -> None:
    """Workers count in turn on ``<store>-writers`` (gateway/turns.py), not by polling."""
    store = tmp_path / "quota.sqlite"
    limits = {
        "store": str(store),
        "quotas": [{"name": "officer-daily", "scope": "officer", "per": "day", "limit": 5}],
    }
    _, client, _ = await start(
        tmp_path, aiohttp_client, config(tmp_path, limits=limits), monkeypatch
    )
    assert (await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())).status == 200
    with others_turn(store):  # another worker is counting
        call = asyncio.ensure_future(client.get("/api/v1/fisher", params=Q, headers=lc2_headers()))
        await asyncio.sleep(0.5)
        assert not call.done()  # held back by the turn
        assert_sqlite_free(store)
    assert (await call).status == 200
    await client.close()


# --- reload ------------------------------------------------------------------------------


async def test_reload_adds_routes_keeps_pools_and_refuses_broken_files(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: Any
) -> None:
    cfg = config(tmp_path)
    rt, client, path = await start(tmp_path, aiohttp_client, cfg, monkeypatch)
    admin = await aiohttp_client(build_admin_app(rt))
    adapter_before = rt.current.adapters["legacy"]
    assert (await client.get("/api/v1/farms", params=Q, headers=lc2_headers())).status == 404

    cfg["services"]["farms"] = {**fisher_service("legacy", SQLITE_QUERY), "path": "farms"}
    write_config(path, cfg)
    ok, message = await rt.reload(path)
    assert ok, message
    assert rt.current.adapters["legacy"] is adapter_before  # unchanged backend: same pool
    resp = await client.get("/api/v1/farms", params=Q, headers=lc2_headers())
    assert resp.status == 200 and len((await resp.json())["data"]) == 1

    path.write_text(path.read_text(encoding="utf-8") + "\nbogus_key: 1\n", encoding="utf-8")
    ok, message = await rt.reload(path)
    assert not ok and "bogus_key" in message
    assert (await client.get("/api/v1/farms", params=Q, headers=lc2_headers())).status == 200
    metrics = await (await admin.get("/metrics")).text()
    assert "lc2_gateway_config_last_reload_successful 0.0" in metrics

    path.write_text("services: [unclosed\n", encoding="utf-8")
    token = read_token(token_path(rt.settings.quotas.store))
    assert (await admin.post("/-/reload")).status == 401  # the admin token is required
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await admin.post("/-/reload", headers=bearer)).status == 400
    assert (await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())).status == 200


async def test_reload_under_load_answers_every_call(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: Any
) -> None:
    cfg = config(tmp_path)
    rt, client, path = await start(tmp_path, aiohttp_client, cfg, monkeypatch)
    sent: list[int] = []

    async def caller() -> None:
        for _ in range(40):
            r = await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())
            sent.append(r.status)

    async def reloader() -> None:
        for i in range(5):
            backend = dict(cfg["backends"]["legacy"])
            backend["pool_size"] = 2 + i % 2  # a changed backend: a new pool each time
            cfg["backends"]["legacy"] = backend
            write_config(path, cfg)
            ok, message = await rt.reload(path)
            assert ok, message
            await asyncio.sleep(0.02)

    await asyncio.gather(*(caller() for _ in range(8)), reloader())
    assert len(sent) == 320 and set(sent) == {200}
    await client.close()
    rows = audit_rows(tmp_path / "audit.sqlite")
    assert sum(r["kind"] == "data" for r in rows) == 320
    assert sum(r["kind"] == "reload" for r in rows) == 5  # each backend change on the record


# --- maintenance ------------------------------------------------------------------------


async def test_maintenance_file_switches_data_calls_off_and_on(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: Any
) -> None:
    flag = tmp_path / "maintenance"
    rt, client, _ = await start(
        tmp_path, aiohttp_client, config(tmp_path, maintenance={"file": str(flag)}), monkeypatch
    )
    admin = await aiohttp_client(build_admin_app(rt))
    flag.write_text("ปิดปรับปรุงระบบ 18:00-20:00\n", encoding="utf-8")
    await rt.maintenance.refresh()
    resp = await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())
    body = await resp.json()
    assert resp.status == 503 and body["responseCode"] == "502"
    assert body["detail"] == "ปิดปรับปรุงระบบ 18:00-20:00" and "Retry-After" in resp.headers
    health = await client.get("/health")
    assert health.status == 503 and (await health.json())["status"] == "maintenance"
    assert (await client.get("/api/v1/fisher/health")).status == 503
    assert (await admin.get("/live")).status == 200
    assert "lc2_gateway_maintenance 1.0" in await (await admin.get("/metrics")).text()
    flag.unlink()
    await rt.maintenance.refresh()
    assert (await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())).status == 200
    await client.close()
    assert [r["code"] for r in audit_rows(tmp_path / "audit.sqlite")] == ["502", "000"]


# --- circuit state in health and errors -------------------------------------------------


async def test_open_circuit_fails_fast_and_shows_in_health(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: Any
) -> None:
    cfg = config(tmp_path)
    cfg["backends"]["gone"] = {
        "type": "sqlite",
        "path": str(tmp_path / "missing.sqlite"),
        "circuit": {"failure_threshold": 2, "open_for": 30},
        "retry": {"attempts": 0},
        "health": {"interval": 60, "timeout": 1},
    }
    cfg["services"]["gone"] = {**fisher_service("gone", SQLITE_QUERY), "path": "gone"}
    rt, client, _ = await start(tmp_path, aiohttp_client, cfg, monkeypatch)
    codes = []
    for _ in range(4):
        r = await client.get("/api/v1/gone", params=Q, headers=lc2_headers())
        codes.append((r.status, (await r.json())["responseCode"]))
    assert codes == [(503, "301"), (503, "301"), (503, "310"), (503, "310")]
    r = await client.get("/api/v1/gone", params=Q, headers=lc2_headers())
    assert int(r.headers["Retry-After"]) > 0
    health = await (await client.get("/health")).json()
    assert health["services"]["gone"]["circuit"] == "open"
    assert health["services"]["fisher"]["circuit"] == "closed"  # on the legacy backend
    # the healthy service is untouched
    assert (await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())).status == 200
    assert rt.current.guards["gone"].breaker is not None


async def test_path_parameters_route_and_are_audited_hashed(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: Any
) -> None:
    svc = {**fisher_service("legacy", SQLITE_QUERY), "path": "person/{personalId}/fisher"}
    _, client, _ = await start(
        tmp_path, aiohttp_client, config(tmp_path, services={"p": svc}), monkeypatch
    )
    resp = await client.get(f"/api/v1/person/{PEOPLE[1]['pid']}/fisher", headers=lc2_headers())
    assert resp.status == 200 and len((await resp.json())["data"]) == 1
    sandbox = await client.get(
        f"/api/v1/person/{NO_RECORD_PID}/fisher/sandbox", headers=lc2_headers()
    )
    assert sandbox.status == 200
    bad = await client.get("/api/v1/person/123/fisher", headers=lc2_headers())
    assert bad.status == 400
    await client.close()
    rows = audit_rows(tmp_path / "audit.sqlite")
    assert all(PEOPLE[1]["pid"] not in (r["path"] + r["params"]) for r in rows)
    assert rows[0]["subject_hash"] and rows[0]["officer"] == OFFICER
