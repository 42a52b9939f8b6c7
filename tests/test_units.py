"""Rates as a person types them: exact conversion, clear refusals."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.errors import Refusal
from firmware.units import parse_rate

VOLUME_NL = {"nL": 1, "uL": 1000, "mL": 10**6}
PER_DAY = {"s": 86_400, "min": 1440, "h": 24, "day": 1}


@pytest.mark.parametrize(
    "text, nl_per_day",
    [
        ("0.5 mL/day", 500_000),
        ("0.5mL/day", 500_000),
        ("  0.5   mL/day ", 500_000),
        ("10 mL/h", 240_000_000),
        ("1 uL/day", 1_000),
        ("1 µL/h", 24_000),  # micro sign
        ("1 μL/h", 24_000),  # Greek mu
        ("2 ML/H", 48_000_000),  # case is not meaning here: nobody doses megalitres
        ("0.048 mL/day", 48_000),  # ziconotide 1.2 mcg/day at 25 mcg/mL
        ("100 nL/min", 144_000),
        ("0.0000001 mL/s", 8_640),
        ("0.010 mL/h", 240_000),
    ],
)
def test_accepted_rates_convert_exactly(text, nl_per_day):
    assert parse_rate("rate", text) == (nl_per_day, False)


def test_a_rate_finer_than_one_nl_per_day_is_rounded_toward_the_smaller_dose():
    assert parse_rate("rate", "0.3333333 uL/min") == (479_999, True)  # 479999.952 nL/day


@pytest.mark.parametrize(
    "text, reason",
    [
        ("12 mL/h", "above the pump maximum of 10 mL/h"),
        ("10.000000001 mL/h", "above the pump maximum"),
        ("0.5 uL/day", "below the pump minimum of 1 uL/day"),
        ("0.999 uL/day", "below the pump minimum"),
        ("0 mL/h", "zero is not a program"),
        ("5 mg/day", "unknown unit 'mg/day'"),  # a dose, not a volume rate
        ("1 mL", "unknown unit 'mL'"),  # a volume, not a rate
        ("1 mL/m", "unknown unit 'mL/m'"),  # minutes or months? refused
        ("1 mL/hour", "unknown unit"),
        ("5", "has no unit"),
        ("mL/h", "does not start with a number"),
        ("", "does not start with a number"),
        ("-1 mL/h", "must not be negative"),
        ("+1 mL/h", "not a plain decimal"),
        ("1,5 mL/h", "use a point as the decimal separator"),
        ("1e3 uL/h", "not a plain decimal"),
        ("1.2.3 mL/h", "not a plain decimal"),
        (".5 mL/h", "write a leading zero: 0.5"),
        ("5. mL/h", "ends with a decimal point"),
        ("1234567890123 nL/day", "more than 12 digits"),
        ("1" * 50 + " mL/h", "longer than 40 characters"),
    ],
)
def test_unclear_or_out_of_range_rates_are_refused_with_a_reason(text, reason):
    with pytest.raises(Refusal) as e:
        parse_rate("rate", text)
    assert e.value.field == "rate"
    assert reason in e.value.message


@given(
    st.integers(1, 10**8),
    st.integers(0, 6),
    st.sampled_from(sorted(VOLUME_NL)),
    st.sampled_from(sorted(PER_DAY)),
)
def test_any_accepted_rate_is_the_floor_of_the_exact_value(mantissa, decimals, vol, per):
    digits = str(mantissa).rjust(decimals + 1, "0")
    text = f"{digits[:-decimals]}.{digits[-decimals:]}" if decimals else digits
    exact = Fraction(mantissa, 10**decimals) * VOLUME_NL[vol] * PER_DAY[per]
    try:
        nl_per_day, rounded = parse_rate("rate", f"{text} {vol}/{per}")
    except Refusal as e:
        assert exact < 1000 or exact > 240_000_000, e.message
        return
    assert 1000 <= exact <= 240_000_000
    assert nl_per_day == int(exact)  # floor: never the larger dose
    assert rounded == (exact.denominator != 1)
