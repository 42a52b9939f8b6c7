"""hal/board_clock.py: the RTC as local seconds since 1970, both ways."""

import datetime
from pathlib import Path

import pytest
from hal_fakes import RTC

from hal.board_clock import BoardClock, civil_from_days, days_from_civil

ROOT = Path(__file__).resolve().parents[2]


def test_rtc_seconds_since_1970_both_ways():
    for days in (0, 1, 59, 60, 365, 10_957, 11_016, 20_000, 47_482, 2 * 146_097 - 1000):
        d = datetime.date(1970, 1, 1) + datetime.timedelta(days=days)
        assert days_from_civil(d.year, d.month, d.day) == days
        assert civil_from_days(days) == (d.year, d.month, d.day)
    clock = BoardClock(RTC((2026, 3, 1, 6, 12, 34, 56, 0)), ticks_us=lambda: 0, ticks_diff=lambda a, b: a - b)
    expect = int((datetime.datetime(2026, 3, 1, 12, 34, 56) - datetime.datetime(1970, 1, 1)).total_seconds())
    assert clock.rtc_seconds() == expect
    clock.set_rtc_seconds(expect + 86_400 * 30 + 1)
    assert clock._rtc.dt == (2026, 3, 31, 1, 12, 34, 57, 0)  # a Tuesday: weekday 1 (0 = Monday)
    with pytest.raises(ValueError, match="RTC time must be 1970..2099"):
        clock.set_rtc_seconds(-1)
    assert BoardClock(None, ticks_us=int, ticks_diff=int).rtc_seconds() is None
