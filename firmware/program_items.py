# A program as the host sends it: one item per line the clinician wrote, as
# numbers (codec.STAGE_ITEM: pumpctl reads the text, host/pumpctl/program_text.py),
# built here into a Program and checked (program_check.py), then written again,
# its items in canonical order, as the pump understood them (program_write.py:
# Program.saved; program_saved.py reads a saved one back).
#
# An item is a tuple of codec.STAGE_ITEM's fields after its index: (item, drug,
# dose_kind, amount, start_min, duration_s, duration_us, then_s, then_us, count)
# (codec.py says which fields each item uses). Every number is checked here or in
# program_check.py, whatever the host checked before sending it: the pump decides.
# A refusal's message is a token "{pN|value|...}" that pumpctl words.
#
# Imported for one call and forgotten after it (lazy.py).
#
# Command path only: may allocate and use long ints.

from firmware import codec, const
from firmware.errors import Refusal
from firmware.program import BASAL_CONTINUOUS, BASAL_FLEX, DOSE_MASS, DOSE_VOLUME, Program

# The refusals' codes (token): an item's, before the program's checks (program_check.py: 30 and up).
_P_EMPTY = const(1)
_P_TOO_MANY_ITEMS = const(2)  # MAX_ITEMS, items
_P_UNKNOWN_ITEM = const(3)  # item code
_P_DRUG_NONE_TWICE = const(4)
_P_ABOVE_CONC = const(5)  # drug, ng/mL, its limit ng/mL
_P_DRUG_TWICE = const(6)  # drug
_P_BLEND = const(7)  # MAX_DRUGS_IN_BLEND, drug, its number
_P_FLEX_STEPS = const(8)  # MAX_FLEX_STEPS, start minute, its number
_P_FLEX_ORDER = const(9)  # start minute, the step before's
_P_FLEX_FIRST = const(10)  # start minute
_P_BOLUS_DELAY = const(11)  # delay us, MAX_DELAY_US
_P_PATIENT_COUNT = const(12)  # count
_P_TRIAL = const(13)  # us
_P_ONCE = const(14)  # item code
_P_VOLUME_OR_NONE = const(15)  # item code, nL, the most nL
_P_VOLUME = const(16)  # item code, nL, the most nL
_P_DURATION = const(17)  # item code, us
_P_DOSE_ZERO = const(18)  # item code
_P_RATE_ZERO = const(19)  # item code
_P_START_MIN = const(20)  # start minute
_P_FIELD = const(21)  # item code: a dose kind or microseconds out of their range
_P_CONC_ZERO = const(22)  # drug

MAX_ITEMS = 40
MAX_DRUGS_IN_BLEND = 3
MAX_FLEX_STEPS = 24
MAX_FILL_NL = 40_000_000  # 40 mL, the largest clinical reservoir
MAX_LOW_NL = 10_000_000  # a low-reservoir level above 10 mL would alarm for most of a refill interval
MAX_PRIME_NL = 1_000_000  # 1 mL: more than any catheter and pump tubing holds
MAX_BRIDGE_NL = 1_000_000
MAX_BOLUS_US = 24 * 3_600_000_000
MAX_DELAY_US = 7 * 86_400_000_000
MIN_TRIAL_US = 3_600_000_000
MAX_TRIAL_US = 30 * 86_400_000_000
MAX_PATIENT_PER_DAY = 24
_US = const(1_000_000)

# The field a refusal of an item names, by its code (codec.ITEM_*).
_WORDS = const(
    (
        "program",
        "drug",
        "drug none",
        "fill",
        "removed",
        "low-reservoir",
        "empty-reservoir",
        "stop",
        "basal",
        "flex",
        "bolus",
        "prime",
        "bridge",
        "patient-bolus",
        "trial",
    )
)


def build(items, library, old_drugs=(), bridging=None):
    """Build and check the Program of items; return it or raise Refusal.

    old_drugs: the blend in the reservoir now, [(name, conc_ng_per_ml)], for the refill and bridge
    checks (it stays there when the pump is stopped). bridging: the old blend a running bridge still
    pushes out, or None; a bridge is checked against it (the same bridge, committed again)."""
    if not items:
        raise Refusal("program", token(_P_EMPTY))
    if len(items) > MAX_ITEMS:
        raise Refusal("program", token(_P_TOO_MANY_ITEMS, MAX_ITEMS, len(items)))
    p = Program()
    stopped = False
    for it in items:
        stopped = _read(p, it, library) or stopped
    from firmware.program_check import check  # not for a saved program read back (from_saved)

    check(p, library, old_drugs, bridging, stopped)
    from firmware.program_write import written

    return written(p)  # as the pump understood it, and its CRC


def token(code, *values):
    """A refusal's message: "{pN|value|...}", which pumpctl words (as program_check.token)."""
    return "{p%d%s}" % (code, "".join("|%s" % (v,) for v in values))


def _word(item):
    return _WORDS[item] if 0 <= item < len(_WORDS) else "program"


def _read(p, it, library):
    """Put item it's values into Program p (or refuse); True for a stop. library None: a saved
    program's items, read back as they were checked (the drug's name is the library's)."""
    item, drug, kind, amount, start, dur_s, dur_us, then_s, then_us, count = it
    if dur_us >= _US or then_us >= _US:
        raise Refusal(_word(item), token(_P_FIELD, item))
    duration = dur_s * _US + dur_us
    then = then_s * _US + then_us
    if item == codec.ITEM_DRUG:
        _drug(p, drug, amount, library)
    elif item == codec.ITEM_DRUG_NONE:
        if p.no_drug:
            raise Refusal("drug none", token(_P_DRUG_NONE_TWICE))
        p.no_drug = True
    elif item == codec.ITEM_FILL:
        _once(p.fill_nl, item)
        p.fill_nl = _volume(item, amount, MAX_FILL_NL, False)
    elif item == codec.ITEM_REMOVED:
        _once(p.removed_nl, item)
        p.removed_nl = _volume(item, amount, MAX_FILL_NL, True)
    elif item == codec.ITEM_LOW:
        _once(p.low_nl, item)
        p.low_nl = _volume(item, amount, MAX_LOW_NL, False)
    elif item == codec.ITEM_EMPTY:
        _once(p.empty_nl, item)
        p.empty_nl = _volume(item, amount, MAX_LOW_NL, True)
    elif item == codec.ITEM_STOP:
        return True
    elif item == codec.ITEM_BASAL:
        _once(p.basal, item)
        p.basal = (_kind(item, kind), _rate(item, amount))
        p.basal_kind = BASAL_CONTINUOUS
    elif item == codec.ITEM_FLEX:
        _flex(p, start, _kind(item, kind), _rate(item, amount))
    elif item == codec.ITEM_BOLUS:
        _once(p.bolus, item)
        kind = _kind(item, kind)
        if then > MAX_DELAY_US:
            raise Refusal("bolus after", token(_P_BOLUS_DELAY, then, MAX_DELAY_US))
        p.bolus = (kind, _dose(item, amount), _duration(item, duration), then)
    elif item == codec.ITEM_PRIME:
        _once(p.prime, item)
        p.prime = (_volume(item, amount, MAX_PRIME_NL, False), _duration(item, duration))
    elif item == codec.ITEM_BRIDGE:
        _once(p.bridge_nl, item)
        p.bridge_nl = _volume(item, amount, MAX_BRIDGE_NL, False)
    elif item == codec.ITEM_PATIENT:
        _once(p.patient, item)
        kind = _kind(item, kind)
        if not 1 <= count <= MAX_PATIENT_PER_DAY:
            raise Refusal("patient-bolus max", token(_P_PATIENT_COUNT, count))
        p.patient = (kind, _dose(item, amount), _duration(item, duration), then, count)
    elif item == codec.ITEM_TRIAL:
        _once(p.trial_us, item)
        if not MIN_TRIAL_US <= duration <= MAX_TRIAL_US:
            raise Refusal("trial", token(_P_TRIAL, duration))
        p.trial_us = duration
    else:
        raise Refusal("program", token(_P_UNKNOWN_ITEM, item))
    return False


def _drug(p, typed, conc, library):
    if library is None:
        name = typed
    else:
        entry = library.get("drug", typed)
        name = entry.name  # the library's spelling ("Morphine" is morphine)
        if conc <= 0:
            raise Refusal("drug " + name, token(_P_CONC_ZERO, name))
        if conc > entry.max_conc_ng_per_ml:
            raise Refusal("drug " + name, token(_P_ABOVE_CONC, name, conc, entry.max_conc_ng_per_ml))
    for other, _c in p.drugs:
        if other == name:
            raise Refusal("drug " + name, token(_P_DRUG_TWICE, name))
    if len(p.drugs) == MAX_DRUGS_IN_BLEND:
        raise Refusal("drug", token(_P_BLEND, MAX_DRUGS_IN_BLEND, name, MAX_DRUGS_IN_BLEND + 1))
    p.drugs.append((name, conc))


def _flex(p, minute, kind, per_day):
    if not 0 <= minute < 1440:
        raise Refusal("flex", token(_P_START_MIN, minute))
    field = "flex %02d:%02d" % (minute // 60, minute % 60)
    if len(p.flex) == MAX_FLEX_STEPS:
        raise Refusal("flex", token(_P_FLEX_STEPS, MAX_FLEX_STEPS, minute, MAX_FLEX_STEPS + 1))
    if p.flex and minute <= p.flex[-1][0]:
        raise Refusal(field, token(_P_FLEX_ORDER, minute, p.flex[-1][0]))
    if not p.flex and minute != 0:
        raise Refusal(field, token(_P_FLEX_FIRST, minute))
    p.flex.append((minute, kind, per_day))
    p.basal_kind = BASAL_FLEX


def _once(value, item):
    if value is not None:
        raise Refusal(_word(item), token(_P_ONCE, item))


def _kind(item, kind):
    if kind != DOSE_MASS and kind != DOSE_VOLUME:
        raise Refusal(_word(item), token(_P_FIELD, item))
    return kind


def _volume(item, nl, max_nl, zero_allowed):
    """A volume from 0 (zero_allowed: none removed, or no reserve kept) or above 0, to max_nl, in nL."""
    if nl > max_nl or nl == 0 and not zero_allowed:
        raise Refusal(_word(item), token(_P_VOLUME_OR_NONE if zero_allowed else _P_VOLUME, item, nl, max_nl))
    return nl


def _duration(item, us):
    if not 0 < us <= MAX_BOLUS_US:
        raise Refusal(_word(item) + " over", token(_P_DURATION, item, us))
    return us


def _dose(item, amount):
    if amount <= 0:
        raise Refusal(_word(item), token(_P_DOSE_ZERO, item))
    return amount


def _rate(item, per_day):
    if per_day <= 0:
        raise Refusal(_word(item), token(_P_RATE_ZERO, item))
    return per_day
