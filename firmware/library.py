# The drug library: per drug, the hard and soft limits a program is checked
# against (FDA Generic Infusion Pump requirements 6.1.2-6.1.6). A value past
# a hard limit is refused; past a soft limit it needs an explicit
# confirmation at commit. The library carries a version, logged with every
# program committed under it.
#
# An entry is kept as the text a pharmacist typed (one string per field, with
# units, FIELD_NAMES order) and parsed here with the same exact unit parsers
# as a program, so the default library (druglib.py) and a site's own library
# sent over the link are read the same way.
#
# Command path only: may allocate and use long ints.

from firmware.codec import LIB_CHANGED, LIB_RAISED, LIBRARY_FIELDS, library_hash
from firmware.errors import Refusal
from firmware.units import (
    DOSE_MASS,
    parse_concentration,
    parse_count,
    parse_dose,
    parse_dose_rate,
    parse_duration,
)

FIELD_NAMES = LIBRARY_FIELDS

MAX_DRUGS = 16  # entries in one library
MAX_PATIENT_BOLUSES_PER_DAY = 24
_MAX_NAME = 24

# The hard limits, by field number: the attribute that holds the parsed value,
# and 1 if a higher value loosens it (-1 if a lower one does: the lockout).
_HARD = (
    (1, "max_conc_ng_per_ml", 1),
    (3, "daily_hard_ng", 1),
    (5, "rate_hard_ng_per_day", 1),
    (7, "bolus_hard_ng", 1),
    (8, "patient_dose_hard_ng", 1),
    (9, "patient_lockout_min_us", -1),
    (10, "patient_max_per_day", 1),
)


class DrugLimits:
    """One drug's limits. Masses in ng, rates in ng/day, times in us."""

    def __init__(self, fields):
        if len(fields) != len(FIELD_NAMES):
            raise Refusal("library", "a library entry has %d fields, not %d" % (len(FIELD_NAMES), len(fields)))
        self.text = tuple(fields)
        name = fields[0]
        if not name or len(name) > _MAX_NAME or not _is_name(name):
            raise Refusal("name", "drug name %r must be 1-%d lowercase letters, digits or '-'" % (name, _MAX_NAME))
        self.name = name
        try:
            self.max_conc_ng_per_ml = parse_concentration("max_concentration", fields[1])
        except Refusal:  # again, to name the drug (built only to refuse)
            parse_concentration(name + " max_concentration", fields[1])
        self.daily_soft_ng = _mass_rate(name, "daily_soft", fields[2])
        self.daily_hard_ng = _mass_rate(name, "daily_hard", fields[3])
        self.rate_soft_ng_per_day = _mass_rate(name, "rate_soft", fields[4])
        self.rate_hard_ng_per_day = _mass_rate(name, "rate_hard", fields[5])
        self.bolus_soft_ng = _mass(name, "bolus_soft", fields[6])
        self.bolus_hard_ng = _mass(name, "bolus_hard", fields[7])
        self.patient_dose_hard_ng = _mass(name, "patient_dose_hard", fields[8])
        try:
            self.patient_lockout_min_us = parse_duration("patient_lockout_min", fields[9])
        except Refusal:
            parse_duration(name + " patient_lockout_min", fields[9])
        try:
            self.patient_max_per_day = parse_count("patient_max_per_day", fields[10], 0, MAX_PATIENT_BOLUSES_PER_DAY)
        except Refusal:
            parse_count(name + " patient_max_per_day", fields[10], 0, MAX_PATIENT_BOLUSES_PER_DAY)
        self.source = fields[11]
        _ordered(fields, 2, self.daily_soft_ng, 3, self.daily_hard_ng)
        _ordered(fields, 4, self.rate_soft_ng_per_day, 5, self.rate_hard_ng_per_day)
        _ordered(fields, 6, self.bolus_soft_ng, 7, self.bolus_hard_ng)
        _ordered(fields, 7, self.bolus_hard_ng, 3, self.daily_hard_ng)
        _ordered(fields, 8, self.patient_dose_hard_ng, 3, self.daily_hard_ng)
        if self.daily_hard_ng == 0 or self.rate_hard_ng_per_day == 0:
            raise Refusal(name + " daily_hard", "%s: daily_hard and rate_hard must be above zero" % name)
        # A continuous program at the daily limit must fit under the rate limit.
        if self.rate_hard_ng_per_day < self.daily_hard_ng:
            raise Refusal(
                name + " rate_hard",
                "%s: rate_hard %s is below daily_hard %s spread over 24 h" % (name, fields[5], fields[3]),
            )
        self.patient_allowed = self.patient_dose_hard_ng > 0 and self.patient_max_per_day > 0

    def guard_limits(self, conc_ng_per_ml):
        """The tuple the dose guard takes for this drug at this concentration."""
        # The guard's hour window holds rate_hard for one hour: rate per day / 24.
        return (
            self.name,
            conc_ng_per_ml,
            self.daily_hard_ng,
            -(-self.rate_hard_ng_per_day // 24),
            self.bolus_hard_ng,
        )


class Library:
    def __init__(self, version, entries):
        if not version or len(version.encode()) > 40:
            raise Refusal("version", "library version %r must be 1-40 bytes of UTF-8" % version)
        if not entries:
            raise Refusal("library", "a library needs at least one drug")
        if len(entries) > MAX_DRUGS:
            raise Refusal("library", "a library holds at most %d drugs, not %d" % (MAX_DRUGS, len(entries)))
        self.version = version
        self.drugs = {}
        self.order = []
        for fields in entries:
            d = fields if isinstance(fields, DrugLimits) else DrugLimits(fields)
            if d.name in self.drugs:
                raise Refusal("name", "drug %s is in the library twice" % d.name)
            self.drugs[d.name] = d
            self.order.append(d.name)
        self.hash = library_hash([self.drugs[n].text for n in self.order])  # the content, not the version
        self.saved = None  # a site library's LIBRARY section (persist.py), made at its first save

    def get(self, field, name):
        d = self.drugs.get(name)
        if d is None:
            raise Refusal(
                field, "drug %r is not in library %s (it has: %s)" % (name, self.version, ", ".join(self.order))
            )
        return d


def field_change(old, new_drug, field):
    """LIB_CHANGED and LIB_RAISED bits of field number `field` of new_drug against library old."""
    was = old.drugs.get(new_drug.name)
    if was is not None and was.text[field] == new_drug.text[field]:
        return 0
    for f, attr, sign in _HARD:
        if f == field:
            if f >= 8 and not new_drug.patient_allowed:  # no patient bolus: its limits allow nothing
                looser = False
            elif was is None:  # a new drug: a limit above zero allows what was refused
                looser = f >= 8 or getattr(new_drug, attr) > 0
            else:
                looser = (getattr(new_drug, attr) - getattr(was, attr)) * sign > 0
            return LIB_CHANGED | (LIB_RAISED if looser else 0)
    return LIB_CHANGED


def changes(old, new):
    """(fields changed, hard limits loosened) from library old to new; a drug in
    one of them only counts all its fields as changed."""
    changed = raised = 0
    for name in new.order:
        d = new.drugs[name]
        for f in range(len(FIELD_NAMES)):
            c = field_change(old, d, f)
            changed += c & LIB_CHANGED
            raised += 1 if c & LIB_RAISED else 0
    for name in old.order:
        if name not in new.drugs:
            changed += len(FIELD_NAMES)
    return changed, raised


def default_library():
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
