"""What is released: the version it says it is, and dependencies that are true.

deptry reads every import of ``gateway/`` and ``adapters/`` and fails when one
names a distribution pyproject.toml does not declare (or only declares for the
tests, or gets only through another package), and when a declared one is
imported nowhere.  Which install owns an import, the base or an extra, is
proven in a clean install of the wheel (tests/installed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config.models import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent


def test_version_names_the_package_and_the_config_schema(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == f"lc2-gateway {version('lc2-gateway')} (config schema {SCHEMA_VERSION})"


def _deptry(root: Path) -> subprocess.CompletedProcess[str]:
    beside = Path(sys.executable).with_name("deptry")  # the venv is not always on PATH
    tool = str(beside) if os.access(beside, os.X_OK) else shutil.which("deptry")
    if tool is None:
        pytest.fail("deptry not found: pip install -e '.[test]'")
    return subprocess.run(
        [tool, "--no-ansi", "gateway", "adapters"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_import_is_declared() -> None:
    r = _deptry(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("module", "line", "code"),
    [
        ("adapters/soap.py", "import requests", "DEP003"),  # only there because zeep needs it
        ("gateway/app.py", "import spyne", "DEP004"),  # declared for the tests only
        ("adapters/http.py", "import no_such_distribution", "DEP001"),  # declared nowhere
    ],
)
def test_an_undeclared_import_is_reported(
    tmp_path: Path, module: str, line: str, code: str
) -> None:
    """The check is not vacuous: one stray import in a copy of the sources fails it."""
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for top in ("gateway", "adapters"):
        shutil.copytree(ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    r = _deptry(tmp_path)
    report = r.stdout + r.stderr  # deptry reports on stderr
    assert r.returncode == 1, report
    assert f"{module}:" in report and code in report, report
