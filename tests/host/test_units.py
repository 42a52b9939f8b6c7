"""Rates as a person types them: exact conversion, clear refusals."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pumpctl.formats import (
    format_concentration,
    format_dose,
    format_dose_rate,
    format_duration,
    format_mass,
    format_time_of_day,
    format_volume,
)
from pumpctl.units import (
    DOSE_MASS,
    DOSE_VOLUME,
    MAX_DURATION_US,
    parse_concentration,
    parse_count,
    parse_dose,
    parse_dose_rate,
    parse_duration,
    parse_mass,
    parse_rate,
    parse_time_of_day,
    parse_volume,
)

from firmware.errors import Refusal

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
        ("1e3 uL/h", "has an exponent: write the number out"),
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


# --- Doses, concentrations, durations and times (exact, integer) ---

FIELD = "bolus dose"
MASS_NG = {"mg": 10**6, "mcg": 1000}
US_PER = {"s": 10**6, "min": 60 * 10**6, "h": 3600 * 10**6, "day": 86_400 * 10**6}
DAY_US = 86_400 * 10**6


def refusal(parse, text, *args):
    """The message of the Refusal, after checking it names the field and the text typed."""
    with pytest.raises(Refusal) as e:
        parse(FIELD, text, *args)
    assert e.value.field == FIELD
    assert FIELD in e.value.message
    assert f"'{text.strip()}'" in e.value.message
    return e.value.message


def decimal_text(mantissa, decimals):
    digits = str(mantissa).rjust(decimals + 1, "0")
    return f"{digits[:-decimals]}.{digits[-decimals:]}" if decimals else digits


# Text typed the wrong way, refused by every parser of a number with a unit.
BAD_NUMBERS = [
    ("", "does not start with a number"),
    ("mg", "does not start with a number"),
    ("-1 mg", "must not be negative"),
    ("+1 mg", "not a plain decimal"),
    ("1,5 mg", "use a point as the decimal separator"),
    ("1e3 mg", "has an exponent: write the number out"),
    ("1.2.3 mg", "not a plain decimal"),
    (".5 mg", "write a leading zero: 0.5, not .5"),
    ("5. mg", "ends with a decimal point; write 5"),
    ("1234567890123 mg", "more than 12 digits"),
]
ISMP_MICROGRAMS = ["ug", "µg", "μg", "UG", "µG", "microgram", "micrograms", "Micrograms"]


@pytest.mark.parametrize("parse", [parse_mass, parse_volume, parse_concentration, parse_dose_rate, parse_dose])
@pytest.mark.parametrize("text, reason", BAD_NUMBERS)
def test_numbers_typed_the_wrong_way_are_refused_by_every_quantity(parse, text, reason):
    assert reason in refusal(parse, text)


@pytest.mark.parametrize(
    "parse", [parse_mass, parse_volume, parse_concentration, parse_dose_rate, parse_dose, parse_duration]
)
def test_text_longer_than_40_characters_is_refused(parse):
    text = "1" * 50 + " mg"
    with pytest.raises(Refusal) as e:
        parse(FIELD, text)
    assert FIELD in e.value.message and text[:40] in e.value.message
    assert "longer than 40 characters" in e.value.message


@pytest.mark.parametrize(
    "text, ng",
    [
        ("250 mcg", 250_000),
        ("250mcg", 250_000),
        ("  250   mcg ", 250_000),
        ("1.5 mg", 1_500_000),
        ("1.5 MG", 1_500_000),  # MG is mg
        ("2 Mcg", 2_000),
        ("0.001 mcg", 1),
        ("0.000001 mg", 1),
        ("0 mg", 0),  # the caller decides whether zero makes sense
        ("999999.999999 mg", 999_999_999_999),
        ("2000 mg", 2_000_000_000),
    ],
)
def test_masses_convert_exactly_to_ng(text, ng):
    assert parse_mass(FIELD, text) == (ng, False)


@pytest.mark.parametrize(
    "text, ng", [("0.0005 mcg", 0), ("1.0015 mcg", 1_001), ("0.0000019 mg", 1), ("0.3333333 mg", 333_333)]
)
def test_a_mass_finer_than_one_ng_is_rounded_toward_the_smaller_dose(text, ng):
    assert parse_mass(FIELD, text) == (ng, True)


@pytest.mark.parametrize("unit", ISMP_MICROGRAMS)
def test_micrograms_written_as_ug_are_refused_by_every_mass_parser(unit):
    for parse, text in [
        (parse_mass, "2 " + unit),
        (parse_dose, "2 " + unit),
        (parse_dose, f"2 {unit}/day"),
        (parse_dose_rate, f"2 {unit}/day"),
        (parse_dose_rate, "2 " + unit),
        (parse_concentration, f"25 {unit}/mL"),
    ]:
        message = refusal(parse, text)
        assert "write mcg" in message
        assert "misread as mg" in message and "ISMP" in message


@pytest.mark.parametrize(
    "text, reason",
    [
        ("2 g", "unknown unit 'g'; give mg or mcg"),
        ("2 ng", "unknown unit 'ng'"),
        ("2 kg", "unknown unit 'kg'"),
        ("2 mcgs", "unknown unit"),
        ("2 mg/day", "a dose, not a rate, is expected"),
        ("2 mg/mL", "unknown unit 'mg/mL'"),
        ("2 mL", "unknown unit"),
        ("2", "has no unit; give mg or mcg"),
    ],
)
def test_unknown_mass_units_are_refused_listing_mg_and_mcg(text, reason):
    assert reason in refusal(parse_mass, text)


@pytest.mark.parametrize(
    "text, nl",
    [
        ("0.5 mL", 500_000),
        ("20 uL", 20_000),
        ("20 µL", 20_000),  # micro sign
        ("20 μL", 20_000),  # Greek mu
        ("20 UL", 20_000),
        ("2 ML", 2_000_000),
        ("7 nL", 7),
        ("0 mL", 0),
        ("0.000001 mL", 1),
    ],
)
def test_volumes_convert_exactly_to_nl(text, nl):
    assert parse_volume(FIELD, text) == (nl, False)


@pytest.mark.parametrize("text, nl", [("0.0005 uL", 0), ("1.2345 uL", 1_234), ("0.0000015 mL", 1)])
def test_a_volume_finer_than_one_nl_is_rounded_down(text, nl):
    assert parse_volume(FIELD, text) == (nl, True)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("1 L", "unknown unit 'L'; give nL, uL or mL"),
        ("1 cc", "unknown unit 'cc'"),
        ("1 mL/h", "a dose, not a rate, is expected"),
        ("1 mL/L", "unknown unit"),
        ("1 mg", "unknown unit"),
        ("5", "has no unit"),
    ],
)
def test_unknown_volume_units_are_refused(text, reason):
    assert reason in refusal(parse_volume, text)


@pytest.mark.parametrize(
    "text, ng_per_ml",
    [
        ("25 mcg/mL", 25_000),
        ("10 mg/mL", 10_000_000),
        ("10 MG/ML", 10_000_000),
        ("10 mg / mL", 10_000_000),
        ("7.5 mg/mL", 7_500_000),
        ("0.001 mcg/mL", 1),
        ("0.000001 mg/mL", 1),
        ("2.000 mg/mL", 2_000_000),  # trailing zeros are not finer
    ],
)
def test_concentrations_convert_exactly_to_ng_per_ml(text, ng_per_ml):
    assert parse_concentration(FIELD, text) == ng_per_ml


@pytest.mark.parametrize(
    "text, conversion",
    [
        ("0.75%", "0.75% = 7.5 mg/mL"),
        ("1%", "1% = 10 mg/mL"),
        ("0.5 %", "0.5% = 5 mg/mL"),
        ("2%", "2% = 20 mg/mL"),
        ("0.025%", "0.025% = 0.25 mg/mL"),
    ],
)
def test_a_percentage_is_refused_with_its_value_in_mg_per_ml(text, conversion):
    message = refusal(parse_concentration, text)
    assert "give mg/mL" in message
    assert conversion in message
    assert "1% = 10 mg/mL" in message


@pytest.mark.parametrize(
    "text, reason",
    [
        ("0.0005 mcg/mL", "finer than 1 ng/mL"),
        ("0.0000001 mg/mL", "finer than 1 ng/mL"),
        ("1.2345 mcg/mL", "finer than 1 ng/mL"),
        ("0 mg/mL", "must be above zero"),
        ("0.000 mcg/mL", "must be above zero"),
        ("25 mcg", "unknown unit 'mcg'; give mg/mL or mcg/mL"),
        ("25 mg/L", "unknown unit"),
        ("25 mcg/mL/h", "unknown unit"),
        ("25 g/mL", "unknown unit"),
        ("25", "has no unit"),
    ],
)
def test_inexact_zero_or_unknown_concentrations_are_refused(text, reason):
    assert reason in refusal(parse_concentration, text)


@pytest.mark.parametrize(
    "text, answer",
    [
        ("2 mg/day", (DOSE_MASS, 2_000_000, False)),
        ("2 MG/DAY", (DOSE_MASS, 2_000_000, False)),
        ("480 mcg/day", (DOSE_MASS, 480_000, False)),
        ("2000 mg/day", (DOSE_MASS, 2_000_000_000, False)),  # above 2**30
        ("1 mcg/h", (DOSE_MASS, 24_000, False)),
        ("1 mg/s", (DOSE_MASS, 86_400_000_000, False)),
        ("0 mg/day", (DOSE_MASS, 0, False)),
        ("0.3333333 mcg/min", (DOSE_MASS, 479_999, True)),  # 479999.952 ng/day, rounded down
        ("0.5 mL/day", (DOSE_VOLUME, 500_000, False)),
        ("10 mL/h", (DOSE_VOLUME, 240_000_000, False)),
        ("100 nL/min", (DOSE_VOLUME, 144_000, False)),
        ("1 µL/h", (DOSE_VOLUME, 24_000, False)),
        ("0.0000001 mL/day", (DOSE_VOLUME, 0, True)),
        ("20 mL/h", (DOSE_VOLUME, 480_000_000, False)),  # no pump limits here, unlike parse_rate
    ],
)
def test_dose_rates_convert_to_per_day(text, answer):
    assert parse_dose_rate(FIELD, text) == answer


@pytest.mark.parametrize(
    "text, reason",
    [
        ("2 mg", "a dose, not a rate"),
        ("0.5 mL", "a dose, not a rate"),
        ("1 mg/hr", "unknown unit 'mg/hr'"),
        ("1 mg/hour", "unknown unit"),
        ("1 mg/m", "unknown unit"),  # minutes or months
        ("1 g/day", "unknown unit"),
        ("1 mg/mL", "unknown unit"),
        ("1 mg/day/h", "unknown unit"),
        ("5", "has no unit"),
    ],
)
def test_unknown_dose_rate_units_are_refused_listing_what_is_accepted(text, reason):
    message = refusal(parse_dose_rate, text)
    assert reason in message
    assert "mg, mcg, nL, uL or mL per s, min, h or day" in message


@pytest.mark.parametrize(
    "text, answer",
    [
        ("250 mcg", (DOSE_MASS, 250_000, False)),
        ("3.5 mg", (DOSE_MASS, 3_500_000, False)),
        ("0.25 mL", (DOSE_VOLUME, 250_000, False)),
        ("15 uL", (DOSE_VOLUME, 15_000, False)),
        ("15 µL", (DOSE_VOLUME, 15_000, False)),
        ("0 mg", (DOSE_MASS, 0, False)),
        ("0.0005 mcg", (DOSE_MASS, 0, True)),
        ("1.0005 uL", (DOSE_VOLUME, 1_000, True)),
    ],
)
def test_doses_are_a_mass_or_a_volume(text, answer):
    assert parse_dose(FIELD, text) == answer


@pytest.mark.parametrize(
    "text, reason",
    [
        ("2 mg/day", "a dose, not a rate, is expected"),
        ("0.1 mL/h", "a dose, not a rate, is expected"),
        ("2 mg/mL", "unknown unit 'mg/mL'"),
        ("2 g", "unknown unit 'g'"),
        ("2", "has no unit"),
    ],
)
def test_a_rate_or_unknown_unit_is_refused_as_a_dose(text, reason):
    assert reason in refusal(parse_dose, text)


@pytest.mark.parametrize(
    "text, us",
    [
        ("90 min", 5_400 * 10**6),
        ("1.5 h", 5_400 * 10**6),
        ("24h", DAY_US),
        ("7 day", 7 * DAY_US),
        ("7 DAY", 7 * DAY_US),
        ("2 S", 2 * 10**6),
        ("0.5 min", 30 * 10**6),
        ("0.000001 s", 1),
        ("0 s", 0),
        ("400 day", MAX_DURATION_US),
        ("9600 h", MAX_DURATION_US),
        ("34559999.999999 s", MAX_DURATION_US - 1),
    ],
)
def test_durations_convert_exactly_to_us(text, us):
    assert parse_duration(FIELD, text) == us


@pytest.mark.parametrize(
    "text, reason",
    [
        ("24", "a unit is required"),
        ("24", "minutes and hours were confused in a 2004 pump recall"),
        ("1 m", "unknown unit 'm'; give s, min, h or day"),  # minutes or months
        ("1 hr", "unknown unit 'hr'"),
        ("1 d", "unknown unit 'd'"),
        ("1 hour", "unknown unit 'hour'"),
        ("2 hours", "unknown unit"),
        ("2 days", "unknown unit"),
        ("1 ms", "unknown unit"),
        ("400.000001 day", "above the maximum of 400 day"),
        ("401 day", "above the maximum of 400 day"),
        ("9600.0000001 h", "above the maximum of 400 day"),
        ("0.0000001 s", "finer than 1 microsecond"),
        ("0.00000001 min", "finer than 1 microsecond"),
        ("-1 h", "must not be negative"),
        ("1e3 s", "has an exponent: write the number out"),
        ("", "does not start with a number"),
    ],
)
def test_unclear_inexact_or_too_long_durations_are_refused(text, reason):
    assert reason in refusal(parse_duration, text)


@pytest.mark.parametrize(
    "text, minutes",
    [("7:30", 450), ("07:30", 450), ("0:00", 0), ("00:00", 0), ("23:59", 1439), (" 12:05 ", 725), ("9:05", 545)],
)
def test_times_of_day_are_minutes_after_midnight(text, minutes):
    assert parse_time_of_day(FIELD, text) == minutes


@pytest.mark.parametrize(
    "text, reason",
    [
        ("24:00", "the hour goes from 0 to 23"),
        ("12:60", "the minutes go from 00 to 59"),
        ("7.30", "separate hours and minutes with a colon"),
        ("7h30", "with a colon"),
        ("730", "with a colon"),
        ("7:3", "the minutes must be two digits"),
        ("7:300", "the minutes must be two digits"),
        ("7:30:00", "the minutes must be two digits"),
        ("123:00", "the hour must be one or two digits"),
        (":30", "the hour must be one or two digits"),
        ("-1:30", "the hour must be one or two digits"),
        ("+7:30", "the hour must be one or two digits"),
        ("7:30 am", "without am/pm"),
        ("7:30pm", "without am/pm"),
        ("7:30 PM", "without am/pm"),
        ("7 a.m.", "without am/pm"),
        ("", "no time given"),
        ("   ", "no time given"),
    ],
)
def test_unclear_times_of_day_are_refused(text, reason):
    message = refusal(parse_time_of_day, text)
    assert reason in message
    assert "24-hour HH:MM" in message


@pytest.mark.parametrize(
    "text, lo, hi, n", [("5", 1, 10, 5), ("1", 1, 10, 1), ("10", 1, 10, 10), (" 7 ", 1, 10, 7), ("0", 0, 5, 0)]
)
def test_counts_are_plain_digits_in_range(text, lo, hi, n):
    assert parse_count(FIELD, text, lo, hi) == n


@pytest.mark.parametrize(
    "text, reason",
    [
        ("+5", "not a whole number"),
        ("-5", "not a whole number"),
        ("5.0", "not a whole number"),
        ("1,000", "not a whole number"),
        ("5 doses", "not a whole number"),
        ("٣", "not a whole number"),  # an Arabic-Indic digit: str.isdigit would take it
        ("", "no number given"),
        ("11", "outside the range 1 to 10"),
        ("0", "outside the range 1 to 10"),
        ("99999999999999999999", "outside the range 1 to 10"),
    ],
)
def test_counts_that_are_not_plain_digits_or_out_of_range_are_refused(text, reason):
    message = refusal(parse_count, text, 1, 10)
    assert reason in message
    assert "1 to 10" in message


UNIT_AMOUNTS = ["mg", "MG", "mcg", "Mcg", "nL", "uL", "µL", "μL", "mL", "ML", "g", "ng", "kg", "L", "cc", "m", "mgs"]
UNIT_AMOUNTS += ["ug", "µg", "microgram", "%", "mg mg", "µ", ""]
UNIT_PERS = [None, "s", "min", "h", "day", "DAY", "H", " day", "mL", "ml", "hr", "hour", "m", "d", "days", "", "day/h"]


def expected_answer(parse, amount, per):
    """What parse should return for "2 amount[/per]", from the units as documented; None if refused."""
    key = amount.replace("µ", "u").replace("μ", "u").lower()
    mass, volume = {"mg": 10**6, "mcg": 1000}.get(key), {"nl": 1, "ul": 1000, "ml": 10**6}.get(key)
    per = None if per is None else per.strip().lower()
    if parse in (parse_mass, parse_volume, parse_dose) and per is None:
        factor = mass if parse is parse_mass else volume if parse is parse_volume else mass or volume
        kind = DOSE_MASS if mass else DOSE_VOLUME
        if factor:
            return (2 * factor, False) if parse is not parse_dose else (kind, 2 * factor, False)
    if parse is parse_dose_rate and per in PER_DAY and (mass or volume):
        return (DOSE_MASS if mass else DOSE_VOLUME, 2 * (mass or volume) * PER_DAY[per], False)
    if parse is parse_concentration and per == "ml" and mass:
        return 2 * mass
    return None


@pytest.mark.parametrize("parse", [parse_mass, parse_volume, parse_dose, parse_dose_rate, parse_concentration])
def test_exactly_the_documented_units_are_accepted(parse):
    """Every pairing of known and unknown amounts and times: nothing unlisted slips through."""
    for amount in UNIT_AMOUNTS:
        for per in UNIT_PERS:
            text = "2 " + amount if per is None else f"2 {amount}/{per}"
            want = expected_answer(parse, amount, per)
            try:
                got = parse(FIELD, text)
            except Refusal as e:
                assert want is None, f"{text!r} refused: {e.message}"
                assert FIELD in e.message
                continue
            assert got == want, text


@pytest.mark.parametrize(
    "unit", ["s", "min", "h", "day", "S", "MIN", "Day", "m", "hr", "hour", "d", "days", "ms", "us"]
)
def test_exactly_the_documented_duration_units_are_accepted(unit):
    per_day = PER_DAY.get(unit.lower())
    if per_day:
        assert parse_duration(FIELD, f"2 {unit}") == 2 * DAY_US // per_day
    else:
        assert f"unknown unit '{unit}'" in refusal(parse_duration, f"2 {unit}")


@given(st.integers(0, 10**9), st.integers(0, 6), st.sampled_from(sorted(MASS_NG)))
def test_any_accepted_mass_is_the_floor_of_the_exact_value(mantissa, decimals, unit):
    exact = Fraction(mantissa, 10**decimals) * MASS_NG[unit]
    ng, rounded = parse_mass(FIELD, f"{decimal_text(mantissa, decimals)} {unit}")
    assert ng == int(exact)  # floor: never the larger dose
    assert rounded == (exact.denominator != 1)


@given(
    st.integers(0, 10**9),
    st.integers(0, 6),
    st.sampled_from(sorted(MASS_NG) + sorted(VOLUME_NL)),
    st.sampled_from(sorted(PER_DAY)),
)
def test_any_dose_rate_is_the_floor_of_the_exact_value_per_day(mantissa, decimals, unit, per):
    factor = MASS_NG.get(unit) or VOLUME_NL[unit]
    exact = Fraction(mantissa, 10**decimals) * factor * PER_DAY[per]
    kind, per_day, rounded = parse_dose_rate(FIELD, f"{decimal_text(mantissa, decimals)} {unit}/{per}")
    assert kind == (DOSE_MASS if unit in MASS_NG else DOSE_VOLUME)
    assert per_day == int(exact)
    assert rounded == (exact.denominator != 1)


@given(st.integers(0, 10**9), st.integers(0, 8), st.sampled_from(sorted(MASS_NG)))
def test_a_concentration_is_exact_or_refused(mantissa, decimals, unit):
    exact = Fraction(mantissa, 10**decimals) * MASS_NG[unit]
    try:
        got = parse_concentration(FIELD, f"{decimal_text(mantissa, decimals)} {unit}/mL")
    except Refusal as e:
        assert exact.denominator != 1 or exact == 0, e.message
        return
    assert got == exact


@given(st.integers(0, 10**10), st.integers(0, 8), st.sampled_from(sorted(US_PER)))
def test_a_duration_is_exact_or_refused(mantissa, decimals, unit):
    exact = Fraction(mantissa, 10**decimals) * US_PER[unit]
    try:
        got = parse_duration(FIELD, f"{decimal_text(mantissa, decimals)} {unit}")
    except Refusal as e:
        assert exact.denominator != 1 or exact > MAX_DURATION_US, e.message
        return
    assert got == exact


# Formatters: exact, and parse(format(x)) == x.


@pytest.mark.parametrize(
    "ng, text",
    [
        (0, "0 mg"),
        (1, "0.001 mcg"),
        (25, "0.025 mcg"),
        (250_000, "250 mcg"),
        (999_999, "999.999 mcg"),
        (1_000_000, "1 mg"),
        (1_500_000, "1.5 mg"),
        (1_000_001, "1.000001 mg"),
        (2_000_000_000, "2000 mg"),
    ],
)
def test_masses_are_shown_exactly(ng, text):
    assert format_mass(ng) == text
    assert format_dose(DOSE_MASS, ng) == text


@pytest.mark.parametrize(
    "nl, text",
    [
        (0, "0 mL"),
        (5, "5 nL"),
        (999, "999 nL"),
        (1_000, "1 uL"),
        (1_500, "1.5 uL"),
        (500_000, "500 uL"),
        (999_999, "999.999 uL"),
        (1_000_000, "1 mL"),
        (2_500_000, "2.5 mL"),
    ],
)
def test_volumes_are_shown_exactly(nl, text):
    assert format_volume(nl) == text
    assert format_dose(DOSE_VOLUME, nl) == text


@pytest.mark.parametrize(
    "ng_per_ml, text",
    [
        (1, "0.001 mcg/mL"),
        (25_000, "25 mcg/mL"),
        (999_999, "999.999 mcg/mL"),
        (1_000_000, "1 mg/mL"),
        (7_500_000, "7.5 mg/mL"),
    ],
)
def test_concentrations_are_shown_exactly(ng_per_ml, text):
    assert format_concentration(ng_per_ml) == text


@pytest.mark.parametrize(
    "kind, per_day, text",
    [
        (DOSE_MASS, 0, "0 mg/day"),
        (DOSE_MASS, 2_000_000, "2 mg/day"),
        (DOSE_MASS, 480_000, "480 mcg/day"),
        (DOSE_MASS, 1_200, "1.2 mcg/day"),
        (DOSE_MASS, 2_000_000_000, "2000 mg/day"),
        (DOSE_VOLUME, 0, "0 mL/day"),
        (DOSE_VOLUME, 500_000, "0.5 mL/day"),
        (DOSE_VOLUME, 100_000, "0.1 mL/day"),
        (DOSE_VOLUME, 99_999, "99.999 uL/day"),
        (DOSE_VOLUME, 48_000, "48 uL/day"),
        (DOSE_VOLUME, 1_000, "1 uL/day"),
        (DOSE_VOLUME, 999, "999 nL/day"),
        (DOSE_VOLUME, 240_000_000, "240 mL/day"),
    ],
)
def test_dose_rates_are_shown_per_day(kind, per_day, text):
    assert format_dose_rate(kind, per_day) == text


@pytest.mark.parametrize(
    "us, text",
    [
        (0, "0 s"),
        (1, "0.000001 s"),
        (1_500_000, "1.5 s"),
        (90 * 10**6, "90 s"),
        (60 * 10**6, "1 min"),
        (5_400 * 10**6, "90 min"),
        (4 * 3_600 * 10**6, "4 h"),
        (36 * 3_600 * 10**6, "36 h"),
        (2 * DAY_US, "2 day"),
        (MAX_DURATION_US, "400 day"),
        (MAX_DURATION_US - 1, "34559999.999999 s"),
    ],
)
def test_durations_are_shown_in_the_largest_exact_unit(us, text):
    assert format_duration(us) == text


def test_every_time_of_day_is_shown_as_hh_mm_and_reads_back():
    assert format_time_of_day(0) == "00:00"
    assert format_time_of_day(450) == "07:30"
    assert format_time_of_day(1439) == "23:59"
    for minutes in range(1440):
        assert parse_time_of_day(FIELD, format_time_of_day(minutes)) == minutes


@pytest.mark.parametrize(
    "call",
    [
        lambda: format_mass(-1),
        lambda: format_volume(-1),
        lambda: format_concentration(-1),
        lambda: format_dose_rate(DOSE_MASS, -1),
        lambda: format_dose_rate(3, 1),
        lambda: format_dose(0, 1),
        lambda: format_duration(-1),
        lambda: format_time_of_day(-1),
        lambda: format_time_of_day(1440),
    ],
)
def test_formatters_raise_on_values_no_parser_returns(call):
    with pytest.raises(ValueError):
        call()


def plain(text):
    """A formatted number is plain: no exponent, no trailing zero after a point."""
    number = text.split(" ")[0]
    return "e" not in number.lower() and not ("." in number and number.endswith("0"))


UP_TO_12_DIGITS = st.integers(0, 10**12 - 1)


@given(UP_TO_12_DIGITS)
def test_any_mass_reads_back_as_shown(ng):
    text = format_mass(ng)
    assert plain(text)
    assert parse_mass(FIELD, text) == (ng, False)
    assert parse_dose(FIELD, format_dose(DOSE_MASS, ng)) == (DOSE_MASS, ng, False)


@given(UP_TO_12_DIGITS)
def test_any_volume_reads_back_as_shown(nl):
    text = format_volume(nl)
    assert plain(text)
    assert parse_volume(FIELD, text) == (nl, False)
    assert parse_dose(FIELD, format_dose(DOSE_VOLUME, nl)) == (DOSE_VOLUME, nl, False)


@given(st.integers(1, 10**12 - 1))
def test_any_concentration_reads_back_as_shown(ng_per_ml):
    text = format_concentration(ng_per_ml)
    assert plain(text)
    assert parse_concentration(FIELD, text) == ng_per_ml


@given(st.sampled_from([DOSE_MASS, DOSE_VOLUME]), UP_TO_12_DIGITS)
def test_any_dose_rate_reads_back_as_shown(kind, per_day):
    text = format_dose_rate(kind, per_day)
    assert plain(text) and text.endswith("/day")
    assert parse_dose_rate(FIELD, text) == (kind, per_day, False)


@given(st.integers(0, MAX_DURATION_US))
def test_any_duration_up_to_400_days_reads_back_as_shown(us):
    text = format_duration(us)
    assert plain(text)
    assert parse_duration(FIELD, text) == us


@given(st.integers(0, 400).map(lambda days: days * DAY_US) | st.integers(0, 9_600).map(lambda h: h * 3_600 * 10**6))
def test_whole_hours_and_days_read_back_as_shown(us):
    assert parse_duration(FIELD, format_duration(us)) == us
