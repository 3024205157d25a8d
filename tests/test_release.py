"""What is released: the version it says it is, and dependencies that are true.

deptry reads every import of ``gateway/`` and ``adapters/`` and fails when one
names a distribution pyproject.toml does not declare (or only declares for the
tests, or gets only through another package), and when a declared one is
imported nowhere.  Which install owns an import, the base or an extra, is
proven in a clean install of the wheel (tests/installed).
"""

from __future__ import annotations

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
