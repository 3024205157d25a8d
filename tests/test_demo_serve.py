"""The README's demo, run as an operator runs it: a real process, real HTTP, SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import basic, free_port

ROOT = Path(__file__).resolve().parent.parent


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, object], str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read()), resp.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers["Content-Type"]


def test_demo_serves_lc2_calls_and_stops_cleanly(tmp_path: Path) -> None:
    conf = tmp_path / "config"
    shutil.copytree(ROOT / "config" / "demo", conf / "demo")
    port, admin = free_port(), free_port()
    text = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8")
    text = text.replace("port: 8080", f"port: {port}").replace("port: 9108", f"port: {admin}")
    (conf / "demo.yaml").write_text(text, encoding="utf-8")
    pids = subprocess.run(
        [sys.executable, str(ROOT / "config" / "demo" / "make_fisheries_sql.py"), "--pids"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    pids = [line.split()[0] for line in pids if line.strip()]
    known = pids[0]

    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "-c", str(conf / "demo.yaml")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if _get(f"http://127.0.0.1:{admin}/ready")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "demo did not become ready"
            time.sleep(0.1)

        headers = {
            "Authorization": basic(password="demo-password"),
            "X-Office-Request": "00023",
            "X-User-Request": "1101700203450",
        }
        status, body, ctype = _get(
            f"http://127.0.0.1:{port}/api/v1/fisher?personalId={known}", headers
        )
        assert status == 200 and ctype == "application/json; charset=utf-8"
        row = body["data"][0]  # type: ignore[index]
        assert row["personalId"] == known
        assert row["dateOfBirth"] == "1984-02-29"  # 29 Feb 2527 BE
        assert all("\u0e00" <= ch <= "\u0e7f" for ch in row["firstName"])
        farms = _get(f"http://127.0.0.1:{port}/api/v1/aqua-farm?personalId={pids[2]}", headers)
        assert farms[0] == 200 and len(farms[1]["data"]) == 10  # type: ignore[arg-type]
        status, body, _ = _get(f"http://127.0.0.1:{port}/api/v1/fisher?personalId={known}")
        assert status == 400 and body["responseCode"] == "101"
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read()
        assert b"lc2_gateway_requests_total" in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    logs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert any(entry["msg"] == "lc2-gateway stopping" for entry in logs)
    assert known not in out  # no citizen ID in the logs
    with sqlite3.connect(tmp_path / "var" / "demo-audit.sqlite") as db:
        assert db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 3
    db.close()
    assert (tmp_path / "var" / "demo-audit.key").stat().st_mode & 0o077 == 0
