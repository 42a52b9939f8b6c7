"""What pumpctl prints is exactly what the pump holds: no float rounding."""

import pytest
from pumpctl import quantities as q


@pytest.mark.parametrize(
    "pl, text",
    [
        (499_996_800, "499.9968 uL"),
        (3_200, "3.2 nL"),
        (52_083, "52.083 nL"),
        (1, "0.001 nL"),
        (500_000_000, "500 uL"),
        (10**12 + 1, "1000.000000001 mL"),  # one pL in a litre still shows
    ],
)
def test_volumes_are_shown_exactly(pl, text):
    assert q.volume(pl) == text


@pytest.mark.parametrize(
    "nl_per_day, text",
    [
        (500_000, "0.5 mL/day"),
        (240_000_000, "10 mL/h"),
        (25_000_000, "25 mL/day"),  # 1.041666... mL/h would not be exact
        (1_000, "1 uL/day"),
        (48_000, "48 uL/day"),
    ],
)
def test_rates_are_shown_in_a_unit_where_they_are_exact(nl_per_day, text):
    assert q.rate(nl_per_day) == text


def test_durations_show_hours_then_days_from_a_week():
    assert q.duration(86_400 * 10**6) == "24 h 00 min 00 s"
    assert q.duration(90_061_500_000) == "25 h 01 min 01.5 s"
    assert q.duration(8 * 86_400 * 10**6 + 5) == "8 d 00 h 00 min 00.000005 s"


@pytest.mark.parametrize(
    "text, us",
    [("24h", 86_400 * 10**6), ("90 min", 5_400 * 10**6), ("1.5 h", 5_400 * 10**6), ("7 day", 604_800 * 10**6)],
)
def test_durations_parse_exactly(text, us):
    assert q.parse_duration_us(text) == us


@pytest.mark.parametrize("text", ["24", "1e3 s", "-1 h", "0.0000001 s", "2 weeks"])
def test_unclear_durations_are_refused(text):
    with pytest.raises(ValueError):
        q.parse_duration_us(text)


@pytest.mark.parametrize(
    "seconds, text",
    [
        (36 * 86_400, "36 days"),
        (36 * 86_400 - 1, "35.9 days"),  # rounded down: the level comes no later than shown
        (86_400, "1 day"),
        (86_400 + 8_640, "1.1 days"),
        (86_399, "23.9 hours"),
        (6_480, "1.8 hours"),
        (3_600, "1 hour"),
        (12 * 60 + 59, "12 min"),
        (59, "under a minute"),
        (0, "under a minute"),
    ],
)
def test_time_until_a_level_reads_in_the_best_unit_rounded_down(seconds, text):
    assert q.time_until(seconds) == text
