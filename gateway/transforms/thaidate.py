"""Buddhist Era (BE = CE + 543) and other legacy date forms, normalised to CE.

Legacy Thai registers record dates in BE, often with 00 for an unknown day or
month. Such dates are kept as a PartialDate of reduced precision: a day is
never invented.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

__all__ = ["BE_OFFSET", "Era", "Order", "PartialDate", "be_int", "parse_legacy_date"]

BE_OFFSET = 543

Era = Literal["be", "ce"]
Order = Literal["auto", "ymd", "dmy", "mdy"]

# With era="ce", a year above 2400 can only be BE: CE 2400 is centuries ahead,
# while BE 2401 (1858 CE) onwards covers every register, so the hint was wrong
# for that row (mixed-era columns are common where some clerks typed BE).
_CE_YEAR_MAX = 2400
# The mirror case: with era="be", a year below 2200 would be 1657 CE or earlier,
# which no register holds, whereas a CE year typed into a BE column is common.
_BE_YEAR_MIN = 2200

_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")

_TIME_SUFFIX = re.compile(
    r"(?<=\d)(?:T|\s+)\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?$",
    re.ASCII | re.IGNORECASE,
)
_SEPARATED = re.compile(r"(\d{1,4})([-/.])(\d{1,2})\2(\d{1,4})", re.ASCII)
_YEAR_MONTH = re.compile(r"(\d{4})[-/.](\d{1,2})", re.ASCII)
_MONTH_YEAR = re.compile(r"(\d{1,2})[-/.](\d{4})", re.ASCII)
_THAI_MONTH_FORM = re.compile(r"(?:(\d{1,2})\s*)?(\D+?)\s*(\d{2}|\d{4})", re.ASCII)

_THAI_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("มกราคม", "มค"), ("กุมภาพันธ์", "กพ"), ("มีนาคม", "มีค"), ("เมษายน", "เมย"),
            ("พฤษภาคม", "พค"), ("มิถุนายน", "มิย"), ("กรกฎาคม", "กค"), ("สิงหาคม", "สค"),
            ("กันยายน", "กย"), ("ตุลาคม", "ตค"), ("พฤศจิกายน", "พย"), ("ธันวาคม", "ธค"),
        ),
        start=1,
    )
    for name in names
}


_MDAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(year: int, month: int) -> int:
    # calendar.monthrange goes through datetime and so fails outside years 1..9999.
    return _MDAYS[month] + (month == 2 and calendar.isleap(year))


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A CE date whose month and day may be unknown (None)."""

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.year <= 9999:
            raise ValueError(f"year {self.year} out of range")
        if self.month is not None and not 1 <= self.month <= 12:
            raise ValueError(f"month {self.month} out of range")
        if self.day is not None and (
            self.month is None or not 1 <= self.day <= _days_in_month(self.year, self.month)
        ):
            raise ValueError(f"day {self.day} invalid for {self.year}-{self.month}")

    @property
    def precision(self) -> Literal["year", "month", "day"]:
        if self.month is None:
            return "year"
        return "month" if self.day is None else "day"

    def iso(self) -> str:
        """ISO 8601 at the known precision: YYYY-MM-DD, YYYY-MM or YYYY."""
        if self.month is None:
            return f"{self.year:04d}"
        if self.day is None:
            return f"{self.year:04d}-{self.month:02d}"
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"


def be_int(pd: PartialDate) -> int:
    """DOPA's BE integer YYYYMMDD with 00 for unknown parts (2024-01 -> 25670100)."""
    return (pd.year + BE_OFFSET) * 10000 + (pd.month or 0) * 100 + (pd.day or 0)


def _to_ce(year: int, era: Era) -> int:
    if era == "ce":
        return year - BE_OFFSET if year > _CE_YEAR_MAX else year
    return year - BE_OFFSET if year >= _BE_YEAR_MIN else year


def _expand_two_digit(yy: int, era: Era, today_be_year: int | None) -> int:
    current_be = today_be_year if today_be_year is not None else dt.date.today().year + BE_OFFSET
    if era == "be":
        year, current = 2500 + yy, current_be
    else:
        year, current = 2000 + yy, current_be - BE_OFFSET
    # A two-digit year later than this year means the previous century (a birth year '98).
    return year if year <= current else year - 100


def _build(year: int, month: int, day: int, era: Era) -> PartialDate | None:
    if year == 0:
        if month == 0 and day == 0:
            return None
        raise ValueError("day or month given without a year")
    if not 0 <= month <= 12:
        raise ValueError(f"month {month} out of range")
    if not 0 <= day <= 31:
        raise ValueError(f"day {day} out of range")
    ce_year = _to_ce(year, era)
    if not 1 <= ce_year <= 9999:
        raise ValueError(f"year {year} out of range")
    if month == 0:
        return PartialDate(ce_year)
    if day == 0:
        return PartialDate(ce_year, month)
    if day > _days_in_month(ce_year, month):
        # 29 Feb that exists in the recorded year number but not in the CE year (a BE
        # DATE column holding 2568-02-29 = 2025-02-29): keep what was recorded, drop the day.
        if ce_year != year and day <= _days_in_month(year, month):
            return PartialDate(ce_year, month)
        raise ValueError(f"day {day} does not exist in {ce_year}-{month:02d}")
    return PartialDate(ce_year, month, day)


def _year(text: str, era: Era, today_be_year: int | None) -> int:
    if len(text) == 2:
        return _expand_two_digit(int(text), era, today_be_year)
    if len(text) != 4:
        raise ValueError(f"a year has 2 or 4 digits, got {text!r}")
    return int(text)


def _from_digits(s: str, era: Era, order: Order, today: int | None) -> PartialDate | None:
    if len(s) == 4:
        return _build(int(s), 0, 0, era)
    if len(s) == 6:
        if order == "auto":
            # DDMMYY, YYMMDD and YYYYMM are all plausible six-digit forms.
            raise ValueError(f"ambiguous six-digit date {s!r}: configure the order")
        a, b, c = s[:2], s[2:4], s[4:]
    elif len(s) == 8:
        if order in ("auto", "ymd"):
            year, month, day = int(s[:4]), int(s[4:6]), int(s[6:])
            # YYYYMMDD unless the first four digits can not be a year (DDMMYYYY).
            if order == "ymd" or (year >= 1000 and month <= 12 and day <= 31):
                return _build(year, month, day, era)  # what _from_parts does with these
            order = "dmy"
        a, b, c = s[:2], s[2:4], s[4:]
    else:
        raise ValueError(f"unrecognised date {s!r}")
    return _from_parts(a, b, c, era, order, today)


def _from_parts(
    a: str, b: str, c: str, era: Era, order: Order, today: int | None
) -> PartialDate | None:
    # A four-digit leading part is always a year, whatever the configured order.
    if len(a) >= 3 or order == "ymd":
        y, m, d = a, b, c
    elif order == "mdy":
        y, m, d = c, a, b
    else:  # Thai writing is day-first, so "auto" reads dd/mm/yy.
        y, m, d = c, b, a
    if len(m) > 2 or len(d) > 2:
        raise ValueError(f"unrecognised date parts {a!r}, {b!r}, {c!r}")
    return _build(_year(y, era, today), int(m), int(d), era)


def _from_thai_month(match: re.Match[str], era: Era, today: int | None) -> PartialDate | None:
    day, word, year = match.groups()
    word = re.sub(r"[\s.]", "", word)
    # An explicit พ.ศ./ค.ศ. after the month overrides the configured era.
    if word.endswith(("พศ", "คศ")):
        era = "be" if word.endswith("พศ") else "ce"
        word = word[:-2]
    month = _THAI_MONTHS.get(word)
    if month is None:
        raise ValueError(f"unrecognised month {word!r}")
    return _build(_year(year, era, today), month, int(day or 0), era)


def _parse_text(text: str, era: Era, order: Order, today: int | None) -> PartialDate | None:
    if not text.isascii():  # Thai digits; most legacy dates are ASCII and skip the table
        text = text.translate(_THAI_DIGITS)
    s = text.strip().strip("\x00").strip()
    if ":" in s:  # a time of day always has one
        s = _TIME_SUFFIX.sub("", s)
    if not s.strip("0/-. "):
        return None  # blank, 0, 00000000, 0000-00-00: no date recorded
    if s.isascii() and s.isdigit():
        return _from_digits(s, era, order, today)
    if m := _SEPARATED.fullmatch(s):
        return _from_parts(m[1], m[3], m[4], era, order, today)
    if m := _YEAR_MONTH.fullmatch(s):
        return _build(int(m[1]), int(m[2]), 0, era)
    if m := _MONTH_YEAR.fullmatch(s):
        return _build(int(m[2]), int(m[1]), 0, era)
    if m := _THAI_MONTH_FORM.fullmatch(s):
        return _from_thai_month(m, era, today)
    raise ValueError(f"unrecognised date {text!r}")


def parse_legacy_date(
    value: object,
    *,
    era: Era = "be",
    order: Order = "auto",
    today_be_year: int | None = None,
) -> PartialDate | None:
    """Parse a legacy date into a CE PartialDate; None when no date is recorded.

    Accepts str/bytes (CHAR(8) 25670115, 15/01/2567, 15-01-67, 2567-01-15,
    ISO datetimes, 15 ม.ค. 2567), integers (25670115), and date/datetime
    objects, whose year is read in `era` too (a DATE column holding BE years).
    `order` resolves dd/mm vs mm/dd and 8-digit forms; a leading 4-digit year
    always wins. Two-digit years are 2500+yy BE (2000+yy CE) unless that is
    after `today_be_year`, then a century earlier. 00 in the day or month
    lowers the precision. Raises ValueError on anything else.
    """
    if value is None:
        return None
    if isinstance(value, str):  # the usual CHAR column: before the costlier checks below
        return _parse_text(value, era, order, today_be_year)
    if isinstance(value, dt.date):  # also datetime: the date as recorded, no tz shift
        return _build(value.year, value.month, value.day, era)
    if isinstance(value, bool):
        raise TypeError("a bool is not a date")
    if isinstance(value, float | Decimal):
        integral = (
            value.is_finite() and value == value.to_integral_value()
            if isinstance(value, Decimal)
            else value.is_integer()
        )
        if not integral:
            raise ValueError(f"not a date: {value!r}")
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"not a date: {value}")
        text = str(value)
        # A DDMMYYYY date stored as a number loses its leading zero (1012567 = 01012567).
        return _parse_text(text.zfill(8) if len(text) == 7 else text, era, order, today_be_year)
    if isinstance(value, bytes | bytearray | memoryview):
        return _parse_text(bytes(value).decode("cp874"), era, order, today_be_year)
    raise TypeError(f"unsupported date type {type(value).__name__}")
