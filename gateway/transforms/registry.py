"""What each transform is, written once: every other part of the gateway reads it here.

A :class:`TransformInfo` names the builder, the JSON type the transform
yields, its format note in Thai and English, what it reads and how a legacy
column would hold a value it yields (the sandbox writes legacy rows with that),
a legacy-shaped sample input and example arguments (the tests run every
transform on them).  ``compile_chain`` builds from it; through ``chain_types``,
``chain_note`` and ``legacy_value`` (:mod:`.chain`) the OpenAPI description and
the registration pack type and explain fields with it and the sandbox writes
rows with it.  A new transform is one entry here plus its tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from .builders import (
    Builder,
    build_date,
    build_decimal,
    build_default,
    build_lookup,
    build_name,
    build_null_if,
    build_pid,
    build_redecode,
    build_replace,
    build_substr,
    build_zfill,
    simple,
    to_bool,
    to_float,
    to_int,
)
from .citizen_id import format_pid
from .text import arabic_digits, as_text, ascii_digits, clean_text
from .thaidate import BE_OFFSET

__all__ = [
    "NO_NOTE",
    "REGISTRY",
    "JsonTypes",
    "Lookups",
    "Note",
    "Reads",
    "TransformInfo",
    "json_type",
    "lookup_table",
]

JsonTypes = frozenset[str]  # of "string" "integer" "number" "boolean"; None: as the driver gave
Lookups = Mapping[str, Mapping[str, object]]
Spec = str | Mapping[str, object]
# What a transform reads: any value, a full name (title, first and last name in one
# column), a code of a lookup table, a citizen ID or a date.
Reads = Literal["value", "full_name", "code", "citizen_id", "date"]


@dataclass(frozen=True, slots=True)
class Note:
    """A format note of a field, as the registration pack prints it."""

    en: str
    th: str


NO_NOTE: Final = Note("", "")
_STRING: Final = frozenset({"string"})


def _always(types: JsonTypes) -> Callable[[object, JsonTypes | None, Lookups], JsonTypes | None]:
    return lambda args, given, lookups: types


def _yields_text(args: object, given: JsonTypes | None, lookups: Lookups) -> JsonTypes:
    return _STRING


def _keeps_type(args: object, given: JsonTypes | None, lookups: Lookups) -> JsonTypes | None:
    return given


def _keeps_note(args: object, lookups: Lookups) -> Note | None:
    return None  # the note of what it was given still holds


def _clears_note(args: object, lookups: Lookups) -> Note | None:
    return NO_NOTE


def _same(args: object, value: object) -> object:
    return value


@dataclass(frozen=True, slots=True)
class TransformInfo:
    name: str
    summary: str  # one line, for the README and error messages
    build: Builder
    sample: object  # a legacy-shaped input that ``example`` arguments turn into a value
    example: object = None  # arguments for the sample; None: the transform takes none
    variants: tuple[object, ...] = ()  # other arguments, reaching other code paths
    # the JSON types of the result, given the arguments and the types it was given
    yields: Callable[[object, JsonTypes | None, Lookups], JsonTypes | None] = _yields_text
    # the format note of the result; None: keeps the note of what it was given
    note: Callable[[object, Lookups], Note | None] = _clears_note
    # a legacy value this transform turns into ``value`` (for sandbox rows)
    legacy: Callable[[object, object], object] = _same
    reads: Reads = "value"
    runs_on_null: bool = False

    @property
    def spec(self) -> Spec:
        """The example spec: ``name`` or ``{name: example}``."""
        return self.name if self.example is None else {self.name: self.example}


def _opt(args: object, key: str) -> object:
    return args.get(key) if isinstance(args, Mapping) else None


# --- citizen ID, dates, text ---------------------------------------------------------


def _pid_note(args: object, lookups: Lookups) -> Note:
    if _opt(args, "format") == "dashed":
        return Note("citizen ID, 1-2345-67890-12-1", "เลขประจำตัวประชาชน รูปแบบ 1-2345-67890-12-1")
    return Note("citizen ID, 13 digits", "เลขประจำตัวประชาชน 13 หลัก")


def _pid_legacy(args: object, value: object) -> object:
    text = as_text(value).replace("-", "")
    return format_pid(text) if len(text) == 13 and text.isdigit() else value


def _date_yields(args: object, given: JsonTypes | None, lookups: Lookups) -> JsonTypes:
    return frozenset({"integer" if _opt(args, "output") == "be_int" else "string"})


def _date_note(args: object, lookups: Lookups) -> Note:
    if _opt(args, "output") == "be_int":
        return Note(
            "Buddhist Era date YYYYMMDD, 00 for an unknown day or month",
            "วันที่ พ.ศ. รูปแบบ YYYYMMDD (00 เมื่อไม่ทราบวันหรือเดือน)",
        )
    return Note(
        "date, ISO 8601 CE: YYYY-MM-DD, or YYYY-MM / YYYY when not fully known",
        "วันที่ ค.ศ. รูปแบบ ISO 8601 YYYY-MM-DD (YYYY-MM หรือ YYYY เมื่อไม่ทราบวันหรือเดือน)",
    )


def _date_legacy(era_offset: int) -> Callable[[object, object], object]:
    def legacy(args: object, value: object) -> object:
        if isinstance(value, int):  # already DOPA's BE integer
            return str(value)
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(as_text(value))
        y, m, d = f"{day.year + era_offset:04d}", f"{day.month:02d}", f"{day.day:02d}"
        order = _opt(args, "order")
        if order == "dmy":
            return f"{d}/{m}/{y}"
        if order == "mdy":
            return f"{m}/{d}/{y}"
        return y + m + d if era_offset else f"{y}-{m}-{d}"

    return legacy


def _source(args: object) -> str:
    source = _opt(args, "source")
    return source if isinstance(source, str) else "cp874"


def _mojibake(args: object, value: object) -> object:
    # TIS-620 bytes kept in a latin1 column, as the driver returns them
    text = as_text(value)
    try:
        return text.encode(_source(args)).decode("latin-1")
    except (UnicodeEncodeError, LookupError):
        return text


def _name_note(args: object, lookups: Lookups) -> Note:
    parts = {"title": "คำนำหน้านาม", "first": "ชื่อ", "middle": "ชื่อกลาง", "last": "ชื่อสกุล"}
    return Note(f"the {args} part of the full name", f"{parts.get(str(args), args)} จากชื่อเต็ม")


_THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")


# --- codes and numbers ------------------------------------------------------------------


def lookup_table(args: object, lookups: Lookups) -> tuple[str, Mapping[str, object], object]:
    """(table name or "", codes -> descriptions, default) of a lookup's arguments."""
    if isinstance(args, str):
        return args, lookups.get(args, {}), None
    name = _opt(args, "table")
    inline = _opt(args, "map")
    table: Mapping[str, object] = (
        {str(k): v for k, v in inline.items()}
        if isinstance(inline, Mapping)
        else lookups.get(str(name), {})
    )
    return (str(name) if name else ""), table, _opt(args, "default")


def json_type(value: object) -> str:
    """The JSON type name of a value as the gateway serves it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return "string"


def _lookup_yields(args: object, given: JsonTypes | None, lookups: Lookups) -> JsonTypes:
    _, table, default = lookup_table(args, lookups)
    values = [*table.values(), *([] if default is None else [default])]
    return frozenset(json_type(v) for v in values) or _STRING


def _lookup_note(args: object, lookups: Lookups) -> Note:
    label = lookup_table(args, lookups)[0]
    if label:
        return Note(f"description from the code table {label}", f"คำอธิบายจากตารางรหัส {label}")
    return Note("description of a code", "คำอธิบายของรหัส")


def _decimal_note(args: object, lookups: Lookups) -> Note:
    places = _opt(args, "places")
    if places is None:
        return NO_NOTE
    return Note(f"rounded to {places} decimal places", f"ทศนิยม {places} ตำแหน่ง")


def _zfill_note(args: object, lookups: Lookups) -> Note:
    return Note(f"zero-padded to {args} characters", f"เติม 0 ด้านหน้าให้ครบ {args} หลัก")


def _default_yields(args: object, given: JsonTypes | None, lookups: Lookups) -> JsonTypes | None:
    return None if given is None else given | {json_type(args)}


def _bool_legacy(args: object, value: object) -> object:
    return "Y" if value else "N"


def _number_legacy(args: object, value: object) -> object:
    return as_text(value)


def _prefixed(args: object, value: object) -> object:
    start = _opt(args, "start")
    return " " * (start if isinstance(start, int) else 0) + as_text(value)


def _unpadded(args: object, value: object) -> object:
    return as_text(value).lstrip("0") or "0"


_ENTRIES: dict[str, TransformInfo] = {
    info.name: info
    for info in (
        TransformInfo(
            "pid",
            "citizen ID to 13 digits; args format: plain|dashed, validate: bool",
            build_pid,
            sample="1-1017-00203-45-0",
            variants=({"format": "dashed", "validate": True},),
            note=_pid_note,
            legacy=_pid_legacy,
            reads="citizen_id",
        ),
        TransformInfo(
            "be_date",
            "BE date to ISO; order: auto|ymd|dmy|mdy, output: iso|be_int",
            build_date("be"),
            sample="25360719",
            variants=(
                {"order": "dmy", "output": "be_int"},
                {"order": "mdy"},
                {"order": "ymd"},
            ),
            yields=_date_yields,
            note=_date_note,
            legacy=_date_legacy(BE_OFFSET),
            reads="date",
        ),
        TransformInfo(
            "date",
            "CE legacy date to ISO; args as be_date",
            build_date("ce"),
            sample="1993-07-19",
            variants=({"output": "be_int"}, {"order": "ymd"}),
            yields=_date_yields,
            note=_date_note,
            legacy=_date_legacy(0),
            reads="date",
        ),
        TransformInfo(
            "cp874",
            "re-decode TIS-620 bytes or latin1/cp1252 mojibake; source: ENCODING",
            build_redecode,
            sample="ºéÒ¹áËÅÁ",  # บ้านแหลม as a latin1 column returns TIS-620 bytes
            variants=({"source": "utf-8"}, {"source": "latin-1"}),
            legacy=_mojibake,
        ),
        TransformInfo(
            "thai", "alias of cp874", build_redecode, sample=b"\xbb\xc5\xd2", legacy=_mojibake
        ),
        TransformInfo(
            "clean",
            "drop invisible chars, NFC, compose sara am, collapse spaces; empty -> null",
            simple(clean_text),
            sample="นายสมชาย\u200b  ใจดี ",
            note=_keeps_note,
        ),
        TransformInfo(
            "trim",
            "strip surrounding whitespace; empty -> null",
            simple(lambda value: as_text(value).strip() or None),
            sample=" A  ",
            note=_keeps_note,
        ),
        TransformInfo(
            "name",
            "one part of a Thai full name: title|first|middle|last",
            build_name,
            sample="นายสมชาย  ใจดี",
            example="first",
            variants=("title", "middle", "last"),
            note=_name_note,
            reads="full_name",
        ),
        TransformInfo(
            "lookup",
            "code to description: TABLE or {table: NAME | map: {...}, default: V}",
            build_lookup,
            sample=" 2",
            example={"map": {"1": "ชาย", "2": "หญิง"}},
            variants=({"map": {"1": 10, "2": "สิบ"}, "default": "?"},),
            yields=_lookup_yields,
            note=_lookup_note,
            reads="code",
        ),
        TransformInfo(
            "int",
            "integer ('0012' -> 12, never truncates); blank -> null",
            simple(to_int),
            sample="0012",
            yields=_always(frozenset({"integer"})),
            legacy=_number_legacy,
        ),
        TransformInfo(
            "float",
            "floating-point number; blank -> null",
            simple(to_float),
            sample=" 12.5",
            yields=_always(frozenset({"number"})),
            legacy=_number_legacy,
        ),
        TransformInfo(
            "decimal",
            "number as float, rounded half-up; arg places: N",
            build_decimal,
            sample="2.675",
            variants=({"places": 2},),
            yields=_always(frozenset({"number"})),
            note=_decimal_note,
            legacy=_number_legacy,
        ),
        TransformInfo(
            "str", "text; integral floats without '.0', dates as ISO", simple(as_text), sample=12.0
        ),
        TransformInfo(
            "bool",
            "Y/N 1/0 T/F true/false yes/no ใช่/ไม่ใช่ -> bool; blank -> null",
            simple(to_bool),
            sample="Y",
            yields=_always(frozenset({"boolean"})),
            legacy=_bool_legacy,
        ),
        TransformInfo(
            "zfill",
            "left-pad with zeros to N characters (zfill: N)",
            build_zfill,
            sample="5",
            example=2,
            note=_zfill_note,
            legacy=_unpadded,
        ),
        TransformInfo(
            "upper",
            "upper case",
            simple(lambda value: as_text(value).upper()),
            sample="pr-2567",
            note=_keeps_note,
        ),
        TransformInfo(
            "lower",
            "lower case",
            simple(lambda value: as_text(value).lower()),
            sample="PR-2567",
            note=_keeps_note,
        ),
        TransformInfo(
            "digits",
            "keep only digits, Thai digits as ASCII; none -> null",
            simple(ascii_digits),
            sample="โทร ๐๘๑-234",
            note=lambda args, lookups: Note("digits only", "ตัวเลขเท่านั้น"),
        ),
        TransformInfo(
            "arabic_digits",
            "Thai digits as ASCII, other text kept",
            simple(arabic_digits),
            sample="๔๕/๒",
            note=_keeps_note,
            legacy=lambda args, value: as_text(value).translate(_THAI_DIGITS),
        ),
        TransformInfo(
            "null_if",
            "null when the stripped text is one of the values (null_if: [...])",
            build_null_if,
            sample="12",
            example=["-", "0"],
            yields=_keeps_type,
            note=_keeps_note,
        ),
        TransformInfo(
            "default",
            "value used when the field is null (default: V)",
            build_default,
            sample=None,
            example="ไม่ระบุ",
            variants=(0,),
            yields=_default_yields,
            note=_keeps_note,
            runs_on_null=True,
        ),
        TransformInfo(
            "replace",
            "regex substitution: {pattern: REGEX, with: TEXT}",
            build_replace,
            sample="PR 2567 12",
            example={"pattern": " +", "with": "-"},
            note=_keeps_note,
        ),
        TransformInfo(
            "substr",
            "slice of the text: {start: N, length: N}, counting from 0",
            build_substr,
            sample="PR-2567-000012",
            example={"start": 3, "length": 4},
            note=_keeps_note,
            legacy=_prefixed,
        ),
    )
}

REGISTRY: Final[Mapping[str, TransformInfo]] = MappingProxyType(_ENTRIES)
