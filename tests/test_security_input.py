"""Hostile input against a live gateway on loopback: floods, malformed HTTP, slowloris, paths.

The gateway runs in-process through :func:`gateway.server.serve`, with the
listener it runs in production (size limits, request-head deadline, its own
answer to malformed requests).  Requests the client library would refuse or
repair are written to raw sockets.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.live import HEADER_TIMEOUT, live_config, live_gateway
from tests.support import (
    PEOPLE,
    SQLITE_QUERY,
    audit_rows,
    fisher_service,
    lc2_headers,
)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def split(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


def request_bytes(
    target: str, headers: Mapping[str, str] | None = None, extra: bytes = b""
) -> bytes:
    h = {"Host": "127.0.0.1", "Connection": "close", **lc2_headers(), **(headers or {})}
    lines = [f"GET {target} HTTP/1.1", *(f"{k}: {v}" for k, v in h.items())]
    return ("\r\n".join(lines) + "\r\n").encode() + extra + b"\r\n"


def assert_envelope(body: bytes, code: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(body)
    assert doc["responseCode"] == code, doc
    assert doc["requestId"] and doc["messageTh"]
    return doc


# --- size limits and floods ------------------------------------------------------------------


async def test_limits_refuse_floods_with_the_envelope_and_echo_nothing(tmp_path: Path) -> None:
    pid = PEOPLE[0]["pid"]
    async with live_gateway(live_config(tmp_path)) as gw:
        cases = {
            # a URL over max_line_size, carrying a citizen ID the answer must not quote
            "url": request_bytes(f"/api/v1/fisher?personalId={pid}&pad={'a' * 2000}"),
            # one header over max_field_size
            "field": request_bytes("/api/v1/fisher", {"X-Pad": pid + "b" * 2000}),
            # more headers than max_headers
            "count": request_bytes(
                f"/api/v1/fisher?personalId={pid}", {f"X-Flood-{i}": "1" for i in range(60)}
            ),
        }
        for name, data in cases.items():
            status, headers, body = split(await gw.raw(data))
            assert status == 400, name
            doc = assert_envelope(body, "108")
            assert set(doc) == {"responseCode", "message", "messageTh", "requestId", "error"}
            assert pid.encode() not in body and b"aaaa" not in body, name
            assert headers["content-type"] == "application/json; charset=utf-8"
            for k, v in SECURITY_HEADERS.items():
                assert headers[k.lower()] == v, (name, k)
            assert headers["server"] == "lc2-gateway"
        # just under the limits is served
        ok = request_bytes(
            f"/api/v1/fisher?personalId={pid}", {f"X-Fine-{i}": "1" for i in range(10)}
        )
        status, _, body = split(await gw.raw(ok))
        assert status == 200 and json.loads(body)["data"]
        async with aiohttp.ClientSession() as s, s.get(f"{gw.admin_url}/metrics") as r:
            metrics = await r.text()
        assert 'lc2_gateway_connections_rejected_total{reason="malformed"} 3.0' in metrics


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /api/v1/fisher HTTP/1.1\nHost: x\n\n",  # bare LF
        b"GET /api/v1/fisher HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /api/v1/fisher HTTP/1.1\r\nHost: x\r\nX-Bad\x00: 1\r\n\r\n",
        b"GET /api/v1/fisher HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
        b"GET /api/v1/fisher HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
        # request smuggling: both framings at once
        b"GET /api/v1/fisher HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /api/v1/fisher HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40) + b"\r\n\r\n",  # TLS hello
    ],
    ids=[
        "garbage",
        "bare-lf",
        "version",
        "nul-name",
        "nul-value",
        "space-name",
        "smuggle",
        "negative-length",
        "tls-hello",
    ],
)
async def test_malformed_requests_get_400_108(tmp_path: Path, data: bytes) -> None:
    async with live_gateway(live_config(tmp_path)) as gw:
        raw = await gw.raw(data)
        status, headers, body = split(raw)
        assert status == 400
        assert_envelope(body, "108")
        assert headers["server"] == "lc2-gateway" and "python" not in raw.decode("latin-1").lower()
        # and the listener still serves
        ok, _, _ = split(
            await gw.raw(request_bytes(f"/api/v1/fisher?personalId={PEOPLE[0]['pid']}"))
        )
        assert ok == 200


async def test_a_body_is_refused_and_never_drained(tmp_path: Path) -> None:
    settings_dir = tmp_path
    async with live_gateway(live_config(settings_dir)) as gw:
        pid = PEOPLE[0]["pid"]
        head = (
            f"GET /api/v1/fisher?personalId={pid} HTTP/1.1\r\nHost: x\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in lc2_headers().items())
            + "Content-Length: 100000000\r\n\r\n"
        ).encode()
        t0 = time.monotonic()
        status, headers, body = split(await gw.raw(head + b"x" * 1000))
        assert status == 400 and assert_envelope(body, "108")["detail"]
        assert headers.get("connection", "").lower() == "close"
        assert time.monotonic() - t0 < 1.0  # answered and closed at once: 100 MB never read
        # a POST with a large body is refused for its body the same way, not read
        post = head.replace(b"GET ", b"POST ", 1)
        status, headers, _ = split(await gw.raw(post + b"y" * 1000))
        assert status == 400 and headers.get("connection", "").lower() == "close"
    rows = audit_rows(settings_dir / "audit.sqlite")
    assert [(r["status"], r["code"]) for r in rows] == [(400, "108"), (400, "108")]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"])
async def test_only_get_and_head(tmp_path: Path, method: str) -> None:
    async with live_gateway(live_config(tmp_path)) as gw:
        data = request_bytes(f"/api/v1/fisher?personalId={PEOPLE[0]['pid']}").replace(
            b"GET ", method.encode() + b" ", 1
        )
        status, headers, body = split(await gw.raw(data))
        if method == "FOO":  # not an HTTP method at all: the parser refuses it
            assert status == 400 and assert_envelope(body, "108")
        else:
            assert status == 405 and headers["allow"] == "GET, HEAD"
            assert_envelope(body, "203")
        head = request_bytes(f"/api/v1/fisher?personalId={PEOPLE[0]['pid']}").replace(
            b"GET ", b"HEAD ", 1
        )
        status, _, body = split(await gw.raw(head))
        assert status == 200 and body == b""


# --- slowloris ---------------------------------------------------------------------------------


async def _trickle(port: int, seconds: float) -> float | None:
    """Send a request head one byte a second; when the server closes, how long it took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    head = b"GET /api/v1/fisher?personalId=1 HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    try:
        for byte in head:
            writer.write(bytes([byte]))
            try:
                await writer.drain()
                got = await asyncio.wait_for(reader.read(1024), 1.0)
            except TimeoutError:
                if time.monotonic() - t0 > seconds:
                    return None
                continue
            except OSError:
                return time.monotonic() - t0
            if got == b"":
                return time.monotonic() - t0
        return None
    finally:
        writer.close()


async def test_slowloris_is_dropped_on_time_while_others_are_served(tmp_path: Path) -> None:
    async with live_gateway(live_config(tmp_path)) as gw:
        pid = PEOPLE[0]["pid"]
        attackers = [asyncio.create_task(_trickle(gw.port, 8)) for _ in range(40)]
        # a connection that never sends a byte is dropped as well
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", gw.port)
        worst = 0.0
        async with aiohttp.ClientSession() as s:
            for _ in range(10):
                t0 = time.monotonic()
                async with s.get(
                    f"{gw.url}/api/v1/fisher", params={"personalId": pid}, headers=lc2_headers()
                ) as r:
                    assert r.status == 200
                worst = max(worst, time.monotonic() - t0)
                await asyncio.sleep(0.1)
        idle_closed = await asyncio.wait_for(idle_reader.read(), HEADER_TIMEOUT + 2)
        idle_writer.close()
        dropped = await asyncio.gather(*attackers)
        async with aiohttp.ClientSession() as s, s.get(f"{gw.admin_url}/metrics") as r:
            metrics = await r.text()
    assert worst < 0.5, f"legitimate calls slowed to {worst:.2f}s during the attack"
    assert idle_closed == b""
    assert all(d is not None for d in dropped), "a slow client was never dropped"
    assert max(d for d in dropped if d is not None) < HEADER_TIMEOUT + 1.5
    assert min(d for d in dropped if d is not None) >= HEADER_TIMEOUT - 0.1
    assert 'lc2_gateway_connections_rejected_total{reason="header_timeout"} 41.0' in metrics


def _rows_counted_in(seconds: float) -> int:
    """How far SQLite's recursive count gets in ``seconds`` on this machine, now."""
    db = sqlite3.connect(":memory:")
    t0 = time.monotonic()
    db.execute(f"{_COUNT} SELECT max(x) FROM c", (500_000,)).fetchall()
    db.close()
    return int(500_000 / (time.monotonic() - t0) * seconds)


_COUNT = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?)"


async def test_a_slow_backend_call_is_not_cut_by_the_head_deadline(tmp_path: Path) -> None:
    # SQLite has no sleep: count for about twice the header deadline, measured here
    # (a fixed count took 3 s on a quiet machine and over 10 s on a busy one)
    rows = _rows_counted_in(2 * HEADER_TIMEOUT)
    slow = {
        **fisher_service("legacy", SQLITE_QUERY),
        "path": "slow",
        "operation": {
            "query": _COUNT.replace("?", str(rows))
            + " SELECT max(x) AS PID FROM c WHERE :personalId <> ''"
        },
    }
    cfg = live_config(tmp_path, services={"slow": slow})
    cfg["backends"]["legacy"]["query_timeout"] = 120
    async with live_gateway(cfg) as gw, aiohttp.ClientSession() as s:
        t0 = time.monotonic()
        async with s.get(
            f"{gw.url}/api/v1/slow", params={"personalId": PEOPLE[0]["pid"]}, headers=lc2_headers()
        ) as r:
            assert r.status == 200
        took = time.monotonic() - t0
    assert took > HEADER_TIMEOUT, f"the query took only {took:.2f}s: the test proves nothing"


# --- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//api//v1/fisher",
        "/api//v1/fisher",
        "/api/v1/x/../fisher",
        "/api/v1/./fisher",
        "/api/v1/fisher/",
        "/api/v1/fisher/.",
        "/api/v1/fisher%2Fsandbox",
        "/api/v1/fisher%2fsandbox",
        "/api/v1/%2e%2e/v1/fisher",
        "/api/v1/%2E/fisher",
        "/api/v1/fisher%00",
        "/api/v1/fisher\\..\\fisher",
        "/api/v1/vessel/..%2F..%2Fhealth",
        "/api/v1/vessel/%2e%2e",
        "/api/v1/vessel/..",
        "/api/v1/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
    ],
)
async def test_non_canonical_paths_reach_no_service(tmp_path: Path, target: str) -> None:
    cfg = live_config(tmp_path)
    async with live_gateway(cfg) as gw:
        sep = "&" if "?" in target else "?"
        status, _, body = split(
            await gw.raw(request_bytes(f"{target}{sep}personalId={PEOPLE[0]['pid']}"))
        )
    assert status in (400, 404), (target, status)
    assert b"data" not in body and b"root:" not in body
    rows = audit_rows(tmp_path / "audit.sqlite")
    assert len(rows) == 1 and rows[0]["status"] == status and rows[0]["rows"] == 0


async def test_canonical_paths_are_served(tmp_path: Path) -> None:
    async with live_gateway(live_config(tmp_path)) as gw:
        pid = PEOPLE[0]["pid"]
        for target, code in (
            (f"/api/v1/fisher?personalId={pid}", "000"),
            (f"/api/v1/fisher/sandbox?personalId={pid}", "000"),
            # a text path parameter may be percent-encoded Thai: that is not a separator
            ("/api/v1/vessel/%E0%B8%81%E0%B8%82", "000"),
            (f"/api/v1/fisher?personalId={pid}&personalId={pid}", "104"),
            ("/api/v1/fisher?personalId=1%27%20OR%20%271%27=%271", "104"),
        ):
            status, _, body = split(await gw.raw(request_bytes(target)))
            assert json.loads(body)["responseCode"] == code, (target, body)
            assert status == (200 if code == "000" else 400)


async def test_security_headers_on_every_response(tmp_path: Path) -> None:
    async with live_gateway(live_config(tmp_path)) as gw, aiohttp.ClientSession() as s:
        pid = PEOPLE[0]["pid"]
        calls = [
            (f"{gw.url}/api/v1/fisher?personalId={pid}", lc2_headers(), 200),
            (f"{gw.url}/api/v1/fisher?personalId=1", lc2_headers(), 400),
            (f"{gw.url}/api/v1/fisher?personalId={pid}", lc2_headers(Authorization="Basic x"), 401),
            (f"{gw.url}/nothing", {}, 404),
            (f"{gw.url}/health", {}, 200),
            (f"{gw.url}/api/v1/fisher/health", {}, 200),
            (f"{gw.admin_url}/metrics", {}, 200),
            (f"{gw.admin_url}/openapi.json", {}, 200),
            (f"{gw.admin_url}/live", {}, 200),
        ]
        for url, headers, status in calls:
            async with s.get(url, headers=headers) as r:
                assert r.status == status, url
                for k, v in SECURITY_HEADERS.items():
                    assert r.headers.get(k) == v, (url, k)
                assert "default-src 'none'" in r.headers["Content-Security-Policy"]
                assert r.headers["Server"] == "lc2-gateway", url
                assert "Strict-Transport-Security" not in r.headers  # plain HTTP here
        async with s.post(f"{gw.url}/api/v1/fisher", headers=lc2_headers()) as r:
            assert r.status == 405 and r.headers["X-Frame-Options"] == "DENY"
