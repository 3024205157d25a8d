"""Normalise stage: legacy rows in, clean camelCase objects out.

The output mapping is compiled once into a tree of :class:`FieldMap`; mapping
a row walks it.  A transform that fails on a legacy value (a date that is not
a date, a PID of 12 digits) nulls that one field and is counted; it never
fails the call, because one bad cell in a twenty-year-old table must not hide
the rest of a citizen's record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from gateway.adapter import Row
from gateway.config.models import FieldConfig
from gateway.transforms import Transform, TransformConfigError, compile_chain

__all__ = ["FieldMap", "Mapper", "MappingConfigError", "compile_mapping"]

_MISSING = object()
_FAILED = object()


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
    transforms: tuple[str, ...] = ()  # names, so `profile` knows which checks a field calls for
    # index into Mapper.shared: the first steps of this field's transforms, which other
    # fields on the same column also start with, run once per row; ``chain`` is the rest
    shared: int | None = None


@dataclass(frozen=True, slots=True)
class SharedSteps:
    """Leading transforms that several fields apply to one column (title, first and last
    name all start with cp874 and clean on FULLNAME): computed once per row."""

    column: str
    column_lower: str
    chain: Transform


@dataclass(slots=True)
class MapResult:
    rows: list[dict[str, Any]]
    failed_fields: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Mapper:
    fields: tuple[FieldMap, ...]
    shared: tuple[SharedSteps, ...] = ()
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
            memo = [_MISSING] * len(self.shared) if self.shared else None
            result.rows.append(self._map(self.fields, row, memo, result.failed_fields))
        return result

    def _column(self, row: Row, column: str, column_lower: str) -> object:
        """The row's value of ``column``, however the driver spells it (PostgreSQL folds
        names to lower case); ``_MISSING`` if the row has no such column."""
        value = row.get(self._keys.get(column, column), _MISSING)
        return self._search(row, column, column_lower) if value is _MISSING else value

    def _search(self, row: Row, column: str, column_lower: str) -> object:
        """``column`` under another spelling, learnt for the rows after; else ``_MISSING``."""
        for k in row:
            if str(k).lower() == column_lower:
                self._keys[column] = k
                return row[k]
        return _MISSING

    def _shared(self, index: int, row: Row, memo: list[object]) -> object:
        value = memo[index]
        if value is _MISSING:
            step = self.shared[index]
            value = self._column(row, step.column, step.column_lower)
            if value is not _MISSING:
                try:
                    value = step.chain(value)
                except (ValueError, TypeError, ArithmeticError, LookupError):
                    value = _FAILED
            memo[index] = value
        return value

    def _map(
        self,
        fields: tuple[FieldMap, ...],
        row: Row,
        memo: list[object] | None,
        failed: list[str],
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        keys = self._keys
        for f in fields:
            if f.children is not None:
                out[f.name] = self._map(f.children, row, memo, failed)
                continue
            if f.column is None:
                out[f.name] = f.const
                continue
            if f.shared is not None and memo is not None:
                value = self._shared(f.shared, row, memo)
            else:
                # the learnt spelling first, inline: a row maps some twenty columns
                value = row.get(keys.get(f.column, f.column), _MISSING)
                if value is _MISSING:
                    value = self._search(row, f.column, f.column_lower or "")
            if value is _MISSING or value is _FAILED:
                failed.append(f.name)
                out[f.name] = None
                continue
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

    fields = build(output, path)
    return _share_prefixes(fields, output, lookups=lookups, titles=titles)


def _leaves(
    fields: tuple[FieldMap, ...], configs: Mapping[str, FieldConfig]
) -> list[tuple[FieldMap, FieldConfig]]:
    out: list[tuple[FieldMap, FieldConfig]] = []
    for f in fields:
        cfg = configs[f.name]
        if f.children is not None and cfg.fields is not None:
            out.extend(_leaves(f.children, cfg.fields))
        elif f.column is not None and cfg.transform:
            out.append((f, cfg))
    return out


def _share_prefixes(
    fields: tuple[FieldMap, ...],
    output: Mapping[str, FieldConfig],
    *,
    lookups: Mapping[str, Mapping[str, str]],
    titles: Sequence[str],
) -> Mapper:
    """Find leading transforms that two or more fields apply to the same column.

    Transforms are pure, so running a shared prefix once and the rest per field
    gives what each field's whole chain gives.
    """
    leaves = _leaves(fields, output)
    specs = {
        id(f): tuple(orjson.dumps(t, option=orjson.OPT_SORT_KEYS) for t in cfg.transform)
        for f, cfg in leaves
    }
    def prefixes(f: FieldMap) -> list[tuple[str, tuple[bytes, ...]]]:
        """(column, first k specs) for k = 1 .. all of the field's transforms."""
        s = specs[id(f)]
        return [(f.column_lower or "", s[:k]) for k in range(1, len(s) + 1)]

    counts = Counter(p for f, _ in leaves for p in prefixes(f))
    shared: dict[tuple[str, tuple[bytes, ...]], int] = {}
    steps: list[SharedSteps] = []
    replaced: dict[int, FieldMap] = {}
    for f, cfg in leaves:
        common = [p for p in prefixes(f) if counts[p] > 1]
        if not common:
            continue
        key = common[-1]  # the longest prefix another field on the column starts with
        k = len(key[1])
        if key not in shared:
            shared[key] = len(steps)
            prefix = compile_chain(cfg.transform[:k], lookups=lookups, titles=titles)
            steps.append(SharedSteps(f.column or "", f.column_lower or "", prefix))
        rest = cfg.transform[k:]
        chain = compile_chain(rest, lookups=lookups, titles=titles) if rest else None
        replaced[id(f)] = replace(f, shared=shared[key], chain=chain)

    def rebuild(items: tuple[FieldMap, ...]) -> tuple[FieldMap, ...]:
        return tuple(
            replace(f, children=rebuild(f.children))
            if f.children is not None
            else replaced.get(id(f), f)
            for f in items
        )

    return Mapper(rebuild(fields), tuple(steps))
