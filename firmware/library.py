# The drug library: per drug, the hard and soft limits a program is checked
# against (FDA Generic Infusion Pump requirements 6.1.2-6.1.6). A value past
# a hard limit is refused; past a soft limit it needs an explicit
# confirmation at commit. The library carries a version, logged with every
# program committed under it.
#
# An entry is kept as the text a pharmacist typed (one string per field, with
# units, FIELD_NAMES order) and parsed (library_text.py) with the same exact
# unit parsers as a program, so the default library (druglib.py) and a site's
# own library sent over the link are read the same way. The parsers are
# imported for the reading of one library and forgotten after it (lazy.py):
# the running pump keeps the parsed limits only.
#
# Command path only: may allocate and use long ints.

from firmware.codec import LIB_CHANGED, LIB_RAISED, LIBRARY_FIELDS, library_hash
from firmware.errors import Refusal
from firmware.lazy import call, values

FIELD_NAMES = LIBRARY_FIELDS

MAX_DRUGS = 16  # entries in one library
MAX_PATIENT_BOLUSES_PER_DAY = 24

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


# A drug's parsed numbers, in parse_entry's order: what a save keeps beside the text (persist.py).
NUMBERS = (
    "max_conc_ng_per_ml",
    "daily_soft_ng",
    "daily_hard_ng",
    "rate_soft_ng_per_day",
    "rate_hard_ng_per_day",
    "bolus_soft_ng",
    "bolus_hard_ng",
    "patient_dose_hard_ng",
    "patient_lockout_min_us",
    "patient_max_per_day",
)


class DrugLimits:
    """One drug's limits. Masses in ng, rates in ng/day, times in us.

    numbers: the values parse_entry gave these same fields (NUMBERS order), as a save by this
    same firmware kept them: taken as they are, without loading the parsers (a restart)."""

    def __init__(self, fields, numbers=None):
        if numbers is None:
            parsed = call("firmware.library_text", "parse_entry", fields)  # or Refusal
        elif len(fields) == len(FIELD_NAMES) and len(numbers) == len(NUMBERS):
            parsed = (tuple(fields), fields[0]) + tuple(numbers) + (fields[-1],)
        else:
            raise ValueError("a saved library entry has %d fields and %d numbers" % (len(fields), len(numbers)))
        (
            self.text,
            self.name,
            self.max_conc_ng_per_ml,
            self.daily_soft_ng,
            self.daily_hard_ng,
            self.rate_soft_ng_per_day,
            self.rate_hard_ng_per_day,
            self.bolus_soft_ng,
            self.bolus_hard_ng,
            self.patient_dose_hard_ng,
            self.patient_lockout_min_us,
            self.patient_max_per_day,
            self.source,
        ) = parsed
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
    def __init__(self, version, entries, lib_hash=None):
        """lib_hash: the hash of these same entries, as computed before (a restart, the factory's)."""
        if not version or len(version.encode()) > 40:
            raise Refusal("version", "library version %r must be 1-40 bytes of UTF-8" % version)
        if not entries:
            raise Refusal("library", "a library needs at least one drug")
        if len(entries) > MAX_DRUGS:
            raise Refusal("library", "a library holds at most %d drugs, not %d" % (MAX_DRUGS, len(entries)))
        self.version = version
        self.drugs = {}
        self.order = []
        if all(isinstance(d, DrugLimits) for d in entries):  # already read: no parser needed
            for d in entries:
                self.add(d)
        else:
            call("firmware.library_text", "add_entries", self, entries)
        if lib_hash is None:
            lib_hash = library_hash([self.drugs[n].text for n in self.order])
        self.hash = lib_hash  # the content, not the version
        self.saved = None  # a site library's LIBRARY section (persist.py), made at its first save
        self.saved_numbers = None  # and its LIBRARY_NUMBERS section

    def add(self, d):
        """Put DrugLimits d last."""
        if d.name in self.drugs:
            raise Refusal("name", "drug %s is in the library twice" % d.name)
        self.drugs[d.name] = d
        self.order.append(d.name)

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
    """The factory library (druglib.py, forgotten after): its text with the numbers and hash the
    parsers read from it (checked by the suite), so a boot loads no parser."""
    version, entries, numbers, lib_hash = values(
        "firmware.druglib", "DEFAULT_LIBRARY_VERSION", "DEFAULT_LIBRARY", "DEFAULT_NUMBERS", "DEFAULT_LIBRARY_HASH"
    )
    if len(numbers) != len(entries):
        raise ValueError("the factory library has %d entries and %d lines of numbers" % (len(entries), len(numbers)))
    return Library(version, [DrugLimits(entries[i], numbers[i]) for i in range(len(entries))], lib_hash)
