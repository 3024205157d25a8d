"""The days government offices are closed: Thai public holidays plus the cabinet's own.

Public holidays, their substitute days and the Royal Ploughing Ceremony come
from the ``holidays`` library (Thailand, categories ``public`` and
``government``), which follows the lunar calendar and the announced dates.
The calendar files of ``audit.report.holidays`` are an overlay: the special
days the cabinet declares during a year (วันหยุดพิเศษ).  A month whose year no
overlay file covers is still reported, with a warning saying so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable

import holidays

__all__ = ["CalendarMonth", "month_calendar"]

_CATEGORIES = ("public", "government")


class CalendarMonth:
    """The closed days of a period and what the calendar could not vouch for."""

    def __init__(self, days: dict[dt.date, str], warnings: list[str]) -> None:
        self.days = days
        self.warnings = warnings


def month_calendar(
    first: dt.date,
    last: dt.date,
    overlay: Iterable[tuple[dt.date, str]],
    overlay_years: Collection[int],
) -> CalendarMonth:
    years = range(first.year, last.year + 1)
    lib = holidays.country_holidays("TH", years=years, categories=_CATEGORIES, language="th")
    days = {d: str(n) for d, n in sorted(lib.items()) if first <= d <= last}
    for d, name in overlay:
        if first <= d <= last:
            days[d] = name if d not in days or name in days[d] else f"{days[d]}; {name}"
    warnings: list[str] = []
    for year in years:
        if not lib.start_year <= year <= lib.end_year:
            warnings.append(f"the holidays library has no Thai public holidays for {year}")
        if year not in overlay_years:
            warnings.append(
                f"no holiday calendar file covers {year}: special cabinet holidays of {year} "
                "are not known and calls on them count as working days "
                "(add the year's file to audit.report.holidays)"
            )
    return CalendarMonth(dict(sorted(days.items())), warnings)
