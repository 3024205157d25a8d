"""Reload you can trust: the right file, systemd told of the outcome, every change audited."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.app import build_app
from gateway.cli import main
from gateway.config.build import load_settings
from gateway.runtime import Runtime
from tests.gateway_process import GatewayProcess
from tests.support import (
    SQLITE_QUERY,
    TEST_ENV,
    MakeClient,
    audit_rows,
    base_config,
    fisher_service,
    free_port,
    make_sqlite_db,
    sqlite_backend,
)


def _config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    db = tmp_path / "legacy.sqlite"
    if not db.exists():
        make_sqlite_db(db)
    services = {"fisher": fisher_service("legacy", SQLITE_QUERY)}
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, services, **extra)
    cfg["consumers"]["lc2"].update(services=["fisher"], offices=["00023"])
    return cfg


def _write(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _grant_farms(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg["services"]["farms"] = {**fisher_service("legacy", SQLITE_QUERY), "path": "farms"}
    cfg["consumers"]["lc2"]["services"] = ["fisher", "farms"]
    cfg["consumers"]["lc2"]["offices"] = ["00023", "00101"]
    return cfg


async def test_reload_tells_systemd_it_is_reloading_and_the_outcome(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    cfg = _config(tmp_path)
    path = _write(tmp_path / "gateway.yaml", cfg)
    rt = Runtime(load_settings(path))
    await aiohttp_client(build_app(rt))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(tmp_path / "notify"))
        systemd.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))

        _write(path, _grant_farms(cfg))
        assert (await rt.reload(path))[0]
        reloading = systemd.recv(4096).decode().split("\n")
        assert reloading[0] == "RELOADING=1" and reloading[1].startswith("MONOTONIC_USEC=")
        assert int(reloading[1].split("=")[1]) > 0
        ready = systemd.recv(4096).decode().split("\n")
        assert ready[0] == "READY=1" and ready[1].startswith("STATUS=reloaded: config version")

        path.write_text("services: [unclosed\n", encoding="utf-8")
        assert not (await rt.reload(path))[0]
        assert systemd.recv(4096).decode().startswith("RELOADING=1\n")
        refused = systemd.recv(4096).decode().split("\n")
        assert refused[0] == "READY=1" and refused[1].startswith("STATUS=reload refused: ")


def test_reload_of_another_file_is_refused_diff_shows_the_change_and_the_trail_has_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    port, admin = free_port(), free_port()
    cfg = _config(tmp_path)
    cfg["listen"] = {"host": "127.0.0.1", "port": port}
    cfg["admin"] = {"host": "127.0.0.1", "port": admin}
    path = _write(tmp_path / "gateway.yaml", cfg)
    old_version = load_settings(path, create_key_file=False).version
    copy = _write(tmp_path / "copy.yaml", _grant_farms(json.loads(json.dumps(cfg))))
    with GatewayProcess(path, admin, env=TEST_ENV):
        assert main(["reload", "-c", str(copy)]) == 1
        out, err = capsys.readouterr()
        assert f"refused: the gateway runs {path}, not {copy}" in err and out == ""

        assert main(["diff", "-c", str(copy)]) == 0
        out = capsys.readouterr().out
        assert f"running: {path} (config version {old_version})" in out
        assert "note: the gateway runs another file" in out
        assert "services:\n  + farms\n" in out
        assert "grants:\n  ~ lc2: services +farms, offices +00101\n" in out
        assert "backends:" not in out

        path.write_text(copy.read_text(encoding="utf-8"), encoding="utf-8")
        new_version = load_settings(path, create_key_file=False).version
        assert main(["diff", "--json", "-c", str(path)]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["running"]["version"] == old_version and doc["file"]["version"] == new_version
        assert {(c["section"], c["name"], c["op"]) for c in doc["changes"]} == {
            ("services", "farms", "+"),
            ("grants", "lc2", "~"),
        }
        assert main(["reload", "-c", str(path)]) == 0
        assert "config version" in capsys.readouterr().out
        assert main(["diff", "-c", str(path)]) == 0
        assert "no change to services, grants or backends" in capsys.readouterr().out
    [rec] = [r for r in audit_rows(tmp_path / "audit.sqlite") if r["kind"] == "reload"]
    params = json.loads(rec["params"])
    assert params["old_version"] == old_version and params["new_version"] == new_version
    assert params["grants"] == "~lc2 (services +farms, offices +00101)"
    assert params["services"] == "+farms" and params["backends"] == ""
    assert rec["method"] == "RELOAD" and rec["path"] == str(path) and rec["status"] == 200
    assert main(["audit", "verify", "-c", str(path)]) in (0, 3)  # the record is in the chain
    capsys.readouterr()
    assert main(["audit", "search", "-c", str(path), "--kind", "reload", "--format", "jsonl"]) == 0
    [found] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert found["request_id"] == rec["request_id"]
