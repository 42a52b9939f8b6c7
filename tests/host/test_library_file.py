"""A site's drug library file as pumpctl reads it (host/pumpctl/library_file.py): each limit's text is read into the
numbers the pump holds with the same exact parsers as a program's lines, a text that is no quantity of its kind is
refused before anything is sent, naming the drug and the field, and the pump's numbers are written back as texts
that read as the same numbers."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pumpctl.library_file import FILE_FIELDS, LIBRARY_FIELDS, LibraryTextError, entry_texts, parse_entry

from firmware import codec
from firmware.druglib import DEFAULT_LIBRARY, DEFAULT_NAMES, DEFAULT_NUMBERS, FIELDS

U32 = 0xFFFF_FFFF
MORPHINE = DEFAULT_LIBRARY[0]


def entry(**changes):
    """The default morphine entry (its source too) with some fields changed, as a site would type it."""
    fields = dict(zip(FILE_FIELDS, MORPHINE, strict=True))
    fields.update(changes)
    return [fields[name] for name in FILE_FIELDS]


def text_error(fields):
    with pytest.raises(LibraryTextError) as info:
        parse_entry(fields)
    return info.value


def test_a_file_names_the_fields_the_pump_carries_then_a_source():
    assert LIBRARY_FIELDS == codec.LIBRARY_FIELDS and len(LIBRARY_FIELDS) == 1 + codec.LIBRARY_LIMITS
    assert FILE_FIELDS == FIELDS == (*codec.LIBRARY_FIELDS, "source")


@pytest.mark.parametrize("i", range(len(DEFAULT_LIBRARY)), ids=DEFAULT_NAMES)
def test_each_default_entry_reads_as_the_numbers_the_pump_holds(i):
    assert parse_entry(DEFAULT_LIBRARY[i]) == (DEFAULT_NAMES[i], DEFAULT_NUMBERS[i])
    assert parse_entry(DEFAULT_LIBRARY[i][:11]) == (DEFAULT_NAMES[i], DEFAULT_NUMBERS[i])  # the source is optional


def test_a_limit_is_read_in_the_units_the_pump_carries():
    name, numbers = parse_entry(
        entry(
            max_concentration="2.5 mcg/mL",
            daily_soft="0.5 mg/day",
            daily_hard="1 mg/day",
            rate_soft="25 mcg/h",  # per hour, held per day
            rate_hard="0.1 mg/h",
            bolus_soft="25 mcg",
            bolus_hard="0.05 mg",
            patient_dose_hard="10 mcg",
            patient_lockout_min="90 min",  # in seconds
            patient_max_per_day="3",
        )
    )
    assert name == "morphine"
    assert numbers == (2_500, 500_000, 1_000_000, 600_000, 2_400_000, 25_000, 50_000, 10_000, 5_400, 3)


def test_the_same_limit_written_in_other_units_is_the_same_number():
    assert parse_entry(entry(daily_hard="15000 mcg/day", rate_hard="39 mg/day", patient_lockout_min="60 min")) == (
        parse_entry(MORPHINE)
    )


@pytest.mark.parametrize(
    "changes, field, parts",
    [
        # A unit no one knows.
        ({"daily_hard": "15 mg/fortnight"}, "morphine daily_hard", ["unknown unit 'mg/fortnight'", "mg/day"]),
        ({"patient_lockout_min": "2 parsecs"}, "morphine patient_lockout_min", ["unknown unit 'parsecs'", "min"]),
        ({"max_concentration": "20 mg"}, "morphine max_concentration", ["'20 mg'", "unknown unit", "mg/mL"]),
        # A volume where a mass is needed: a limit is of the drug, not of the fluid.
        ({"bolus_hard": "1 mL"}, "morphine bolus_hard", ["must be a mass (mg or mcg)", "'1 mL'"]),
        ({"patient_dose_hard": "10 uL"}, "morphine patient_dose_hard", ["must be a mass", "'10 uL'"]),
        ({"daily_hard": "0.75 mL/day"}, "morphine daily_hard", ["must be a mass per time (mg/day)", "'0.75 mL/day'"]),
        ({"rate_soft": "50 uL/h"}, "morphine rate_soft", ["must be a mass per time", "'50 uL/h'"]),
        # A dose where a rate is needed, and the other way round.
        ({"daily_hard": "15 mg"}, "morphine daily_hard", ["'15 mg'", "not a rate"]),
        ({"bolus_hard": "1 mg/day"}, "morphine bolus_hard", ["'1 mg/day'", "not a rate"]),
        # A concentration as a percentage, or none.
        ({"max_concentration": "2 %"}, "morphine max_concentration", ["'2 %'", "mg/mL, not a percentage"]),
        ({"max_concentration": "0 mg/mL"}, "morphine max_concentration", ["'0 mg/mL'", "above zero"]),
        # Micrograms written the way that is misread as milligrams.
        ({"daily_hard": "15 ug/day"}, "morphine daily_hard", ["'15 ug/day'", "write mcg"]),
        ({"bolus_hard": "1 µg"}, "morphine bolus_hard", ["'1 µg'", "write mcg"]),
        # A duration must have its unit, be whole seconds (the pump holds seconds) and at most 400 days.
        ({"patient_lockout_min": "4"}, "morphine patient_lockout_min", ["'4'", "has no unit"]),
        ({"patient_lockout_min": "1.5 s"}, "morphine patient_lockout_min", ["'1.5 s'", "whole seconds"]),
        ({"patient_lockout_min": "90.001 min"}, "morphine patient_lockout_min", ["'90.001 min'", "whole seconds"]),
        ({"patient_lockout_min": "401 day"}, "morphine patient_lockout_min", ["'401 day'", "400 day"]),
        # A count is plain digits that fit its byte.
        ({"patient_max_per_day": "four"}, "morphine patient_max_per_day", ["'four'", "whole number"]),
        ({"patient_max_per_day": "256"}, "morphine patient_max_per_day", ["'256'", "0 to 255"]),
        # Above what a u32 of the link holds.
        ({"daily_hard": "4294967.296 mcg/day"}, "morphine daily_hard", ["'4294967.296 mcg/day'", "above what"]),
        ({"bolus_hard": "5000 mg"}, "morphine bolus_hard", ["'5000 mg'", "above what the pump holds"]),
        ({"max_concentration": "5000 mg/mL"}, "morphine max_concentration", ["'5000 mg/mL'", "above what"]),
        ({"rate_hard": "179 mg/h"}, "morphine rate_hard", ["'179 mg/h'", "above what the pump holds"]),
    ],
)
def test_a_text_that_is_no_quantity_of_its_kind_is_refused_naming_drug_and_field(changes, field, parts):
    error = text_error(entry(**changes))
    assert error.field == field
    assert error.message.startswith(field)  # a pharmacist reads which drug and which limit
    for part in parts:
        assert part in error.message, (part, error.message)


def test_the_largest_number_the_link_carries_is_read():
    fields = entry(daily_hard="4294967.295 mcg/day", bolus_hard="4294.967295 mg", rate_hard="178.956970 mg/h")
    numbers = parse_entry(fields)[1]
    assert (numbers[2], numbers[6], numbers[4]) == (U32, U32, 178_956_970 * 24)


def test_limits_the_pump_refuses_are_left_to_the_pump():
    # Whether the limits agree with each other is the pump's to decide (library_check.py check_drug),
    # and so are a name's characters and a count's range: the file reads them as they are.
    name, numbers = parse_entry(entry(name="Morphine", daily_soft="20 mg/day", patient_max_per_day="25"))
    assert name == "Morphine" and numbers[1] == 20_000_000 and numbers[9] == 25


@pytest.mark.parametrize("count", [10, 13])
def test_an_entry_with_the_wrong_number_of_fields_is_refused(count):
    error = text_error((list(MORPHINE) * 2)[:count])
    assert error.field == "library"
    assert "11 fields (and a source)" in error.message and str(count) in error.message


# --- writing the pump's numbers back ----------------------------------------------------------------------------------


def test_the_default_morphine_numbers_are_written_as_a_pharmacist_reads_them():
    assert entry_texts(*parse_entry(MORPHINE)) == [
        "morphine",
        "20 mg/mL",
        "10 mg/day",
        "15 mg/day",
        "916 mcg/h",
        "1.625 mg/h",
        "500 mcg",
        "1 mg",
        "200 mcg",
        "1 h",
        "4",
    ]


def test_a_rate_not_exact_per_hour_is_written_per_day():
    texts = entry_texts("morphine", (20_000_000, 1, 2, 25, 1_000_001, 0, 0, 0, 0, 0))
    assert texts[4:6] == ["0.025 mcg/day", "1.000001 mg/day"]
    assert parse_entry(texts)[1][3:5] == (25, 1_000_001)


@pytest.mark.parametrize("i", range(len(DEFAULT_LIBRARY)), ids=DEFAULT_NAMES)
def test_each_default_entry_written_back_reads_as_the_same_numbers(i):
    assert parse_entry(entry_texts(DEFAULT_NAMES[i], DEFAULT_NUMBERS[i])) == (DEFAULT_NAMES[i], DEFAULT_NUMBERS[i])


u32 = st.integers(0, U32)
NUMBERS = st.tuples(
    st.integers(1, U32),  # max_concentration: above zero
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    st.integers(0, 400 * 86_400),  # the lockout in s, at most 400 days
    st.integers(0, 255),  # the count's byte
)


@given(NUMBERS)
def test_any_numbers_the_pump_holds_are_written_as_texts_that_read_as_the_same_numbers(numbers):
    texts = entry_texts("drug-1", numbers)
    assert len(texts) == len(LIBRARY_FIELDS)
    assert parse_entry(texts) == ("drug-1", numbers)
