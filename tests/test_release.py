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
import tomllib
from importlib.metadata import requires, version
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from gateway.cli import main
from gateway.config.models import SCHEMA_VERSION
from tests.lockfile import LOCKS, canonical, read_lock

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


# --- the locks: requirements/lock*.txt, what the bundle and the image install -----------------


def _project() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, Any] = tomllib.load(f)["project"]
    return project


def _assert_pinned(requirements: list[str], lock: dict[str, str], where: str) -> None:
    for text in requirements:
        req = Requirement(text)
        name = canonical(req.name)
        assert name in lock, f"{where}: {text} is not in the lock: run requirements/refresh.sh"
        assert req.specifier.contains(lock[name], prereleases=True), (
            f"{where}: {name}=={lock[name]} does not satisfy {text}: run requirements/refresh.sh"
        )
        for extra in req.extras:  # zeep[async]: what the extra brings is locked too
            brought = []
            for dep in map(Requirement, requires(req.name) or []):
                marker = dep.marker
                if (
                    marker is not None
                    and "extra" in str(marker)
                    and marker.evaluate({"extra": extra})
                ):
                    brought.append(f"{dep.name}{dep.specifier}")
            assert brought, f"{req.name} has no extra {extra!r}"
            _assert_pinned(brought, lock, f"{where} {text}")


def test_base_lock_covers_the_base_dependencies() -> None:
    lock = read_lock(LOCKS / "lock.txt")
    _assert_pinned(_project()["dependencies"], lock, "lock.txt")
    assert {"packaging", "httpx"} <= lock.keys()  # zeep's async transport


@pytest.mark.parametrize("extra", ["odbc", "oracle"])
def test_extra_lock_is_the_base_lock_plus_the_extra(extra: str) -> None:
    base = read_lock(LOCKS / "lock.txt")
    lock = read_lock(LOCKS / f"lock-{extra}.txt")
    assert {k: lock.get(k) for k in base} == base, "the base versions differ"
    _assert_pinned(_project()["optional-dependencies"][extra], lock, f"lock-{extra}.txt")
    declared = {canonical(Requirement(r).name) for r in _project()["optional-dependencies"][extra]}
    assert declared <= lock.keys() - base.keys()
