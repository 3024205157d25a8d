"""The operator guide's walkthroughs, run as a new operator would follow them.

Only what docs/operator-guide.md says is done: its marked code blocks
(``<!-- walkthrough: NAME -->`` before a fence) are taken from the guide and
run as written: the shell lines with bash (``lc2-gateway`` being this
checkout's command), the SQL on the practice copy of the demo database, the
YAML pasted where the guide says, the curl commands with curl, and the
answers compared with the JSON the guide shows.  Three things differ from a
person at a terminal, and only these: free ports instead of 8080/9108/8090
(another test may hold those), the gateway started in the background instead
of in a second terminal, and the stand-in vessel service started in-process.

The Thai guide must hold the very same blocks, so both languages teach what
is tested.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from tests.gateway_process import CLI, ROOT, GatewayProcess
from tests.soap_server import running_soap_server
from tests.support import free_port

GUIDE = ROOT / "docs" / "operator-guide.md"
GUIDE_TH = ROOT / "docs" / "operator-guide.th.md"
_BLOCK = re.compile(r"<!-- walkthrough: ([\w-]+) -->\n```(\w+)\n(.*?)```", re.S)
VESSEL_PASSWORD = "vessel-practice-pw"


def blocks(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for m in _BLOCK.finditer(text):
        assert m.group(1) not in found, f"{path.name}: block {m.group(1)} twice"
        found[m.group(1)] = m.group(3)
    return found


def test_both_guides_hold_the_same_steps() -> None:
    english, thai = blocks(GUIDE), blocks(GUIDE_TH)
    assert english, "no walkthrough blocks in the guide"
    assert thai == english


class Operator:
    """Runs the guide's commands in its working directory, with its environment."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.cwd = home
        bindir = Path(sys.executable).parent
        self.env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}", **env}
        self.env["PYTHONPATH"] = str(ROOT)  # `lc2-gateway` from this checkout

    def sh(self, line: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """One shell line of the guide; ``lc2-gateway`` is the checkout's command."""
        words = shlex.split(line)
        if words and words[0] == "lc2-gateway":
            argv = [*CLI, *words[1:]]
            r = subprocess.run(
                argv, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60
            )
        else:
            r = subprocess.run(
                ["bash", "-e", "-c", line],
                cwd=self.cwd,
                env=self.env,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert r.returncode == 0, f"$ {line}\n{r.stdout}\n{r.stderr}"
        if words and words[0] == "cd":
            self.cwd = self.cwd / words[1]
        return r


def commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]


def on_port(block: str, default: int, port: int) -> str:
    assert f"127.0.0.1:{default}" in block, block
    return block.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")


def insert_under(config: Path, key: str, snippet: str) -> None:
    """Paste ``snippet`` right under the top-level ``key:`` line, as the guide says."""
    lines = config.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.rstrip() == f"{key}:")
    lines.insert(at + 1, snippet)
    config.write_text("".join(lines), encoding="utf-8")


def paste_parts(draft: str) -> tuple[str, str]:
    """A scaffold draft's entries under ``lookups:`` and under ``services:``, comments kept."""
    parts: dict[str, list[str]] = {"lookups": [], "services": []}
    current: list[str] | None = None
    for line in draft.splitlines(keepends=True):
        key = line.rstrip().removesuffix(":")
        if not line.startswith((" ", "#")) and key in parts:
            current = parts[key]
        elif current is not None:
            current.append(line)
    return "".join(parts["lookups"]), "".join(parts["services"])


def append_under_services(config: Path, snippet: str) -> None:
    text = config.read_text(encoding="utf-8")
    last_top = [m.group(1) for m in re.finditer(r"^([a-z_]+):", text, re.M)][-1]
    assert last_top == "services", "the demo's services: must be its last top-level key"
    config.write_text(text.rstrip("\n") + "\n\n" + snippet, encoding="utf-8")


@pytest.fixture
def practice(tmp_path: Path) -> tuple[Operator, int, int]:
    """The guide's practice copy of the demo, started once so its database exists."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "config", source / "config", ignore=shutil.ignore_patterns("var"))
    op = Operator(source, {})
    for line in commands(blocks(GUIDE)["practice-copy"]):
        if line.startswith("lc2-gateway serve"):
            continue  # started below on free ports
        op.sh(line)
    config = op.cwd / "config" / "demo.yaml"
    port, admin = free_port(), free_port()
    text = config.read_text(encoding="utf-8")
    text = text.replace("port: 8080", f"port: {port}").replace("port: 9108", f"port: {admin}")
    config.write_text(text, encoding="utf-8")
    with GatewayProcess(config, admin):  # the first start builds the legacy database
        pass
    assert (op.cwd / "var" / "demo-fisheries.sqlite").exists()
    return op, port, admin


def call(op: Operator, block: str, port: int, password: str = "demo-password") -> object:
    assert "demo-password" in block  # the demo consumer's password, as the guide shows it
    r = op.sh(on_port(block, 8080, port).replace("demo-password", password))
    return json.loads(r.stdout)


def test_sql_service_walkthrough(practice: tuple[Operator, int, int]) -> None:
    op, port, admin = practice
    guide = blocks(GUIDE)
    config = op.cwd / "config" / "demo.yaml"

    # 1. the legacy table, loaded with the guide's own command
    (op.cwd / "gear-licence.sql").write_text(guide["gear-table"], encoding="utf-8")
    for line in commands(guide["gear-table-load"]):
        op.sh(line)
    with sqlite3.connect(op.cwd / "var" / "demo-fisheries.sqlite") as db:
        assert db.execute("SELECT count(*) FROM GEAR_LICENCE").fetchone() == (3,)
    db.close()

    # 2. the draft from scaffold, pasted where the guide says; check and profile it
    for line in commands(guide["gear-scaffold"]):
        op.sh(line)
    draft = (op.cwd / "gear-draft.yaml").read_text(encoding="utf-8")
    lookups, services = paste_parts(draft)
    assert "OWNER_PID IN (:personalId, :personalId__dashed, :personalId__padded)" in services
    assert "gearDesc: {column: GEAR_CODE, transform: [trim, {zfill: 2}, {lookup: " in services
    insert_under(config, "lookups", lookups)
    append_under_services(config, services)
    outputs = [op.sh(line).stdout for line in commands(guide["gear-profile"])]
    assert "fisheries (sqlite): OK" in outputs[0]
    assert "3 rows (all rows)" in outputs[1] and "| issueDate | 3 | 0 | 0 |" in outputs[1]
    assert "Citizens (`OWNER_PID`): 2 distinct, 1 with several rows" in outputs[1]
    assert "<svg" in (op.cwd / "gear-profile.html").read_text(encoding="utf-8")
    assert "3210100118901" not in "".join(outputs) + draft  # no citizen in clear

    # 3. the YAML, pasted where the guide says
    insert_under(config, "lookups", guide["gear-lookup"])
    append_under_services(config, guide["gear-service"])

    # 4. check, check --connect, routes, describe: every command succeeds
    outputs = [op.sh(line).stdout for line in commands(guide["gear-check"])]
    assert "gearLicence: GET /api/v1/gear-licence" in outputs[0]
    assert "fisheries (sqlite): OK" in outputs[1]
    assert "/api/v1/gear-licence/sandbox" in outputs[2]
    pack = (op.cwd / "gear-licence.html").read_text(encoding="utf-8")
    assert "ใบอนุญาตใช้เครื่องมือทำการประมง" in pack and "https://lc2.example.go.th" in pack

    # 5. serve, and call it the way LC2 does
    with GatewayProcess(config, admin) as gw:
        assert call(op, guide["gear-call"], port) == json.loads(guide["gear-answer"])
        sandbox = call(op, guide["gear-sandbox-call"], port)
        assert sandbox == json.loads(guide["gear-sandbox-answer"])
    assert "3210100118901" not in gw.output  # the access log names no citizen
    calls = [e for e in gw.logs() if e.get("msg") == "call"]
    assert [(e["service"], e["kind"], e["status"]) for e in calls] == [
        ("gearLicence", "data", 200),
        ("gearLicence", "sandbox", 200),
    ]


def test_soap_service_walkthrough(practice: tuple[Operator, int, int]) -> None:
    op, port, admin = practice
    guide = blocks(GUIDE)
    config = op.cwd / "config" / "demo.yaml"
    assert (op.cwd / "config" / "vessels" / "vessel-licence.wsdl").exists()
    start = commands(guide["vessel-standin"])
    assert start == [f"python -m tests.soap_server --port 8090 --user lc2gw:{VESSEL_PASSWORD}"]
    op.env["VESSEL_WS_PASSWORD"] = VESSEL_PASSWORD  # the guide's `export`
    assert f"VESSEL_WS_PASSWORD={VESSEL_PASSWORD}" in guide["vessel-env"]

    with running_soap_server(users={"lc2gw": VESSEL_PASSWORD}) as vendor:
        vendor_port = int(vendor.url.rsplit(":", 1)[1].strip("/"))
        insert_under(config, "backends", on_port(guide["vessel-backend"], 8090, vendor_port))
        append_under_services(config, guide["vessel-service"])
        outputs = [op.sh(line).stdout for line in commands(guide["vessel-check"])]
        assert "vesselLicence: GET /api/v1/vessel-licence" in outputs[0]
        assert "vessels (soap): OK" in outputs[1] and "fisheries (sqlite): OK" in outputs[1]
        with GatewayProcess(config, admin, env={"VESSEL_WS_PASSWORD": VESSEL_PASSWORD}):
            assert call(op, guide["vessel-call"], port) == json.loads(guide["vessel-answer"])
            nobody = call(op, guide["vessel-call-none"], port)
            assert nobody == {"responseCode": "000", "message": "success", "data": []}
        assert vendor.calls >= 2


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_every_command_is_in_the_cli_reference(capsys: pytest.CaptureFixture[str]) -> None:
    m = re.search(r"\{([a-z,-]+)\}", _help([], capsys))
    assert m, "no subcommands in lc2-gateway --help"
    commands = m.group(1).split(",")
    for guide in (GUIDE, GUIDE_TH):
        text = guide.read_text(encoding="utf-8")
        reference = text[text.rindex("\n## ") :]  # the last section: the command table
        for command in commands:
            assert f"`lc2-gateway {command}" in reference, f"{guide.name}: {command}"
        for command in ("check", "routes", "describe"):
            row = next(line for line in reference.splitlines() if f"lc2-gateway {command} " in line)
            for m in re.finditer(
                r"^  (?:(-\w)[^,\n]*, )?(--[a-z][a-z-]+)", _help([command], capsys), re.M
            ):
                aliases = {a for a in m.groups() if a}
                if aliases & {"--help", "--config"}:
                    continue
                assert any(a in row for a in aliases), f"{guide.name}: {command} {aliases}"
