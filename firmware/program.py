# A therapy program as the pump runs it: the checked values of the items the
# host sent (pumpctl reads what a clinician wrote and sends it as numbers,
# codec.STAGE_ITEM; program_items.py builds and checks them), and the queries
# the running therapy asks of them (therapy.py, app.py).
#
# The checks are not kept on the heap: build_program() and recheck_program()
# import them for the call and forget them after (lazy.py), so nothing here
# may refer to program_items.py or program_check.py, and a Program holds only
# values, and what its check wrote of them (saved: its items in canonical
# order, from which its review rows, CRC and saved record are read).

from firmware import const
from firmware.eventlog import esc
from firmware.lazy import call

# The dose kinds of units.py (DOSE_MASS, DOSE_VOLUME; a test keeps them equal):
# a dose in ng or nL, a dose rate in ng/day or nL/day.
DOSE_MASS = 1
DOSE_VOLUME = 2

# The reservoir alarms' volumes. 2 mL low and 1 mL empty are the MiniMed 2007
# implantable pump's levels (domain.md); SynchroMed's programmable low level
# defaults to about 2 mL [unverified], Prometra's refill threshold is 3 mL.
DEFAULT_LOW_NL = 2_000_000
DEFAULT_EMPTY_NL = 1_000_000
US_PER_DAY = 86_400_000_000
NL_PER_ML = 1_000_000
MIN_PER_DAY = 1440

BASAL_STOPPED = 0
BASAL_CONTINUOUS = 1
BASAL_FLEX = 2


def bolus_rate(volume_nl, duration_us):
    """The constant rate (nL/day, rounded down) that gives volume_nl over duration_us."""
    return volume_nl * US_PER_DAY // duration_us


# (The module's private tables are const(): folded into the code, no global names. A const() must
# come before the code that reads it.)
_DELIVERY_ITEMS = const((10, 11, 12))  # DELIVERY_BOLUS, _PRIME, _BRIDGE
_REFILL_ITEMS = const((3, 4))  # codec.ITEM_FILL, ITEM_REMOVED

# Soft-limit warnings about a bolus or prime itself (program_check._limit: codes W_SOFT + what for
# the basal plus bolus rate, the prime rate, the bolus and the prime), which leave with it.
_DELIVERY_WARNINGS = const(("{p52|", "{p54|", "{p55|", "{p56|"))
# Every attribute of a Program (without_delivery copies them).
_FIELDS = const(
    (
        "drugs",
        "no_drug",
        "fill_nl",
        "removed_nl",
        "low_nl",
        "empty_nl",
        "basal_kind",
        "basal",
        "flex",
        "bolus",
        "prime",
        "bridge_nl",
        "patient",
        "trial_us",
        "library_version",
        "warnings",
    )
)


class Program:
    """A parsed, checked program. Volumes in nL, rates in nL/day, times in us."""

    def __init__(self):
        self.drugs = []  # [(name, conc_ng_per_ml)], primary first
        self.no_drug = False  # "drug none" was written
        self.fill_nl = None
        self.removed_nl: int | None = None  # drawn out before the fill (refill check)
        self.low_nl: int | None = None  # as written; low_level() gives the default
        self.empty_nl: int | None = None
        self.basal_kind = BASAL_STOPPED
        self.basal: tuple | None = None  # (kind, per_day) as typed: DOSE_MASS ng/day or DOSE_VOLUME nL/day
        self.flex = []  # [(start_min, kind, per_day)] sorted, first at 00:00
        self.bolus: tuple | None = None  # (kind, amount, duration_us, delay_us)
        self.prime: tuple | None = None  # (volume_nl, duration_us)
        self.bridge_nl: int | None = None
        self.patient: tuple | None = None  # (kind, amount, duration_us, lockout_us, max_per_day)
        self.trial_us: int | None = None
        self.library_version = ""
        self.warnings = []  # soft limits passed, each a token "{pN|value|...}" (program_check.py) pumpctl words
        self.crc = None  # its program_crc, made when first asked
        # What the pump understood, written by its check (program_write.saved): the library version, its
        # items in canonical order, its warnings; its review rows, CRC and saved record are read from it.
        self.saved = None
        self._rates = None  # (drugs, [(start_min, nL/day)]): the flex steps' rates in that fluid, kept (flex_rates)

    def low_level(self):
        """The low-reservoir alarm's volume, nL."""
        return DEFAULT_LOW_NL if self.low_nl is None else self.low_nl

    def empty_level(self):
        """The volume at which delivery stops, nL."""
        return DEFAULT_EMPTY_NL if self.empty_nl is None else self.empty_nl

    def program_crc(self):
        """Its program_crc (STAGE, COMMIT, THERAPY): framing.program_crc of its items and library version
        (program_write.crc; written with it when it is built)."""
        if self.crc is None:
            self.crc = call("firmware.program_write", "crc", self.understood(), self.library_version)
        return self.crc

    def understood(self):
        """saved: what its check wrote of it (program_write.saved), written now for a program restored
        from a record of protocol 8's firmware (persist.py), which no check of this one wrote."""
        if self.saved is None:
            self.saved = call("firmware.program_write", "saved", self)
        return self.saved

    # -- conversions through the fluid ---------------------------------------

    def volume(self, kind, amount, drugs=None):
        """nL for a dose (kind, amount); mass doses use the primary drug, rounding down."""
        if kind == DOSE_VOLUME:
            return amount
        conc = (drugs or self.drugs)[0][1]
        return amount * NL_PER_ML // conc

    def basal_rate_at(self, minute, drugs=None):
        """nL/day of the basal at a minute of the day (flex) or always (continuous)."""
        if self.basal_kind == BASAL_CONTINUOUS:
            return self.volume(self.basal[0], self.basal[1], drugs)
        if self.basal_kind == BASAL_FLEX:
            rate = 0  # the rate of the last step begun by minute
            for start, nl_per_day in self.flex_rates(drugs):
                if start <= minute:
                    rate = nl_per_day
            return rate
        return 0

    def flex_rates(self, drugs=None):
        """[(start_min, nL/day)] of the flex steps in a fluid of drugs (the program's if None). Kept for
        the fluid last asked: a projection asks at every event, and each volume() of a mass makes long
        ints on a 32-bit port (the rates themselves are small: at most MAX_RATE_NL_PER_DAY). The list
        is the program's: not to be changed."""
        drugs = drugs or self.drugs
        kept = self._rates
        if kept is None or kept[0] != drugs:
            rates = [(start, self.volume(kind, per_day, drugs)) for start, kind, per_day in self.flex]
            kept = self._rates = (list(drugs), rates)  # a copy: compared by value, whatever becomes of drugs
        return kept[1]

    def basal_day_nl_min(self):
        """One full day of the basal, exactly, in nL x 1440 (nL-minutes per day).

        A flex day is sum(rate x minutes) / 1440 nL, not a whole number of nL;
        the limits are checked on this exact value, so neither a schedule
        within a limit by a fraction of a nL is refused nor one above it passes.
        """
        if self.basal_kind == BASAL_FLEX:
            total = 0
            steps = self.flex_rates()
            for i in range(len(steps)):
                end = steps[i + 1][0] if i + 1 < len(steps) else MIN_PER_DAY
                total += steps[i][1] * (end - steps[i][0])
            return total
        return self.basal_rate_at(0) * MIN_PER_DAY

    def basal_max_rate(self):
        if self.basal_kind == BASAL_FLEX:
            return max(rate for _start, rate in self.flex_rates())
        return self.basal_rate_at(0)

    def bolus_volume_nl(self):
        return self.volume(self.bolus[0], self.bolus[1]) if self.bolus else 0

    def patient_volume_nl(self):
        return self.volume(self.patient[0], self.patient[1]) if self.patient else 0

    def delivery(self):
        """Its bolus, prime or bridge (a delivery that acts once) as comparable values, or None:
        (DELIVERY_BOLUS, kind, amount, duration_us, delay_us), (DELIVERY_PRIME, volume_nl,
        duration_us) or (DELIVERY_BRIDGE, volume_nl)."""
        if self.bolus is not None:
            return (DELIVERY_BOLUS,) + self.bolus
        if self.prime is not None:
            return (DELIVERY_PRIME,) + self.prime
        if self.bridge_nl is not None:
            return (DELIVERY_BRIDGE, self.bridge_nl)
        return None

    def without_delivery(self, refill=True):
        """A copy without its bolus, prime or bridge: what runs once that delivery
        has ended or was cancelled (the running program holds it only while it runs).
        refill False: without its fill and removed too, and its warnings (a stop keeps it
        to resume: checked again then)."""
        q = self.copy()
        q.bolus = q.prime = q.bridge_nl = None
        drop = _DELIVERY_ITEMS
        if refill:
            q.warnings = [w for w in self.warnings if not w.startswith(_DELIVERY_WARNINGS)]
        else:
            q.fill_nl = q.removed_nl = None
            q.warnings = []
            drop += _REFILL_ITEMS
        rows = self.understood().decode().split("\n")
        out = [rows[0]]
        for r in rows[1:]:
            if r[:1] == "i" and int(r[1 : r.find(",")]) not in drop:
                out.append(r)
        for w in q.warnings:
            out.append("w" + esc(w))
        q.saved = "\n".join(out).encode()
        return q

    def copy(self):
        """A copy of its values (and of what its check wrote of them: saved); its CRC is made again."""
        q = Program()
        for name in _FIELDS:
            setattr(q, name, getattr(self, name))
        q.saved = self.saved
        return q

    def basal_equal(self, other):
        return (
            other is not None
            and self.basal_kind == other.basal_kind
            and self.basal == other.basal
            and self.flex == other.flex
            and self.drugs == other.drugs
        )


# The item codes of a delivery that acts once (Program.delivery: codec.ITEM_BOLUS, ITEM_PRIME, ITEM_BRIDGE),
# and of a refill's (codec.ITEM_FILL, ITEM_REMOVED).
DELIVERY_BOLUS = 10
DELIVERY_PRIME = 11
DELIVERY_BRIDGE = 12


def build_program(items, library, old_drugs=(), bridging=None):
    """Build and check a Program from the items a host sent (STAGE_ITEM's values); return it or
    raise Refusal (program_items.py, imported for the call and forgotten after it)."""
    return call("firmware.program_items", "build", items, library, old_drugs, bridging)


def recheck_program(program, library, old_drugs=(), bridging=None):
    """The running program checked under another library without reading its lines: a copy
    with that library's version and warnings, or Refusal (program_check.py, for the call)."""
    return call("firmware.program_check", "recheck", program, library, old_drugs, bridging)
