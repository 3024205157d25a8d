"""The status page, as an operator sees it: real calls, then the page in headless Chromium.

Chromium is Debian's (``apt-get install chromium fonts-thai-tlwg``), driven
through Playwright with scripts disabled, so the page is proven to work
without JavaScript.  The screenshot is checked as an image (format, size,
not blank) and the rendered text for what the calls before it must show.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image
from playwright.async_api import ViewportSize

from gateway.app import build_admin_app, build_app
from gateway.auth import hash_password
from gateway.config.build import load_settings
from gateway.config.loader import ConfigError
from gateway.observe import CallRecord
from gateway.runtime import Runtime
from gateway.status import ERRORS_KEPT, MINUTES, StatusObserver, redact
from gateway.transforms import format_pid
from tests.browser import assert_real_screenshot, chromium
from tests.support import (
    OFFICER,
    PEOPLE,
    SQLITE_QUERY,
    TEST_ENV,
    Client,
    MakeClient,
    base_config,
    basic,
    fisher_service,
    lc2_headers,
    make_sqlite_db,
    sqlite_backend,
)

STATUS_USER, STATUS_PASSWORD = "ops", "status-password-1234"
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
# --- the observer -----------------------------------------------------------------------


def _rec(
    started: float, service: str = "fisher", status: int = 200, code: str = "000"
) -> CallRecord:
    return CallRecord(
        request_id=uuid.uuid4().hex,
        started=started,
        method="GET",
        path="/api/v1/fisher",
        client_ip="127.0.0.1",
        service=service,
        status=status,
        code=code,
        params={"personalId": PEOPLE[0]["pid"]},
        officer=OFFICER,
    )


def test_observer_keeps_the_last_hour_per_minute() -> None:
    now = [1_700_000_085.0]  # 45 s into a minute
    obs = StatusObserver(clock=lambda: now[0])
    obs.observe(_rec(now[0] - 30))
    obs.observe(_rec(now[0], status=404, code="201"))
    obs.observe(_rec(now[0], service="vessel", status=503, code="301"))
    obs.observe(_rec(now[0] - 3600 * 2))  # older than the hour kept: dropped
    minutes = obs.minutes()
    assert len(minutes) == MINUTES
    assert sum(m.total for m in minutes) == 3
    assert (minutes[-1].client_errors, minutes[-1].server_errors) == (1, 1)
    assert obs.by_service() == {"fisher": (1, 1, 0), "vessel": (0, 0, 1)}

    now[0] += 59 * 60  # the first minute is still in the hour, just
    assert sum(m.total for m in obs.minutes()) == 3
    now[0] += 61 * 60
    assert sum(m.total for m in obs.minutes()) == 0 and obs.by_service() == {}
    obs.observe(_rec(now[0]))  # a slot from the last lap is reused, not added to
    assert sum(m.total for m in obs.minutes()) == 1


def test_observer_keeps_errors_without_personal_data() -> None:
    obs = StatusObserver()
    t = obs.started
    for i in range(ERRORS_KEPT + 10):
        obs.observe(_rec(t + i, status=400 + i % 2, code="104"))
    obs.observe(_rec(t, status=200))
    assert len(obs.errors) == ERRORS_KEPT
    kept = repr(list(obs.errors))
    assert PEOPLE[0]["pid"] not in kept and OFFICER not in kept
    assert set(type(obs.errors[0]).__dataclass_fields__) == {
        "at",
        "service",
        "kind",
        "status",
        "code",
        "request_id",
    }


def test_redact_masks_citizen_ids_in_error_texts() -> None:
    pid = PEOPLE[0]["pid"]
    for shown in (pid, format_pid(pid), format_pid(pid).replace("-", " ")):
        assert pid[:5] not in redact(f'invalid input syntax: "{shown}" at 12')
    assert redact("timeout after 2500 ms, port 5432") == "timeout after 2500 ms, port 5432"


# --- config -----------------------------------------------------------------------------


def _config(tmp_path: Path, status_users: dict[str, str] | None) -> Path:
    db = tmp_path / "legacy.sqlite"
    if not db.exists():
        make_sqlite_db(db)
    broken = sqlite_backend(tmp_path / "missing.sqlite", circuit={"failure_threshold": 2})
    services = {
        "fisher": {
            **fisher_service("legacy", SQLITE_QUERY),
            "description_th": "ทะเบียนชาวประมง",
        },
        "vessel": {**fisher_service("vessels", SQLITE_QUERY), "path": "vessel"},
    }
    cfg: dict[str, Any] = base_config(
        tmp_path, {"legacy": sqlite_backend(db), "vessels": broken}, services
    )
    cfg["admin"] = {"host": "127.0.0.1", "port": 9108}
    if status_users is not None:
        cfg["admin"]["status_users"] = status_users
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_status_users_need_scrypt_hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    path = _config(tmp_path, {"ops": "plain-text-password", "a:b": hash_password("x" * 12)})
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    where = {".".join(map(str, p.path)) for p in info.value.problems}
    assert "admin.status_users" in where  # the username with a colon
    path = _config(tmp_path, {"ops": "plain-text-password"})
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert [".".join(map(str, p.path)) for p in info.value.problems] == ["admin.status_users.ops"]


async def _start(
    tmp_path: Path,
    aiohttp_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
    status_users: dict[str, str] | None,
) -> tuple[Runtime, Client, Client]:
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    rt = Runtime(load_settings(_config(tmp_path, status_users)))
    lc2 = await aiohttp_client(build_app(rt))  # starts the runtime
    admin = await aiohttp_client(build_admin_app(rt))
    return rt, lc2, admin


async def test_status_page_is_off_without_users(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, admin = await _start(tmp_path, aiohttp_client, monkeypatch, None)
    resp = await admin.get("/status", headers={"Authorization": basic(STATUS_USER, "x")})
    assert resp.status == 404
    assert "admin.status_users" in await resp.text()


async def test_status_page_in_headless_chromium(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = {STATUS_USER: hash_password(STATUS_PASSWORD, n=2**10)}
    rt, lc2, admin = await _start(tmp_path, aiohttp_client, monkeypatch, users)
    for _ in range(100):  # both backends probed once
        if all(h.status != "unknown" for h in rt.current.health.all().values()):
            break
        await asyncio.sleep(0.05)

    failed: dict[str, str] = {}  # request id -> code

    async def call(path: str, *, expect: int, **headers: str | None) -> None:
        rid = uuid.uuid4().hex
        resp = await lc2.get(path, headers=lc2_headers(**{"X-Request-Id": rid, **headers}))
        body = await resp.json()
        assert resp.status == expect, body
        if expect >= 400:
            failed[rid] = body["responseCode"]

    for person in PEOPLE[:3]:
        await call(f"/api/v1/fisher?personalId={person['pid']}", expect=200)
    await call(f"/api/v1/fisher/sandbox?personalId={PEOPLE[0]['pid']}", expect=200)
    await call("/api/v1/fisher?personalId=1234567890123", expect=400)
    await call(
        f"/api/v1/fisher?personalId={PEOPLE[0]['pid']}",
        expect=401,
        Authorization=basic(password="wrong-password-123"),
    )
    await call("/api/v1/nothing-here", expect=404)
    for expect in (503, 503, 503):  # down; the second failure opens the circuit
        await call(f"/api/v1/vessel?personalId={PEOPLE[1]['pid']}", expect=expect)
    assert sorted(failed.values()) == ["103", "104", "201", "301", "301", "310"]

    anonymous = await admin.get("/status")
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    wrong = await admin.get("/status", headers={"Authorization": basic(STATUS_USER, "nope")})
    assert wrong.status == 401

    url = str(admin.make_url("/status"))
    shot = tmp_path / "status.png"
    async with chromium(tmp_path) as browser:
        context = await browser.new_context(
            java_script_enabled=False,
            viewport=VIEWPORT,
            http_credentials={"username": STATUS_USER, "password": STATUS_PASSWORD},
            locale="th-TH",
        )
        page = await context.new_page()
        response = await page.goto(url)
        assert response is not None and response.status == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        await page.screenshot(path=str(shot))
        await page.screenshot(path=str(tmp_path / "status-full.png"), full_page=True)
        table: dict[str, list[str]] = {}
        for row in await page.locator("#services tbody tr").all():
            cells = [c.strip() for c in await row.locator("td").all_inner_texts()]
            table[cells[0].split()[0]] = cells
        cards = {
            card: await page.inner_text(f"#{card}")
            for card in ("calls-hour", "errors-4xx", "errors-5xx", "audit", "maintenance")
        }
        errors = await page.inner_text("#errors")
        version = await page.inner_text("#config-version")
        rendered = await page.content()
        await context.close()

    assert "ทะเบียนชาวประมง" in table["fisher"][0]
    fisher, vessel = table["fisher"], table["vessel"]
    assert (fisher[1], fisher[2], fisher[3], fisher[4]) == (
        "/api/v1/fisher",
        "legacy",
        "up",
        "closed",
    )
    assert (vessel[1], vessel[2], vessel[4]) == ("/api/v1/vessel", "vessels", "open")
    assert vessel[3].startswith("down") and "missing.sqlite" in vessel[3]
    # fisher: 4 answered, a 400 and a 401; vessel: three 503s
    assert fisher[-3:] == ["6", "2", "0"] and vessel[-3:] == ["3", "0", "3"]
    assert cards["calls-hour"].split()[-1] == "10"
    assert cards["errors-4xx"].split()[-1] == "3"
    assert cards["errors-5xx"].split()[-1] == "3"
    assert "up" in cards["audit"] and "off" in cards["maintenance"]
    for rid, code in failed.items():
        assert rid in errors
        assert code in errors
    assert version == rt.settings.version

    raw = await (
        await admin.get("/status", headers={"Authorization": basic(STATUS_USER, STATUS_PASSWORD)})
    ).text()
    for text in (raw, rendered):
        for person in PEOPLE:
            for shown in (person["pid"], format_pid(person["pid"]), person["PID"].strip()):
                assert shown not in text
        assert OFFICER not in text and "สมชาย" not in text and "<script" not in text.lower()
    assert_real_screenshot(shot, (VIEWPORT["width"], VIEWPORT["height"]))
    with Image.open(tmp_path / "status-full.png") as full:  # the whole page, errors included
        assert full.width == VIEWPORT["width"] and full.height > VIEWPORT["height"]
