"""The admin listener is not a soft target; LC2's /health tells no more than it needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.app import build_admin_app, build_app, build_runtime
from gateway.auth import hash_password
from gateway.config.build import load_settings
from tests.support import (
    SQLITE_QUERY,
    TEST_ENV,
    MakeClient,
    base_config,
    basic,
    fisher_service,
    make_sqlite_db,
    settings_from,
    sqlite_backend,
)
from tests.test_security_auth import _count_verifications

STATUS_PASSWORD = "status-password-1234"


def _config(tmp_path: Path) -> dict[str, Any]:
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    cfg = base_config(
        tmp_path, {"legacy": sqlite_backend(db)}, {"fisher": fisher_service("legacy", SQLITE_QUERY)}
    )
    cfg["limits"] = {"store": str(tmp_path / "quota.sqlite")}
    cfg["admin"] = {
        "enabled": True,
        "status_users": {"ops": hash_password(STATUS_PASSWORD, n=2**10)},
        "hosts": ["gw1.internal"],  # a name Prometheus scrapes it by
    }
    cfg["security"] = {
        "auth_failures": {"per_address": 3, "per_username": 3, "window": 60, "lockout": 60}
    }
    return cfg


async def _admin(tmp_path: Path, aiohttp_client: MakeClient) -> tuple[Any, Any, Path]:
    cfg = _config(tmp_path)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in TEST_ENV.items():
            mp.setenv(k, v)
        rt = build_runtime(load_settings(path))
    await aiohttp_client(build_app(rt))
    return rt, await aiohttp_client(build_admin_app(rt)), path


def _last_reload(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("lc2_gateway_config_last_reload_timestamp_seconds "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no reload timestamp in the metrics")


async def test_a_cross_origin_simple_post_can_not_reload(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    rt, admin, _ = await _admin(tmp_path, aiohttp_client)
    before = _last_reload(await (await admin.get("/metrics")).text())
    # what a page in a browser on the server can send without a preflight
    simple = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    resp = await admin.post("/-/reload", data="x", headers=simple)
    assert resp.status == 403
    resp = await admin.post(
        "/-/reload", headers={"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}
    )
    assert resp.status == 403
    # the same without a token: refused too, and counted as a failed sign-in
    assert (await admin.post("/-/reload")).status == 401
    assert _last_reload(await (await admin.get("/metrics")).text()) == before
    # with the token (what `lc2-gateway reload` sends) it reloads
    from gateway.security.admin import read_token, token_path

    token = read_token(token_path(rt.settings.quotas.store))
    assert (token_path(rt.settings.quotas.store).stat().st_mode & 0o777) == 0o600
    resp = await admin.post("/-/reload", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200, await resp.text()
    assert _last_reload(await (await admin.get("/metrics")).text()) > before


async def test_the_admin_listener_answers_only_to_its_address(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    _, admin, _ = await _admin(tmp_path, aiohttp_client)
    for host in ("evil.example", "evil.example:9108", "rebind.attacker.test"):
        resp = await admin.get("/health", headers={"Host": host})
        assert resp.status == 421, host
    for host in ("127.0.0.1:9108", "localhost:9108", "[::1]:9108", "10.0.5.3", "GW1.internal"):
        assert (await admin.get("/live", headers={"Host": host})).status == 200, host


async def test_status_page_sign_ins_are_locked_out(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, admin, _ = await _admin(tmp_path, aiohttp_client)
    calls = _count_verifications(monkeypatch)
    statuses = []
    for i in range(6):
        auth = {"Authorization": basic(user="ops", password=f"guess-{i}")}
        statuses.append((await admin.get("/status", headers=auth)).status)
    assert statuses == [401, 401, 401, 429, 429, 429]
    assert len(calls) == 3
    right = {"Authorization": basic(user="ops", password=STATUS_PASSWORD)}
    resp = await admin.get("/status", headers=right)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
    assert len(calls) == 3, "a locked-out sign-in costs no hash"


async def test_lc2_health_names_no_backend_path_or_driver_text(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    cfg = _config(tmp_path)
    cfg["backends"]["oracle-dopa-prod"] = sqlite_backend(tmp_path / "missing" / "gone.sqlite")
    cfg["services"]["gone"] = {**fisher_service("oracle-dopa-prod", SQLITE_QUERY), "path": "gone"}
    rt = build_runtime(settings_from(cfg))
    client = await aiohttp_client(build_app(rt))
    for url in ("/health", "/api/v1/gone/health", "/api/v1/fisher/health"):
        text = await (await client.get(url)).text()
        body = json.loads(text)
        for secret in ("oracle-dopa-prod", "legacy", str(tmp_path), "sqlite", "audit.sqlite"):
            assert secret not in text, (url, secret, body)
    body = await (await client.get("/health")).json()
    assert set(body["services"]) == {"fisher", "gone"}
