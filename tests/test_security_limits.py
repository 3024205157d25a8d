"""State files private whatever the umask; connections capped; every request audited or refused
as documented (bodies, CONNECT, OPTIONS *)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from gateway.app import build_admin_app, build_app, build_runtime
from tests.live import live_config, live_gateway
from tests.support import PEOPLE, MakeClient, audit_rows, lc2_headers, settings_from
from tests.test_security_input import assert_envelope, split

PID = PEOPLE[0]["pid"]


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _readable_file(path: Path) -> None:
    path.touch()
    path.chmod(0o644)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_state_files_are_created_private_whatever_the_umask(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    cfg = live_config(tmp_path)
    cfg["audit"] = {"path": str(tmp_path / "state" / "audit.sqlite"), "key_file": "audit.key"}
    cfg["limits"] = {"store": str(tmp_path / "state" / "quota.sqlite")}
    with _umask(0o022):
        rt = build_runtime(settings_from(cfg, base_dir=tmp_path))
        client = await aiohttp_client(build_app(rt))
        await aiohttp_client(build_admin_app(rt))
        resp = await client.get("/api/v1/fisher", params={"personalId": PID}, headers=lc2_headers())
        assert resp.status == 200
        state = tmp_path / "state"
        files = [
            state / "audit.sqlite",
            state / "audit.sqlite-wal",
            state / "quota.sqlite",
            state / "quota.sqlite-wal",
            state / "admin-token",
            tmp_path / "audit.key",
        ]
        for path in files:
            assert path.exists(), path
            assert _mode(path) == 0o600, (path, oct(_mode(path)))


async def test_a_readable_audit_store_is_reported_at_start(
    tmp_path: Path, aiohttp_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = live_config(tmp_path)
    _readable_file(Path(cfg["audit"]["path"]))  # as a gateway started by hand left it
    with caplog.at_level(logging.ERROR, logger="lc2_gateway.audit"):
        await aiohttp_client(build_app(build_runtime(settings_from(cfg))))
    assert any(
        "readable by others" in r.getMessage() and "0644" in r.getMessage() for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


async def _open(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _was_cut(reader: asyncio.StreamReader) -> bool:
    """True if the server closed the connection at once; False if it is still open."""
    try:
        data = await asyncio.wait_for(reader.read(1), 1.0)
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return data == b""


def _metric(text: str, reason: str) -> float:
    key = f'lc2_gateway_connections_rejected_total{{reason="{reason}"}} '
    for line in text.splitlines():
        if line.startswith(key):
            return float(line[len(key) :])
    raise AssertionError(f"no {key} in the metrics")


async def test_connections_are_capped_in_total_and_per_address(tmp_path: Path) -> None:
    cfg = live_config(tmp_path)
    cfg["listen"].update(max_connections=50, max_connections_per_address=20)
    async with live_gateway(cfg) as gw:
        opened: list[tuple[str, asyncio.StreamReader, asyncio.StreamWriter]] = []
        for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            for _ in range(25):
                reader, writer = await _open(gw.port, source)
                opened.append((source, reader, writer))
                await asyncio.sleep(0)  # accepted in the order opened
        cut = await asyncio.gather(*(_was_cut(r) for _, r, _ in opened))
        by_source = {
            s: sum(1 for (src, _, _), c in zip(opened, cut, strict=True) if src == s and not c)
            for s in ("127.0.0.1", "127.0.0.2", "127.0.0.3")
        }
        assert by_source == {"127.0.0.1": 20, "127.0.0.2": 20, "127.0.0.3": 10}
        async with aiohttp.ClientSession() as s, s.get(f"{gw.admin_url}/metrics") as resp:
            text = await resp.text()
        assert _metric(text, "address_limit") == 10
        assert _metric(text, "connection_limit") == 15
        for _, _, writer in opened:
            writer.close()
        await asyncio.sleep(0.2)
        # the places are given back: a new connection is served
        reader, writer = await _open(gw.port, "127.0.0.1")
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        status, headers, _ = split(await asyncio.wait_for(reader.read(), 5))
        # and a health call closes its connection: polling keeps none open
        assert status == 200 and headers.get("connection", "").lower() == "close"
        writer.close()


@pytest.mark.parametrize(
    ("target", "method"),
    [("/health", "GET"), ("/api/v1/nothing", "GET"), ("/api/v1/fisher", "POST")],
)
async def test_a_body_anywhere_is_refused_108_and_closes(
    tmp_path: Path, target: str, method: str
) -> None:
    async with live_gateway(live_config(tmp_path)) as gw:
        head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        # a second request behind it on the same connection is never answered
        raw = await gw.raw(head.encode() + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.count(b"HTTP/1.1 ") == 1, raw
        status, headers, body = split(raw)
        assert status == 400 and headers.get("connection", "").lower() == "close"
        assert_envelope(body, "108")
    rows = audit_rows(tmp_path / "audit.sqlite")
    assert [(r["status"], r["code"]) for r in rows] == [(400, "108")]


async def test_connect_and_options_star_are_refused_as_json_and_audited(tmp_path: Path) -> None:
    cfg = live_config(tmp_path)
    async with live_gateway(cfg) as gw:
        # what follows CONNECT is a tunnel's bytes: a body, refused 108 with a close
        expected = {
            "CONNECT example.com:443 HTTP/1.1": (400, "108"),
            "OPTIONS * HTTP/1.1": (404, "201"),
        }
        for line, (want_status, want_code) in expected.items():
            raw = await gw.raw(f"{line}\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            status, headers, body = split(raw)
            assert status == want_status, raw
            assert headers["content-type"].startswith("application/json")
            assert headers["x-content-type-options"] == "nosniff"
            assert_envelope(body, want_code)
    rows = audit_rows(tmp_path / "audit.sqlite")
    assert sorted(r["method"] for r in rows) == ["CONNECT", "OPTIONS"]


async def test_the_allow_list_applies_to_options_star_first(tmp_path: Path) -> None:
    cfg = live_config(tmp_path)
    cfg["security"] = {"allow_from": ["203.0.113.0/24"]}
    async with live_gateway(cfg) as gw:
        raw = await gw.raw(b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, _, body = split(raw)
        assert status == 403
        assert_envelope(body, "106")
