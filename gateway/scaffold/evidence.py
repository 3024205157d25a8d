"""What a column's sampled values call for: the transforms, and the evidence for each.

Each decision is made from the values themselves (their Python types as the
driver returns them, their shapes), with the column's declared type and name
as hints only.  The evidence is counts and shapes, never a value: the only
sampled values ``scaffold`` prints are the codes of low-cardinality code
columns, which it must list for their lookups.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from gateway.transforms import (
    is_valid_pid,
    normalise_pid,
    parse_legacy_date,
    redecode_thai,
    split_thai_name,
)

__all__ = ["PID_NAME", "ColumnEvidence", "Kind", "examine", "pid_spelling"]

Kind = Literal["key", "pid", "name", "date", "code", "flag", "number", "text", "empty", "other"]

_THAI = re.compile("[\u0e00-\u0e7f]")
_THAI_DIGIT = re.compile("[\u0e50-\u0e59]")
_INVISIBLE = re.compile("[\u200b-\u200f\u2060\ufeff\u00ad\x00]")
_NUMBER = re.compile(r"\s*-?\d+(\.\d+)?\s*")
_DATE_SHAPES = (
    (re.compile(r"\d{8}"), "YYYYMMDD"),
    (re.compile(r"\d{1,2}/\d{1,2}/\d{4}"), "DD/MM/YYYY"),
    (re.compile(r"\d{1,2}-\d{1,2}-\d{4}"), "DD-MM-YYYY"),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), "YYYY-MM-DD"),
    (re.compile(r"\d{1,2}[/-]\d{1,2}[/-]\d{2}"), "DD/MM/YY"),
)
_FLAG_SETS = (frozenset("YN"), frozenset("TF"), frozenset({"ใช่", "ไม่ใช่"}))
PID_NAME = re.compile(r"(^|[_.])(pid|cid|citizen_?id|id_?card|card_?id|personal_?id)$", re.I)
_CODE_NAME = re.compile(r"(code|_cd|type|status|sex|gender|^prov|flag|kind)", re.I)
_PLACEHOLDERS = frozenset({"-", "--", ".", "n/a", "N/A", "ไม่มี"})  # typed for "no value"
_NO_ZERO = re.compile(r"^(moo|village_?no|mu)$", re.I)  # หมู่ 0 does not exist: 0 is "none"
_BE_MIN_YEAR = 2400  # a year this large in a date is Buddhist Era (CE 1857 onwards)


@dataclass(slots=True)
class ColumnEvidence:
    column: str
    kind: Kind
    transform: list[str | dict[str, Any]] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    seen: int = 0
    valid_pids: int = 0
    spellings: Counter[str] = field(default_factory=Counter)
    codes: list[str] = field(default_factory=list)  # a code column's distinct codes


def pid_spelling(value: object) -> str:
    """How a legacy column spells a citizen ID: plain, dashed, spaced, padded or other."""
    if not isinstance(value, str):
        return "number" if isinstance(value, int | Decimal) else "other"
    s = value
    if s.isdigit() and len(s) == 13:
        return "plain"
    if s.rstrip(" \x00").isdigit() and len(s.rstrip(" \x00")) == 13:
        return "padded"
    core = s.strip()
    if re.fullmatch(r"\d-\d{4}-\d{5}-\d{2}-\d", core):
        return "dashed"
    if re.fullmatch(r"\d \d{4} \d{5} \d{2} \d", core):
        return "spaced"
    return "other"


def _text(value: object) -> tuple[str | None, str]:
    """(text, how it arrived): utf8, bytes (TIS-620), mojibake (TIS-620 via latin1)."""
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8"), "utf8"
        except UnicodeDecodeError:
            try:
                return bytes(value).decode("cp874"), "bytes"
            except UnicodeDecodeError:
                return None, "binary"
    if isinstance(value, str):
        if value.isascii() or _THAI.search(value):
            return value, "utf8"
        fixed = redecode_thai(value)
        if fixed is not None and fixed != value and _THAI.search(fixed):
            return fixed, "mojibake"
        return value, "utf8"
    return None, type(value).__name__


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole}"


def _pid_stats(ev: ColumnEvidence, values: Sequence[object]) -> None:
    for v in values:
        try:
            pid = normalise_pid(v) if isinstance(v, str | int | Decimal | bytes) else None
        except (ValueError, TypeError):
            pid = None
        if pid is not None and is_valid_pid(pid):
            ev.valid_pids += 1
            ev.spellings[pid_spelling(v)] += 1


def _dates(ev: ColumnEvidence, values: Sequence[object], texts: Sequence[str]) -> bool:
    if all(isinstance(v, dt.date) for v in values):
        be = sum(1 for v in values if isinstance(v, dt.date) and v.year >= _BE_MIN_YEAR)
        ev.kind = "date"
        if be * 2 >= len(values):
            ev.transform = ["be_date"]
            ev.evidence.append(
                f"a DATE column holding Buddhist Era years: {_share(be, len(values))}"
            )
        else:
            ev.transform = ["date"]
            ev.evidence.append("a DATE column with Gregorian years")
        return True
    if len(texts) != len(values):
        return False
    shapes: Counter[str] = Counter()
    for t in texts:
        s = t.strip()
        shape = next((n for rx, n in _DATE_SHAPES if rx.fullmatch(s)), None)
        if shape is None and s.strip("0/-. "):
            return False
        shapes[shape or "blank"] += 1
    years: Counter[str] = Counter()
    partial = failed = 0
    for t in texts:
        digits = re.findall(r"\d{4}", t)
        year = int(digits[0] if t.strip()[:4].isdigit() else digits[-1]) if digits else 0
        if year:
            years["be" if year >= _BE_MIN_YEAR else "ce"] += 1
        try:
            pd = parse_legacy_date(t, era="be")
        except ValueError:
            failed += 1
            continue
        if pd is not None and pd.precision != "day":
            partial += 1
    dated = sum(n for s, n in shapes.items() if s != "blank")
    if not dated or failed * 5 > dated or not (years["be"] + years["ce"]):
        return False
    ev.kind = "date"
    era_be = years["be"] >= years["ce"]
    ev.transform = ["be_date" if era_be else "date"]
    forms = ", ".join(f"{s} {n}" for s, n in shapes.most_common())
    era = "Buddhist Era" if era_be else "Gregorian"
    ev.evidence.append(f"{era} dates as text ({forms})")
    if partial:
        ev.evidence.append(f"{_share(partial, dated)} with 00 for an unknown day or month")
    if failed:
        ev.evidence.append(f"{_share(failed, dated)} not a date (served as null, counted)")
    return True


def _name_like(texts: Sequence[str]) -> int:
    named = 0
    for t in texts:
        parts = split_thai_name(t)
        if parts.title is not None and parts.first is not None and parts.last is not None:
            named += 1
    return named


def examine(column: str, values: Sequence[object], declared: str = "") -> ColumnEvidence:
    """The evidence of one column from its sampled values (None included)."""
    present = [v for v in values if v is not None and not (isinstance(v, str) and not v.strip())]
    ev = ColumnEvidence(column, "other", seen=len(values))
    if not present:
        ev.kind = "empty"
        ev.evidence.append(f"no value in the {len(values)} sampled rows")
        return ev
    n = len(present)
    if declared:
        ev.evidence.append(declared)
    _pid_stats(ev, present)
    if ev.valid_pids * 10 >= n * 8 or (PID_NAME.search(column) and ev.valid_pids * 2 >= n):
        ev.kind = "pid"
        ev.transform = ["pid"]
        spelled = ", ".join(f"{s} {c}" for s, c in ev.spellings.most_common())
        ev.evidence.append(f"citizen IDs: {_share(ev.valid_pids, n)} pass the checksum ({spelled})")
        return ev
    decoded = [_text(v) for v in present]
    texts = [t for t, _ in decoded if t is not None]
    how = Counter(h for _, h in decoded)
    if _dates(ev, present, texts):
        return ev
    if isinstance(present[0], int | float | Decimal) and not isinstance(present[0], bool):
        ev.kind = "number"
        ev.evidence.append(f"numbers ({type(present[0]).__name__})")
        return ev
    if len(texts) != n:
        ev.evidence.append(f"values of type {', '.join(sorted(how))}: left as they are")
        return ev
    stripped = [t.strip() for t in texts]
    distinct = sorted(set(stripped))
    if any(frozenset(distinct) <= f for f in _FLAG_SETS) and len(distinct) <= 2:
        ev.kind = "flag"
        ev.transform = ["bool"]
        ev.evidence.append(f"flags: only {'/'.join(distinct)} in {n} values")
        return ev
    steps: list[str | dict[str, Any]] = []
    if how["mojibake"]:
        steps.append("cp874")
        ev.evidence.append(f"TIS-620 read through a latin1 column: {_share(how['mojibake'], n)}")
    elif how["bytes"]:
        steps.append("cp874")
        ev.evidence.append(f"TIS-620 bytes: {_share(how['bytes'], n)}")
    named_code = _CODE_NAME.search(column)
    if all(_NUMBER.fullmatch(t) for t in texts) and not any(_THAI_DIGIT.search(t) for t in texts):
        # a code column named as one may be sampled small: its codes are still codes
        few = len(distinct) <= 20 and (len(distinct) <= max(2, n // 2) or bool(named_code))
        widths = {len(s) for s in stripped}
        if few and max(widths) <= 4 and "." not in "".join(stripped) and named_code:
            return _code(ev, distinct, stripped, n)
        if any("." in s for s in stripped):
            places = max(len(s.partition(".")[2]) for s in stripped)
            ev.kind = "number"
            ev.transform = ["trim", {"decimal": {"places": places}}]
            ev.evidence.append(f"numbers as text, up to {places} decimal places")
        elif named_code or any(s.startswith("0") and len(s) > 1 for s in stripped):
            ev.kind = "code"
            ev.transform = ["trim"]
            ev.evidence.append("digits as text with leading zeros or a code's name: kept as text")
        else:
            ev.kind = "number"
            ev.transform = ["trim", "int"]
            ev.evidence.append("whole numbers as text")
            zeros = stripped.count("0")
            if zeros and _NO_ZERO.search(column):
                ev.transform.insert(1, {"null_if": ["0"]})
                ev.evidence.append(f"0 for no village number: {_share(zeros, n)}")
        return ev
    few = len(distinct) <= min(20, max(2, n // 3)) and max(len(s) for s in stripped) <= 4
    if few and not any(_THAI.search(s) for s in stripped):
        return _code(ev, distinct, stripped, n)
    thai = sum(1 for t in texts if _THAI.search(t))
    named = _name_like(texts) if thai else 0
    if named * 2 >= n:
        ev.kind = "name"
        ev.evidence.append(f"Thai full names with a title: {_share(named, n)}")
    else:
        ev.kind = "text"
    padded = sum(1 for t in texts if t != t.strip() or "  " in t or _INVISIBLE.search(t))
    # identifiers (ASCII, one word: GL-2567-00042) only need their padding off
    words = all(s.isascii() and len(s.split()) <= 1 for s in stripped)
    steps.append("trim" if words and not steps and ev.kind == "text" else "clean")
    if padded:
        ev.evidence.append(f"padding, doubled spaces or invisible characters: {_share(padded, n)}")
    if any(_THAI_DIGIT.search(t) for t in texts):
        steps.append("arabic_digits")
        digits = sum(1 for t in texts if _THAI_DIGIT.search(t))
        ev.evidence.append(f"Thai digits: {_share(digits, n)}")
    holes = sorted({s for s in stripped if s in _PLACEHOLDERS})
    if holes:
        steps.append({"null_if": holes})
        typed = sum(1 for s in stripped if s in _PLACEHOLDERS)
        ev.evidence.append(f"{' '.join(holes)} typed for no value: {_share(typed, n)}")
    ev.transform = steps
    return ev


def _code(ev: ColumnEvidence, distinct: list[str], stripped: list[str], n: int) -> ColumnEvidence:
    ev.kind = "code"
    ev.codes = distinct
    widths = {len(s) for s in stripped}
    ev.transform = ["trim"]
    ev.evidence.append(f"a code: {len(distinct)} distinct values in {n}")
    if all(s.isdigit() for s in stripped) and len(widths) > 1 and max(widths) <= 3:
        width = max(widths)
        ev.transform.append({"zfill": width})
        short = sum(1 for s in stripped if len(s) < width)
        ev.evidence.append(f"{_share(short, n)} lost their leading zero")
        ev.codes = sorted({s.zfill(width) for s in stripped})
    return ev
