"""Normalise stage: legacy rows in, clean camelCase objects out.

The output mapping is compiled once into a tree of :class:`FieldMap`; mapping
a row walks it.  A transform that fails on a legacy value (a date that is not
a date, a PID of 12 digits) nulls that one field and is counted; it never
fails the call, because one bad cell in a twenty-year-old table must not hide
the rest of a citizen's record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.adapter import Row
from gateway.config.models import FieldConfig
from gateway.transforms import Transform, TransformConfigError, compile_chain

__all__ = ["FieldMap", "Mapper", "MappingConfigError", "compile_mapping"]

_MISSING = object()


class MappingConfigError(ValueError):
    def __init__(self, message: str, path: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, slots=True)
class FieldMap:
    name: str
    column: str | None = None
    column_lower: str | None = None
    const: Any = None
    chain: Transform | None = None
    children: tuple[FieldMap, ...] | None = None
    transforms: tuple[str, ...] = ()  # names, so sandbox generation can shape a legacy value


@dataclass(slots=True)
class MapResult:
    rows: list[dict[str, Any]]
    failed_fields: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Mapper:
    fields: tuple[FieldMap, ...]
    # column as configured -> as the driver spells it (PostgreSQL folds names to lower
    # case), learnt from the first row that has it and kept: a backend answers one query
    # with the same columns every time.  A row spelled otherwise falls back to a search.
    _keys: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def columns(self) -> list[FieldMap]:
        """Every leaf field that reads a column, depth first."""
        out: list[FieldMap] = []
        stack = list(reversed(self.fields))
        while stack:
            f = stack.pop()
            if f.children is not None:
                stack.extend(reversed(f.children))
            elif f.column is not None:
                out.append(f)
        return out

    def map_rows(self, rows: Sequence[Row]) -> MapResult:
        result = MapResult(rows=[])
        for row in rows:
            result.rows.append(self._map(self.fields, row, self._keys, result.failed_fields))
        return result

    def _map(
        self,
        fields: tuple[FieldMap, ...],
        row: Row,
        keys: dict[str, str],
        failed: list[str],
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        lowered: dict[str, str] | None = None
        for f in fields:
            if f.children is not None:
                out[f.name] = self._map(f.children, row, keys, failed)
                continue
            if f.column is None:
                out[f.name] = f.const
                continue
            value = row.get(keys.get(f.column, f.column), _MISSING)
            if value is _MISSING:
                if lowered is None:
                    lowered = {str(k).lower(): k for k in row}
                key = lowered.get(f.column_lower or "")
                if key is None or (value := row.get(key, _MISSING)) is _MISSING:
                    failed.append(f.name)
                    out[f.name] = None
                    continue
                keys[f.column] = key
            if f.chain is not None:
                try:
                    value = f.chain(value)
                except (ValueError, TypeError, ArithmeticError, LookupError):
                    failed.append(f.name)
                    value = None
            elif isinstance(value, (bytes, bytearray, memoryview)):
                value = bytes(value).hex()  # JSON has no bytes; never leak repr()
            out[f.name] = value
        return out


def _first_name(spec: str | Mapping[str, Any]) -> str:
    return spec if isinstance(spec, str) else next(iter(spec), "")


def compile_mapping(
    output: Mapping[str, FieldConfig],
    *,
    lookups: Mapping[str, Mapping[str, str]],
    titles: Sequence[str],
    path: tuple[str | int, ...] = ("output",),
) -> Mapper:
    def build(items: Mapping[str, FieldConfig], at: tuple[str | int, ...]) -> tuple[FieldMap, ...]:
        out: list[FieldMap] = []
        for name, cfg in items.items():
            here = (*at, name)
            if cfg.fields is not None:
                out.append(FieldMap(name, children=build(cfg.fields, (*here, "fields"))))
                continue
            chain: Transform | None = None
            if cfg.transform:
                try:
                    chain = compile_chain(cfg.transform, lookups=lookups, titles=titles)
                except TransformConfigError as exc:
                    raise MappingConfigError(str(exc), (*here, "transform", *exc.path)) from None
            out.append(
                FieldMap(
                    name,
                    column=cfg.column,
                    column_lower=cfg.column.lower() if cfg.column else None,
                    const=cfg.const,
                    chain=chain,
                    transforms=tuple(_first_name(t) for t in cfg.transform),
                )
            )
        return tuple(out)

    return Mapper(build(output, path))
