"""Config validation: every problem found at once, each with its YAML path and line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.cli import main
from gateway.config.build import build_settings, load_settings
from gateway.config.loader import ConfigError, _compose, parse_yaml
from tests.support import PASSWORD_HASH

ROOT = Path(__file__).resolve().parent.parent

GOOD = f"""\
consumers:
  lc2:
    username: Linkage Service
    password_hash: {PASSWORD_HASH}
audit:
  path: audit.sqlite
  key: ${{AUDIT_KEY}}
backends:
  db:
    type: sqlite
    path: legacy.sqlite
services:
  fisher:
    backend: db
    params:
      personalId: {{type: citizen_id}}
    operation:
      query: SELECT PID FROM FISHER_REG WHERE PID = :personalId
    output:
      personalId: {{column: PID, transform: [pid]}}
"""
ENV = {"AUDIT_KEY": "x" * 32}


def problems(text: str, env: dict[str, str] | None = None) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as info:
        build_settings(
            parse_yaml(text, env=ENV if env is None else env, base_dir=Path("/tmp")),
            create_key_file=False,
        )
    return [(".".join(map(str, p.path)), p.line, p.message) for p in info.value.problems]


def test_good_config_builds_frozen_settings() -> None:
    s = build_settings(parse_yaml(GOOD, env=ENV, base_dir=Path("/tmp")), create_key_file=False)
    svc = s.services["fisher"]
    assert svc.data_path == "/api/v1/fisher"
    assert svc.sandbox_path == "/api/v1/fisher/sandbox"
    assert svc.health_path == "/api/v1/fisher/health"
    assert svc.operation.sql == "SELECT PID FROM FISHER_REG WHERE PID = ?"
    assert s.backends["db"].options.path == Path("/tmp/legacy.sqlite")  # type: ignore[attr-defined]
    assert s.audit.path == Path("/tmp/audit.sqlite")
    with pytest.raises(AttributeError):
        svc.name = "other"  # type: ignore[misc]


def test_unknown_key_is_named_with_its_line() -> None:
    text = GOOD.replace("    type: sqlite\n", "    type: sqlite\n    pool_sise: 3\n")
    assert ("backends.db.pool_sise", 11, "unknown key (check the spelling)") in problems(text)


def test_every_problem_is_reported_not_only_the_first() -> None:
    text = GOOD.replace("type: citizen_id", "type: citizenid").replace(
        "path: audit.sqlite", "path: audit.sqlite\n  batch_max: 0"
    )
    found = problems(text)
    paths = {p for p, _, _ in found}
    assert "audit.batch_max" in paths
    assert "services.fisher.params.personalId.type" in paths
    assert all(line is not None for _, line, _ in found)


FIVE_MISTAKES = (
    GOOD.replace("    type: sqlite\n", "    type: sqlite\n    pool_sise: 3\n")
    .replace(
        "transform: [pid]}",
        "transform: [pid, be_dat]}\n      born: {column: BIRTH, transform: [be_datee]}",
    )
    .replace(
        "    password_hash:",
        "    fields:\n      fisher: {allow: [personalId, nosuchfield]}\n    password_hash:",
    )
    .replace("    params:\n", "    paramz: 1\n    params:\n")
)


def test_a_file_with_five_mistakes_reports_all_five_in_one_run() -> None:
    found = {(p, line) for p, line, _ in problems(FIVE_MISTAKES)}
    assert found == {
        ("services.fisher.paramz", 18),  # refused by the schema
        ("backends.db.pool_sise", 13),  # by the adapter's options
        ("services.fisher.output.personalId.transform.1.be_dat", 24),  # two transforms
        ("services.fisher.output.born.transform.0.be_datee", 25),
        ("consumers.lc2.fields.fisher.allow.1", 5),  # a grant on a service with problems
    }, found


def test_placeholder_must_be_a_declared_parameter() -> None:
    text = GOOD.replace("= :personalId", "= :pid")
    [(path, line, msg)] = problems(text)
    assert path == "services.fisher.operation.query" and line == 18
    assert ":pid" in msg and "personalId" in msg


def test_unknown_backend_type_and_backend_reference() -> None:
    text = GOOD.replace("type: sqlite", "type: sybase").replace("backend: db", "backend: nodb")
    found = {(p, m.split(" (")[0]) for p, _, m in problems(text)}
    assert ("backends.db.type", "unknown backend type 'sybase'") in found
    assert ("services.fisher.backend", "no backend named 'nodb'") in found


def test_unknown_transform_is_named() -> None:
    text = GOOD.replace("transform: [pid]", "transform: [pid, be_dat]")
    [(path, _, msg)] = problems(text)
    assert path.startswith("services.fisher.output.personalId.transform")
    assert "be_dat" in msg


def test_secrets_must_come_from_the_environment() -> None:
    text = GOOD.replace("key: ${AUDIT_KEY}", "key: literal-secret-in-the-file-123")
    assert (
        "audit.key",
        7,
        "a secret must come from the environment: write ${VARIABLE}",
    ) in problems(text)


def test_unset_environment_variable_is_named() -> None:
    [(path, line, msg)] = problems(GOOD, env={})
    assert (path, line) == ("audit.key", 7) and "AUDIT_KEY" in msg


def test_bad_password_hash() -> None:
    text = GOOD.replace(PASSWORD_HASH, "plaintext-password")
    [(path, _, msg)] = problems(text)
    assert path == "consumers.lc2.password_hash" and "lc2-gateway passwd" in msg


def test_consumer_granted_unknown_service() -> None:
    text = GOOD.replace("    password_hash:", "    services: [fishr]\n    password_hash:")
    assert any(p == "consumers.lc2.services.0" for p, _, _ in problems(text))


def test_duplicate_urls_are_refused() -> None:
    twin = GOOD.split("services:\n", 1)[1].replace("  fisher:", "  fisher2:\n    path: fisher", 1)
    text = GOOD + twin.replace("  fisher2:", "  fisher2:", 1)
    assert any("also used by" in m for _, _, m in problems(text))


def test_path_parameter_must_be_declared() -> None:
    text = GOOD.replace("    backend: db\n", "    backend: db\n    path: fisher/{pid}\n")
    assert any(p == "services.fisher.path" and "{pid}" in m for p, _, m in problems(text))


def test_yaml_syntax_error_has_a_line() -> None:
    [(_, line, msg)] = problems(GOOD + "  bad: [unclosed\n")
    assert line is not None and "YAML syntax" in msg


def test_duplicate_yaml_key() -> None:
    text = GOOD.replace("    type: sqlite\n", "    type: sqlite\n    type: sqlite\n")
    assert ("backends.db.type", 11, "duplicate key") in problems(text)


def test_check_cli_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_KEY", "y" * 32)
    good = tmp_path / "good.yaml"
    good.write_text(GOOD, encoding="utf-8")
    assert main(["check", "-c", str(good)]) == 0
    out, err = capsys.readouterr()
    assert "OK" in out and err == ""
    assert not (tmp_path / "audit.sqlite").exists()  # check writes nothing
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        GOOD.replace("type: sqlite", "type: sqlite\n    pool_size: -1"), encoding="utf-8"
    )
    assert main(["check", "-c", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert f"{bad}:11: backends.db.pool_size:" in err and out == ""  # problems on stderr
    assert main(["check", "--json", "-c", str(bad)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["version"] is None
    assert [(p["path"], p["line"]) for p in doc["problems"]] == [("backends.db.pool_size", 11)]
    # every problem of a file in one run, in file order
    bad.write_text(FIVE_MISTAKES, encoding="utf-8")
    assert main(["check", "--json", "-c", str(bad)]) == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert err == "" and doc["config"] == str(bad)
    assert [p["line"] for p in doc["problems"]] == [5, 13, 18, 24, 25]


def test_check_never_prints_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "S3cr3t-value-that-must-not-show"
    monkeypatch.setenv("AUDIT_KEY", secret)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        GOOD.replace("    type: sqlite\n", "    type: sqlite\n    bogus: 1\n"), encoding="utf-8"
    )
    assert main(["check", "-c", str(cfg)]) == 1
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err


def test_demo_config_is_valid() -> None:
    settings = load_settings(ROOT / "config" / "demo.yaml", create_key_file=False)
    assert set(settings.services) == {"fisher", "aquaFarm"}


def test_passwd_makes_a_verifiable_hash() -> None:
    from gateway.auth import check_hash_format, verify_password

    out = subprocess.run(
        [sys.executable, "-m", "gateway", "passwd", "--stdin"],
        input="a-long-password\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    check_hash_format(out)
    assert verify_password("a-long-password", out)
    assert not verify_password("a-long-passwore", out)


def _nodes(node: yaml.Node | None) -> list[tuple[str, str, int, object]]:
    """Every node of a YAML graph as (kind, tag, line, scalar value or length), in order."""
    out: list[tuple[str, str, int, object]] = []
    stack = [] if node is None else [node]
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.ScalarNode):
            out.append(("scalar", n.tag, n.start_mark.line, n.value))
        elif isinstance(n, yaml.MappingNode):
            out.append(("mapping", n.tag, n.start_mark.line, len(n.value)))
            stack.extend(x for pair in reversed(n.value) for x in reversed(pair))
        elif isinstance(n, yaml.SequenceNode):
            out.append(("sequence", n.tag, n.start_mark.line, len(n.value)))
            stack.extend(reversed(n.value))
    return out


def _same_as_python_parser(text: str) -> None:
    try:
        expected: object = _nodes(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        expected = f"{type(exc).__name__}: {exc}"
    try:
        got: object = _nodes(_compose(text))
    except yaml.YAMLError as exc:
        got = f"{type(exc).__name__}: {exc}"
    assert got == expected, text


_YAML_PARTS = [
    part
    for group in (
        ("a", "key", "1", "x y", "ชาย", "${X:-d}", "a != b", "pg://h/db?sslmode=require"),
        ("\n", "\n  ", "\n    ", " ", "- ", ": ", ":", ", ", "{", "}", "[", "]", "'q'", '"d"', "~"),
        ("#c", " #c", "&a ", "*a", "!!str ", "!x ", "!", "|", ">", "|-", "|#", "---", "...", "?"),
        ("? ", "\t", "\r\n", "\r", "\ufeff", "\x85", "\u2028", "%YAML 1.1\n"),
    )
    for part in group
]


def test_libyaml_reads_every_config_as_the_python_parser_does() -> None:
    """Start-up composes YAML with libyaml; what it accepts, refuses, and the lines it gives
    must be PyYAML's own parser's, or a config would mean something else, or fail otherwise."""
    files = sorted((ROOT / "config").glob("*.yaml"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        _same_as_python_parser(text)
        _same_as_python_parser(text.replace("\n", "\r\n"))
    _same_as_python_parser(GOOD)
    for snippet in (
        "a: 1\tb",  # a tab where PyYAML's parser refuses one
        "a: {b: c?d}",  # "?" inside a flow scalar
        "a: [x, y?]",
        "? a\n: b",  # an explicit key
        "a: !tag,x\n",
        "a: |#\n  x\n",
        "---\n# only a comment",  # a document that is one empty scalar
        "a:\n  \ufeffb: 1",
        "query: SELECT 1 WHERE a != b AND c = '?'\ndsn: pg://h/db?sslmode=require",
        "a: [b, {c: d}]\ne: &x {f: g}\nh: *x\n<<: *x",
    ):
        _same_as_python_parser(snippet)


def test_config_data_is_what_yaml_safe_load_reads() -> None:
    for path in sorted((ROOT / "config").glob("*.yaml")):
        text = path.read_text(encoding="utf-8").replace("${", "$(")  # no substitution here
        assert parse_yaml(text).data == yaml.safe_load(text), path


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_YAML_PARTS), max_size=24))
def test_libyaml_and_the_python_parser_agree_on_any_text(parts: list[str]) -> None:
    _same_as_python_parser("".join(parts))


def test_serve_imports_no_other_command() -> None:
    """Start-up time: `serve` loads neither the audit, describe, routes nor openapi commands."""
    code = (
        "import sys; from gateway.cli import main\n"
        "main(['check', '-c', 'config/demo.yaml'])\n"
        "import gateway.server\n"
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'gateway.audit.cli', 'gateway.describe', 'gateway.openapi'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
