"""What a config serves, in plain data, and what changes between two of them.

One description of "services, grants, backends" read by three parts: the
admin listener's ``/-/config`` (what the running gateway serves), ``lc2-gateway
diff`` (the running config against an edited file) and the audit record of
an applied reload (who could see what, from when).  No secret is in it:
backend options are a digest with every secret value taken out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.runtime import Service, Settings
from gateway.policy import MASKS, FieldPolicy

__all__ = ["Change", "diff", "render_changes", "summarise"]

_MASK_NAMES = {id(f): name for name, f in MASKS.items()}


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _policy(node: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"keep": "*" if node.keep is None else sorted(node.keep)}
    if node.masks:
        out["masks"] = {k: _MASK_NAMES.get(id(m), "?") for k, m in sorted(node.masks.items())}
    if node.children:
        out["children"] = {k: _policy(c) for k, c in sorted(node.children.items())}
    return out


def _operation(op: Any) -> str:
    """A digest of what the compiled operation does (its plain fields; no functions)."""
    if dataclasses.is_dataclass(op) and not isinstance(op, type):
        fields = {f.name: getattr(op, f.name) for f in dataclasses.fields(op)}
        plain = {k: str(v) for k, v in fields.items() if " at 0x" not in repr(v)}
        return _digest(plain)
    return _digest(repr(op)) if " at 0x" not in repr(op) else ""


def _service(svc: Service) -> dict[str, Any]:
    return {
        "backend": svc.backend,
        "path": svc.data_path,
        "params": sorted(svc.param_index),
        "output": _digest({k: v.model_dump(mode="json") for k, v in svc.config.output.items()}),
        "operation": _operation(svc.operation),
    }


def _grant(
    services: frozenset[str], offices: frozenset[str], policies: Mapping[str, FieldPolicy]
) -> dict[str, Any]:
    return {
        "services": sorted(services),
        "offices": sorted(offices),
        "fields": {s: _policy(p.root) for s, p in sorted(policies.items())},
    }


def _options(settings: Settings, backend: Any) -> str:
    text = backend.options.model_dump_json()
    for secret in settings.security.secrets:
        text = text.replace(json.dumps(secret)[1:-1], "")
    limits = dataclasses.asdict(backend.limits)
    return _digest({"options": text, "limits": limits})


def summarise(settings: Settings) -> dict[str, Any]:
    return {
        "source": str(Path(settings.source).resolve()),
        "version": settings.version,
        "services": {n: _service(s) for n, s in sorted(settings.services.items())},
        "grants": {
            n: _grant(c.services, c.offices, c.policies)
            for n, c in sorted(settings.consumers.items())
        },
        "backends": {
            n: {"type": b.type, "options": _options(settings, b)}
            for n, b in sorted(settings.backends.items())
        },
    }


@dataclass(frozen=True, slots=True)
class Change:
    section: str  # services | grants | backends
    name: str
    op: str  # + added, - removed, ~ changed
    details: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "op": self.op,
            "details": list(self.details),
        }


def _grant_details(old: dict[str, Any], new: dict[str, Any]) -> Iterator[str]:
    for key in ("services", "offices"):
        gone, came = set(old[key]) - set(new[key]), set(new[key]) - set(old[key])
        yield from (f"{key} +{x}" for x in sorted(came))
        yield from (f"{key} -{x}" for x in sorted(gone))
    for svc in sorted(set(old["fields"]) | set(new["fields"])):
        if old["fields"].get(svc) != new["fields"].get(svc):
            yield f"fields of {svc}"


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """What loading ``new`` changes for a gateway serving ``old`` (both from :func:`summarise`)."""
    out: list[Change] = []
    for section in ("services", "grants", "backends"):
        before, after = old[section], new[section]
        for name in sorted(set(before) | set(after)):
            if name not in before:
                out.append(Change(section, name, "+"))
            elif name not in after:
                out.append(Change(section, name, "-"))
            elif before[name] != after[name]:
                if section == "grants":
                    details = tuple(_grant_details(before[name], after[name]))
                else:
                    keys = sorted(set(before[name]) | set(after[name]))
                    details = tuple(k for k in keys if before[name].get(k) != after[name].get(k))
                out.append(Change(section, name, "~", details))
    return out


def render_changes(changes: list[Change]) -> list[str]:
    lines: list[str] = []
    for section in ("services", "grants", "backends"):
        mine = [c for c in changes if c.section == section]
        if mine:
            lines.append(f"{section}:")
            lines += [
                f"  {c.op} {c.name}" + (f": {', '.join(c.details)}" if c.details else "")
                for c in mine
            ]
    return lines
