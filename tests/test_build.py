"""The wheel: pure Python by default, the call path compiled by mypyc with LC2_COMPILE=1.

Each build runs on a copy of the sources in a temporary directory, so parallel
runs never share a ``build/`` directory.  The compiled build needs a C compiler
and the Python headers; without them it fails, as a release build must.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

_SOURCES = ("pyproject.toml", "setup.py", "README.md", "gateway", "adapters")


def _compiled_modules() -> list[str]:
    """setup.py's COMPILED list, read without running setup()."""
    text = (REPO / "setup.py").read_text(encoding="utf-8")
    block = text.split("COMPILED = [", 1)[1].split("]", 1)[0]
    return [line.strip().strip('",') for line in block.splitlines() if line.strip()]


def _wheel(tmp_path: Path, compile_: bool) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so")
    for name in _SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    env = {k: v for k, v in os.environ.items() if k != "LC2_COMPILE"}
    if compile_:
        env["LC2_COMPILE"] = "1"
    out = tmp_path / "dist"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("lc2_gateway-*.whl")
    return wheel


def test_compiled_list_names_existing_modules() -> None:
    modules = _compiled_modules()
    assert modules, "setup.py compiles nothing"
    for module in modules:
        assert (REPO / module).is_file(), module


def test_default_wheel_is_pure_python(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, compile_=False)
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert not [n for n in names if n.endswith(".so")]
    assert "gateway/params.py" in names


def test_compiled_wheel_has_an_extension_for_each_listed_module(tmp_path: Path) -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.fail("a C compiler is needed: apt-get install gcc", pytrace=False)
    wheel = _wheel(tmp_path, compile_=True)
    assert "-cp3" in wheel.name and not wheel.name.endswith("-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "site")
    for module in _compiled_modules():
        stem = module.removesuffix(".py")
        assert any(n.startswith(stem + ".cpython-") and n.endswith(".so") for n in names), module
        assert module in names  # the source stays beside it, for tracebacks and tools
    # the installed extensions are what Python imports, and they behave as the source does
    code = (
        "import gateway.app, gateway.auth as a, gateway.params as p, gateway.request as r\n"
        "import gateway.transforms as t\n"
        "for m in (a, p, r, t):\n"
        "    assert m.__file__.endswith('.so'), m.__file__\n"
        "assert t.check_digit('110170020345') == 0\n"
        "assert t.format_pid('1101700203450') == '1-1017-00203-45-0'\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
