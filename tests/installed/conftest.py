"""The installed wheel as a department runs it: these tests receive its executable.

``LC2_INSTALLED_BIN`` names ``lc2-gateway`` in a venv made from the wheel alone (no test
packages), ``LC2_INSTALLED_EXTRAS`` the extras installed with it (``odbc,oracle``);
``.ci/wheel.sh`` sets both.  Every command of the installed gateway runs from a directory
outside the checkout with no ``PYTHON*`` variable, so nothing of the source tree can be
imported by it; the tests themselves run in the checkout's test venv, which holds the test
doubles (the spyne SOAP service, the legacy HTTP endpoint) and the databases' loaders.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# the cross-backend fixture: one legacy register per backend type, loaded as its system holds it
from tests.test_backends_e2e import backend  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    bin: Path  # <venv>/bin/lc2-gateway
    extras: frozenset[str]
    cwd: Path  # outside the checkout
    env: Mapping[str, str]

    @property
    def venv(self) -> Path:
        return self.bin.parent.parent

    @property
    def python(self) -> Path:
        return self.bin.with_name("python")

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin), *args],
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def python_json(self, code: str) -> Any:
        """What ``code``, run by the installed venv's python, prints as JSON."""
        r = subprocess.run(
            [str(self.python), "-c", code],
            cwd=self.cwd,
            env=dict(self.env),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    raw = os.environ.get("LC2_INSTALLED_BIN", "")
    if not raw:
        pytest.fail(
            "LC2_INSTALLED_BIN is not set: give it the lc2-gateway of a venv made from the "
            "wheel (bash .ci/wheel.sh does)",
            pytrace=False,
        )
    path = Path(raw).absolute()
    if not os.access(path, os.X_OK):
        pytest.fail(f"LC2_INSTALLED_BIN={raw}: no executable there", pytrace=False)
    if ROOT in path.parents:
        pytest.fail(f"LC2_INSTALLED_BIN={raw} is inside the checkout", pytrace=False)
    extras = frozenset(e for e in os.environ.get("LC2_INSTALLED_EXTRAS", "").split(",") if e)
    cwd = tmp_path_factory.mktemp("installed-cwd")
    assert ROOT not in cwd.resolve().parents, f"{cwd} is inside the checkout"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "LC2_INSTALLED_")) and k != "VIRTUAL_ENV"
    }
    env.update(PYTHONNOUSERSITE="1", PATH=f"{path.parent}{os.pathsep}/usr/bin:/bin")
    return Installed(path, extras, cwd, env)
