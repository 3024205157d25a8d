"""Output fields for the registration pack: their JSON type, format, meaning and source.

The type of a field is what its transform chain produces (``int`` an integer,
``be_date`` an ISO date string, ``lookup`` the type of the table's values);
a field without transforms takes the type seen in the sample rows, else "as
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

__all__ = ["TYPE_TH", "FieldDoc", "field_docs", "infer_type"]

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
        return TYPE_TH.get(self.type, self.type)


def _spec(spec: str | Mapping[str, Any]) -> tuple[str, Any]:
    if isinstance(spec, str):
        return spec, None
    ((name, args),) = spec.items()
    return str(name), args


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    return "string"


_SHAPING = frozenset({"trim", "clean", "upper", "lower", "arabic_digits", "replace", "substr"})


def infer_type(
    specs: Sequence[str | Mapping[str, Any]], lookups: Mapping[str, Mapping[str, str]]
) -> tuple[str | None, str, str]:
    """(JSON type, format note EN, format note TH) of a transform chain's result."""
    kind: str | None = None
    en = th = ""
    for spec in specs:
        name, args = _spec(spec)
        if name == "pid":
            dashed = isinstance(args, Mapping) and args.get("format") == "dashed"
            kind = "string"
            en = "citizen ID, " + ("1-2345-67890-12-1" if dashed else "13 digits")
            th = "เลขประจำตัวประชาชน " + ("รูปแบบ 1-2345-67890-12-1" if dashed else "13 หลัก")
        elif name in ("be_date", "date"):
            if isinstance(args, Mapping) and args.get("output") == "be_int":
                kind, en = "integer", "Buddhist Era date YYYYMMDD, 00 for an unknown day or month"
                th = "วันที่ พ.ศ. รูปแบบ YYYYMMDD (00 เมื่อไม่ทราบวันหรือเดือน)"
            else:
                kind = "string"
                en = "date, ISO 8601 CE: YYYY-MM-DD, or YYYY-MM / YYYY when not fully known"
                th = "วันที่ ค.ศ. รูปแบบ ISO 8601 YYYY-MM-DD (YYYY-MM หรือ YYYY เมื่อไม่ทราบวันหรือเดือน)"
        elif name == "int":
            kind, en, th = "integer", "", ""
        elif name == "float":
            kind, en, th = "number", "", ""
        elif name == "decimal":
            kind, en, th = "number", "", ""
            places = args.get("places") if isinstance(args, Mapping) else None
            if places is not None:
                en, th = f"rounded to {places} decimal places", f"ทศนิยม {places} ตำแหน่ง"
        elif name == "bool":
            kind, en, th = "boolean", "", ""
        elif name == "lookup":
            table: Mapping[str, Any] = {}
            label = ""
            if isinstance(args, str):
                table, label = lookups.get(args, {}), args
            elif isinstance(args, Mapping):
                label = str(args.get("table", ""))
                table = args.get("map") or lookups.get(label, {})
            types = {_json_type(v) for v in table.values()}
            kind = types.pop() if len(types) == 1 else "string"
            en = f"description from the code table {label}" if label else "description of a code"
            th = f"คำอธิบายจากตารางรหัส {label}" if label else "คำอธิบายของรหัส"
        elif name == "zfill":
            kind, en, th = (
                "string",
                f"zero-padded to {args} characters",
                f"เติม 0 ด้านหน้าให้ครบ {args} หลัก",
            )
        elif name == "digits":
            kind, en, th = "string", "digits only", "ตัวเลขเท่านั้น"
        elif name == "name":
            kind = "string"
            en, th = f"the {args} part of the full name", f"ส่วน {args} ของชื่อเต็ม"
        elif name in ("null_if",):
            continue
        elif name == "default":
            kind = kind or _json_type(args)
        elif name in _SHAPING and kind == "string":
            continue  # keeps the format of the text it shapes
        else:  # cp874, thai, str and the shaping transforms on anything else
            kind, en, th = "string", "", ""
    return kind, en, th


def _transform_text(specs: Sequence[str | Mapping[str, Any]]) -> str:
    parts = []
    for spec in specs:
        name, args = _spec(spec)
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
            kind, fmt_en, fmt_th = _json_type(fc.const), "", ""
            source = f"constant {json.dumps(fc.const, ensure_ascii=False)}"
        else:
            inferred, fmt_en, fmt_th = infer_type(fc.transform, lookups)
            seen = {_json_type(v) for v in values}
            kind = inferred or (seen.pop() if len(seen) == 1 else "as stored")
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
