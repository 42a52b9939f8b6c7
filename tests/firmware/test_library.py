"""The drug library as the pump holds it, numbers: the factory limits are exactly what their text reads as, and
ordered; a site's own library refuses programs by its limits; and a drug whose limits contradict each other is
refused (LIB_DRUG, library_check.py check_drug), naming the drug, the field and both values, which pumpctl
shows in a clinician's units."""

from fractions import Fraction

import pytest
from programs import parse_program
from pumpctl import words
from pumpctl.library_file import parse_entry
from test_boot_memory import Board, storage_of
from test_persist_library import parsers_refused

from firmware import codec, framing
from firmware.druglib import DEFAULT_LIBRARY, DEFAULT_LIBRARY_HASH, DEFAULT_LIBRARY_VERSION, DEFAULT_NAMES, FIELDS
from firmware.druglib import DEFAULT_NUMBERS as NUMBERS
from firmware.errors import Refusal
from firmware.library import MAX_DRUGS, DrugLimits, Library, default_library
from firmware.library_check import check_drug

NG_PER_MG = 1_000_000
NG_PER_MCG = 1_000
US_PER_H = 3_600_000_000
DAY_S = 86_400

NAMES = ("morphine", "hydromorphone", "fentanyl", "sufentanil", "bupivacaine", "clonidine", "ziconotide", "baclofen")
LIMITS = codec.LIBRARY_FIELDS[1:]  # the ten numbers' names, in order


def morphine(**changes):
    """The default morphine numbers with some limits changed (by field name, in wire units)."""
    numbers = dict(zip(LIMITS, NUMBERS[0], strict=True))
    numbers.update(changes)
    return [numbers[name] for name in LIMITS]


def drug(name="morphine", **changes):
    return DrugLimits(name, morphine(**changes))


def refusal_of(d):
    with pytest.raises(Refusal) as info:
        check_drug(d)
    return info.value


# --- the default library ----------------------------------------------------------------------------------------------


def test_the_default_library_loads_with_its_version_and_every_drug_in_order():
    library = default_library()
    assert library.version == DEFAULT_LIBRARY_VERSION == "default-2026.11"
    assert tuple(library.order) == NAMES == DEFAULT_NAMES
    assert FIELDS == (*codec.LIBRARY_FIELDS, "source")
    for name in NAMES:
        assert library.get("drug", name).name == name


@pytest.mark.parametrize("i", range(len(NAMES)), ids=NAMES)
def test_every_default_entry_reads_with_pumpctls_reader_as_exactly_the_numbers_the_pump_holds(i):
    # druglib keeps each entry twice: the text a pharmacist reviews and the numbers the pump takes.
    assert parse_entry(DEFAULT_LIBRARY[i]) == (NAMES[i], NUMBERS[i])


def test_the_factory_hash_is_the_hash_of_the_numbers_the_text_reads_as():
    assert framing.library_hash([parse_entry(e) for e in DEFAULT_LIBRARY]) == DEFAULT_LIBRARY_HASH


def test_the_factory_library_the_pump_builds_is_exactly_that_and_loads_no_parser(monkeypatch):
    """A boot builds the factory library from druglib's numbers and hash with no text parser on the heap."""
    with monkeypatch.context() as m:
        parsers_refused(m)
        built = default_library()
    assert (built.version, tuple(built.order), built.hash) == (DEFAULT_LIBRARY_VERSION, NAMES, DEFAULT_LIBRARY_HASH)
    for entry in DEFAULT_LIBRARY:
        name, numbers = parse_entry(entry)
        assert built.drugs[name].numbers == numbers, name
    # the hash it was given is the one it would compute
    assert Library(DEFAULT_LIBRARY_VERSION, [built.drugs[n] for n in NAMES]).hash == built.hash


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
    assert d.numbers[8] == 3_600  # 1 h, in s on the wire
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
def test_every_default_entry_has_ordered_limits_the_pump_accepts(name):
    d = default_library().get("drug", name)
    check_drug(d)  # what LIB_DRUG would check: no contradiction
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


@pytest.mark.parametrize("i", range(len(NAMES)), ids=NAMES)
def test_every_default_rate_limit_follows_the_documented_rule(i):
    # rate_hard = daily_hard / 24 + bolus_hard rounded UP to 3 decimals of the unit it is written in;
    # rate_soft = daily_soft / 24 + bolus_soft rounded DOWN (druglib.py).
    d = default_library().get("drug", NAMES[i])
    text = dict(zip(FIELDS, DEFAULT_LIBRARY[i], strict=True))
    for field, daily, bolus, up, per_day in (
        ("rate_hard", d.daily_hard_ng, d.bolus_hard_ng, True, d.rate_hard_ng_per_day),
        ("rate_soft", d.daily_soft_ng, d.bolus_soft_ng, False, d.rate_soft_ng_per_day),
    ):
        step = Fraction(NG_PER_MG if text[field].endswith("mg/h") else NG_PER_MCG, 1000)
        assert Fraction(per_day, 24) == _rounded(Fraction(daily, 24) + bolus, step, up), (NAMES[i], field)


def test_only_the_hydrophilic_opioids_allow_a_patient_bolus_at_most_four_a_day_an_hour_apart():
    library = default_library()
    allowed = [name for name in NAMES if library.get("drug", name).patient_allowed]
    assert allowed == ["morphine", "hydromorphone"]
    for name in allowed:
        d = library.get("drug", name)
        assert d.patient_max_per_day <= 4
        assert d.patient_lockout_min_us >= US_PER_H
    for name in NAMES:
        if name not in allowed:  # nothing a patient could ask for
            d = library.get("drug", name)
            assert d.patient_dose_hard_ng == 0 and d.patient_max_per_day == 0


# --- a site library: its limits hold ----------------------------------------------------------------------------------


def test_a_site_library_refuses_programs_by_its_own_limits():
    text = list(DEFAULT_LIBRARY[0])
    text[2:4] = ["4 mg/day", "5 mg/day"]  # daily_soft, daily_hard
    site = Library("site-7", [DrugLimits(*parse_entry(text))])
    assert site.get("drug", "morphine").daily_hard_ng == 5 * NG_PER_MG
    lines = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 6 mg/day"]
    parse_program(lines, default_library())  # within the default's 15 mg/day
    with pytest.raises(Refusal) as info:
        parse_program(lines, site)
    assert info.value.field == "daily dose"
    for part in ("morphine", "6 mg/day", "5 mg/day", "site-7"):
        assert part in info.value.message


def test_a_library_of_exactly_the_maximum_number_of_drugs_is_accepted():
    drugs = [drug(f"drug-{i}") for i in range(MAX_DRUGS)]
    assert len(Library("site", drugs).order) == MAX_DRUGS


def test_a_drug_twice_in_a_library_is_refused_naming_it():
    with pytest.raises(Refusal) as info:
        Library("site", [drug(), DrugLimits(NAMES[1], NUMBERS[1]), drug(daily_hard=20 * NG_PER_MG)])
    assert info.value.field == "name"
    assert "morphine" in info.value.message and "twice" in info.value.message


def test_a_library_of_too_many_drugs_is_refused_naming_the_count_and_the_maximum():
    with pytest.raises(Refusal) as info:
        Library("site", [drug(f"drug-{i}") for i in range(MAX_DRUGS + 1)])
    assert info.value.field == "library"
    assert str(MAX_DRUGS) in info.value.message and str(MAX_DRUGS + 1) in info.value.message


@pytest.mark.parametrize("version", ["", "v" * 41])
def test_a_library_without_a_loggable_version_is_refused(version):
    with pytest.raises(Refusal) as info:
        Library(version, [drug()])
    assert info.value.field == "version"


def test_a_library_version_is_limited_in_bytes_as_the_link_carries_it():
    drugs = list(default_library().drugs.values())
    assert Library("µ" * 20, drugs).version == "µ" * 20  # 40 bytes
    with pytest.raises(Refusal, match="1-40 bytes of UTF-8"):
        Library("µ" * 21, drugs)  # 21 characters, 42 bytes


def test_an_empty_library_is_refused():
    with pytest.raises(Refusal) as info:
        Library("site", [])
    assert info.value.field == "library"


# --- a drug whose limits contradict each other: refused by the pump ---------------------------------------------------


@pytest.mark.parametrize(
    "changes, low, high, shown",
    [
        ({"daily_soft": 20 * NG_PER_MG}, "daily_soft", "daily_hard", "20 mg/day is above daily_hard 15 mg/day"),
        ({"rate_soft": 1_700_000 * 24}, "rate_soft", "rate_hard", "1.7 mg/h is above rate_hard 1.625 mg/h"),
        ({"bolus_soft": 1_500_000}, "bolus_soft", "bolus_hard", "1.5 mg is above bolus_hard 1 mg"),
        (
            {"bolus_hard": 16 * NG_PER_MG, "rate_hard": 20 * NG_PER_MG * 24},
            "bolus_hard",
            "daily_hard",
            "16 mg is above daily_hard 15 mg/day",
        ),
        (
            {"patient_dose_hard": 16 * NG_PER_MG},
            "patient_dose_hard",
            "daily_hard",
            "16 mg is above daily_hard 15 mg/day",
        ),
    ],
)
def test_a_limit_above_the_one_it_must_stay_under_is_refused_naming_drug_both_fields_and_both_values(
    changes, low, high, shown
):
    refusal = refusal_of(drug(**changes))
    assert refusal.field == "morphine " + low
    assert words.render(refusal.message) == f"morphine: {low} {shown}"
    assert high in refusal.message


@pytest.mark.parametrize(
    "changes, field, shown",
    [
        # rate_hard below daily_hard spread over 24 h (12 mg/day < 15 mg/day).
        (
            {"rate_soft": 400_000 * 24, "rate_hard": 500_000 * 24},
            "morphine rate_hard",
            "morphine: rate_hard 500 mcg/h is below daily_hard 15 mg/day spread over 24 h",
        ),
        (
            {"daily_soft": 0, "daily_hard": 0, "bolus_soft": 0, "bolus_hard": 0, "patient_dose_hard": 0},
            "morphine daily_hard",
            "morphine: daily_hard and rate_hard must be above zero",
        ),
        (
            {"rate_soft": 0, "rate_hard": 0},
            "morphine daily_hard",
            "morphine: daily_hard and rate_hard must be above zero",
        ),
        ({"max_concentration": 0}, "morphine max_concentration", "morphine: max_concentration must be above zero"),
        (
            {"patient_lockout_min": 401 * DAY_S},
            "morphine patient_lockout_min",
            "morphine: patient_lockout_min 401 day is above 400 day",
        ),
        ({"patient_max_per_day": 25}, "morphine patient_max_per_day", "morphine: patient_max_per_day 25 is above 24"),
    ],
)
def test_a_limit_the_pump_cannot_hold_is_refused_naming_drug_field_and_value(changes, field, shown):
    refusal = refusal_of(drug(**changes))
    assert refusal.field == field
    assert words.render(refusal.message) == shown


def test_limits_at_their_bounds_are_accepted():
    check_drug(
        drug(
            daily_soft=15 * NG_PER_MG,  # soft == hard
            rate_soft=15 * NG_PER_MG,
            rate_hard=15 * NG_PER_MG,  # exactly daily_hard over 24 h
            bolus_soft=15 * NG_PER_MG,
            bolus_hard=15 * NG_PER_MG,  # == daily_hard
            patient_dose_hard=15 * NG_PER_MG,
            patient_lockout_min=400 * DAY_S,
            patient_max_per_day=24,
        )
    )


@pytest.mark.parametrize("name", ["Morphine", "morph ine", "morphine!", "morfína", "", "m" * 25, "morphine/2"])
def test_a_drug_name_with_other_characters_is_refused_naming_it(name):
    refusal = refusal_of(drug(name))
    assert refusal.field == "name"
    assert repr(name) in refusal.message
    assert "lowercase letters, digits or '-'" in refusal.message


def test_a_name_of_24_lowercase_letters_digits_and_dashes_is_accepted():
    check_drug(drug("morphine-sulfate-25-mgml"))


def test_lib_drug_refuses_a_contradiction_and_stages_nothing_of_it():
    app = Board(storage_of({})).app
    lib_drug = app.commands.get(codec.LIB_DRUG)
    assert lib_drug((0, "morphine", *NUMBERS[0])) == (1,)
    with pytest.raises(Refusal) as info:
        lib_drug((1, "hydromorphone", *morphine(daily_soft=20 * NG_PER_MG)))
    assert info.value.field == "hydromorphone daily_soft"
    assert words.render(info.value.message) == "hydromorphone: daily_soft 20 mg/day is above daily_hard 15 mg/day"
    with pytest.raises(Refusal, match="drug 1 is not staged"):
        app.commands.get(codec.LIB_STAGE)(("site-1", 2))
    with pytest.raises(Refusal) as info:
        lib_drug((MAX_DRUGS, "morphine", *NUMBERS[0]))
    assert info.value.field == "drug"


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


def test_a_log_entry_is_cut_to_the_bytes_the_link_carries():
    from firmware.eventlog import MAX_TEXT, EventLog

    log = EventLog()
    log.add(0, 0, 1, "µ" * 80)
    text = log.get(0)[3]
    assert len(text.encode()) <= MAX_TEXT and text.endswith("...") and text.startswith("µ" * 48)


def test_an_unknown_drug_names_the_library_within_the_wires_200_bytes():
    """The refusal lists the library's names up to 100 bytes, then how many more: a site library of many
    drugs never makes a reason longer than ERROR carries whole (message and more, 200 bytes)."""
    from firmware.errors import Refusal
    from firmware.library import DrugLimits, Library

    numbers = (20_000_000, 4_000_000, 5_000_000, 21_984_000, 39_000_000, 500_000, 1_000_000, 0, 0, 0)
    many = Library("site-16", [DrugLimits("a-long-drug-name-%02d" % i, numbers) for i in range(16)])  # the most
    with pytest.raises(Refusal) as e:
        many.get("drug", "nosuch")
    text = e.value.message
    assert text.startswith("drug 'nosuch' is not in library site-16 (it has: a-long-drug-name-00, a-long-drug-name-01")
    assert text.endswith(", a-long-drug-name-03, and 12 more)") and len(text.encode()) <= 200
    few = Library("site-2", [DrugLimits("morphine", numbers), DrugLimits("baclofen", numbers)])
    with pytest.raises(Refusal, match=r"\(it has: morphine, baclofen\)$"):
        few.get("drug", "nosuch")
