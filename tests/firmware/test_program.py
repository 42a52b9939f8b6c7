"""Therapy programs as a clinician writes them: exact numbers, what the pump shows back, every refusal with its
reason, soft-limit warnings, unit confusions, and (a property) that no accepted program can deliver more than any
drug's daily hard limit."""

import re
from fractions import Fraction

import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st
from programs import details_of, lines_of, parse_program, warnings_of
from pumpctl.units import DOSE_MASS, DOSE_VOLUME, parse_dose, parse_dose_rate

from firmware.errors import Refusal
from firmware.library import default_library
from firmware.program import BASAL_CONTINUOUS, BASAL_FLEX, BASAL_STOPPED
from firmware.program_rows import basal_daily_nl

LIB = default_library()
NG_PER_MG = 1_000_000
NL_PER_ML = 1_000_000
US_PER_MIN = 60_000_000
US_PER_H = 3_600_000_000
US_PER_DAY = 86_400_000_000
MAX_RATE_NL_PER_DAY = 240_000_000  # 10 mL/h
MIN_RATE_NL_PER_DAY = 1_000  # 1 uL/day

MORPHINE = ("drug morphine 20 mg/mL", "fill 20 mL")
ADMIXTURE = ("drug morphine 20 mg/mL", "drug bupivacaine 7.5 mg/mL", "drug clonidine 500 mcg/mL", "fill 20 mL")


def parse(*lines, running=None, library=LIB):
    """parse_program on lines; running is the program in force (its blend is what the reservoir holds)."""
    return parse_program(list(lines), library, running.drugs if running is not None else ())


def refused(*lines, running=None, library=LIB):
    with pytest.raises(Refusal) as info:
        parse(*lines, running=running, library=library)
    return info.value


def fields_of(p):
    """Everything a program means, for comparing two parses."""
    return (
        p.drugs,
        p.fill_nl,
        p.basal_kind,
        p.basal,
        p.flex,
        p.bolus,
        p.prime,
        p.bridge_nl,
        p.patient,
        p.trial_us,
        warnings_of(p),
        lines_of(p),
        details_of(p),
    )


def per_drug_doses(detail):
    """{drug: ng or ng/day} from a detail such as '0.1 mL/day = morphine 2 mg/day, clonidine 50 mcg/day'."""
    _volume, _eq, doses = detail.partition(" = ")
    out = {}
    for part in doses.split(", "):
        name, _sp, text = part.partition(" ")
        if text.endswith("/day"):
            kind, amount, rounded = parse_dose_rate(name, text)
        else:
            kind, amount, rounded = parse_dose(name, text)
        assert kind == DOSE_MASS and not rounded, part
        out[name] = amount
    return out


# --- each line kind, in exact numbers -------------------------------------------------------------------------------


def test_a_drug_and_a_mass_basal_become_an_exact_volume_rate():
    p = parse("drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day")
    assert p.drugs == [("morphine", 20_000_000)]
    assert p.fill_nl == 20_000_000
    assert p.basal_kind == BASAL_CONTINUOUS
    assert p.basal == (DOSE_MASS, 2_000_000)
    assert p.basal_rate_at(0) == p.basal_rate_at(1439) == 100_000  # 0.1 mL/day
    assert basal_daily_nl(p) == 100_000
    assert warnings_of(p) == []
    assert p.library_version == "default-2026.11"


@pytest.mark.parametrize(
    "text, kind, per_day, nl_per_day",
    [
        ("0.5 mL/day", DOSE_VOLUME, 500_000, 500_000),
        ("10 uL/h", DOSE_VOLUME, 240_000, 240_000),
        ("0.1 mg/h", DOSE_MASS, 2_400_000, 120_000),
        ("500 mcg/day", DOSE_MASS, 500_000, 25_000),
        ("0.125 MG/DAY", DOSE_MASS, 125_000, 6_250),
    ],
)
def test_a_basal_in_any_unit_is_exact(text, kind, per_day, nl_per_day):
    p = parse(*MORPHINE, "basal " + text)
    assert p.basal == (kind, per_day)
    assert p.basal_rate_at(0) == nl_per_day


def test_a_mass_dose_rounds_toward_the_smaller_dose():
    # 1 mg/day of 3 mg/mL is 333 333.33.. nL/day: the pump gives 333 333 nL/day, 999.999 mcg/day, never more.
    p = parse("drug morphine 3 mg/mL", "fill 20 mL", "basal 1 mg/day", "bolus 0.1 mg over 1 h")
    assert p.basal == (DOSE_MASS, 1_000_000)
    assert p.basal_rate_at(0) == 333_333
    assert p.bolus_volume_nl() == 33_333  # 33 333.33.. nL
    assert lines_of(p)[2] == "basal 1 mg/day"  # what was typed
    detail = dict(details_of(p))["basal 1 mg/day"]
    assert detail.startswith("0.333333 mL/day = ")
    assert per_drug_doses(detail) == {"morphine": 999_999}


def test_a_stop_line_delivers_nothing():
    p = parse(*MORPHINE, "stop")
    assert p.basal_kind == BASAL_STOPPED
    assert p.basal_rate_at(0) == basal_daily_nl(p) == p.basal_max_rate() == 0
    assert "stop" in lines_of(p)


def test_a_stopped_pump_may_prime_its_catheter_and_nothing_else_once():
    p = parse(*MORPHINE, "stop", "prime 0.02 mL over 30 min")  # before therapy starts: the pump stays stopped after
    assert p.basal_kind == BASAL_STOPPED and p.prime == (20_000, 30 * US_PER_MIN)
    assert p.basal_rate_at(0) == 0 and "prime 20 uL over 30 min" in lines_of(p)
    assert refused(*MORPHINE, "stop", "prime 0.2 mL over 20 min").field == "prime rate"  # the drug's limits hold
    assert refused(*MORPHINE, "stop", "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day").field == "program"


def test_flex_steps_run_from_their_start_to_the_next_and_the_day_total_is_exact():
    p = parse(*MORPHINE, "flex 00:00 2 mg/day", "flex 7:00 3 mg/day", "flex 22:00 50 uL/day")
    assert p.basal_kind == BASAL_FLEX
    assert p.flex == [(0, DOSE_MASS, 2_000_000), (420, DOSE_MASS, 3_000_000), (1320, DOSE_VOLUME, 50_000)]
    assert p.flex_rates() == [(0, 100_000), (420, 150_000), (1320, 50_000)]
    assert [p.basal_rate_at(m) for m in (0, 419, 420, 1319, 1320, 1439)] == [100_000] * 2 + [150_000] * 2 + [50_000] * 2
    assert p.basal_max_rate() == 150_000
    # (100 000 * 420 + 150 000 * 900 + 50 000 * 120) / 1440 = 127 083.3.. nL: checked exactly, shown rounded down.
    assert p.basal_day_nl_min() == 100_000 * 420 + 150_000 * 900 + 50_000 * 120
    assert basal_daily_nl(p) == 127_083
    assert lines_of(p)[2:5] == ["flex 00:00 2 mg/day", "flex 07:00 3 mg/day", "flex 22:00 50 uL/day"]


def test_a_bolus_without_after_starts_now():
    p = parse(*MORPHINE, "basal 2 mg/day", "bolus 0.5 mg over 30 min")
    assert p.bolus == (DOSE_MASS, 500_000, 30 * US_PER_MIN, 0)
    assert p.bolus_volume_nl() == 25_000
    assert "bolus 500 mcg over 30 min" in lines_of(p)


def test_a_bolus_with_after_is_delayed():
    p = parse(*MORPHINE, "basal 2 mg/day", "bolus 25 uL over 1.5 h after 2 h")
    assert p.bolus == (DOSE_VOLUME, 25_000, 90 * US_PER_MIN, 2 * US_PER_H)
    assert "bolus 25 uL over 90 min after 2 h" in lines_of(p)


def test_prime_bridge_and_trial_lines():
    p = parse("drug morphine 1 mg/mL", "fill 20 mL", "basal 1 mg/day", "prime 0.2 mL over 20 min", "trial 3 day")
    assert p.prime == (200_000, 20 * US_PER_MIN)
    assert p.trial_us == 3 * US_PER_DAY
    assert "prime 200 uL over 20 min" in lines_of(p) and "trial 3 day" in lines_of(p)
    running = parse(*MORPHINE, "basal 2 mg/day")
    p = parse("drug morphine 10 mg/mL", "fill 20 mL", "basal 2 mg/day", "bridge 0.25 mL", running=running)
    assert p.bridge_nl == 250_000
    assert p.basal_rate_at(0) == 200_000
    assert "bridge 250 uL" in lines_of(p)


def test_patient_bolus_fields():
    p = parse(*MORPHINE, "basal 2 mg/day", "patient-bolus 0.2 mg over 10 min lockout 90 min max 3 per day")
    assert p.patient == (DOSE_MASS, 200_000, 10 * US_PER_MIN, 90 * US_PER_MIN, 3)
    assert p.patient_volume_nl() == 10_000
    assert "patient-bolus 200 mcg over 10 min lockout 90 min max 3 per day" in lines_of(p)


@pytest.mark.parametrize(
    "text, us", [("trial 1 h", US_PER_H), ("trial 12 h", 12 * US_PER_H), ("trial 30 day", 30 * US_PER_DAY)]
)
def test_a_trial_runs_from_one_hour_to_thirty_days(text, us):
    assert parse(*MORPHINE, "basal 2 mg/day", text).trial_us == us


# --- what the pump shows back, and parsing it again -----------------------------------------------------------------


def test_an_admixture_shows_each_drugs_dose_beside_each_line():
    p = parse(*ADMIXTURE, "basal 2 mg/day", "bolus 0.2 mg over 1 h")
    assert lines_of(p) == [
        "drug morphine 20 mg/mL",
        "drug bupivacaine 7.5 mg/mL",
        "drug clonidine 500 mcg/mL",
        "fill 20 mL",
        "basal 2 mg/day",
        "bolus 200 mcg over 1 h",
    ]
    details = dict(details_of(p))
    assert details["basal 2 mg/day"].startswith("0.1 mL/day = morphine ")
    # 0.1 mL/day: morphine 2 mg/day, bupivacaine 0.75 mg/day, clonidine 50 mcg/day.
    assert per_drug_doses(details["basal 2 mg/day"]) == {
        "morphine": 2_000_000,
        "bupivacaine": 750_000,
        "clonidine": 50_000,
    }
    # 10 uL: morphine 0.2 mg, bupivacaine 75 mcg, clonidine 5 mcg.
    assert per_drug_doses(details["bolus 200 mcg over 1 h"]) == {
        "morphine": 200_000,
        "bupivacaine": 75_000,
        "clonidine": 5_000,
    }


def test_a_flex_admixture_shows_each_step_and_the_day_total_per_drug():
    p = parse(*ADMIXTURE, "flex 00:00 2 mg/day", "flex 12:00 4 mg/day")
    details = details_of(p)
    assert per_drug_doses(dict(details)["flex 12:00 4 mg/day"]) == {
        "morphine": 4_000_000,
        "bupivacaine": 1_500_000,
        "clonidine": 100_000,
    }
    totals = [d for line, d in details if line == ""]
    assert len(totals) == 1 and totals[0].startswith("flex day total 0.15 mL/day = ")
    assert per_drug_doses(totals[0][len("flex day total ") :]) == {
        "morphine": 3_000_000,
        "bupivacaine": 1_125_000,
        "clonidine": 75_000,
    }


ROUND_TRIP = [
    (*MORPHINE, "basal 2 mg/day"),
    ("drug morphine 3 mg/mL", "fill 20 mL", "basal 1 mg/day", "bolus 0.1 mg over 1 h after 2 h"),
    (*ADMIXTURE, "flex 0:00 2 mg/day", "flex 7:30 3 mg/day", "flex 22:00 0.05 mL/day", "bolus 0.2 mg over 90 min"),
    (*MORPHINE, "basal 0.5 mL/day", "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day", "trial 72 h"),
    (*MORPHINE, "basal 12 mg/day"),  # with a soft-limit warning
    ("drug morphine 1 mg/mL", "fill 20 mL", "basal 1 mg/day", "prime 0.2 mL over 20 min"),
    ("drug ziconotide 25 mcg/mL", "fill 20 mL", "basal 2.4 mcg/day"),
    ("basal 0.5 mL/day",),
    (*MORPHINE, "stop"),
    ("drug baclofen 2000 mcg/mL", "fill 40 mL", "flex 00:00 400 mcg/day", "flex 06:00 0.6 mg/day"),
    (*MORPHINE, "basal 0.0000005 mL/s", "bolus 0.5 mg over 5400 s"),
]


@pytest.mark.parametrize("lines", ROUND_TRIP)
def test_parsing_the_canonical_lines_again_gives_the_same_program(lines):
    p = parse(*lines)
    again = parse(*lines_of(p))
    assert fields_of(again) == fields_of(p)


def test_a_bridge_program_round_trips_against_the_same_running_program():
    running = parse(*MORPHINE, "basal 2 mg/day")
    p = parse("drug morphine 10 mg/mL", "fill 20 mL", "basal 2 mg/day", "bridge 0.25 mL", running=running)
    assert fields_of(parse(*lines_of(p), running=running)) == fields_of(p)


# --- refusals: each names the field, the value and the limit with its unit ------------------------------------------


def check(refusal, field, *parts):
    assert refusal.field == field, (refusal.field, refusal.message)
    for part in parts:
        assert part in refusal.message, (part, refusal.message)


def test_a_blend_is_refused_when_the_second_drug_is_above_its_daily_limit():
    # 12 mg/day of morphine is within its 15 mg/day; the same 0.6 mL/day holds 18 mg/day of bupivacaine.
    r = refused("drug morphine 20 mg/mL", "drug bupivacaine 30 mg/mL", "fill 20 mL", "basal 12 mg/day")
    check(r, "daily dose", "bupivacaine", "18 mg/day", "15 mg/day", "default-2026.11")
    assert "morphine" not in r.message


def test_a_blend_is_refused_when_the_third_drug_is_above_its_daily_limit():
    # 3 mg/day of morphine at 2 mg/mL is 1.5 mL/day: bupivacaine 11.25 mg/day (soft only), clonidine 750 mcg/day.
    r = refused(
        "drug morphine 2 mg/mL",
        "drug bupivacaine 7.5 mg/mL",
        "drug clonidine 500 mcg/mL",
        "fill 20 mL",
        "basal 3 mg/day",
    )
    check(r, "daily dose", "clonidine", "750 mcg/day", "600 mcg/day")


def test_a_blend_is_refused_when_a_bolus_is_above_the_second_drugs_bolus_limit():
    # 0.5 mg of morphine (its soft limit) is 25 uL, which holds 125 mcg of sufentanil 5 mg/mL: above its 10 mcg.
    # (Over 24 h, so that the day and the hourly rate of both drugs stay within their limits.)
    r = refused(
        "drug morphine 20 mg/mL", "drug sufentanil 5 mg/mL", "fill 20 mL", "basal 1 mg/day", "bolus 0.5 mg over 24 h"
    )
    check(r, "bolus", "bolus of sufentanil 125 mcg", "10 mcg")


@pytest.mark.parametrize(
    "lines, field, parts",
    [
        # The library's limits.
        (("drug morphine 25 mg/mL", "fill 20 mL", "basal 1 mg/day"), "drug morphine", ["25 mg/mL", "20 mg/mL"]),
        (("drug clonidine 500 mg/mL", "fill 20 mL", "basal 1 mL/day"), "drug clonidine", ["500 mg/mL", "500 mcg/mL"]),
        ((*MORPHINE, "basal 16 mg/day"), "daily dose", ["morphine", "16 mg/day", "15 mg/day"]),
        ((*MORPHINE, "basal 2 mg/day", "bolus 1.5 mg over 2 h"), "bolus", ["morphine", "1.5 mg", "1 mg"]),
        ((*MORPHINE, "basal 2 mg/day", "bolus 1 mg over 30 min"), "basal plus bolus rate", ["morphine", "1.625 mg/h"]),
        ((*MORPHINE, "basal 2 mg/day", "prime 0.2 mL over 4 h"), "prime", ["morphine", "4 mg", "1 mg"]),
        (
            (*MORPHINE, "basal 2 mg/day", "prime 0.2 mL over 20 min"),
            "prime rate",
            ["morphine", "12 mg/h", "1.625 mg/h"],
        ),
        (
            ("drug ziconotide 100 mcg/mL", "fill 20 mL", "basal 2.4 mcg/day", "bolus 1 mcg over 24 h"),
            "bolus",
            ["ziconotide", "1 mcg", "0 mg"],
        ),
        # Patient boluses.
        (
            (
                "drug fentanyl 1 mg/mL",
                "fill 20 mL",
                "basal 100 mcg/day",
                "patient-bolus 10 mcg over 10 min lockout 2 h max 2 per day",
            ),
            "patient-bolus",
            ["fentanyl"],
        ),
        (
            (
                "drug morphine 20 mg/mL",
                "drug bupivacaine 20 mg/mL",
                "fill 20 mL",
                "basal 2 mg/day",
                "patient-bolus 0.1 mg over 10 min lockout 2 h max 2 per day",
            ),
            "patient-bolus",
            ["bupivacaine"],
        ),
        (
            (*MORPHINE, "basal 2 mg/day", "patient-bolus 0.3 mg over 1 h lockout 2 h max 2 per day"),
            "patient-bolus",
            ["morphine", "300 mcg", "200 mcg"],
        ),
        (
            (*MORPHINE, "basal 2 mg/day", "patient-bolus 0.2 mg over 5 min lockout 2 h max 2 per day"),
            "basal plus patient-bolus rate",
            ["morphine", "2.483334 mg/h", "1.625 mg/h"],
        ),
        (
            (*MORPHINE, "basal 2 mg/day", "patient-bolus 0.1 mg over 10 min lockout 30 min max 2 per day"),
            "patient-bolus lockout",
            ["morphine", "30 min", "1 h"],
        ),
        (
            (*MORPHINE, "basal 2 mg/day", "patient-bolus 0.1 mg over 10 min lockout 1 h max 5 per day"),
            "patient-bolus max",
            ["morphine", "5", "4"],
        ),
        (
            (*MORPHINE, "basal 2 mg/day", "patient-bolus 0.1 mg over 10 min lockout 1 h max 25 per day"),
            "patient-bolus max",
            ["25", "24"],
        ),
        (
            (*MORPHINE, "basal 2 mg/day", "patient-bolus 0.1 mg over 10 min lockout 1 h max 4"),
            "patient-bolus max",
            ["max N per day"],
        ),
        ((*MORPHINE, "basal 2 mg/day", "patient-bolus 0.1 mg over 10 min"), "patient-bolus", ["lockout", "max"]),
        # Flex schedules.
        ((*MORPHINE, "flex 07:00 2 mg/day"), "flex 07:00", ["07:00", "00:00"]),
        (
            (*MORPHINE, "flex 00:00 2 mg/day", "flex 08:00 3 mg/day", "flex 07:00 2 mg/day"),
            "flex 07:00",
            ["07:00", "08:00", "time order"],
        ),
        # the pump names the step by its time as it understood it
        ((*MORPHINE, "flex 00:00 2 mg/day", "flex 0:00 3 mg/day"), "flex 00:00", ["00:00", "time order"]),
        ((*MORPHINE, "flex 00:00 2 mg/day", "flex 7:30pm 3 mg/day"), "flex", ["7:30pm", "24-hour"]),
        ((*MORPHINE, "flex 00:00 2 mg/day", "flex 7:30 pm 3 mg/day"), "flex 7:30", ["7:30 pm", "24-hour", "19:30"]),
        ((*MORPHINE, "flex 00:00 2 mg/day", "flex 24:00 3 mg/day"), "flex", ["24:00", "0 to 23"]),
        # The shape of a program.
        ((*MORPHINE, "basal 2 mg/day", "flex 00:00 2 mg/day"), "program", ["exactly one", "basal", "flex", "stop"]),
        ((*MORPHINE, "basal 2 mg/day", "stop"), "program", ["exactly one"]),
        ((*MORPHINE, "flex 00:00 2 mg/day", "stop"), "program", ["exactly one"]),
        ((*MORPHINE, "basal 2 mg/day", "basal 3 mg/day"), "basal", ["only one basal"]),
        (MORPHINE, "program", ["exactly one"]),
        ((), "program", ["empty"]),
        ((*MORPHINE, "stop", "bolus 0.5 mg over 1 h"), "program", ["stopped", "bolus"]),
        (
            (
                "drug morphine 1 mg/mL",
                "fill 20 mL",
                "basal 2 mg/day",
                "bolus 0.5 mg over 2 h",
                "prime 0.2 mL over 20 min",
            ),
            "program",
            ["bolus", "prime"],
        ),
        ((*MORPHINE, "basal 2 mg/day", "bolus 0.5 mg over 2 h", "bolus 0.5 mg over 2 h"), "bolus", ["only one"]),
        (("basal 2 mg/day",), "drug", ["mg", "drug line"]),
        (("fill 20 mL", "basal 0.1 mL/day", "bolus 0.5 mg over 1 h"), "drug", ["mg", "drug line"]),
        (
            ("drug morphine 20 mg/mL", "drug morphine 10 mg/mL", "fill 20 mL", "basal 2 mg/day"),
            "drug morphine",
            ["twice"],
        ),
        (
            (
                "drug morphine 20 mg/mL",
                "drug bupivacaine 20 mg/mL",
                "drug clonidine 500 mcg/mL",
                "drug baclofen 500 mcg/mL",
                "fill 20 mL",
                "basal 2 mg/day",
            ),
            "drug",
            ["at most 3 drugs", "baclofen would be drug 4"],
        ),
        (("drug morphine 20 mg/mL", "fill 41 mL", "basal 2 mg/day"), "fill", ["41 mL", "40 mL"]),
        ((*MORPHINE, "basal 2 mg/day", "trial 30 min"), "trial", ["30 min", "1 h", "30 day"]),
        ((*MORPHINE, "basal 2 mg/day", "trial 31 day"), "trial", ["31 day", "30 day"]),
        ((*MORPHINE, "basal 2 mg/day", "bolus 0.5 mg over 25 h"), "bolus over", ["25 h", "24 h"]),
        ((*MORPHINE, "basal 2 mg/day", "bolus 0.5 mg over 2 h after 8 day"), "bolus after", ["8 day", "7 day"]),
        ((*MORPHINE, "basal 2 mg/day", "bolus 0 mg over 2 h"), "bolus", ["0 mg", "above zero"]),
        ((*MORPHINE, "basal 0 mg/day"), "basal", ["0 mg/day", "above zero", "stop"]),
        ((*MORPHINE, "basal 2 mg/day", "bolus 0.5 mg in 2 h"), "bolus", ["over"]),
        # The pump's own limits.
        (("basal 10.1 mL/h",), "program", ["242.4 mL/day", "10 mL/h"]),
        (("basal 1 mL/day", "bolus 10 mL over 1 h"), "program", ["241 mL/day", "10 mL/h"]),
        (("basal 1 mL/day", "prime 1 mL over 5 min"), "program", ["288 mL/day", "10 mL/h"]),
        (("basal 0.999 uL/day",), "basal", ["999 nL/day", "1 uL/day"]),
        ((*MORPHINE, "basal 0.019 mg/day"), "basal", ["950 nL/day", "1 uL/day"]),
        ((*MORPHINE, "flex 00:00 2 mg/day", "flex 07:00 0.01 mg/day"), "flex 07:00", ["500 nL/day", "1 uL/day"]),
        (("basal 1 mL/day", "prime 1.5 mL over 1 h"), "prime", ["1.5 mL", "1 mL"]),
        # Lines the pump does not know.
        ((*MORPHINE, "rate 2 mg/day"), "program", ["rate 2 mg/day", "basal", "patient-bolus"]),
        ((*MORPHINE, "Basal 2 mg/day"), "program", ["Basal 2 mg/day"]),
        ((*MORPHINE, "basal 2 mg/day", ""), "program", ["unknown line"]),
    ],
)
def test_a_program_is_refused_naming_field_value_and_limit(lines, field, parts):
    check(refused(*lines), field, *parts)


def test_more_than_24_flex_steps_is_refused_naming_the_limit():
    steps = [f"flex {h:02d}:00 1 mg/day" for h in range(24)]
    p = parse(*MORPHINE, *steps)
    assert len(p.flex) == 24
    check(refused(*MORPHINE, *steps, "flex 23:30 1 mg/day"), "flex", "at most 24 steps", "flex 23:30 would be step 25")


def test_a_program_of_more_than_40_lines_is_refused():
    check(refused(*MORPHINE, "basal 2 mg/day", *["stop"] * 38), "program", "40", "41")


def test_a_blend_change_without_a_fill_line_is_refused():
    running = parse(*MORPHINE, "basal 2 mg/day")
    for lines in (
        ("drug morphine 10 mg/mL", "basal 2 mg/day"),
        ("drug morphine 20 mg/mL", "drug clonidine 100 mcg/mL", "basal 2 mg/day"),
        ("drug none", "basal 0.1 mL/day"),
    ):
        check(refused(*lines, running=running), "fill", "fill line")
    # The same blend needs no fill; a refill with a fill line is fine.
    assert parse("drug morphine 20 mg/mL", "basal 3 mg/day", running=running).fill_nl is None
    assert parse("drug morphine 10 mg/mL", "fill 18 mL", "basal 2 mg/day", running=running).fill_nl == 18_000_000


def test_stopping_keeps_the_blend_in_the_reservoir_without_a_fill_line():
    running = parse(*MORPHINE, "basal 2 mg/day")
    stopped = parse("stop", running=running)
    assert stopped.drugs == [("morphine", 20_000_000)] and stopped.fill_nl is None
    assert lines_of(stopped) == ["drug morphine 20 mg/mL", "stop"]
    # Restarting may name the drug again or leave it out: either way it is morphine at 20 mg/mL.
    assert parse("drug morphine 20 mg/mL", "basal 3 mg/day", running=stopped).basal_rate_at(0) == 150_000
    restarted = parse("basal 3 mg/day", running=stopped)
    assert restarted.drugs == [("morphine", 20_000_000)] and restarted.basal_rate_at(0) == 150_000
    assert lines_of(restarted) == ["drug morphine 20 mg/mL", "basal 3 mg/day"]


def test_a_program_without_drug_lines_is_checked_against_the_drug_still_in_the_reservoir():
    # The safety gap this closes: after morphine 20 mg/mL, "fill 20 mL" and a volume basal used to read as a
    # reservoir without a drug, so 2 mL/day (40 mg/day of morphine) passed no library check at all.
    running = parse(*MORPHINE, "basal 2 mg/day")
    check(refused("fill 20 mL", "basal 2 mL/day", running=running), "daily dose", "morphine", "40 mg/day", "15 mg/day")
    check(refused("basal 2 mL/day", running=running), "daily dose", "morphine", "40 mg/day")
    kept = parse("fill 20 mL", "basal 0.1 mL/day", running=running)
    assert kept.drugs == [("morphine", 20_000_000)] and kept.fill_nl == 20_000_000
    assert details_of(kept)[2] == ("basal 0.1 mL/day", "0.1 mL/day = morphine 2 mg/day")
    # A blend is inherited whole: 0.5 mg of morphine is within its limits, but the sufentanil beside it is not.
    blend = parse("drug morphine 20 mg/mL", "drug sufentanil 5 mg/mL", "fill 20 mL", "basal 1 mg/day")
    r = refused("basal 1 mg/day", "bolus 0.5 mg over 24 h", running=blend)
    check(r, "bolus", "bolus of sufentanil 125 mcg", "10 mcg")


def test_drug_none_says_the_reservoir_was_emptied_and_needs_a_fill_line():
    running = parse(*MORPHINE, "basal 2 mg/day")
    check(refused("drug none", "basal 2 mL/day", running=running), "fill", "fill line")
    saline = parse("drug none", "fill 20 mL", "basal 2 mL/day", running=running)
    assert saline.drugs == [] and saline.basal_rate_at(0) == 2_000_000
    assert lines_of(saline) == ["drug none", "fill 20 mL", "basal 2 mL/day"]
    assert lines_of(parse(*lines_of(saline), running=running)) == lines_of(saline)
    # No mass dose without a drug, no drug line beside "drug none", and "drug none" once.
    check(refused("drug none", "fill 20 mL", "basal 2 mg/day", running=running), "drug", "drug line")
    check(refused("drug none", "drug morphine 1 mg/mL", "fill 20 mL", "basal 1 mg/day"), "drug none", "drug lines")
    check(refused("drug none", "drug none", "fill 20 mL", "basal 1 mL/day"), "drug none", "only one")
    # After "drug none", a program without drug lines stays drug-free.
    assert parse("basal 1 mL/day", running=saline).drugs == []


def test_a_bridge_without_a_concentration_change_is_refused():
    running = parse(*MORPHINE, "basal 2 mg/day")
    check(refused(*MORPHINE, "basal 2 mg/day", "bridge 0.25 mL", running=running), "bridge", "none changed")
    check(refused(*MORPHINE, "basal 2 mg/day", "bridge 0.25 mL"), "bridge", "none changed")
    check(
        refused("drug hydromorphone 5 mg/mL", "fill 20 mL", "basal 1 mg/day", "bridge 0.25 mL", running=running),
        "bridge",
        "same drugs",
    )
    check(
        refused("drug morphine 10 mg/mL", "fill 20 mL", "basal 0.2 mL/day", "bridge 0.25 mL", running=running),
        "bridge",
        "mg/day",
    )


def test_the_pump_limits_themselves_are_accepted():
    assert parse("basal 10 mL/h").basal_rate_at(0) == MAX_RATE_NL_PER_DAY
    assert parse("basal 1 uL/day").basal_rate_at(0) == MIN_RATE_NL_PER_DAY
    assert parse(*MORPHINE, "basal 0.02 mg/day").basal_rate_at(0) == MIN_RATE_NL_PER_DAY


def test_exactly_at_the_hard_daily_limit_is_accepted_and_one_ng_more_is_refused():
    assert parse("drug morphine 1 mg/mL", "fill 20 mL", "basal 15 mg/day").basal_rate_at(0) == 15_000_000
    r = refused("drug morphine 1 mg/mL", "fill 20 mL", "basal 15.000001 mg/day")
    check(r, "daily dose", "morphine", "15.000001 mg/day", "15 mg/day")


def test_the_daily_limit_counts_every_allowed_patient_bolus_and_the_bolus():
    # 13.4 mg/day + 4 x 0.2 mg + 0.8 mg = 15 mg/day: at the limit.
    base = (*MORPHINE, "basal 13.4 mg/day", "patient-bolus 0.2 mg over 30 min lockout 1 h max 4 per day")
    parse(*base, "bolus 0.8 mg over 2 h")
    check(refused(*base, "bolus 0.801 mg over 2 h"), "daily dose", "morphine", "15.001 mg/day", "15 mg/day")
    check(
        refused(*MORPHINE, "basal 14.3 mg/day", "patient-bolus 0.2 mg over 30 min lockout 1 h max 4 per day"),
        "daily dose",
        "15.1 mg/day",
    )


# --- soft limits: accepted, with a warning to confirm --------------------------------------------------------------


def test_above_a_soft_limit_and_within_the_hard_limit_parses_with_a_warning():
    p = parse(*MORPHINE, "basal 12 mg/day")
    assert len(warnings_of(p)) == 1
    assert all(part in warnings_of(p)[0] for part in ("daily dose", "morphine", "12 mg/day", "soft limit", "10 mg/day"))


def test_at_a_soft_limit_there_is_no_warning():
    assert warnings_of(parse(*MORPHINE, "basal 10 mg/day")) == []


def test_a_bolus_above_its_soft_limit_warns():
    p = parse(*MORPHINE, "basal 2 mg/day", "bolus 0.75 mg over 2 h")
    assert [w for w in warnings_of(p) if w.startswith("bolus of morphine")] == [
        "bolus of morphine 750 mcg is above the soft limit of 500 mcg"
    ]


def test_a_blend_warns_for_the_second_drug_only_when_only_it_is_above_its_soft_limit():
    # 8 mg/day morphine (below 10) is 0.4 mL/day: 12 mg/day bupivacaine (above its 10, below 15).
    p = parse("drug morphine 20 mg/mL", "drug bupivacaine 30 mg/mL", "fill 20 mL", "basal 8 mg/day")
    assert len(warnings_of(p)) == 1
    assert all(part in warnings_of(p)[0] for part in ("bupivacaine", "12 mg/day", "10 mg/day"))
    assert "morphine" not in warnings_of(p)[0]


# --- unit confusion is refused or caught by a limit ------------------------------------------------------------------


def test_ziconotide_in_mg_instead_of_mcg_is_refused_by_the_hard_limit():
    check(
        refused("drug ziconotide 100 mcg/mL", "fill 20 mL", "basal 2 mg/day"),
        "daily dose",
        "ziconotide",
        "2 mg/day",
        "19.2 mcg/day",
    )
    assert parse("drug ziconotide 100 mcg/mL", "fill 20 mL", "basal 2 mcg/day").basal_rate_at(0) == 20_000


@pytest.mark.parametrize("unit", ["ug", "µg", "μg", "UG", "microgram", "micrograms"])
def test_micrograms_written_as_ug_are_refused_for_the_unit(unit):
    r = refused("drug ziconotide 100 mcg/mL", "fill 20 mL", f"basal 2 {unit}/day")
    check(r, "basal", f"2 {unit}/day", "mcg")


def test_a_concentration_in_ug_or_percent_is_refused():
    check(refused("drug clonidine 500 ug/mL", "fill 20 mL", "basal 0.1 mL/day"), "drug clonidine", "mcg")
    check(refused("drug bupivacaine 0.75 %", "fill 20 mL", "basal 0.1 mL/day"), "drug bupivacaine", "7.5 mg/mL")


def test_per_hour_instead_of_per_day_is_refused_by_the_hard_limit():
    check(refused(*MORPHINE, "basal 1 mg/h"), "daily dose", "morphine", "24 mg/day", "15 mg/day")
    assert parse(*MORPHINE, "basal 1 mg/day").basal_rate_at(0) == 50_000


def test_a_lockout_in_minutes_instead_of_hours_is_refused_by_the_minimum_lockout():
    r = refused(*MORPHINE, "basal 2 mg/day", "patient-bolus 0.2 mg over 10 min lockout 4 min max 4 per day")
    check(r, "patient-bolus lockout", "4 min", "1 h")
    parse(*MORPHINE, "basal 2 mg/day", "patient-bolus 0.2 mg over 10 min lockout 4 h max 4 per day")


@pytest.mark.parametrize(
    "line, field",
    [
        ("patient-bolus 0.2 mg over 10 min lockout 4 max 4 per day", "patient-bolus lockout"),
        ("patient-bolus 0.2 mg over 10 lockout 4 h max 4 per day", "patient-bolus over"),
        ("bolus 0.5 mg over 30", "bolus over"),
        ("bolus 0.5 mg over 30 min after 2", "bolus after"),
        ("bolus 0.5 mg over 30 m", "bolus over"),
        ("trial 3", "trial"),
    ],
)
def test_a_duration_without_a_clear_unit_is_refused(line, field):
    check(refused(*MORPHINE, "basal 2 mg/day", line), field)


@pytest.mark.parametrize(
    "line, field, part",
    [
        ("basal 2", "basal", "no unit"),
        ("basal 2 mg", "basal", "not a rate"),
        ("basal 0.5 mL", "basal", "not a rate"),
        ("basal 2 mg/week", "basal", "unknown unit"),
        ("basal 2,5 mg/day", "basal", "decimal"),
        ("basal .5 mg/day", "basal", "leading zero"),
        ("basal 1e1 mg/day", "basal", "exponent"),
        ("basal -2 mg/day", "basal", "negative"),
        ("bolus 0.5 mg/h over 1 h", "bolus", "rate"),
        ("bolus 0.5 over 1 h", "bolus", "no unit"),
    ],
)
def test_a_dose_or_rate_without_a_clear_unit_or_number_is_refused(line, field, part):
    lines = (*MORPHINE, line) if line.startswith("basal") else (*MORPHINE, "basal 2 mg/day", line)
    check(refused(*lines), field, part)


# --- the property: an accepted program never exceeds any drug's daily hard limit -----------------------------------


def worst_case_ng(drugs, basal, flex, bolus, prime_nl, patient):
    """Per drug, the most one day can deliver, exactly: a full day of the basal, every allowed patient bolus and
    the bolus or prime. Doses in a mass convert to whole nL of fluid, rounding down, as the pump delivers them."""
    conc0 = drugs[0][1] if drugs else None

    def nl(kind, amount):
        return amount if kind == DOSE_VOLUME else amount * NL_PER_ML // conc0

    if basal is not None:
        basal_nl = Fraction(nl(*basal))
    elif flex:
        ends = [start for start, _k, _a in flex[1:]] + [1440]
        basal_nl = Fraction(sum(nl(k, a) * (end - start) for (start, k, a), end in zip(flex, ends, strict=True)), 1440)
    else:
        basal_nl = Fraction(0)
    day_nl = basal_nl + (nl(*bolus[:2]) if bolus else 0) + (prime_nl or 0)
    if patient is not None:
        day_nl += patient[4] * nl(*patient[:2])
    return {name: day_nl * conc / NL_PER_ML for name, conc in drugs}


def mg_text(ng):
    return f"{ng // NG_PER_MG}.{ng % NG_PER_MG:06d} mg"


def mcg_text(ng):
    return f"{ng // 1000}.{ng % 1000:03d} mcg"


def ml_text(nl):
    return f"{nl // NL_PER_ML}.{nl % NL_PER_ML:06d} mL"


def ul_text(nl):
    return f"{nl // 1000}.{nl % 1000:03d} uL"


@st.composite
def blends(draw, names=tuple(LIB.order)):
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=min(3, len(names)), unique=True))
    drugs = []
    for name in chosen:
        top = LIB.get("drug", name).max_conc_ng_per_ml
        conc = draw(st.one_of(st.just(top), st.just(top // 2), st.integers(max(1, top // 200), top)))
        drugs.append((name, conc))
    return drugs


@st.composite
def doses(draw, drugs, scale_ng, low=None, near=None):
    """A dose of the primary drug from low (scale_ng / 20) to twice scale_ng, or (near) within 30 ng of scale_ng, in
    a mass or a volume unit: (kind, amount, text)."""
    low = max(1, scale_ng // 20 if low is None else low)
    if near is None:
        near = draw(st.booleans())
    if near:
        ng = draw(st.one_of(st.just(scale_ng), st.integers(max(1, scale_ng - 30), scale_ng + 30)))
    else:
        ng = draw(st.integers(low, max(low, 2 * scale_ng)))
    if draw(st.booleans()):
        return (DOSE_MASS, ng, draw(st.sampled_from([mg_text, mcg_text]))(ng))
    nl = max(1, ng * NL_PER_ML // drugs[0][1])
    return (DOSE_VOLUME, nl, draw(st.sampled_from([ml_text, ul_text]))(nl))


PATIENT_DRUGS = tuple(name for name in LIB.order if LIB.get("drug", name).patient_allowed)


@st.composite
def programs(draw):
    """Program lines and the numbers they mean. Doses are drawn around the primary drug's limits, and the basal
    sometimes around what is left of the daily hard limit after the boluses, so that both sides of every daily
    hard limit are reached."""
    with_patient = draw(st.booleans())
    # A patient bolus mostly with drugs that allow one; sometimes with the others, which must refuse it.
    names = PATIENT_DRUGS if with_patient and draw(st.integers(0, 4)) else tuple(LIB.order)
    drugs = draw(blends(names))
    primary = LIB.get("drug", drugs[0][0])
    conc0 = drugs[0][1]

    def ng_of(kind, amount):
        return amount if kind == DOSE_MASS else amount * conc0 // NL_PER_ML

    extra_ng = 0
    tail = []
    bolus = None
    if draw(st.booleans()):
        scale = primary.bolus_hard_ng or primary.daily_hard_ng // 20
        kind, amount, text = draw(doses(drugs, scale if draw(st.booleans()) else scale // 2, low=scale // 20))
        minutes = draw(st.one_of(st.integers(10, 1440), st.sampled_from([60, 120, 240])))
        after = draw(st.sampled_from([0, 30, 120]))
        bolus = (kind, amount, minutes * US_PER_MIN, after * US_PER_MIN)
        tail.append(f"bolus {text} over {minutes} min" + (f" after {after} min" if after else ""))
        extra_ng += ng_of(kind, amount)
    patient = None
    if with_patient:
        scale = primary.patient_dose_hard_ng or primary.daily_hard_ng // 50
        kind, amount, text = draw(doses(drugs, scale if draw(st.booleans()) else scale // 2, low=scale // 20))
        minutes = draw(st.sampled_from([20, 30, 60, 120, 10, 5, 1]))
        lockout = draw(st.sampled_from([60, 90, 240, 30]))
        count = draw(st.sampled_from([4, 3, 2, 1, 5, 6]))
        patient = (kind, amount, minutes * US_PER_MIN, lockout * US_PER_MIN, count)
        tail.append(f"patient-bolus {text} over {minutes} min lockout {lockout} min max {count} per day")
        extra_ng += count * ng_of(kind, amount)
    hard = primary.daily_hard_ng
    rest = max(hard // 50, hard - extra_ng)
    daily = draw(st.sampled_from([rest, rest, rest, hard, hard * 9 // 10, primary.daily_soft_ng, hard // 2]))
    near = draw(st.integers(0, 2)) > 0  # every basal dose near daily, or anywhere up to twice it
    lines = [f"drug {name} {mcg_text(conc)}/mL" for name, conc in drugs] + ["fill 20 mL"]
    basal = None
    flex = []
    if draw(st.booleans()):
        kind, amount, text = draw(doses(drugs, daily, near=near))
        basal = (kind, amount)
        lines.append(f"basal {text}/day")
    else:
        starts = sorted(draw(st.lists(st.integers(1, 1439), max_size=23, unique=True)))
        for start in [0, *starts]:
            kind, amount, text = draw(doses(drugs, daily, near=near))
            flex.append((start, kind, amount))
            lines.append(f"flex {start // 60:02d}:{start % 60:02d} {text}/day")
    return lines + tail, drugs, basal, flex, bolus, patient


DAILY = re.compile(r"^daily dose of ([a-z0-9-]+) ")


@given(programs())
def test_an_accepted_program_never_exceeds_any_drugs_daily_hard_limit(program):
    lines, drugs, basal, flex, bolus, patient = program
    note("\n".join(lines))
    try:
        p = parse(*lines)
    except Refusal as r:
        event("refused: " + r.field.split(" ")[0])
        if r.field != "daily dose":
            return
        drug = DAILY.match(r.message).group(1)
        worst = worst_case_ng(drugs, basal, flex, bolus, None, patient)[drug]
        hard = LIB.get("drug", drug).daily_hard_ng
        note(f"worst case of {drug}: {worst} ng, hard limit {hard} ng")
        assert worst > hard, r.message
        return
    event("accepted" + (" with a patient bolus" if p.patient else "") + (" with a bolus" if p.bolus else ""))
    # The program is what was typed.
    assert p.drugs == drugs
    assert p.basal == basal and p.flex == flex and p.patient == patient and p.bolus == bolus
    # Every drug's worst day, from the accepted program's own numbers, is within its hard limit.
    worst = worst_case_ng(p.drugs, p.basal, p.flex, p.bolus, p.prime[0] if p.prime else None, p.patient)
    for name, _conc in p.drugs:
        d = LIB.get("drug", name)
        assert worst[name] <= d.daily_hard_ng, (name, worst[name])
        if p.bolus is not None:
            assert worst_case_ng(p.drugs, None, [], p.bolus, None, None)[name] <= d.bolus_hard_ng
        if p.patient is not None:
            assert d.patient_allowed
            assert p.patient[3] >= d.patient_lockout_min_us and p.patient[4] <= d.patient_max_per_day
        # A soft-limit warning exactly when the worst day is above the soft limit.
        warned = any(w.startswith(f"daily dose of {name} ") for w in warnings_of(p))
        assert warned == (worst[name] > d.daily_soft_ng), warnings_of(p)
    # And what the pump shows back parses to the same program.
    assert fields_of(parse(*lines_of(p))) == fields_of(p)


@given(blends(), st.integers(1, 10**9))
def test_a_mass_basal_converts_to_the_largest_volume_not_above_the_dose(drugs, ng_per_day):
    conc = drugs[0][1]
    try:
        drug_lines = [f"drug {name} {mcg_text(c)}/mL" for name, c in drugs]
        p = parse(*drug_lines, "fill 20 mL", f"basal {mg_text(ng_per_day)}/day")
    except Refusal:
        return
    nl = p.basal_rate_at(0)
    assert nl * conc <= ng_per_day * NL_PER_ML < (nl + 1) * conc


# --- rounding at the limits ---------------------------------------------------------------------------------------


def test_a_flex_schedule_within_the_daily_limit_by_less_than_one_nl_is_accepted():
    # At 7 mg/mL, 15 mg/day is 2 142 857.142857.. nL/day. This schedule gives (2 142 857 * 1439 + 2 143 057) / 1440
    # = 2 142 857.1389 nL/day = 14.99999997 mg/day: within the limit. The last minute may go up to 2 143 062 nL/day
    # (14.999999999 mg/day); 2 143 063 nL/day is 15.0000000014 mg/day, refused, and shown rounded up to the ng.
    for last_nl in (2_143_057, 2_143_062):
        parse("drug morphine 7 mg/mL", "fill 20 mL", "flex 00:00 2.142857 mL/day", f"flex 23:59 {last_nl} nL/day")
    r = refused("drug morphine 7 mg/mL", "fill 20 mL", "flex 00:00 2.142857 mL/day", "flex 23:59 2143063 nL/day")
    check(r, "daily dose", "morphine 15.000001 mg/day is above the hard limit of 15 mg/day")


def test_a_refusal_never_shows_the_refused_dose_equal_to_the_limit():
    # 0.75 mL/day of bupivacaine 20.000001 mg/mL is 15.00000075 mg/day, above 15 mg/day.
    r = refused("drug morphine 20 mg/mL", "drug bupivacaine 20.000001 mg/mL", "fill 20 mL", "basal 15 mg/day")
    assert r.field == "daily dose"
    assert "bupivacaine 15 mg/day is above the hard limit of 15 mg/day" not in r.message
    assert "bupivacaine 15.000001 mg/day is above the hard limit of 15 mg/day" in r.message


def test_a_program_without_its_bolus_keeps_everything_else_and_leaves_the_original_alone():
    from firmware.program import _FIELDS, DELIVERY_BOLUS
    from firmware.therapy import BOLUS_NONE, Therapy

    p = parse_program([*MORPHINE, "basal 3 mg/day", "bolus 0.5 mg over 30 min"], LIB, [])
    # every attribute is copied but what is made of this very program: what its check wrote of it (saved),
    # its CRC and its flex rates in a fluid (flex_rates)
    assert set(_FIELDS) | {"saved", "crc", "_rates"} == set(vars(p))
    assert warnings_of(p) and all(w.startswith("basal plus bolus rate") for w in warnings_of(p))
    crc = p.program_crc()
    q = p.without_delivery()
    assert b"\ni10," in p.saved and b"\ni10," not in q.saved  # what the pump understood: without the bolus
    assert q.program_crc() != crc
    assert lines_of(q) == ["drug morphine 20 mg/mL", "fill 20 mL", "basal 3 mg/day"] and q.bolus is None
    assert warnings_of(q) == [] and q.delivery() is None
    assert details_of(q) == [row for row in details_of(p) if not row[0].startswith("bolus")]
    assert (q.drugs, q.basal, q.fill_nl) == (p.drugs, p.basal, p.fill_nl)
    # A fork that runs past the bolus's end (a projection) leaves the real therapy's program as it was.
    t = Therapy()
    t.drugs = list(p.drugs)
    t.commit(p, 0)
    f = t.fork()
    f.fire(f.next_event(0))
    assert f.bolus_kind == BOLUS_NONE and f.program.delivery() is None
    assert t.program is p and p.delivery() == (DELIVERY_BOLUS, DOSE_MASS, 500_000, 30 * US_PER_MIN, 0)
    # The same line committed again while it runs goes on; the same line after it ended starts anew.
    again = parse_program(lines_of(p), LIB, p.drugs)
    t.commit(again, 10 * US_PER_MIN)
    assert (t.bolus_start, t.bolus_end) == (0, 30 * US_PER_MIN)
    f.commit(again, 40 * US_PER_MIN)
    assert (f.bolus_start, f.bolus_end) == (40 * US_PER_MIN, 70 * US_PER_MIN)


def test_a_programs_crc_is_the_wire_definition_of_its_items_whatever_its_drug_is_called():
    # The pump reads its CRC from what it keeps (Program.saved, names escaped); pumpctl computes
    # framing.program_crc from the rows it reviewed. A drug whose name holds a backslash, a comma,
    # a tab and a newline (no library's names do) must still give both the same CRC.
    from firmware import codec, framing
    from firmware.library import DrugLimits, Library
    from firmware.program import build_program

    odd = "mor\\ph,i\tn\ne"
    lib = Library("site \\1", [DrugLimits(odd, LIB.drugs["morphine"].numbers)])
    items = [
        (codec.ITEM_DRUG, odd, 0, 20_000_000, 0, 0, 0, 0, 0, 0),
        (codec.ITEM_FILL, "", 0, 20_000_000, 0, 0, 0, 0, 0, 0),
        (codec.ITEM_BASAL, "", DOSE_MASS, 1_000_000, 0, 0, 0, 0, 0, 0),
        (codec.ITEM_BOLUS, "", DOSE_MASS, 100_000, 0, 1800, 5, 60, 0, 0),
    ]
    p = build_program(items, lib, [])
    texts = ["%d,%d,%d,%d,%d,%d,%d,%d,%d,%s" % (*it[:1], *it[2:], it[1]) for it in items]
    assert p.program_crc() == framing.program_crc(texts, "site \\1")
    assert build_program(items[1:], lib, [(odd, 20_000_000)]).program_crc() == p.program_crc()  # its blend kept
    assert build_program(items[:3], lib, []).program_crc() == framing.program_crc(texts[:3], "site \\1")
