"""The command line as an operator meets it: usage errors and a gateway that can not start."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from tests.gateway_process import CLI, ROOT
from tests.support import (
    SQLITE_QUERY,
    TEST_ENV,
    base_config,
    fisher_service,
    free_port,
    make_sqlite_db,
    sqlite_backend,
)

COMMANDS = [
    "serve",
    "check",
    "reload",
    "maintenance",
    "passwd",
    "routes",
    "audit",
    "report",
    "describe",
    "openapi",
]


@pytest.mark.parametrize(
    "argv",
    [[], ["nope"], ["check", "-c", "x.yaml", "--bogus"], ["serve", "-c", "x", "extra"]],
)
def test_every_usage_message_names_every_subcommand(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    usage = capsys.readouterr().err
    for name in COMMANDS[0] + COMMANDS[1]:
        assert name in usage, (name, usage)


def _config(tmp_path: Path, port: int, admin: int) -> Path:
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    cfg = base_config(
        tmp_path, {"legacy": sqlite_backend(db)}, {"fisher": fisher_service("legacy", SQLITE_QUERY)}
    )
    cfg["listen"] = {"host": "127.0.0.1", "port": port}
    cfg["admin"] = {"host": "127.0.0.1", "port": admin}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def _serve(config: Path, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *CLI, "serve", "-c", str(config)],
        cwd=ROOT,
        env={**os.environ, **TEST_ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_port_in_use_is_one_clear_line_and_exit_3(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _serve(_config(tmp_path, port, free_port()))
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("lc2-gateway:")]
    assert lines == [
        f"lc2-gateway: cannot open the LC2 listener on 127.0.0.1:{port}: Address already in use "
        "(another process listens there: choose another port or stop it)"
    ]


def test_missing_permission_is_one_clear_line_and_exit_3(tmp_path: Path) -> None:
    # a port below 1024 without CAP_NET_BIND_SERVICE (root gives it up for the child)
    prefix = ("setpriv", "--bounding-set", "-net_bind_service") if os.geteuid() == 0 else ()
    done = _serve(_config(tmp_path, 1, free_port()), prefix)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert (
        "lc2-gateway: cannot open the LC2 listener on 127.0.0.1:1: Permission denied "
        "(ports below 1024 need CAP_NET_BIND_SERVICE)"
    ) in done.stderr
