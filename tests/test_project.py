"""The project keeps its promises: README commands, documentation, lint and types."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from gateway.audit.config import PgAuditSettings
from gateway.errors import all_error_types
from gateway.metrics import Metrics
from gateway.sharedstate import SharedState
from gateway.transforms import TRANSFORMS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _code_blocks(text: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"```sh\n(.*?)```", text, re.S)]


def test_readme_opens_with_demo_and_test_commands() -> None:
    demo, tests = _code_blocks(README)[:2]
    assert "lc2-gateway serve -c config/demo.yaml" in demo
    assert "pytest" in tests
    assert README.index(demo) < README.index("---")  # before anything else is explained
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == tests, "the last line of .ci/run must be the README's test command"


def test_every_error_code_is_documented() -> None:
    for err in all_error_types():
        assert re.search(rf"\| `{err.code}` \| {err.status} \|", README), err.__name__


def test_error_codes_are_unique() -> None:
    codes = [e.code for e in all_error_types()]
    assert len(codes) == len(set(codes))


def test_every_transform_is_documented() -> None:
    for name in TRANSFORMS:
        assert f"`{name}" in README, name


def test_every_metric_is_documented() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, services=["s"], backends=["b"], version="v")
    pg = PgAuditSettings("postgresql://u@h/d", None, "s", 1, 1.0, 1.0)
    metrics.on_shared_state(SharedState(pg, fail_closed=True))
    names = {m.name for m in registry.collect()}
    names |= {"lc2_gateway_backend_pool_connections", "lc2_gateway_backend_pool_in_use",
              "lc2_gateway_audit_queue_depth"}
    for name in names:
        shown = name if not name.endswith("_build") else name + "_info"
        if f"`{shown}`" not in README and f"`{shown}_total`" not in README:
            raise AssertionError(f"metric {shown} is not in the README")


def test_ruff_lint_is_clean() -> None:
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_strict_is_clean() -> None:
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
