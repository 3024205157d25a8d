"""Quota windows of every length: where each starts and how long it has left."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from gateway.quota import window

NOW = dt.datetime(2026, 10, 5, 23, 59, 30, 250_000, tzinfo=ZoneInfo("Asia/Bangkok"))


def test_each_window_starts_on_its_unit_and_ends_one_unit_later() -> None:
    assert window("second", NOW) == ("2026-10-05T23:59:30+07:00", 0.75)
    assert window("minute", NOW) == ("2026-10-05T23:59:00+07:00", 29.75)
    assert window("hour", NOW) == ("2026-10-05T23:00:00+07:00", 29.75)
    assert window("day", NOW) == ("2026-10-05T00:00:00+07:00", 29.75)
    assert window("hour", NOW.replace(minute=0, second=0, microsecond=0))[1] == 3600.0
