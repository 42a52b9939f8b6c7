# The drug library: per drug, the hard and soft limits a program is checked
# against (FDA Generic Infusion Pump requirements 6.1.2-6.1.6). A value past
# a hard limit is refused; past a soft limit it needs an explicit
# confirmation at commit. The library carries a version, logged with every
# program committed under it.
#
# The pump holds a library as numbers: per drug its name and the ten limits of
# codec.LIBRARY_FIELDS, in the units LIB_DRUG carries them (ng, ng/mL, ng/day,
# s). The text a pharmacist typed ("15 mg/day") is the host's: pumpctl reads a
# site's file and sends the numbers, and the pump checks them (LIB_DRUG,
# commands/library.py) and renders none of them. The factory library is
# druglib.py's numbers.
#
# Command path only: may allocate and use long ints.

from firmware.codec import LIBRARY_LIMITS
from firmware.errors import Refusal
from firmware.framing import library_hash
from firmware.lazy import values

MAX_DRUGS = 16  # entries in one library
MAX_PATIENT_BOLUSES_PER_DAY = 24


class DrugLimits:
    """One drug's limits. Masses in ng, rates in ng/day, times in us.

    numbers: its LIBRARY_FIELDS limits as LIB_DRUG carries them (the lockout in s), kept as
    they came for the library's hash, a save and LIB_GET. Checked by whoever takes them
    from outside (library_check.py check_drug)."""

    def __init__(self, name, numbers):
        self.name = name
        self.numbers = tuple(numbers)
        if len(self.numbers) != LIBRARY_LIMITS:  # a saved record's line of the wrong shape: a bad record
            raise ValueError("a drug has %d limits, not %d" % (LIBRARY_LIMITS, len(self.numbers)))

    # Each limit read from the numbers when asked: two attributes an object, where one each
    # took a dict of 13 entries on the heap for every drug of every library held (the
    # checks that read them are a command's, off the hot path).
    @property
    def max_conc_ng_per_ml(self):
        return self.numbers[0]

    @property
    def daily_soft_ng(self):
        return self.numbers[1]

    @property
    def daily_hard_ng(self):
        return self.numbers[2]

    @property
    def rate_soft_ng_per_day(self):
        return self.numbers[3]

    @property
    def rate_hard_ng_per_day(self):
        return self.numbers[4]

    @property
    def bolus_soft_ng(self):
        return self.numbers[5]

    @property
    def bolus_hard_ng(self):
        return self.numbers[6]

    @property
    def patient_dose_hard_ng(self):
        return self.numbers[7]

    @property
    def patient_lockout_min_us(self):
        return self.numbers[8] * 1_000_000  # LIB_DRUG carries it in s

    @property
    def patient_max_per_day(self):
        return self.numbers[9]

    @property
    def patient_allowed(self):
        return self.numbers[7] > 0 and self.numbers[9] > 0

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
    def __init__(self, version, drugs, lib_hash=None):
        """drugs: DrugLimits, in order. lib_hash: the hash of these same drugs, as computed
        before (the factory's)."""
        if not version or len(version.encode()) > 40:
            raise Refusal("version", "library version %r must be 1-40 bytes of UTF-8" % version)
        if not drugs:
            raise Refusal("library", "a library needs at least one drug")
        if len(drugs) > MAX_DRUGS:
            raise Refusal("library", "a library holds at most %d drugs, not %d" % (MAX_DRUGS, len(drugs)))
        self.version = version
        self.drugs = {}
        self.order = []
        for d in drugs:
            if d.name in self.drugs:
                raise Refusal("name", "drug %s is in the library twice" % d.name)
            self.drugs[d.name] = d
            self.order.append(d.name)
        if lib_hash is None:
            lib_hash = library_hash([(d.name, d.numbers) for d in drugs])
        self.hash = lib_hash  # the content, not the version
        self.saved = None  # a site library's LIBRARY section (persist.py), made at its first save

    def get(self, field, name):
        """The drug of that name; one whose name differs only in case is the same drug (a person
        types "Morphine"): its entry, whose name is the library's spelling. Refusal if none."""
        d = self.drugs.get(name)
        if d is None:
            low = name.lower()
            for other in self.order:
                if other.lower() == low:
                    return self.drugs[other]
            raise Refusal(field, "drug %r is not in library %s (it has: %s)" % (name, self.version, _names(self.order)))
        return d


def default_library():
    """The factory library (druglib.py's numbers, the module forgotten after)."""
    version, names, numbers, lib_hash = values(
        "firmware.druglib", "DEFAULT_LIBRARY_VERSION", "DEFAULT_NAMES", "DEFAULT_NUMBERS", "DEFAULT_LIBRARY_HASH"
    )
    if len(numbers) != len(names):
        raise ValueError("the factory library has %d names and %d lines of numbers" % (len(names), len(numbers)))
    return Library(version, [DrugLimits(names[i], numbers[i]) for i in range(len(names))], lib_hash)


def _names(order):
    """The drugs' names for a refusal, as many as keep it within the wire's 200 bytes of reason (ERROR's
    message and more), then how many more (pumpctl library lists them all)."""
    shown = ""
    for i in range(len(order)):
        if len(shown) + len(order[i]) > 100:
            return shown + ", and %d more" % (len(order) - i)
        shown = order[i] if not shown else shown + ", " + order[i]
    return shown
