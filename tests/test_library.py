"""The drug library: the default limits load and are ordered, and a site's own library is refused, with a reason a
pharmacist can act on, when an entry is malformed."""

from fractions import Fraction

import pytest

from firmware.druglib import DEFAULT_LIBRARY, DEFAULT_LIBRARY_VERSION, FIELDS
from firmware.errors import Refusal
from firmware.library import FIELD_NAMES, MAX_DRUGS, DrugLimits, Library, default_library
from firmware.program import parse_program

NG_PER_MG = 1_000_000
NG_PER_MCG = 1_000
US_PER_H = 3_600_000_000

MORPHINE = DEFAULT_LIBRARY[0]
NAMES = ("morphine", "hydromorphone", "fentanyl", "sufentanil", "bupivacaine", "clonidine", "ziconotide", "baclofen")


def entry(**changes):
    """The default morphine entry with some fields changed, as a site would type it."""
    fields = dict(zip(FIELD_NAMES, MORPHINE, strict=True))
    fields.update(changes)
    return tuple(fields[name] for name in FIELD_NAMES)


def refusal_of(fields):
    with pytest.raises(Refusal) as info:
        DrugLimits(fields)
    return info.value


# --- the default library ---------------------------------------------------------------------------------------------


def test_the_default_library_loads_with_its_version_and_every_drug_in_order():
    library = default_library()
    assert library.version == DEFAULT_LIBRARY_VERSION == "default-2026.11"
    assert tuple(library.order) == NAMES
    assert FIELDS == FIELD_NAMES
    for name in NAMES:
        assert library.get("drug", name).name == name


def test_the_default_morphine_limits_are_read_exactly_from_their_text():
    d = default_library().get("drug", "morphine")
    assert d.max_conc_ng_per_ml == 20 * NG_PER_MG
    assert d.daily_soft_ng == 10 * NG_PER_MG
    assert d.daily_hard_ng == 15 * NG_PER_MG
    assert d.rate_soft_ng_per_day == 916_000 * 24  # 0.916 mg/h
    assert d.rate_hard_ng_per_day == 1_625_000 * 24  # 1.625 mg/h
    assert d.bolus_soft_ng == 500_000
    assert d.bolus_hard_ng == 1 * NG_PER_MG
    assert d.patient_dose_hard_ng == 200_000
    assert d.patient_lockout_min_us == US_PER_H
    assert d.patient_max_per_day == 4
    assert d.patient_allowed


def test_the_default_ziconotide_limits_are_the_prialt_label_in_micrograms_not_milligrams():
    d = default_library().get("drug", "ziconotide")
    assert d.max_conc_ng_per_ml == 100 * NG_PER_MCG
    assert d.daily_hard_ng == 19_200  # 19.2 mcg/day
    assert d.rate_hard_ng_per_day == 800 * 24  # 0.8 mcg/h
    assert d.bolus_hard_ng == 0
    assert not d.patient_allowed


@pytest.mark.parametrize("name", NAMES)
def test_every_default_entry_has_ordered_limits(name):
    d = default_library().get("drug", name)
    assert 0 < d.max_conc_ng_per_ml
    assert 0 < d.daily_soft_ng <= d.daily_hard_ng
    assert 0 < d.rate_soft_ng_per_day <= d.rate_hard_ng_per_day
    assert 0 <= d.bolus_soft_ng <= d.bolus_hard_ng <= d.daily_hard_ng
    assert 0 <= d.patient_dose_hard_ng <= d.bolus_soft_ng
    # A continuous program at a limit fits under the matching rate limit.
    assert d.rate_hard_ng_per_day >= d.daily_hard_ng
    assert d.rate_soft_ng_per_day >= d.daily_soft_ng
    # The guard's hour cap is rate_hard for one hour, never rounded below it.
    guard = d.guard_limits(d.max_conc_ng_per_ml)
    assert guard[0] == name and guard[1] == d.max_conc_ng_per_ml
    assert guard[2] == d.daily_hard_ng and guard[4] == d.bolus_hard_ng
    assert guard[3] * 24 >= d.rate_hard_ng_per_day > (guard[3] - 1) * 24


def _rounded(value, step, up):
    """value rounded to a multiple of step, up or down."""
    q = value / step
    whole = -(-q.numerator // q.denominator) if up else q.numerator // q.denominator
    return whole * step


@pytest.mark.parametrize("name", NAMES)
def test_every_default_rate_limit_follows_the_documented_rule(name):
    # rate_hard = daily_hard / 24 + bolus_hard rounded UP to 3 decimals of the unit it is written in;
    # rate_soft = daily_soft / 24 + bolus_soft rounded DOWN (druglib.py).
    d = default_library().get("drug", name)
    text = dict(zip(FIELD_NAMES, d.text, strict=True))
    for field, daily, bolus, up, per_day in (
        ("rate_hard", d.daily_hard_ng, d.bolus_hard_ng, True, d.rate_hard_ng_per_day),
        ("rate_soft", d.daily_soft_ng, d.bolus_soft_ng, False, d.rate_soft_ng_per_day),
    ):
        step = Fraction(NG_PER_MG if text[field].endswith("mg/h") else NG_PER_MCG, 1000)
        assert Fraction(per_day, 24) == _rounded(Fraction(daily, 24) + bolus, step, up), (name, field)


def test_only_the_hydrophilic_opioids_allow_a_patient_bolus_at_most_four_a_day_an_hour_apart():
    library = default_library()
    allowed = [name for name in NAMES if library.get("drug", name).patient_allowed]
    assert allowed == ["morphine", "hydromorphone"]
    for name in allowed:
        d = library.get("drug", name)
        assert d.patient_max_per_day <= 4
        assert d.patient_lockout_min_us >= US_PER_H


# --- a site library: what is accepted ---------------------------------------------------------------------------------


def test_a_site_library_is_read_like_the_default_and_its_limits_refuse_programs():
    site = Library("site-7", [entry(daily_soft="4 mg/day", daily_hard="5 mg/day")])
    assert site.get("drug", "morphine").daily_hard_ng == 5 * NG_PER_MG
    lines = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 6 mg/day"]
    parse_program(lines, default_library())  # within the default's 15 mg/day
    with pytest.raises(Refusal) as info:
        parse_program(lines, site)
    assert info.value.field == "daily dose"
    for part in ("morphine", "6 mg/day", "5 mg/day", "site-7"):
        assert part in info.value.message


def test_a_library_of_exactly_the_maximum_number_of_drugs_is_accepted():
    entries = [entry(name=f"drug-{i}") for i in range(MAX_DRUGS)]
    assert len(Library("site", entries).order) == MAX_DRUGS


# --- a site library: what is refused ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field, parts",
    [
        # A volume where a mass is needed, and the other wrong kinds.
        ({"bolus_hard": "1 mL"}, "morphine bolus_hard", ["morphine", "bolus_hard", "1 mL", "mg"]),
        ({"patient_dose_hard": "10 uL"}, "morphine patient_dose_hard", ["morphine", "patient_dose_hard", "10 uL"]),
        ({"daily_hard": "0.75 mL/day"}, "morphine daily_hard", ["morphine", "daily_hard", "0.75 mL/day", "mg/day"]),
        ({"rate_soft": "50 uL/h"}, "morphine rate_soft", ["morphine", "rate_soft", "50 uL/h"]),
        ({"daily_hard": "15 mg"}, "morphine daily_hard", ["morphine daily_hard", "15 mg", "not a rate"]),
        ({"bolus_hard": "1 mg/day"}, "morphine bolus_hard", ["morphine bolus_hard", "1 mg/day", "not a rate"]),
        ({"max_concentration": "20 mg"}, "morphine max_concentration", ["morphine max_concentration", "20 mg"]),
        ({"max_concentration": "2 %"}, "morphine max_concentration", ["morphine max_concentration", "2 %", "mg/mL"]),
        ({"max_concentration": "0 mg/mL"}, "morphine max_concentration", ["morphine max_concentration", "0 mg/mL"]),
        # Micrograms written the way that is misread as milligrams.
        ({"daily_hard": "15 ug/day"}, "morphine daily_hard", ["morphine daily_hard", "15 ug/day", "mcg"]),
        ({"bolus_hard": "1 µg"}, "morphine bolus_hard", ["morphine bolus_hard", "1 µg", "mcg"]),
        # A duration must have its unit; a count its range.
        ({"patient_lockout_min": "4"}, "morphine patient_lockout_min", ["morphine patient_lockout_min", "'4'", "unit"]),
        ({"patient_max_per_day": "25"}, "morphine patient_max_per_day", ["morphine patient_max_per_day", "25", "24"]),
        ({"patient_max_per_day": "four"}, "morphine patient_max_per_day", ["morphine patient_max_per_day", "four"]),
        # rate_hard below daily_hard spread over 24 h (12 mg/day < 15 mg/day).
        (
            {"rate_soft": "0.4 mg/h", "rate_hard": "0.5 mg/h"},
            "morphine rate_hard",
            ["morphine", "rate_hard", "0.5 mg/h", "daily_hard", "15 mg/day"],
        ),
        (
            {
                "daily_hard": "0 mg/day",
                "daily_soft": "0 mg/day",
                "bolus_hard": "0 mg",
                "bolus_soft": "0 mg",
                "patient_dose_hard": "0 mg",
            },
            "morphine daily_hard",
            ["morphine", "daily_hard", "above zero"],
        ),
    ],
)
def test_a_malformed_entry_is_refused_naming_drug_field_and_value(changes, field, parts):
    refusal = refusal_of(entry(**changes))
    assert refusal.field == field
    for part in parts:
        assert part in refusal.message, (part, refusal.message)


@pytest.mark.parametrize(
    "changes, low, high",
    [
        ({"daily_soft": "20 mg/day"}, "daily_soft", "daily_hard"),
        ({"rate_soft": "1.7 mg/h"}, "rate_soft", "rate_hard"),
        ({"bolus_soft": "1.5 mg"}, "bolus_soft", "bolus_hard"),
        ({"bolus_hard": "16 mg", "rate_hard": "20 mg/h"}, "bolus_hard", "daily_hard"),
        ({"patient_dose_hard": "16 mg"}, "patient_dose_hard", "daily_hard"),
    ],
)
def test_a_soft_limit_above_its_hard_limit_is_refused_naming_drug_both_fields_and_both_values(changes, low, high):
    fields = entry(**changes)
    refusal = refusal_of(fields)
    assert refusal.field == "morphine " + low
    values = dict(zip(FIELD_NAMES, fields, strict=True))
    assert refusal.message == f"morphine: {low} {values[low]} is above {high} {values[high]}"


@pytest.mark.parametrize("name", ["Morphine", "morph ine", "morphine!", "morfína", "", "m" * 25, "morphine/2"])
def test_a_drug_name_with_other_characters_is_refused_naming_it(name):
    refusal = refusal_of(entry(name=name))
    assert refusal.field == "name"
    assert repr(name) in refusal.message
    assert "lowercase letters, digits or '-'" in refusal.message


def test_a_name_of_24_lowercase_letters_digits_and_dashes_is_accepted():
    assert DrugLimits(entry(name="morphine-sulfate-25-mgml")).name == "morphine-sulfate-25-mgml"


@pytest.mark.parametrize("count", [11, 13])
def test_an_entry_with_the_wrong_number_of_fields_is_refused(count):
    fields = (MORPHINE * 2)[:count]
    refusal = refusal_of(fields)
    assert refusal.field == "library"
    assert "12" in refusal.message and str(count) in refusal.message


def test_a_drug_twice_in_a_library_is_refused_naming_it():
    with pytest.raises(Refusal) as info:
        Library("site", [MORPHINE, DEFAULT_LIBRARY[1], entry(daily_hard="20 mg/day")])
    assert info.value.field == "name"
    assert "morphine" in info.value.message and "twice" in info.value.message


def test_a_library_of_too_many_drugs_is_refused_naming_the_count_and_the_maximum():
    entries = [entry(name=f"drug-{i}") for i in range(MAX_DRUGS + 1)]
    with pytest.raises(Refusal) as info:
        Library("site", entries)
    assert info.value.field == "library"
    assert str(MAX_DRUGS) in info.value.message and str(MAX_DRUGS + 1) in info.value.message


@pytest.mark.parametrize("version", ["", "v" * 41])
def test_a_library_without_a_loggable_version_is_refused(version):
    with pytest.raises(Refusal) as info:
        Library(version, [MORPHINE])
    assert info.value.field == "version"


def test_an_empty_library_is_refused():
    with pytest.raises(Refusal) as info:
        Library("site", [])
    assert info.value.field == "library"


# --- looking a drug up ------------------------------------------------------------------------------------------------


def test_an_unknown_drug_is_refused_listing_the_drugs_the_library_has():
    with pytest.raises(Refusal) as info:
        default_library().get("drug oxycodone", "oxycodone")
    assert info.value.field == "drug oxycodone"
    assert "'oxycodone'" in info.value.message and DEFAULT_LIBRARY_VERSION in info.value.message
    assert "it has: " + ", ".join(NAMES) in info.value.message


def test_a_drug_line_for_a_drug_not_in_the_library_is_refused_listing_the_drugs_it_has():
    with pytest.raises(Refusal) as info:
        parse_program(["drug oxycodone 10 mg/mL", "fill 20 mL", "basal 1 mg/day"], default_library())
    assert info.value.field == "drug"
    assert "oxycodone" in info.value.message and "morphine" in info.value.message


def test_a_library_version_is_limited_in_bytes_as_the_link_carries_it():
    from firmware.errors import Refusal
    from firmware.library import Library, default_library

    entries = [list(e.text) for e in default_library().drugs.values()]
    assert Library("µ" * 20, entries).version == "µ" * 20  # 40 bytes
    with pytest.raises(Refusal, match="1-40 bytes of UTF-8"):
        Library("µ" * 21, entries)  # 21 characters, 42 bytes


def test_a_log_entry_is_cut_to_the_bytes_the_link_carries():
    from firmware.eventlog import MAX_TEXT, EventLog

    log = EventLog()
    log.add(0, 0, 1, "µ" * 80)
    text = log.get(0)[3]
    assert len(text.encode()) <= MAX_TEXT and text.endswith("...") and text.startswith("µ" * 48)


def test_the_factory_library_the_pump_builds_is_the_one_its_parsers_read_from_the_text(monkeypatch):
    """A boot builds the factory library from druglib's numbers and hash without loading the parsers (issue 19):
    each number and the hash must be exactly what the parsers read from the text a pharmacist reviews."""
    from firmware import druglib, library
    from firmware.library import NUMBERS
    from firmware.library_text import default_library as read_from_text

    read = read_from_text()
    with monkeypatch.context() as m:

        def no_parser(module, name, *args):
            raise AssertionError(f"the boot loaded {module}")

        m.setattr(library, "call", no_parser)
        built = default_library()
    assert (built.version, built.order, built.hash) == (read.version, read.order, read.hash)
    for name in read.order:
        b, r = built.drugs[name], read.drugs[name]
        assert [getattr(b, a) for a in NUMBERS] == [getattr(r, a) for a in NUMBERS], name
        assert (b.text, b.name, b.source, b.patient_allowed) == (r.text, r.name, r.source, r.patient_allowed)
    assert len(druglib.DEFAULT_NUMBERS) == len(druglib.DEFAULT_LIBRARY)


def test_staged_texts_lie_in_one_buffer_and_give_back_the_last_of_each_slot():
    # LIB_FIELD's staging (firmware/commands/__init__.py): a library's texts in one buffer, not a string each.
    from firmware.commands import StagedTexts

    staged = StagedTexts(slots=208, size=16)
    texts = {slot: "field %d, morphine µg? no: mcg" % slot * (1 + slot % 3) for slot in range(0, 208, 5)}
    for slot, text in texts.items():
        staged.put(slot, text)
    staged.put(5, "set again")  # the last text of a slot is the one staged
    texts[5] = "set again"
    assert staged.count == len(texts)  # slots, not puts
    assert all(staged.get(slot) == texts.get(slot) for slot in range(208))  # None where nothing was staged
    assert staged.get(1) is None
