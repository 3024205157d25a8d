"""Output fields for the registration pack: their JSON type, format, meaning and source.

The type and format note of a field are what its transform chain yields, as
the transforms describe themselves (:mod:`gateway.transforms.registry`); a
field no transform types takes the type seen in the sample rows, else "as
stored".  Meanings come from the YAML (``description`` / ``description_th``)
or the built-in DOPA dictionary; a field with neither is reported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.config.models import FieldConfig
from gateway.describe.dictionary import meaning_of
from gateway.transforms import chain_note, chain_types, split_spec
from gateway.transforms.registry import json_type

__all__ = ["TYPE_TH", "FieldDoc", "field_docs"]

TYPE_TH: Mapping[str, str] = {
    "string": "ข้อความ",
    "integer": "จำนวนเต็ม",
    "number": "ตัวเลข",
    "boolean": "จริง/เท็จ",
    "object": "กลุ่มข้อมูล",
    "null": "ค่าว่าง (null)",
    "as stored": "ตามที่เก็บในระบบต้นทาง",
}


@dataclass(frozen=True, slots=True)
class FieldDoc:
    path: str  # "address.houseNo"
    depth: int
    type: str  # JSON type, or "as stored"
    format_en: str
    format_th: str
    meaning_en: str
    meaning_th: str
    source: str  # legacy column, "constant ..." or "" for an object
    transforms: str
    example: Any  # from the sample response; None when every sample row is null

    @property
    def type_th(self) -> str:
        return " หรือ ".join(TYPE_TH.get(t, t) for t in self.type.split(" or "))


def _transform_text(specs: Sequence[str | Mapping[str, Any]]) -> str:
    parts = []
    for spec in specs:
        name, args = split_spec(spec)
        parts.append(name if args is None else f"{name}: {json.dumps(args, ensure_ascii=False)}")
    return ", ".join(parts)


def _values_at(rows: Sequence[Mapping[str, Any]], path: Sequence[str]) -> list[Any]:
    out = []
    for row in rows:
        value: Any = row
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        out.append(value)
    return out


def field_docs(
    output: Mapping[str, FieldConfig],
    lookups: Mapping[str, Mapping[str, str]],
    sample: Sequence[Mapping[str, Any]],
    where: str,
    warn: list[str],
    prefix: tuple[str, ...] = (),
) -> list[FieldDoc]:
    docs: list[FieldDoc] = []
    for name, fc in output.items():
        path = (*prefix, name)
        dotted = ".".join(path)
        values = [v for v in _values_at(sample, path) if v is not None]
        known = meaning_of(name)
        meaning_en = fc.description or (known.en if known else "")
        meaning_th = fc.description_th or (known.th if known else "")
        if not (meaning_en and meaning_th):
            missing = " and ".join(
                k for k, v in (("description", meaning_en), ("description_th", meaning_th)) if not v
            )
            warn.append(f"{where}.output.{dotted}: no meaning known; add {missing} in the YAML")
        if fc.fields is not None:
            kind, fmt_en, fmt_th, source = "object", "", "", ""
        elif fc.column is None:
            kind, fmt_en, fmt_th = json_type(fc.const), "", ""
            source = f"constant {json.dumps(fc.const, ensure_ascii=False)}"
        else:
            types = chain_types(fc.transform, lookups)
            note = chain_note(fc.transform, lookups)
            fmt_en, fmt_th = note.en, note.th
            seen = {json_type(v) for v in values}
            if types:
                kind = " or ".join(sorted(types))
            else:  # no transform says: the type the sample shows, else "as stored"
                kind = seen.pop() if len(seen) == 1 else "as stored"
            source = fc.column
        docs.append(
            FieldDoc(
                path=dotted,
                depth=len(prefix),
                type=kind,
                format_en=fmt_en,
                format_th=fmt_th,
                meaning_en=meaning_en,
                meaning_th=meaning_th,
                source=source,
                transforms=_transform_text(fc.transform),
                example=None if fc.fields is not None or not values else values[0],
            )
        )
        if fc.fields is not None:
            docs.extend(field_docs(fc.fields, lookups, sample, where, warn, path))
    return docs
