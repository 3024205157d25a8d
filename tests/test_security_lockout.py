"""Lock-out under concurrency, across restarts and across workers; LC2 not lockable by others."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.app import build_app, build_runtime
from tests.gateway_process import GatewayProcess, http_get
from tests.live import live_config
from tests.support import (
    PEOPLE,
    TEST_ENV,
    MakeClient,
    audit_rows,
    basic,
    lc2_headers,
    settings_from,
)
from tests.test_security_auth import _config, _count_verifications, _get

PID = PEOPLE[0]["pid"]


async def test_parallel_guesses_cost_at_most_the_limit_and_the_right_password_is_refused(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = {"per_address": 20, "per_username": 10, "window": 300, "lockout": 900}
    rt = build_runtime(settings_from(_config(tmp_path, security={"auth_failures": limits})))
    client = await aiohttp_client(build_app(rt))
    checked = _count_verifications(monkeypatch, delay=0.05)

    guesses = [
        asyncio.create_task(_get(client, Authorization=basic(password=f"guess-{i}")))
        for i in range(200)
    ]
    # wait until the limit is taken (the first 429), while guesses are still being checked
    deadline = time.monotonic() + 60
    while not any(t.done() and t.result()[0] == 429 for t in guesses):
        assert time.monotonic() < deadline, f"no 429 among {len(checked)} checked guesses"
        assert not all(t.done() for t in guesses), "every guess answered, none refused"
        await asyncio.sleep(0.01)
    right = await _get(client)  # LC2's own password, sent among the guesses
    answers = await asyncio.gather(*guesses)

    assert len(checked) <= 10, f"{len(checked)} guesses reached the password check"
    assert sum(1 for a in answers if a == (401, "103")) == len(checked)
    assert sum(1 for a in answers if a == (429, "105")) == 200 - len(checked)
    assert right == (429, "105")
    assert len(checked) <= 10, "the right password was hashed past the limit"
    # every guess is in the audit, refused ones too
    await client.close()
    rows = audit_rows(tmp_path / "audit.sqlite")
    assert len(rows) == 201


async def test_lc2_calling_from_its_allow_from_is_not_locked_out_by_others(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    """An attacker guessing LC2's username from elsewhere locks itself and the username
    for addresses outside LC2's allow list, never LC2 calling from inside it, even on
    LC2's first sign-in."""
    security = {
        "trusted_proxies": ["127.0.0.1/32"],  # the test client plays a proxy naming each caller
        "auth_failures": {"per_address": 3, "per_username": 4, "window": 60, "lockout": 60},
    }
    cfg = _config(tmp_path, security=security)
    cfg["consumers"]["lc2"]["allow_from"] = ["203.0.113.0/28"]
    client = await aiohttp_client(build_app(build_runtime(settings_from(cfg))))
    attacker = {"X-Forwarded-For": "198.51.100.7"}
    for i in range(3):
        assert await _get(client, Authorization=basic(password=f"g{i}"), **attacker) == (401, "103")
    assert await _get(client, **attacker) == (429, "105")  # the address is locked
    # one more guess from another address: the username is locked outside the allow list
    xff = {"X-Forwarded-For": "198.51.100.20"}
    assert await _get(client, Authorization=basic(password="h"), **xff) == (401, "103")
    assert await _get(client, **{"X-Forwarded-For": "198.51.100.99"}) == (429, "105")
    # LC2, never signed in before, from its own proxy: not locked out
    assert await _get(client, **{"X-Forwarded-For": "203.0.113.10"}) == (200, "000")
    # a wrong password from inside the allow list counts for that address only
    inside = {"X-Forwarded-For": "203.0.113.11"}
    assert await _get(client, Authorization=basic(password="typo"), **inside) == (401, "103")
    assert await _get(client, **{"X-Forwarded-For": "203.0.113.12"}) == (200, "000")


def _write(tmp_path: Path, cfg: dict[str, Any]) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def _two_free_ports() -> int:
    """A port p with p + 1 free too (the second worker's admin listener)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return int(port)
    raise AssertionError("no two consecutive free ports")


def _auth(user: str = "Linkage Service", password: str = "test-password-1234") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _call(url: str, address: str, authorization: str | None = None) -> int:
    headers = lc2_headers(**({"Authorization": authorization} if authorization else {}))
    headers = {k: v for k, v in headers.items() if v is not None}
    headers["X-Forwarded-For"] = address
    status, _, _ = http_get(f"{url}/api/v1/fisher?personalId={PID}", headers)
    return status


def _process_config(tmp_path: Path, **limits: int) -> tuple[dict[str, Any], str, int]:
    cfg = live_config(tmp_path)
    admin = _two_free_ports()
    cfg["admin"]["port"] = admin
    cfg["security"] = {
        "trusted_proxies": ["127.0.0.1/32"],
        "auth_failures": {"window": 300, "lockout": 300, **limits},
    }
    return cfg, f"http://127.0.0.1:{cfg['listen']['port']}", admin


def test_lockouts_and_lc2_addresses_survive_a_restart(tmp_path: Path) -> None:
    cfg, url, admin = _process_config(tmp_path, per_address=3, per_username=4)
    path = _write(tmp_path, cfg)
    with GatewayProcess(path, admin, env=TEST_ENV):
        assert _call(url, "203.0.113.10") == 200  # LC2 signs in from its proxy
        for i in range(3):
            assert _call(url, "198.51.100.7", _auth(password=f"g{i}")) == 401
        assert _call(url, "198.51.100.7") == 429
    with GatewayProcess(path, admin, env=TEST_ENV):
        # the attacker's address is still locked after the restart, right password or not
        assert _call(url, "198.51.100.7") == 429
        # the username's count survived too: one more guess from elsewhere locks it, but
        # not for the address LC2 signed in from before the restart
        assert _call(url, "198.51.100.20", _auth(password="h")) == 401
        assert _call(url, "198.51.100.99") == 429
        assert _call(url, "203.0.113.10") == 200


def test_lockouts_are_shared_by_the_workers(tmp_path: Path) -> None:
    cfg, url, admin = _process_config(tmp_path, per_address=4, per_username=100)
    path = _write(tmp_path, cfg)
    with GatewayProcess(path, admin, env=TEST_ENV, workers=2):
        # each call on a new connection: the kernel spreads them over both workers
        answers = [_call(url, "198.51.100.7", _auth(password=f"g{i}")) for i in range(4)]
        assert answers == [401] * 4
        after = [_call(url, "198.51.100.7") for _ in range(8)]
        assert after == [429] * 8
        served = [http_get(f"http://127.0.0.1:{admin + i}/metrics")[1] for i in range(2)]
    counts = [
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.decode().splitlines()
            if line.startswith("lc2_gateway_requests_total{")
        )
        for text in served
    ]
    assert all(c > 0 for c in counts), f"one worker served everything: {counts}"


async def test_counter_store_expires_windows_and_locks(tmp_path: Path) -> None:
    from gateway.config.models import AuthFailuresConfig
    from gateway.security.lockout import Lockouts, Slot, SqliteCounters

    now = [1000.0]
    store = SqliteCounters(tmp_path / "quota.sqlite", clock=lambda: now[0])
    await store.open()
    try:
        policy = AuthFailuresConfig(window=10, per_address=3, per_username=3, lockout=5)
        for i in range(300):  # many addresses, one failure each
            await store.fail([Slot("address", f"10.0.{i // 256}.{i % 256}", 3)], policy)
        assert await store.rows() == 300
        slot = Slot("address", "192.0.2.1", 3)
        for _ in range(3):
            assert (await store.fail([slot], policy)).wait is None
        assert (await store.reserve([slot], policy, None)).wait == 5
        now[0] += 5.1
        got = await store.reserve([slot], policy, None)
        assert got.wait is None and got.slots == (slot,)
        await store.settle(got.slots, policy, failed=False, known=None)
        now[0] += 11
        for _ in range(1000):  # counters of windows long past are swept as writes go on
            await store.fail([Slot("address", "192.0.2.2", 10**6)], policy)
        assert await store.rows() <= 3
        off = Lockouts(store, AuthFailuresConfig(enabled=False, per_address=1))
        assert await off.fail("192.0.2.9") is None
        assert await off.fail("192.0.2.9") is None
        assert await store.rows() <= 3  # nothing counted
    finally:
        await store.close()
