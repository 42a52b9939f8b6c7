# The drug library's text, read: the parsing and checks of a library entry as
# a pharmacist typed it (library.py keeps the parsed limits). Imported by
# library.py for the reading of one library and forgotten after it (lazy.py),
# so that the running pump holds the limits but not their parsers.
#
# Command path only: may allocate and use long ints.

from firmware.errors import Refusal
from firmware.library import FIELD_NAMES, MAX_PATIENT_BOLUSES_PER_DAY, DrugLimits, Library
from firmware.units import (
    DOSE_MASS,
    parse_concentration,
    parse_count,
    parse_dose,
    parse_dose_rate,
    parse_duration,
)

_MAX_NAME = 24


def parse_entry(fields):
    """One entry's text fields (FIELD_NAMES order) as the values of a DrugLimits, in
    DrugLimits.__init__'s order, or Refusal."""
    if len(fields) != len(FIELD_NAMES):
        raise Refusal("library", "a library entry has %d fields, not %d" % (len(FIELD_NAMES), len(fields)))
    name = fields[0]
    if not name or len(name) > _MAX_NAME or not _is_name(name):
        raise Refusal("name", "drug name %r must be 1-%d lowercase letters, digits or '-'" % (name, _MAX_NAME))
    try:
        max_conc_ng_per_ml = parse_concentration("max_concentration", fields[1])
    except Refusal:  # again, to name the drug (built only to refuse)
        parse_concentration(name + " max_concentration", fields[1])
        raise  # (the retry raises first)
    daily_soft_ng = _mass_rate(name, "daily_soft", fields[2])
    daily_hard_ng = _mass_rate(name, "daily_hard", fields[3])
    rate_soft_ng_per_day = _mass_rate(name, "rate_soft", fields[4])
    rate_hard_ng_per_day = _mass_rate(name, "rate_hard", fields[5])
    bolus_soft_ng = _mass(name, "bolus_soft", fields[6])
    bolus_hard_ng = _mass(name, "bolus_hard", fields[7])
    patient_dose_hard_ng = _mass(name, "patient_dose_hard", fields[8])
    try:
        patient_lockout_min_us = parse_duration("patient_lockout_min", fields[9])
    except Refusal:
        parse_duration(name + " patient_lockout_min", fields[9])
        raise  # (the retry raises first)
    try:
        patient_max_per_day = parse_count("patient_max_per_day", fields[10], 0, MAX_PATIENT_BOLUSES_PER_DAY)
    except Refusal:
        parse_count(name + " patient_max_per_day", fields[10], 0, MAX_PATIENT_BOLUSES_PER_DAY)
        raise  # (the retry raises first)
    _ordered(fields, 2, daily_soft_ng, 3, daily_hard_ng)
    _ordered(fields, 4, rate_soft_ng_per_day, 5, rate_hard_ng_per_day)
    _ordered(fields, 6, bolus_soft_ng, 7, bolus_hard_ng)
    _ordered(fields, 7, bolus_hard_ng, 3, daily_hard_ng)
    _ordered(fields, 8, patient_dose_hard_ng, 3, daily_hard_ng)
    if daily_hard_ng == 0 or rate_hard_ng_per_day == 0:
        raise Refusal(name + " daily_hard", "%s: daily_hard and rate_hard must be above zero" % name)
    # A continuous program at the daily limit must fit under the rate limit.
    if rate_hard_ng_per_day < daily_hard_ng:
        raise Refusal(
            name + " rate_hard",
            "%s: rate_hard %s is below daily_hard %s spread over 24 h" % (name, fields[5], fields[3]),
        )
    return (
        tuple(fields),
        name,
        max_conc_ng_per_ml,
        daily_soft_ng,
        daily_hard_ng,
        rate_soft_ng_per_day,
        rate_hard_ng_per_day,
        bolus_soft_ng,
        bolus_hard_ng,
        patient_dose_hard_ng,
        patient_lockout_min_us,
        patient_max_per_day,
        fields[11],
    )


def add_entries(lib, entries):
    """Put entries (text fields, or DrugLimits) into Library lib, in order."""
    for fields in entries:
        lib.add(fields if isinstance(fields, DrugLimits) else DrugLimits(fields))


def default_library():
    """The factory library (druglib.py), read from its text (the pump builds it from the numbers
    druglib keeps: library.default_library; the suite requires the two to be the same)."""
    from firmware.druglib import DEFAULT_LIBRARY, DEFAULT_LIBRARY_VERSION

    return Library(DEFAULT_LIBRARY_VERSION, DEFAULT_LIBRARY)


def _is_name(name):
    for ch in name:
        if not ("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "-"):
            return False
    return True


# The parsers are given the bare field name, and on a refusal are run again with the
# drug's name in it: the refusal names both, and a library that parses builds neither.


def _mass(drug, field, text):
    try:
        kind, ng, _rounded = parse_dose(field, text)
    except Refusal:
        kind, ng, _rounded = parse_dose(drug + " " + field, text)
    if kind != DOSE_MASS:
        raise Refusal(drug + " " + field, "%s %s must be a mass (mg or mcg), not %r" % (drug, field, text))
    return ng


def _mass_rate(drug, field, text):
    try:
        kind, ng_per_day, _rounded = parse_dose_rate(field, text)
    except Refusal:
        kind, ng_per_day, _rounded = parse_dose_rate(drug + " " + field, text)
    if kind != DOSE_MASS:
        raise Refusal(drug + " " + field, "%s %s must be a mass per time (mg/day), not %r" % (drug, field, text))
    return ng_per_day


def _ordered(fields, low_index, low, high_index, high):
    """Refuse an entry whose field low_index (parsed: low) is above field high_index (high)."""
    if low > high:
        low_name = FIELD_NAMES[low_index]
        raise Refusal(
            fields[0] + " " + low_name,
            "%s: %s %s is above %s %s"
            % (fields[0], low_name, fields[low_index], FIELD_NAMES[high_index], fields[high_index]),
        )
