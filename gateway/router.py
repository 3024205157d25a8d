"""URL routing owned by the gateway, rebuilt on each config generation.

aiohttp freezes its router once the server starts; a config reload must be
able to add, move and remove services without a restart, so the LC2 routes
live here and are swapped together with the rest of the configuration.
Plain paths are one dict lookup; paths with ``{param}`` segments are
compiled to one regular expression each, at build time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from gateway.config.runtime import Service

__all__ = ["Match", "Router"]

Kind = Literal["data", "sandbox", "health"]
_PARAM = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Match:
    service: Service
    kind: Kind
    path_params: Mapping[str, str]


def _compile(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PARAM.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


class Router:
    def __init__(self, services: Mapping[str, Service]) -> None:
        self._static: dict[str, tuple[Service, Kind]] = {}
        self._patterns: list[tuple[re.Pattern[str], Service, Kind]] = []
        for svc in services.values():
            routes: tuple[tuple[str, Kind], ...] = (
                (svc.data_path, "data"),
                (svc.sandbox_path, "sandbox"),
                (svc.health_path, "health"),
            )
            for path, kind in routes:
                if _PARAM.search(path):
                    self._patterns.append((_compile(path), svc, kind))
                else:
                    self._static[path] = (svc, kind)

    def match(self, path: str) -> Match | None:
        hit = self._static.get(path)
        if hit is not None:
            return Match(hit[0], hit[1], {})
        for pattern, svc, kind in self._patterns:
            m = pattern.fullmatch(path)
            if m is not None:
                return Match(svc, kind, m.groupdict())
        return None
