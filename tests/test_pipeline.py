"""The LC2 surface end to end on a real SQLite legacy database: every path of the pipeline."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.app import RUNTIME, build_app, build_runtime
from gateway.config.runtime import Settings
from tests.support import (
    EXPECTED,
    NO_RECORD_PID,
    OFFICER,
    PASSWORD_HASH,
    PEOPLE,
    SQLITE_QUERY,
    Client,
    MakeClient,
    audit_rows,
    base_config,
    basic,
    fisher_service,
    lc2_headers,
    make_pid,
    make_sqlite_db,
    plain_pid,
    settings_from,
    sqlite_backend,
    store_bytes,
)


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    services = {"fisher": fisher_service("legacy", SQLITE_QUERY)}
    services.update(extra.pop("services", {}))
    backends = {"legacy": sqlite_backend(db), **extra.pop("backends", {})}
    cfg = base_config(tmp_path, backends, services, **extra)
    return settings_from(cfg)


async def _client(aiohttp_client: MakeClient, settings: Settings) -> Client:
    return await aiohttp_client(build_app(build_runtime(settings)))


def _subset(actual: Any, expected: Any) -> None:
    if isinstance(expected, dict):
        for k, v in expected.items():
            assert k in actual, k
            _subset(actual[k], v)
    else:
        assert actual == expected


async def test_lookup_normalises_legacy_values(tmp_path: Path, aiohttp_client: MakeClient) -> None:
    client = await _client(aiohttp_client, _settings(tmp_path))
    for person in PEOPLE:
        resp = await client.get(
            "/api/v1/fisher", params={"personalId": person["pid"]}, headers=lc2_headers()
        )
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        body = await resp.json()
        assert body["responseCode"] == "000" and body["message"] == "success"
        assert len(body["data"]) == 1
        _subset(body["data"][0], EXPECTED[person["pid"]])
    raw = await (
        await client.get(
            "/api/v1/fisher", params={"personalId": PEOPLE[0]["pid"]}, headers=lc2_headers()
        )
    ).read()
    assert "สมชาย".encode() in raw  # Thai as UTF-8 text, not \u escapes


async def test_no_match_is_200_with_empty_data(tmp_path: Path, aiohttp_client: MakeClient) -> None:
    client = await _client(aiohttp_client, _settings(tmp_path))
    resp = await client.get(
        "/api/v1/fisher", params={"personalId": NO_RECORD_PID}, headers=lc2_headers()
    )
    assert resp.status == 200
    assert (await resp.json())["data"] == []


async def test_response_carries_request_id_and_timing(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    client = await _client(aiohttp_client, _settings(tmp_path))
    resp = await client.get(
        "/api/v1/fisher",
        params={"personalId": NO_RECORD_PID},
        headers=lc2_headers(**{"X-Request-Id": "lc2-abc-123"}),
    )
    assert resp.headers["X-Request-Id"] == "lc2-abc-123"
    timing = resp.headers["Server-Timing"]
    for stage in ("request", "plan", "execute", "normalise", "audit"):
        assert f"{stage};dur=" in timing
    bad = await client.get(
        "/api/v1/fisher",
        params={"personalId": NO_RECORD_PID},
        headers=lc2_headers(**{"X-Request-Id": "bad id with spaces"}),
    )
    assert bad.headers["X-Request-Id"] != "bad id with spaces"


@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        ("X-Office-Request", ["X-Office-Request"]),
        ("X-User-Request", ["X-User-Request"]),
        ("Authorization", ["Authorization"]),
    ],
)
async def test_missing_header_is_400_naming_it(
    tmp_path: Path, aiohttp_client: MakeClient, drop: str, missing: list[str]
) -> None:
    client = await _client(aiohttp_client, _settings(tmp_path))
    headers = lc2_headers()
    del headers[drop]
    resp = await client.get("/api/v1/fisher", params={"personalId": NO_RECORD_PID}, headers=headers)
    assert resp.status == 400
    body = await resp.json()
    assert body["responseCode"] == "101"
    assert body["missingHeaders"] == missing
    assert body["messageTh"] and body["requestId"] == resp.headers["X-Request-Id"]


async def test_all_missing_headers_listed_at_once(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    client = await _client(aiohttp_client, _settings(tmp_path))
    resp = await client.get("/api/v1/fisher", params={"personalId": NO_RECORD_PID})
    body = await resp.json()
    assert resp.status == 400
    assert body["missingHeaders"] == ["Authorization", "X-Office-Request", "X-User-Request"]


@pytest.mark.parametrize(
    "authorization",
    [basic(password="wrong-password"), basic(user="Someone Else"), "Bearer abc", "Basic !!!"],
)
async def test_bad_credentials_are_401(
    tmp_path: Path, aiohttp_client: MakeClient, authorization: str
) -> None:
    client = await _client(aiohttp_client, _settings(tmp_path))
    resp = await client.get(
        "/api/v1/fisher",
        params={"personalId": NO_RECORD_PID},
        headers=lc2_headers(Authorization=authorization),
    )
    assert resp.status == 401
    assert (await resp.json())["responseCode"] == "103"
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Office-Request", "abc"),
        ("X-User-Request", "1234567890123"),  # checksum wrong
        ("X-User-Request", "12345"),
    ],
)
async def test_invalid_header_values_are_400(
    tmp_path: Path, aiohttp_client: MakeClient, header: str, value: str
) -> None:
    client = await _client(aiohttp_client, _settings(tmp_path))
    resp = await client.get(
        "/api/v1/fisher",
        params={"personalId": NO_RECORD_PID},
        headers=lc2_headers(**{header: value}),
    )
    body = await resp.json()
    assert resp.status == 400 and body["responseCode"] == "102"
    assert body["invalidHeaders"][0]["header"] == header


@pytest.mark.parametrize(
    ("query", "parameter", "reason"),
    [
        ({}, "personalId", "is required"),
        ({"personalId": "123"}, "personalId", "must be exactly 13 digits"),
        (
            {"personalId": NO_RECORD_PID[:12] + str((int(NO_RECORD_PID[12]) + 1) % 10)},
            "personalId",
            "checksum digit is wrong",
        ),
        ({"personalId": NO_RECORD_PID, "extra": "1"}, "extra", "unknown parameter"),
        ({"personalId": "1' OR '1'='1"}, "personalId", "must be exactly 13 digits"),
    ],
)
async def test_bad_parameters_are_400_naming_them(
    tmp_path: Path,
    aiohttp_client: MakeClient,
    query: dict[str, str],
    parameter: str,
    reason: str,
) -> None:
    client = await _client(aiohttp_client, _settings(tmp_path))
    resp = await client.get("/api/v1/fisher", params=query, headers=lc2_headers())
    body = await resp.json()
    assert resp.status == 400 and body["responseCode"] == "104"
    assert {"parameter": parameter, "reason": reason} in body["invalidParameters"]


async def test_repeated_parameter_is_400(tmp_path: Path, aiohttp_client: MakeClient) -> None:
    client = await _client(aiohttp_client, _settings(tmp_path))
    resp = await client.get(
        f"/api/v1/fisher?personalId={NO_RECORD_PID}&personalId={PEOPLE[0]['pid']}",
        headers=lc2_headers(),
    )
    assert resp.status == 400
    assert (await resp.json())["invalidParameters"][0]["reason"] == "given more than once"


async def test_unknown_path_and_method_are_json(tmp_path: Path, aiohttp_client: MakeClient) -> None:
    settings = _settings(tmp_path)
    client = await _client(aiohttp_client, settings)
    resp = await client.get("/api/v1/nothing-here", headers=lc2_headers())
    assert resp.status == 404
    assert (await resp.json())["responseCode"] == "201"
    resp = await client.post("/api/v1/fisher", headers=lc2_headers())
    assert resp.status == 405
    assert (await resp.json())["responseCode"] == "203"
    assert "GET" in resp.headers["Allow"]
    await client.close()
    assert [r["status"] for r in audit_rows(settings.audit.path)] == [404, 405]


async def test_grants_limit_services_and_offices(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    other = {**fisher_service("legacy", SQLITE_QUERY), "path": "fisher-copy"}
    consumers = {
        "lc2": {
            "username": "Linkage Service",
            "password_hash": PASSWORD_HASH,
            "services": ["fisher"],
            "offices": ["00023"],
        },
    }
    client = await _client(
        aiohttp_client, _settings(tmp_path, services={"copy": other}, consumers=consumers)
    )
    ok = await client.get(
        "/api/v1/fisher", params={"personalId": NO_RECORD_PID}, headers=lc2_headers()
    )
    assert ok.status == 200
    denied = await client.get(
        "/api/v1/fisher-copy", params={"personalId": NO_RECORD_PID}, headers=lc2_headers()
    )
    assert denied.status == 403 and (await denied.json())["responseCode"] == "202"
    office = await client.get(
        "/api/v1/fisher",
        params={"personalId": NO_RECORD_PID},
        headers=lc2_headers(**{"X-Office-Request": "99999"}),
    )
    assert office.status == 403


async def test_sandbox_is_isolated_from_the_backend(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    settings = _settings(tmp_path)
    client = await _client(aiohttp_client, settings)
    (tmp_path / "legacy.sqlite").unlink()  # the legacy database is gone
    real = await client.get(
        "/api/v1/fisher", params={"personalId": PEOPLE[0]["pid"]}, headers=lc2_headers()
    )
    assert real.status == 503 and (await real.json())["responseCode"] == "301"
    # generated rows are of one invented person, and answer only that person's ID
    sandbox_pid = plain_pid(str(settings.services["fisher"].sandbox_rows[0]["PID"]))
    for url, headers in (
        ("/api/v1/fisher/sandbox", lc2_headers()),
        ("/api/v1/fisher", lc2_headers(**{"X-Use-Sandbox": "1"})),
    ):
        resp = await client.get(url, params={"personalId": sandbox_pid}, headers=headers)
        assert resp.status == 200, await resp.text()
        data = (await resp.json())["data"]
        assert len(data) == 2
        for row in data:  # generated legacy-shaped rows went through the same mapping
            assert row["personalId"] == sandbox_pid
            assert row["dateOfBirth"] is None or row["dateOfBirth"][:2] in ("19", "20")
            assert "\u0e00" <= row["firstName"][0] <= "\u0e7f"
    other = await client.get(
        "/api/v1/fisher/sandbox", params={"personalId": PEOPLE[0]["pid"]}, headers=lc2_headers()
    )
    assert other.status == 200 and (await other.json())["data"] == []
    # same validation as the real endpoint
    bad = await client.get(
        "/api/v1/fisher/sandbox", params={"personalId": "1"}, headers=lc2_headers()
    )
    assert bad.status == 400
    await client.close()
    kinds = [(r["kind"], r["sandbox"], r["status"]) for r in audit_rows(settings.audit.path)]
    assert kinds == [
        ("data", 0, 503),
        ("sandbox", 1, 200),
        ("sandbox", 1, 200),
        ("sandbox", 1, 200),
        ("sandbox", 1, 400),
    ]


async def test_sandbox_generation_is_stable(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _settings(tmp_path / "a").services["fisher"].sandbox_rows
    b = _settings(tmp_path / "b").services["fisher"].sandbox_rows
    assert a == b and len(a) == 2


async def test_declared_sandbox_rows_and_match(tmp_path: Path, aiohttp_client: MakeClient) -> None:
    pid = make_pid("310050123456")
    svc = fisher_service(
        "legacy",
        SQLITE_QUERY,
        path="fisher2",
        sandbox={
            "rows": [
                {
                    "PID": f"{pid[0]}-{pid[1:5]}-{pid[5:10]}-{pid[10:12]}-{pid[12]}",
                    "FULLNAME": "นายทดสอบ ระบบ",
                    "SEX": "1",
                    "BIRTH_DATE": "25300115",
                    "MOO": "4",
                }
            ],
            "match": {"personalId": "PID"},
        },
    )
    client = await _client(aiohttp_client, _settings(tmp_path, services={"f2": svc}))
    hit = await client.get(
        "/api/v1/fisher2/sandbox", params={"personalId": pid}, headers=lc2_headers()
    )
    data = (await hit.json())["data"]
    assert data == [
        {
            "personalId": pid,
            "titleDesc": "นาย",
            "firstName": "ทดสอบ",
            "lastName": "ระบบ",
            "genderDesc": "ชาย",
            "dateOfBirth": "1987-01-15",
            "address": {"villageNo": 4},
        }
    ]
    miss = await client.get(
        "/api/v1/fisher2/sandbox", params={"personalId": NO_RECORD_PID}, headers=lc2_headers()
    )
    assert (await miss.json())["data"] == []


async def test_backend_errors_map_to_502_503_504(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    broken = fisher_service(
        "legacy", "SELECT PID FROM NO_SUCH_COLUMN_TABLE_X WHERE PID = :personalId", path="broken"
    )
    syntax = fisher_service(
        "legacy",
        "SELECT PID FROM FISHER_REG WHERE PID = :personalId AND nosuchfunc(PID) = 1",
        path="syntax",
    )
    slow = fisher_service(
        "slowdb",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 "
        "FROM c) SELECT max(x) AS PID FROM c WHERE :personalId <> ''",
        path="slow",
    )
    db = make_sqlite_db(tmp_path / "slow.sqlite")
    settings = _settings(
        tmp_path,
        services={"broken": broken, "syntax": syntax, "slow": slow},
        backends={"slowdb": sqlite_backend(db, query_timeout=0.3)},
    )
    client = await _client(aiohttp_client, settings)
    q = {"personalId": NO_RECORD_PID}
    r = await client.get("/api/v1/broken", params=q, headers=lc2_headers())
    assert r.status == 503 and (await r.json())["responseCode"] == "301"
    r = await client.get("/api/v1/syntax", params=q, headers=lc2_headers())
    body = await r.json()
    assert r.status == 502 and body["responseCode"] == "303"
    assert NO_RECORD_PID not in await r.text()
    t0 = time.perf_counter()
    r = await client.get("/api/v1/slow", params=q, headers=lc2_headers())
    assert r.status == 504 and (await r.json())["responseCode"] == "302"
    assert time.perf_counter() - t0 < 2.5
    # the interrupted connection is usable again
    r = await client.get(
        "/api/v1/fisher", params={"personalId": PEOPLE[0]["pid"]}, headers=lc2_headers()
    )
    assert r.status == 200


async def test_pool_exhaustion_is_503_with_retry_after(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    slow = fisher_service(
        "one",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 "
        "FROM c WHERE x < 3000000) SELECT max(x) AS PID FROM c "
        "WHERE :personalId <> ''",
        path="slow",
    )
    db = make_sqlite_db(tmp_path / "one.sqlite")
    settings = _settings(
        tmp_path,
        services={"slow": slow},
        backends={
            "one": sqlite_backend(db, pool_size=1, acquire_timeout=0.1, query_timeout=5),
        },
    )
    client = await _client(aiohttp_client, settings)
    guard = client.app[RUNTIME].current.pipeline.guards["one"]
    q = {"personalId": NO_RECORD_PID}
    first = asyncio.ensure_future(client.get("/api/v1/slow", params=q, headers=lc2_headers()))
    # the second call goes once the first holds the backend's only slot: a fixed sleep
    # raced the first call's sign-in and parsing on a busy machine
    for _ in range(1000):
        if guard.bulkhead.active:
            break
        await asyncio.sleep(0.005)
    assert guard.bulkhead.active == 1
    second = await client.get("/api/v1/slow", params=q, headers=lc2_headers())
    assert second.status == 503
    assert (await second.json())["responseCode"] == "304"
    assert second.headers["Retry-After"] == "1"
    assert (await first).status == 200


async def test_every_call_is_audited_without_clear_citizen_ids(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    settings = _settings(tmp_path)
    client = await _client(aiohttp_client, settings)
    calls = [
        ({"personalId": PEOPLE[0]["pid"]}, lc2_headers(), 200),
        ({"personalId": PEOPLE[1]["pid"]}, lc2_headers(**{"X-Use-Sandbox": "1"}), 200),
        ({"personalId": PEOPLE[2]["pid"]}, lc2_headers(Authorization=basic(password="x")), 401),
        ({"personalId": PEOPLE[3]["pid"]}, lc2_headers(**{"X-Office-Request": None}), 400),
        ({"personalId": "12"}, lc2_headers(), 400),
    ]
    results = await asyncio.gather(
        *(client.get("/api/v1/fisher", params=q, headers=h) for q, h, _ in calls)
    )
    assert [r.status for r in results] == [c[2] for c in calls]
    ids = {r.headers["X-Request-Id"] for r in results}
    await client.close()
    rows = audit_rows(settings.audit.path)
    assert len(rows) == len(calls) and {r["request_id"] for r in rows} == ids
    by_status = {(r["status"], r["kind"]) for r in rows}
    assert (200, "data") in by_status and (200, "sandbox") in by_status
    ok = next(r for r in rows if r["status"] == 200 and r["kind"] == "data")
    assert ok["office"] == "00023" and ok["officer"] == OFFICER and ok["consumer"] == "lc2"
    assert ok["rows"] == 1 and ok["service"] == "fisher" and ok["code"] == "000"
    pid = PEOPLE[0]["pid"]
    assert ok["subject_hint"] == f"{pid[0]}-xxxx-xxxxx-x{pid[11]}-{pid[12]}"
    assert len(ok["subject_hash"]) == 64
    rejected = next(r for r in rows if r["status"] == 401)
    assert rejected["consumer"] is None and rejected["subject_hash"]
    raw = store_bytes(settings.audit.path)
    for person in PEOPLE:
        assert person["pid"].encode() not in raw


async def test_audit_keyed_hash_finds_a_citizen(tmp_path: Path, aiohttp_client: MakeClient) -> None:
    from gateway.audit import subject_hash

    settings = _settings(tmp_path)
    client = await _client(aiohttp_client, settings)
    for _ in range(3):
        await client.get(
            "/api/v1/fisher", params={"personalId": PEOPLE[0]["pid"]}, headers=lc2_headers()
        )
    await client.get(
        "/api/v1/fisher", params={"personalId": PEOPLE[1]["pid"]}, headers=lc2_headers()
    )
    await client.close()
    wanted = subject_hash(settings.audit.key, PEOPLE[0]["pid"])
    with sqlite3.connect(settings.audit.path) as db:
        n = db.execute(
            "SELECT count(*) FROM audit_log WHERE subject_hash = ?", (wanted,)
        ).fetchone()[0]
    db.close()
    assert n == 3


async def test_audit_unwritable_fails_closed_and_recovers(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    settings = _settings(tmp_path)
    rt = build_runtime(settings)
    client = await aiohttp_client(build_app(rt))
    q = {"personalId": PEOPLE[0]["pid"]}
    assert (await client.get("/api/v1/fisher", params=q, headers=lc2_headers())).status == 200
    # another process holds the write lock on the audit store for longer than busy_timeout
    blocker = sqlite3.connect(settings.audit.path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        resp = await client.get("/api/v1/fisher", params=q, headers=lc2_headers())
        body = await resp.json()
        assert resp.status == 503 and body["responseCode"] == "501", body
        assert "data" not in body
        health = await client.get("/health")
        assert health.status == 503
        assert (await health.json())["audit"]["status"] == "down"
    finally:
        blocker.rollback()
        blocker.close()
    resp = await client.get("/api/v1/fisher", params=q, headers=lc2_headers())
    assert resp.status == 200
    assert rt.audit.healthy


async def test_health_is_cached_and_fast_when_backend_hangs(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    """A backend that accepts connections and never answers must not slow /health."""
    hung: list[asyncio.StreamWriter] = []

    async def accept_and_hang(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)

    server = await asyncio.start_server(accept_and_hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        pg = {
            "type": "postgresql",
            "dsn": f"postgresql://lc2@127.0.0.1:{port}/legacy",
            "connect_timeout": 30,
            "query_timeout": 30,
            "acquire_timeout": 30,
            "health": {"interval": 0.2, "timeout": 0.3},
        }
        svc = fisher_service("hung", "SELECT * FROM fisher WHERE pid = :personalId", path="hung")
        settings = _settings(tmp_path, services={"hung": svc}, backends={"hung": pg})
        client = await _client(aiohttp_client, settings)
        await asyncio.sleep(0.6)  # a probe has timed out by now
        worst = 0.0
        for _ in range(20):
            t0 = time.perf_counter()
            resp = await client.get("/health")
            worst = max(worst, time.perf_counter() - t0)
            body = await resp.json()
        assert resp.status == 200 and body["status"] == "degraded"
        assert body["services"]["hung"]["status"] == "down"
        assert "timed out" in body["services"]["hung"]["error"]
        assert body["services"]["fisher"]["status"] == "up"  # on the legacy backend
        assert worst < 0.25  # answered from the cache, not by probing (probe timeout is 0.3 s)
        svc_health = await client.get("/api/v1/hung/health")
        assert svc_health.status == 503
        assert (await client.get("/api/v1/fisher/health")).status == 200
    finally:
        for w in hung:
            w.close()
        server.close()
        await server.wait_closed()


async def test_audit_latency_is_the_calls_real_latency(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    settings = _settings(tmp_path)
    client = await _client(aiohttp_client, settings)
    resp = await client.get(
        "/api/v1/fisher", params={"personalId": PEOPLE[0]["pid"]}, headers=lc2_headers()
    )
    assert resp.status == 200
    stages = {
        k: float(v)
        for k, v in (
            part.strip().split(";dur=") for part in resp.headers["Server-Timing"].split(",")
        )
    }
    await client.close()
    (row,) = audit_rows(settings.audit.path)
    before_commit = sum(v for k, v in stages.items() if k != "audit")
    # the record is written before the commit's own time is known: everything up to it counts
    assert row["latency_ms"] > 0
    assert before_commit - 0.01 <= row["latency_ms"] <= sum(stages.values()) + 0.01


async def test_service_health_refusals_are_audited_as_health(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    """A refused sign-in or method on a service's health route is audited, as a health call;
    an answered health poll is not a data call and leaves no record."""
    settings = _settings(tmp_path, lc2={"health_requires_auth": True})
    client = await _client(aiohttp_client, settings)
    anonymous = await client.get("/api/v1/fisher/health", headers=lc2_headers(Authorization=None))
    assert anonymous.status == 400  # no credentials: a missing header
    wrong = await client.get(
        "/api/v1/fisher/health", headers=lc2_headers(Authorization=basic(password="wrong"))
    )
    assert wrong.status == 401
    posted = await client.post("/api/v1/fisher/health", headers=lc2_headers())
    assert posted.status == 405
    for _ in range(50):  # the backend's first probe may still be running
        ok = await client.get("/api/v1/fisher/health", headers=lc2_headers())
        if ok.status == 200:
            break
        await asyncio.sleep(0.1)
    assert ok.status == 200
    assert ok.headers.get("Connection", "").lower() == "close"
    await client.close()
    rows = audit_rows(settings.audit.path)
    assert [(r["kind"], r["service"], r["status"]) for r in rows] == [
        ("health", "fisher", 400),
        ("health", "fisher", 401),
        ("health", "fisher", 405),
    ]


def test_server_timing_of_an_answered_call_reads_like_any_other() -> None:
    from gateway.pipeline import server_timing

    def general(t: dict[str, float]) -> str:
        return ", ".join(f"{k};dur={v * 1000:.2f}" for k, v in t.items())

    answered = {"request": 3e-5, "plan": 1e-6, "execute": 0.0038, "normalise": 1e-4, "audit": 0.5}
    refused = {"request": 3e-5, "audit": 0.002}
    reordered = dict(reversed(list(answered.items())))
    for timings in (answered, refused, reordered, {}):
        assert server_timing(timings) == general(timings)
    assert server_timing(answered).split(", ")[2] == "execute;dur=3.80"
