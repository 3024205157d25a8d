"""Counting what a service's real mapping makes of each row, field by field.

Every leaf of the service's compiled mapping runs as it does for a call (its
shared first steps, then its own), but a transform's failure is kept with its
reason instead of only being counted.  Memory stays bounded: per field a few
counters and at most ``EXAMPLES`` masked examples; per citizen 8 bytes (the ID
as an integer with its spelling in the low bits) for the duplicate and
spelling counts.
"""

from __future__ import annotations

import datetime as dt
import re
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.adapter import Row
from gateway.normalise import FieldMap, Mapper
from gateway.policy import MASKS
from gateway.scaffold.evidence import pid_spelling
from gateway.transforms import as_text, is_valid_pid, mask_pid, redecode_thai

__all__ = ["EXAMPLES", "FieldTally", "Leaf", "Tally", "leaves_of", "mask_value"]

EXAMPLES = 3
_MAX_CODES = 10
_THAI = re.compile("[\u0e00-\u0e7f]")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_LONG_NUMBER = re.compile(r"\d{3,}")
_SPELLINGS = ("plain", "dashed", "spaced", "padded", "number", "other")
_ERRORS = (ValueError, TypeError, ArithmeticError, LookupError)
_MAY_BE_AHEAD = re.compile(r"expir|until|valid|due|end", re.I)  # dates meant to be ahead


@dataclass(frozen=True, slots=True)
class Leaf:
    name: str  # dotted, as a consumer's field policy names it
    column: str
    run: Any  # the whole compiled chain: shared steps, then the field's own
    transforms: frozenset[str]


def leaves_of(mapper: Mapper) -> list[Leaf]:
    out: list[Leaf] = []

    def walk(fields: Sequence[FieldMap], prefix: str) -> None:
        for f in fields:
            if f.children is not None:
                walk(f.children, f"{prefix}{f.name}.")
            elif f.column is not None:
                steps = [mapper.shared[f.shared].chain] if f.shared is not None else []
                if f.chain is not None:
                    steps.append(f.chain)
                out.append(
                    Leaf(prefix + f.name, f.column, _compose(steps), frozenset(f.transforms))
                )

    walk(mapper.fields, "")
    return out


def _compose(steps: Sequence[Any]) -> Any:
    def run(value: object) -> object:
        for step in steps:
            if value is None:
                return None
            value = step(value)
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value).hex()
        return value

    return run


def mask_value(value: object) -> str:
    """An example a report may show: a citizen ID as 1-xxxx-xxxxx-x6-1, words as initials,
    digits as their shape (9 for a digit, 0 kept: a 00 day stays visible)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    text = as_text(value) if isinstance(value, str | int | float | dt.date) else str(value)
    digits = re.sub(r"[\s\-.]", "", text)
    if len(digits) == 13 and digits.isascii() and digits.isdigit():
        return mask_pid(digits)
    if any(c.isalpha() for c in text):
        initial = MASKS["initial"]
        return " ".join(str(initial(w) or "?") for w in text.split()) or "?"
    return re.sub(r"[1-9]", "9", text.strip())


def _reason(exc: BaseException) -> str:
    text = _LONG_NUMBER.sub("<n>", _QUOTED.sub("<value>", str(exc)))
    return f"{type(exc).__name__}: {text}"[:120]


@dataclass(slots=True)
class FieldTally:
    rows: int = 0
    nulls: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    invalid_checksums: int = 0
    checksum_examples: list[str] = field(default_factory=list)
    mojibake: int = 0
    missing_codes: Counter[str] = field(default_factory=Counter)
    future: int = 0
    before_1900: int = 0
    born_after_registered: int = 0

    @property
    def implausible_dates(self) -> int:
        return self.future + self.before_1900 + self.born_after_registered


def _year_month_day(value: object) -> str | None:
    """An ISO date prefix (YYYY, YYYY-MM, YYYY-MM-DD) or a BE integer as ISO."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 10_000_000:
        y, md = divmod(value, 10_000)
        m, d = divmod(md, 100)
        return f"{y - 543:04d}" + (f"-{m:02d}" if m else "") + (f"-{d:02d}" if m and d else "")
    if isinstance(value, str) and re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value):
        return value
    return None


def _before(a: str, b: str) -> bool:
    """a is surely before b, at the precision both have."""
    n = min(len(a), len(b))
    return a[:n] < b[:n]


@dataclass(slots=True)
class Tally:
    leaves: list[Leaf]
    today: str = field(default_factory=lambda: dt.date.today().isoformat())
    rows: int = 0
    clean: int = 0
    rows_with: Counter[str] = field(default_factory=Counter)
    fields: dict[str, FieldTally] = field(default_factory=dict)
    citizens: array[int] = field(default_factory=lambda: array("q"))
    key: str | None = None  # the column the citizen counts are of
    birth: str | None = None
    registered: tuple[str, ...] = ()
    pairs: dict[str, str] = field(default_factory=dict)  # xDesc -> xCode
    codes: frozenset[str] = frozenset()
    _columns: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fields = {leaf.name: FieldTally() for leaf in self.leaves}
        pids = [leaf for leaf in self.leaves if "pid" in leaf.transforms]
        self.key = pids[0].column if pids else None
        names = [leaf.name for leaf in self.leaves if _is_date(leaf)]
        self.birth = next((n for n in names if "birth" in n.lower()), None)
        names_all = {leaf.name for leaf in self.leaves}
        self.pairs = {
            n: n.removesuffix("Desc") + "Code"
            for n in names_all
            if n.endswith("Desc") and n.removesuffix("Desc") + "Code" in names_all
        }
        self.codes = frozenset(self.pairs.values())
        self.registered = tuple(
            n for n in names if re.search(r"regist|issue", n, re.I) and n != self.birth
        )

    def _value(self, row: Row, column: str) -> object:
        key = self._columns.get(column)
        if key is None or key not in row:
            low = column.lower()
            key = next((k for k in row if k.lower() == low), column)
            self._columns[column] = key
        return row.get(key)

    def add(self, rows: Sequence[Row]) -> None:
        for row in rows:
            self._row(row)

    def _row(self, row: Row) -> None:
        self.rows += 1
        found: set[str] = set()
        dates: dict[str, str] = {}
        codes: dict[str, object] = {}
        described: list[str] = []  # description fields left null
        for leaf in self.leaves:
            ft = self.fields[leaf.name]
            ft.rows += 1
            raw = self._value(row, leaf.column)
            try:
                out = leaf.run(raw)
            except _ERRORS as exc:
                ft.failures[_reason(exc)] += 1
                if len(ft.examples) < EXAMPLES:
                    ft.examples.append(mask_value(raw))
                found.add("failures")
                continue
            if out is None:
                ft.nulls += 1
                if raw is not None and "lookup" in leaf.transforms:
                    self._missing(ft, as_text_or_none(raw), found)
                elif leaf.name in self.pairs:
                    described.append(leaf.name)
                continue
            if leaf.name in self.codes:
                codes[leaf.name] = out
            if "pid" in leaf.transforms and isinstance(out, str):
                self._citizen(ft, leaf, raw, out, found)
            elif isinstance(out, str) and _looks_mojibake(out):
                ft.mojibake += 1
                found.add("mojibake")
            if _is_date(leaf):
                iso = _year_month_day(out)
                if iso is not None:
                    dates[leaf.name] = iso
                    self._date(ft, iso, found, ahead=bool(_MAY_BE_AHEAD.search(leaf.name)))
        for name in described:  # a code present, its description (a join's) missing
            code = codes.get(self.pairs[name])
            if code is not None:
                self._missing(self.fields[name], as_text_or_none(code), found)
        if self.birth in dates:
            born = dates[self.birth]
            if any(_before(dates[r], born) for r in self.registered if r in dates):
                self.fields[self.birth].born_after_registered += 1
                found.add("implausible_dates")
        self.rows_with.update(found)
        if not found:
            self.clean += 1

    def _missing(self, ft: FieldTally, code: str | None, found: set[str]) -> None:
        if not code:
            return
        code = code[:8]
        if code in ft.missing_codes or len(ft.missing_codes) < _MAX_CODES:
            ft.missing_codes[code] += 1
        else:
            ft.missing_codes["(others)"] += 1
        found.add("missing_codes")

    def _citizen(self, ft: FieldTally, leaf: Leaf, raw: object, pid: str, found: set[str]) -> None:
        if not is_valid_pid(pid):
            ft.invalid_checksums += 1
            found.add("invalid_checksums")
            if len(ft.checksum_examples) < EXAMPLES:
                ft.checksum_examples.append(mask_value(pid))
            return
        if leaf.column == self.key:
            spelling = _SPELLINGS.index(pid_spelling(raw))
            self.citizens.append(int(pid) * 8 + spelling)

    def _date(self, ft: FieldTally, iso: str, found: set[str], *, ahead: bool) -> None:
        if iso[:4] < "1900":
            ft.before_1900 += 1
            found.add("implausible_dates")
        elif not ahead and _before(self.today, iso):
            ft.future += 1
            found.add("implausible_dates")

    def citizen_counts(self) -> dict[str, int]:
        """Distinct citizens, those with more than one row, and those spelled several ways."""
        ordered = sorted(self.citizens)
        distinct = duplicated = several = 0
        i, n = 0, len(ordered)
        while i < n:
            pid = ordered[i] >> 3
            j, spellings = i, set()
            while j < n and ordered[j] >> 3 == pid:
                spellings.add(ordered[j] & 7)
                j += 1
            distinct += 1
            duplicated += j - i > 1
            several += len(spellings) > 1
            i = j
        return {"distinct": distinct, "with_several_rows": duplicated, "several_spellings": several}


def as_text_or_none(value: object) -> str | None:
    try:
        return as_text(value).strip() or None
    except TypeError:
        return None


def _is_date(leaf: Leaf) -> bool:
    return bool(leaf.transforms & {"be_date", "date"})


def _looks_mojibake(text: str) -> bool:
    """Thai read through a single-byte codec: no Thai letter, and the letters mostly in the
    Latin-1 range TIS-620's bytes land in (one undecodable byte keeps cp874 from fixing it)."""
    if text.isascii() or _THAI.search(text):
        return False
    fixed = redecode_thai(text)
    if fixed is not None and fixed != text and _THAI.search(fixed):
        return True
    letters = [c for c in text if not c.isspace()]
    high = sum(1 for c in letters if "\u00a0" <= c <= "\u00ff")
    return high * 10 >= len(letters) * 3
