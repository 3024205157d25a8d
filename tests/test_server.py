"""The gateway as a process: systemd notify, graceful stop, SIGHUP, several workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support import (
    PEOPLE,
    SQLITE_QUERY,
    TEST_ENV,
    audit_rows,
    base_config,
    fisher_service,
    free_port,
    lc2_headers,
    make_sqlite_db,
    sqlite_backend,
)

ROOT = Path(__file__).resolve().parent.parent
SLOW_QUERY = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 4000000) "
    "SELECT PID, FULLNAME, SEX, BIRTH_DATE, MOO FROM FISHER_REG, (SELECT max(x) FROM c) "
    "WHERE REPLACE(REPLACE(TRIM(PID), '-', ''), ' ', '') = :personalId"
)


def write_config(tmp_path: Path, **extra: Any) -> tuple[Path, int, int]:
    port, admin = free_port(), free_port()
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    services = {
        "fisher": fisher_service("legacy", SQLITE_QUERY),
        "slow": {
            **fisher_service("legacy", SQLITE_QUERY),
            "path": "slow",
            "operation": {"query": SLOW_QUERY},
        },
    }
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db, query_timeout=20)}, services, **extra)
    cfg["listen"] = {"host": "127.0.0.1", "port": port}
    cfg["admin"] = {"host": "127.0.0.1", "port": admin}
    cfg["logging"] = {"level": "INFO"}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path, port, admin


class Gateway:
    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "-c", str(config), *args],
            cwd=ROOT,
            env={**os.environ, **TEST_ENV, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._out: str | None = None  # what it printed, once stopped

    def wait_ready(self, admin_port: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                with socket.create_connection(("127.0.0.1", admin_port), timeout=0.2):
                    pass
                import urllib.request

                with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("gateway not ready: " + self.output())

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self._out, _ = self.proc.communicate(timeout=timeout)  # also closes the pipe
        return self.proc.returncode

    def output(self) -> str:
        if self._out is None:
            if self.proc.poll() is None:
                return "(running)"
            self.stop()
        return self._out or ""


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def datagrams(sock: socket.socket, seconds: float) -> list[str]:
    out: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with contextlib.suppress(TimeoutError):
            out.extend(sock.recv(4096).decode().splitlines())
    return out


def test_systemd_ready_watchdog_and_stopping(tmp_path: Path, notify_socket: socket.socket) -> None:
    config, _, admin = write_config(tmp_path)
    gw = Gateway(
        config, env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"}
    )
    try:
        gw.wait_ready(admin)
        got = datagrams(notify_socket, 1.6)
        assert "READY=1" in got
        assert got.count("WATCHDOG=1") >= 2  # every 0.5 s, from the event loop
    finally:
        assert gw.stop() == 0
    assert "STOPPING=1" in datagrams(notify_socket, 0.3)


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(
        url, params={"personalId": PEOPLE[0]["pid"]}, headers=lc2_headers()
    ) as r:
        return r.status, r.headers.get("X-Request-Id", "")


def test_sigterm_lets_running_calls_finish(tmp_path: Path) -> None:
    config, port, admin = write_config(tmp_path)
    gw = Gateway(config)
    gw.wait_ready(admin)

    async def scenario() -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            slow = asyncio.ensure_future(_get(session, f"http://127.0.0.1:{port}/api/v1/slow"))
            await asyncio.sleep(0.3)  # the slow query is running
            gw.proc.send_signal(signal.SIGTERM)
            return await slow

    status, request_id = asyncio.run(scenario())
    assert status == 200
    assert gw.stop() == 0
    rows = audit_rows(tmp_path / "audit.sqlite")
    assert [r["request_id"] for r in rows] == [request_id]
    logs = [json.loads(line)["msg"] for line in gw.output().splitlines() if line.startswith("{")]
    assert logs.index("lc2-gateway stopping") < logs.index("lc2-gateway stopped")


def test_sighup_reloads_and_a_broken_file_is_refused(tmp_path: Path) -> None:
    config, port, admin = write_config(tmp_path)
    gw = Gateway(config)
    try:
        gw.wait_ready(admin)
        cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
        cfg["services"]["added"] = {**cfg["services"]["fisher"], "path": "added"}
        config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        gw.proc.send_signal(signal.SIGHUP)

        async def call(path: str) -> int:
            async with aiohttp.ClientSession() as s:
                return (await _get(s, f"http://127.0.0.1:{port}{path}"))[0]

        deadline = time.monotonic() + 10
        while asyncio.run(call("/api/v1/added")) != 200:
            assert time.monotonic() < deadline, "reload did not happen"
            time.sleep(0.1)
        config.write_text("services: {broken\n", encoding="utf-8")
        gw.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert asyncio.run(call("/api/v1/added")) == 200
        assert gw.proc.poll() is None
    finally:
        assert gw.stop() == 0
    assert "config reload refused" in gw.output()


def test_workers_share_the_port_the_quota_and_the_audit(tmp_path: Path) -> None:
    limit = 12
    limits = {
        "store": str(tmp_path / "quota.sqlite"),
        "quotas": [{"name": "officer-daily", "scope": "officer", "per": "day", "limit": limit}],
    }
    config, port, admin = write_config(tmp_path, limits=limits)
    gw = Gateway(config, "--workers", "2")
    try:
        gw.wait_ready(admin)
        gw.wait_ready(admin + 1)

        async def burst() -> list[int]:
            conn = aiohttp.TCPConnector(force_close=True)  # new connections: both workers
            async with aiohttp.ClientSession(connector=conn) as s:
                url = f"http://127.0.0.1:{port}/api/v1/fisher"
                return [r[0] for r in await asyncio.gather(*(_get(s, url) for _ in range(30)))]

        statuses = asyncio.run(burst())
        assert statuses.count(200) == limit and statuses.count(429) == 30 - limit
    finally:
        assert gw.stop() == 0
    rows = audit_rows(tmp_path / "audit.sqlite")
    assert len(rows) == 30
    ready = [e for e in _json_lines(gw.output()) if e.get("msg") == "lc2-gateway ready"]
    assert sorted(e["worker"] for e in ready) == [0, 1]


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out
