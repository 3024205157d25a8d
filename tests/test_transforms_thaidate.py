from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.transforms import PartialDate, be_int, parse_legacy_date

TODAY_BE = 2568  # 2025 CE: pins the two-digit-year pivot


def iso(value: object, **kwargs: object) -> str | None:
    pd = parse_legacy_date(value, today_be_year=TODAY_BE, **kwargs)  # type: ignore[arg-type]
    return None if pd is None else pd.iso()


@pytest.mark.parametrize(
    "value",
    [
        "25670115",
        b"25670115",
        "25670115  ",
        "15012567",  # DDMMYYYY CHAR(8)
        "15/01/2567",
        "15-01-2567",
        "15.01.2567",
        "15-01-67",
        "15/1/67",
        " 15/1/2567 ",
        "2567-01-15",
        "2567-1-15",
        "2567/01/15",
        "2567-01-15 00:00:00",
        "2567-01-15 13:45:10.123",
        "2567-01-15T13:45:10",
        "2567-01-15T13:45:10+07:00",
        "2567-01-15T13:45:10Z",
        "15/01/2567 08:30",
        "15 ม.ค. 2567",
        "15 ม.ค.67",
        "15 มกราคม 2567",
        "15 มกราคม พ.ศ. 2567",
        "๑๕/๐๑/๒๕๖๗",
        dt.date(2567, 1, 15),  # BE year in a DATE column
        dt.datetime(2567, 1, 15, 23, 59),
        25670115,
        25670115.0,
        Decimal("25670115"),
    ],
)
def test_forms_of_15_jan_2567(value: object) -> None:
    assert iso(value) == "2024-01-15"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("25670100", "2024-01"),  # day unknown
        ("25670000", "2024"),  # day and month unknown
        ("25670015", "2024"),  # month unknown: the day alone means nothing
        ("00/01/2567", "2024-01"),
        ("00/00/2567", "2024"),
        ("2567-01-00", "2024-01"),
        ("2567", "2024"),
        ("2567-01", "2024-01"),
        ("01/2567", "2024-01"),
        ("มีนาคม 2567", "2024-03"),
        ("มี.ค. 2567", "2024-03"),
    ],
)
def test_unknown_parts_reduce_precision(value: str, expected: str) -> None:
    assert iso(value) == expected


@pytest.mark.parametrize(
    "value", [None, "", "   ", "\x00\x00\x00\x00\x00\x00\x00\x00", "0", "00000000", 0, b"00000000",
              "00/00/0000", "0000-00-00", "0000-00-00 00:00:00", b"        "],
)
def test_no_date_is_none(value: object) -> None:
    assert parse_legacy_date(value) is None


def test_29_february_be() -> None:
    # 2567 BE is 2024 CE, a leap year, although 2567 read as a Gregorian year is not.
    assert iso("29022567") == "2024-02-29"
    assert iso("25670229") == "2024-02-29"
    assert iso("29/02/2567") == "2024-02-29"


def test_day_that_exists_only_in_the_recorded_be_year_keeps_the_month() -> None:
    # A DATE column accepted 2568-02-29 (2568 is leap as a Gregorian number) but 2025 CE is not.
    assert iso(dt.date(2568, 2, 29)) == "2025-02"
    assert iso("29/02/2568") == "2025-02"
    assert parse_legacy_date(dt.date(2568, 2, 29)) == PartialDate(2025, 2, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("15-01-67", "2024-01-15"),
        ("15-01-68", "2025-01-15"),  # this year
        ("15-01-69", "1926-01-15"),  # 2569 is after 2568: previous century, 2469 BE
        ("15/1/99", "1956-01-15"),
        ("15/1/00", "1957-01-15"),
    ],
)
def test_two_digit_be_year(value: str, expected: str) -> None:
    assert iso(value) == expected


def test_two_digit_year_pivot_uses_today_by_default() -> None:
    this_be = dt.date.today().year + 543
    yy = this_be % 100
    assert parse_legacy_date(f"01/01/{yy:02d}") == PartialDate(this_be - 543, 1, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("15-01-24", "2024-01-15"), ("15-01-25", "2025-01-15"), ("15-01-26", "1926-01-15"),
     ("15/01/99", "1999-01-15")],
)
def test_two_digit_ce_year(value: str, expected: str) -> None:
    assert iso(value, era="ce") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-15", "2024-01-15"),
        ("15/01/2024", "2024-01-15"),
        ("20240229", "2024-02-29"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.datetime(2024, 1, 15, 7, 0, tzinfo=dt.UTC), "2024-01-15"),
        # A year past 2400 can only be BE even in a CE column.
        ("2567-01-15", "2024-01-15"),
        ("15 ม.ค. พ.ศ. 2567", "2024-01-15"),
    ],
)
def test_era_ce(value: object, expected: str) -> None:
    assert iso(value, era="ce") == expected


def test_era_ce_keeps_an_invalid_ce_day_invalid() -> None:
    with pytest.raises(ValueError):
        parse_legacy_date("29/02/2023", era="ce")


def test_ce_year_in_a_be_column_is_read_as_ce() -> None:
    # 2024 BE would be 1481 CE, which no register holds: the clerk typed CE.
    assert iso("15/01/2024") == "2024-01-15"
    assert iso(dt.date(2024, 1, 15)) == "2024-01-15"


def test_explicit_christian_era_marker_overrides_be() -> None:
    assert iso("15 มกราคม ค.ศ. 2024") == "2024-01-15"


@pytest.mark.parametrize(
    ("value", "order", "expected"),
    [
        ("01/15/2567", "mdy", "2024-01-15"),
        ("02/03/2567", "mdy", "2024-02-03"),
        ("02/03/2567", "dmy", "2024-03-02"),
        ("02/03/2567", "auto", "2024-03-02"),  # Thai writing is day-first
        ("150167", "dmy", "2024-01-15"),
        ("670115", "ymd", "2024-01-15"),
        ("011567", "mdy", "2024-01-15"),
        ("01152567", "mdy", "2024-01-15"),
        ("15012567", "dmy", "2024-01-15"),
        ("25670115", "ymd", "2024-01-15"),
        ("2567-01-15", "dmy", "2024-01-15"),  # a leading four-digit year always wins
    ],
)
def test_order(value: str, order: str, expected: str) -> None:
    assert iso(value, order=order) == expected


def _eight_digits_by_parts(s: str, order: str) -> str | None:
    """The reading the docstring promises for CHAR(8): ymd when the first four digits can
    be a year (or ymd is configured), else the configured or day-first order of 2/2/4."""
    if order == "ymd" or (
        order == "auto" and int(s[:4]) >= 1000 and int(s[4:6]) <= 12 and int(s[6:]) <= 31
    ):
        y, m, d = s[:4], s[4:6], s[6:]
    elif order == "mdy":
        m, d, y = s[:2], s[2:4], s[4:]
    else:
        d, m, y = s[:2], s[2:4], s[4:]
    return iso(f"{d}/{m}/{y}" if int(y) >= 1000 else f"{y}-{m}-{d}", order="dmy")


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet="0123456789", min_size=8, max_size=8),
    st.sampled_from(["auto", "ymd", "dmy", "mdy"]),
)
def test_eight_digits_read_as_their_separated_form(s: str, order: str) -> None:
    def outcome(fn: Callable[[], str | None]) -> str | None:
        try:
            return fn()
        except ValueError:
            return "ValueError"

    assert outcome(lambda: iso(s, order=order)) == outcome(lambda: _eight_digits_by_parts(s, order))


def test_integer_ddmmyyyy_lost_its_leading_zero() -> None:
    assert iso(1012567) == "2024-01-01"
    assert iso(1012567, order="dmy") == "2024-01-01"


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "15/13/2567",  # month 13
        "32/01/2567",
        "30022567",
        "29/02/2566",  # 2023 CE is not leap, nor is 2566 as a number
        "31/04/2567",
        "25671301",
        "150167",  # six digits without an order: ambiguous
        "1/2/3",
        "15/01/567",
        "15-01/2567",  # mixed separators
        "2567-01-15-01",
        "00001501x",
        "15 Foo 2567",
        "00/05/0000",  # month without a year
        "T10:00",
        "1234567",
        "๑๕ ม.ค.",
        b"\xff\xfe",
        -25670115,
        1.5,
        float("nan"),
        Decimal("2567.5"),
    ],
)
def test_garbage_raises_value_error(value: object) -> None:
    with pytest.raises(ValueError):
        parse_legacy_date(value, today_be_year=TODAY_BE)


@pytest.mark.parametrize("value", [True, dt.time(10, 0), [2567, 1, 15], object()])
def test_unsupported_types_raise_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        parse_legacy_date(value)


def test_partial_date_iso_and_precision() -> None:
    assert PartialDate(2024, 1, 15).iso() == "2024-01-15"
    assert PartialDate(2024, 1).iso() == "2024-01"
    assert PartialDate(2024).iso() == "2024"
    assert PartialDate(987, 3).iso() == "0987-03"
    assert [PartialDate(2024).precision, PartialDate(2024, 1).precision,
            PartialDate(2024, 1, 1).precision] == ["year", "month", "day"]


@pytest.mark.parametrize(
    ("year", "month", "day"),
    [(0, None, None), (10000, None, None), (2024, 13, None), (2024, 0, None), (2024, None, 5),
     (2023, 2, 29), (2024, 4, 31), (2024, 1, 0)],
)
def test_partial_date_validates(year: int, month: int | None, day: int | None) -> None:
    with pytest.raises(ValueError):
        PartialDate(year, month, day)


def test_partial_date_is_frozen() -> None:
    pd = PartialDate(2024, 1, 15)
    with pytest.raises(AttributeError):
        pd.year = 2025  # type: ignore[misc]


@pytest.mark.parametrize(
    ("pd", "expected"),
    [
        (PartialDate(2024, 1, 15), 25670115),
        (PartialDate(2024, 1), 25670100),
        (PartialDate(2024), 25670000),
        (PartialDate(1993, 7, 19), 25360719),
    ],
)
def test_be_int(pd: PartialDate, expected: int) -> None:
    assert be_int(pd) == expected


def test_be_int_round_trips_through_the_parser() -> None:
    for raw in ("25670115", "25670100", "25670000", "25360719"):
        pd = parse_legacy_date(raw)
        assert pd is not None
        assert str(be_int(pd)) == raw
