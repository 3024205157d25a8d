"""Finding adapters by the YAML ``type:`` of a backend.

Adapters are looked up in the ``lc2_gateway.adapters`` entry-point group, so
a department can ship its own adapter as a separate package.  The built-in
ones are also known by module path, so a source checkout works before
``pip install``.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from gateway.adapter import AdapterFactory

__all__ = ["AdapterNameClash", "UnknownAdapter", "adapter_factories", "get_factory"]

GROUP = "lc2_gateway.adapters"
_BUILTIN = {
    "sqlite": "adapters.sqlite:FACTORY",
    "postgresql": "adapters.postgresql:FACTORY",
    "mysql": "adapters.mysql:FACTORY",
    "odbc": "adapters.odbc:FACTORY",
    "oracle": "adapters.oracle:FACTORY",
    "dbf": "adapters.files:DBF",
    "csv": "adapters.files:CSV",
    "fixedwidth": "adapters.files:FIXED_WIDTH",
    "soap": "adapters.soap:FACTORY",
    "http": "adapters.http:FACTORY",
}


class UnknownAdapter(LookupError):
    pass


class AdapterNameClash(RuntimeError):
    """Two installed packages claim the same adapter type."""


def _load(target: str) -> AdapterFactory:
    module, _, attr = target.partition(":")
    factory: AdapterFactory = getattr(importlib.import_module(module), attr)
    return factory


@cache
def adapter_factories() -> dict[str, str]:
    """type name -> "module:attribute", built-ins first, then entry points."""
    found = dict(_BUILTIN)
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
