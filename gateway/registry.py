"""Finding adapters by the YAML ``type:`` of a backend.

Every adapter, built-in or a department's own package, is declared once: as an
entry point of the ``lc2_gateway.adapters`` group.  The built-in ones are
declared in this project's ``pyproject.toml``; an installed gateway reads them
from its package metadata like any other.  A source checkout that was never
installed has no metadata, so its ``pyproject.toml`` is read instead - the
same declaration, not a second list.
"""

from __future__ import annotations

import importlib
import tomllib
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution, entry_points
from pathlib import Path

from gateway.adapter import AdapterFactory

__all__ = ["AdapterNameClash", "UnknownAdapter", "adapter_factories", "get_factory"]

GROUP = "lc2_gateway.adapters"
DISTRIBUTION = "lc2-gateway"
_SOURCE_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


class UnknownAdapter(LookupError):
    pass


class AdapterNameClash(RuntimeError):
    """Two installed packages claim the same adapter type."""


def _load(target: str) -> AdapterFactory:
    module, _, attr = target.partition(":")
    factory: AdapterFactory = getattr(importlib.import_module(module), attr)
    return factory


def source_checkout_adapters(pyproject: Path = _SOURCE_PYPROJECT) -> dict[str, str]:
    """The built-in entry points as this checkout's ``pyproject.toml`` declares them."""
    if not pyproject.is_file():
        return {}
    project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    if project.get("name") != DISTRIBUTION:
        return {}
    declared: dict[str, str] = project.get("entry-points", {}).get(GROUP, {})
    return dict(declared)


def _installed() -> bool:
    try:
        distribution(DISTRIBUTION)
    except PackageNotFoundError:
        return False
    return True


@cache
def adapter_factories() -> dict[str, str]:
    """type name -> "module:attribute" of every adapter entry point."""
    found: dict[str, str] = {} if _installed() else source_checkout_adapters()
    for ep in entry_points(group=GROUP):
        if ep.name in found and found[ep.name] != ep.value:
            raise AdapterNameClash(
                f"adapter type {ep.name!r} is provided by both {found[ep.name]} and {ep.value}"
            )
        found[ep.name] = ep.value
    return found


def get_factory(type_name: str) -> AdapterFactory:
    known = adapter_factories()
    if type_name not in known:
        raise UnknownAdapter(
            f"unknown backend type {type_name!r} (installed: {', '.join(sorted(known))})"
        )
    try:
        return _load(known[type_name])
    except ImportError as exc:
        raise UnknownAdapter(
            f"backend type {type_name!r} needs {exc.name}, which is not installed: "
            f"pip install 'lc2-gateway[{type_name}]'"
        ) from None
