"""Every month's length and the explicit era of a Thai month name, pinned date by date.

A date that exists must parse (a citizen's record dated 31 March is evidence too), and one
that does not must be refused, in a leap year and in a common one.
"""

from __future__ import annotations

import pytest

from gateway.transforms import PartialDate, parse_legacy_date

LAST_DAY = {1: 31, 2: 28, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


@pytest.mark.parametrize("month", range(1, 13))
@pytest.mark.parametrize(("be_year", "leap"), [(2566, False), (2567, True)])
def test_the_last_day_of_every_month_and_not_one_more(month: int, be_year: int, leap: bool) -> None:
    last = LAST_DAY[month] + (month == 2 and leap)
    pd = parse_legacy_date(f"{last:02d}/{month:02d}/{be_year}")
    assert pd is not None and (pd.year, pd.month, pd.day) == (be_year - 543, month, last)
    with pytest.raises(ValueError, match=f"day {last + 1} (does not exist|out of range)"):
        parse_legacy_date(f"{last + 1:02d}/{month:02d}/{be_year}")
    # the same rule when a date is made directly (a DATE column, a transform)
    assert PartialDate(be_year - 543, month, last).day == last
    with pytest.raises(ValueError):
        PartialDate(be_year - 543, month, last + 1)


@pytest.mark.parametrize(
    ("text", "era", "iso"),
    [
        # an explicit พ.ศ. or ค.ศ. after the month wins over the configured era
        ("15 ม.ค. พ.ศ. 67", "ce", "2024-01-15"),
        ("15 ม.ค. พ.ศ. 2567", "ce", "2024-01-15"),
        ("15 มกราคม พ.ศ.2567", "auto", "2024-01-15"),
        ("15 ม.ค. ค.ศ. 2300", "be", "2300-01-15"),
        ("15 ม.ค. ค.ศ. 1999", "be", "1999-01-15"),
        # without one, the configured era decides
        ("15 ม.ค. 67", "be", "2024-01-15"),
        ("15 ม.ค. 67", "ce", "1967-01-15"),
        ("15 ม.ค. 2300", "be", "1757-01-15"),
        # the boundaries between the readings of digits
        ("25670131", "be", "2024-01-31"),  # YYYYMMDD with the 31st, not DDMMYYYY
        ("01/01/2400", "ce", "2400-01-01"),  # the last year read as CE in a CE column
        ("01/01/2401", "ce", "1858-01-01"),  # later than that: a BE year in a CE column
    ],
)
def test_the_era_and_the_reading_of_a_date(text: str, era: str, iso: str) -> None:
    pd = parse_legacy_date(text, era=era, today_be_year=2568)  # type: ignore[arg-type]
    assert pd is not None and pd.iso() == iso


def test_the_years_a_date_may_have() -> None:
    assert PartialDate(9999, 12, 31).iso() == "9999-12-31"
    assert PartialDate(1, 1, 1).iso() == "0001-01-01"
    for year in (0, 10000):
        with pytest.raises(ValueError, match=f"year {year} out of range"):
            PartialDate(year)


def test_eight_digits_whose_middle_is_no_month_are_day_month_year() -> None:
    # 1501-13-25 can not be YYYYMMDD (no month 13): it is 15/01/1325
    pd = parse_legacy_date("15011325", era="ce")
    assert pd is not None and pd.iso() == "1325-01-15"
    pd = parse_legacy_date("15011225", era="ce")  # month 12 exists: YYYYMMDD wins
    assert pd is not None and pd.iso() == "1501-12-25"


def test_a_day_of_three_digits_is_refused() -> None:
    with pytest.raises(ValueError, match="unrecognised date parts"):
        parse_legacy_date("2567/01/015")
