"""Optional native build of the call path; everything else is in pyproject.toml.

By default (``pip install .``) the package is pure Python and needs no compiler.
With ``LC2_COMPILE=1`` the modules every call runs through are compiled by mypyc
into C extensions, which Python imports in place of the ``.py`` files shipped
beside them.  That build needs a C compiler, the Python headers and mypy in the
build environment (``pip wheel --no-build-isolation`` from an environment with
the ``test`` extra), and fails rather than silently shipping pure Python.  The
measured gain of each module is in docs/performance.md.
"""

from __future__ import annotations

import os

from setuptools import setup

# The modules a call runs through whose compiled form measured a gain; the figures, and why
# the others stay pure, are in docs/performance.md.
COMPILED = [
    "gateway/transforms/__init__.py",
    "gateway/transforms/chain.py",
    "gateway/transforms/citizen_id.py",
    "gateway/transforms/text.py",
    "gateway/transforms/thaidate.py",
    "gateway/normalise.py",
    "gateway/params.py",
    "gateway/request.py",
    "gateway/auth.py",
    "gateway/audit/record.py",
]


def _ext_modules() -> list[object]:
    if os.environ.get("LC2_COMPILE", "") != "1":
        return []
    try:
        from mypyc.build import mypycify  # only a compiled build needs mypy
    except ImportError as exc:
        raise SystemExit(
            "LC2_COMPILE=1 needs mypy in the build environment: "
            "pip wheel --no-build-isolation from an environment that has it"
        ) from exc

    return list(mypycify(COMPILED, opt_level="3"))


setup(ext_modules=_ext_modules())
