"""Policy stage: each consumer gets only the fields its data-owner approval covers.

Runs after normalise and before respond, on sandbox rows too (a consumer
must not learn a field's shape from the sandbox either).  Per consumer and
service, ``fields:`` in the config gives an allow list, masks, or both::

    fields:
      fisher:
        allow: [personalId, firstName, dateOfBirth, address.provinceDesc]
        mask: {personalId: citizen_id, firstName: initial, dateOfBirth: year}

A field not allowed is left out of the answer (not nulled): the consumer is
not told it exists.  Masks keep a field's type and shape:

``citizen_id``  ``1-2345-xxxxx-xx-1`` (anything that is not a valid 13-digit ID: null)
``year``        ``1984-02-29`` gives ``1984``; DOPA's ``25270229`` gives ``25270000``
``year_month``  ``1984-02-29`` gives ``1984-02``; ``25270229`` gives ``25270200``
``initial``     a name to its first letter: ``สมชาย`` gives ``ส.``, ``เกษม`` gives ``ก.``
``null``        the value is withheld (the key stays, with null)

Policies are compiled once at config load, checked against the service's
output mapping (a path that is not an output field is a config error), and
a consumer without one for a service costs one dict lookup per call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gateway.normalise import FieldMap, Mapper
from gateway.transforms import is_valid_pid

__all__ = ["MASKS", "FieldPolicy", "PolicyConfigError", "compile_policy", "restrict"]

Mask = Callable[[Any], Any]
_DIGITS = re.compile(r"[^0-9]")
_ISO_PREFIX = re.compile(r"[0-9]{4}(-[0-9]{2})?")
# Thai vowels written before the consonant they follow in speech (เ แ โ ใ ไ)
_LEADING_VOWELS = frozenset("\u0e40\u0e41\u0e42\u0e43\u0e44")


def _citizen_id(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    digits = _DIGITS.sub("", value)
    if not is_valid_pid(digits):
        return None
    return f"{digits[0]}-{digits[1:5]}-xxxxx-xx-{digits[12]}"


def _date_prefix(keep: int, be_divisor: int) -> Mask:
    def mask(value: Any) -> Any:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):  # DOPA's BE integer YYYYMMDD; 00 marks an unknown part
            return value // be_divisor * be_divisor
        if isinstance(value, str):
            m = _ISO_PREFIX.match(value)
            if m is not None and len(m.group(0)) >= keep:
                return value[:keep]
        return None

    return mask


def _initial(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    for ch in value:
        if ch.isalpha() and ch not in _LEADING_VOWELS:
            return ch + "."
    return None


MASKS: Mapping[str, Mask] = MappingProxyType(
    {
        "citizen_id": _citizen_id,
        "year": _date_prefix(4, 10_000),
        "year_month": _date_prefix(7, 100),
        "initial": _initial,
        "null": lambda _: None,
    }
)


class PolicyConfigError(ValueError):
    def __init__(self, message: str, path: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, slots=True)
class _Node:
    keep: frozenset[str] | None  # None: every key of this object
    masks: Mapping[str, Mask]
    children: Mapping[str, _Node]

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        keep, masks, children = self.keep, self.masks, self.children
        for key, value in obj.items():
            if keep is not None and key not in keep:
                continue
            mask = masks.get(key)
            if mask is not None:
                try:
                    value = mask(value)
                except (
                    Exception
                ):  # a mask never fails a call, and never leaks what it could not mask
                    value = None
            elif isinstance(value, Mapping) and key in children:
                value = children[key].apply(value)
            out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    root: _Node

    def apply(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        root = self.root
        return [root.apply(row) for row in rows]


class _Spec:
    """Mutable while compiling: which keys are kept, masked, or opened further."""

    def __init__(self) -> None:
        self.keep: set[str] | None = None
        self.whole: set[str] = set()
        self.masks: dict[str, Mask] = {}
        self.children: dict[str, _Spec] = {}

    def freeze(self) -> _Node:
        children = {k: c.freeze() for k, c in self.children.items() if k not in self.whole}
        keep = None if self.keep is None else frozenset(self.keep)
        return _Node(keep, MappingProxyType(dict(self.masks)), MappingProxyType(children))


def _field(fields: Sequence[FieldMap], name: str) -> FieldMap | None:
    return next((f for f in fields if f.name == name), None)


def _walk(mapper: Mapper, dotted: str, at: tuple[str | int, ...]) -> tuple[list[str], FieldMap]:
    parts = dotted.split(".")
    fields: Sequence[FieldMap] = mapper.fields
    found: FieldMap | None = None
    for i, part in enumerate(parts):
        found = _field(fields, part)
        if found is None:
            where = ".".join(parts[:i]) or "the output"
            raise PolicyConfigError(f"{where} has no field {part!r}", at)
        if i < len(parts) - 1:
            if found.children is None:
                raise PolicyConfigError(f"{'.'.join(parts[: i + 1])} is not a nested object", at)
            fields = found.children
    assert found is not None
    return parts, found


def compile_policy(
    mapper: Mapper,
    *,
    allow: Sequence[str] | None,
    mask: Mapping[str, str],
    path: tuple[str | int, ...],
) -> FieldPolicy:
    root = _Spec()
    if allow is not None:
        root.keep = set()
        for i, dotted in enumerate(allow):
            parts, _ = _walk(mapper, dotted, (*path, "allow", i))
            spec = root
            for j, part in enumerate(parts):
                assert spec.keep is not None
                spec.keep.add(part)
                if j == len(parts) - 1:
                    spec.whole.add(part)  # the whole value, nested or not
                    spec.children.pop(part, None)  # narrower entries for it add nothing
                    break
                if part in spec.whole:
                    break  # already allowed whole: a narrower entry adds nothing
                child = spec.children.get(part)
                if child is None:
                    child = spec.children[part] = _Spec()
                    child.keep = set()
                spec = child
    for dotted, kind in mask.items():
        at = (*path, "mask", dotted)
        parts, target = _walk(mapper, dotted, at)
        if kind not in MASKS:
            raise PolicyConfigError(f"unknown mask {kind!r}; one of {', '.join(MASKS)}", at)
        if target.children is not None and kind != "null":
            raise PolicyConfigError(f"{dotted} is a nested object: only the null mask fits", at)
        spec = root
        for part in parts[:-1]:
            spec = spec.children.setdefault(part, _Spec())
        spec.masks[parts[-1]] = MASKS[kind]
    # a mask inside an object kept whole needs that object walked, not copied
    _open_masked(root)
    return FieldPolicy(root.freeze())


def _open_masked(spec: _Spec) -> None:
    for key, child in spec.children.items():
        _open_masked(child)
        if key in spec.whole and (child.masks or child.children):
            spec.whole.discard(key)
            child.keep = None  # allowed whole: every key of it, the masked ones masked


def restrict(
    policies: Mapping[str, FieldPolicy], service: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows a consumer with these policies may see of ``service``."""
    policy = policies.get(service)
    return rows if policy is None else policy.apply(rows)
