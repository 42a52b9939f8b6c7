# Therapy programs as a clinician writes them, one line each, checked against
# the drug library and the pump before anything changes.
#
#   drug morphine 25 mg/mL            the reservoir's blend, primary drug first (1-3)
#   drug none                         the reservoir holds no drug (saline, bench water)
#   fill 20 mL                        the reservoir now holds this (a refill)
#   removed 1.8 mL                    with fill: what was drawn out of the reservoir before it
#                                     (the pump checks it against what it counted was left)
#   low-reservoir 3 mL                the low-reservoir alarm's volume (default 2 mL)
#   empty-reservoir 0.5 mL            delivery stops here, with the empty alarm (default 1 mL)
#   stop                              stopped mode
#   basal 2 mg/day                    simple continuous
#   flex 07:00 3 mg/day               one step of a daily schedule (1-24 lines)
#   bolus 0.5 mg over 30 min [after 2 h]     a single bolus on top of the basal
#   prime 0.2 mL over 20 min          priming bolus, then back to the program
#   bridge 0.25 mL                    old fluid in the path after a refill
#   patient-bolus 0.1 mg over 10 min lockout 4 h max 4 per day
#   trial 3 day                       trial mode: the program stops after this
#
# A program without drug lines keeps the blend already in the reservoir, so
# every library check still applies to it; only "drug none" with a fill line
# says the reservoir was emptied and refilled without a drug.
#
# Doses (mg, mcg) refer to the primary drug and are converted to volume
# through its concentration, rounding toward the smaller dose; a dose may also
# be a volume (mL, uL). Every dose, limit and check applies to each drug in
# the blend. A hard limit refuses (Refusal naming field, value, limit and
# unit); a soft limit adds a warning that the commit must confirm.
#
# The running pump keeps only the Program (program.py): this module is imported
# by program.parse_program() for one call and forgotten after it (lazy.py).
#
# Command path only: may allocate and use long ints.

from firmware import const
from firmware.errors import Refusal
from firmware.formats import format_concentration, format_duration, format_time_of_day, format_volume
from firmware.program import BASAL_CONTINUOUS, BASAL_FLEX, Program
from firmware.program_check import check, render
from firmware.units import (
    parse_concentration,
    parse_count,
    parse_dose,
    parse_dose_rate,
    parse_duration,
    parse_time_of_day,
    parse_volume,
)

# The refusals' texts: refusals.LINES[n], imported only to refuse (_text).
_T_EMPTY = const(0)
_T_TOO_MANY_LINES = const(1)
_T_UNKNOWN_LINE = const(2)
_T_DRUG_NONE_TWICE = const(3)
_T_ABOVE_CONC = const(4)
_T_DRUG_TWICE = const(5)
_T_BLEND = const(6)
_T_STOP_VALUE = const(7)
_T_FLEX_AM_PM = const(8)
_T_FLEX_STEPS = const(9)
_T_FLEX_ORDER = const(10)
_T_FLEX_FIRST = const(11)
_T_BOLUS_DELAY = const(12)
_T_PATIENT_FORM = const(13)
_T_PATIENT_COUNT = const(14)
_T_TRIAL = const(15)
_T_ONCE = const(16)
_T_VOLUME_OR_NONE = const(17)
_T_VOLUME = const(18)
_T_OVER_FORM = const(19)
_T_DURATION = const(20)
_T_DOSE_ZERO = const(21)
_T_RATE_ZERO = const(22)

MAX_LINES = 40
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


def parse_program(lines, library, old_drugs=(), bridging=None):
    """Parse and check program lines; return a Program or raise Refusal.

    old_drugs: the blend in the reservoir now, [(name, conc_ng_per_ml)], for
    the refill and bridge checks (it stays there when the pump is stopped).
    bridging: the old blend a running bridge still pushes out, or None; a
    bridge line is checked against it (the same bridge, committed again).
    """
    if not lines:
        raise Refusal("program", _text(_T_EMPTY))
    if len(lines) > MAX_LINES:
        raise Refusal("program", _text(_T_TOO_MANY_LINES) % (MAX_LINES, len(lines)))
    p = Program()
    seen_stop = False
    for raw in lines:
        text = raw.strip()
        word, _, rest = text.partition(" ")
        read = _READERS.get(word)
        if read is None:
            raise Refusal("program", _text(_T_UNKNOWN_LINE) % (text, ", ".join(_READERS)))
        seen_stop = read(p, rest.strip(), library) or seen_stop
    check(p, library, old_drugs, bridging, seen_stop)
    render(p)
    return p


# One reader per line keyword: reader(p, rest, library) puts the line's values into Program p (or
# refuses); True from the stop line's. Small functions: the parser is loaded for each programming
# step, and on a board each function's code needs a free block of its own size.


def _read_drug(p, rest, library):
    if rest == "none":
        if p.no_drug:
            raise Refusal("drug none", _text(_T_DRUG_NONE_TWICE))
        p.no_drug = True
        return False
    typed, _, conc_text = rest.partition(" ")
    entry = library.get("drug", typed)
    name = entry.name  # the library's spelling ("Morphine" is morphine)
    conc = parse_concentration("drug " + name, conc_text.strip())
    if conc > entry.max_conc_ng_per_ml:
        raise Refusal(
            "drug " + name,
            _text(_T_ABOVE_CONC) % (name, format_concentration(conc), format_concentration(entry.max_conc_ng_per_ml)),
        )
    for other, _c in p.drugs:
        if other == name:
            raise Refusal("drug " + name, _text(_T_DRUG_TWICE) % name)
    if len(p.drugs) == MAX_DRUGS_IN_BLEND:
        raise Refusal(
            "drug",
            _text(_T_BLEND) % (MAX_DRUGS_IN_BLEND, name, MAX_DRUGS_IN_BLEND + 1),
        )
    p.drugs.append((name, conc))
    return False


def _volume_reader(word, attr, max_nl, zero_allowed):
    """The reader of a line that gives one volume (fill, removed, low-reservoir, empty-reservoir)."""

    def read(p, rest, _library):
        _once(getattr(p, attr), word)
        setattr(p, attr, _volume_or_none(word, rest, max_nl) if zero_allowed else _volume(word, rest, max_nl))

    return read


def _read_stop(_p, rest, _library):
    if rest:
        raise Refusal("stop", _text(_T_STOP_VALUE) % rest)
    return True


def _read_basal(p, rest, _library):
    _once(p.basal, "basal")
    p.basal = _dose_rate("basal", rest)
    p.basal_kind = BASAL_CONTINUOUS


def _read_flex(p, rest, _library):
    when, _, rate_text = rest.partition(" ")
    minute = parse_time_of_day("flex", when)
    rate_text = rate_text.strip()
    if rate_text.partition(" ")[0].lower() in ("am", "pm", "a.m.", "p.m."):
        raise Refusal(
            "flex " + when,
            _text(_T_FLEX_AM_PM) % (when, rate_text.partition(" ")[0]),
        )
    kind, per_day = _dose_rate("flex " + when, rate_text)
    if len(p.flex) == MAX_FLEX_STEPS:
        raise Refusal(
            "flex",
            _text(_T_FLEX_STEPS) % (MAX_FLEX_STEPS, when, MAX_FLEX_STEPS + 1),
        )
    if p.flex and minute <= p.flex[-1][0]:
        raise Refusal(
            "flex " + when,
            _text(_T_FLEX_ORDER) % (when, format_time_of_day(p.flex[-1][0])),
        )
    if not p.flex and minute != 0:
        raise Refusal("flex " + when, _text(_T_FLEX_FIRST) % when)
    p.flex.append((minute, kind, per_day))
    p.basal_kind = BASAL_FLEX


def _read_bolus(p, rest, _library):
    _once(p.bolus, "bolus")
    dose_text, duration_us, after = _split_over(rest, "bolus", (" after ",))
    kind, amount = _dose("bolus", dose_text)
    delay = parse_duration("bolus after", after[0]) if after[0] is not None else 0
    if delay > MAX_DELAY_US:
        raise Refusal("bolus after", _text(_T_BOLUS_DELAY) % (after[0], format_duration(MAX_DELAY_US)))
    p.bolus = (kind, amount, duration_us, delay)


def _read_prime(p, rest, _library):
    _once(p.prime, "prime")
    vol_text, duration_us, _ = _split_over(rest, "prime", ())
    p.prime = (_volume("prime", vol_text, MAX_PRIME_NL), duration_us)


def _read_bridge(p, rest, _library):
    _once(p.bridge_nl, "bridge")
    p.bridge_nl = _volume("bridge", rest, MAX_BRIDGE_NL)


def _read_patient(p, rest, _library):
    _once(p.patient, "patient-bolus")
    dose_text, duration_us, more = _split_over(rest, "patient-bolus", (" lockout ", " max "))
    if more[0] is None or more[1] is None:
        raise Refusal("patient-bolus", _text(_T_PATIENT_FORM))
    kind, amount = _dose("patient-bolus", dose_text)
    lockout = parse_duration("patient-bolus lockout", more[0])
    count_text = more[1]
    if not count_text.endswith(" per day"):
        raise Refusal("patient-bolus max", _text(_T_PATIENT_COUNT) % count_text)
    count = parse_count("patient-bolus max", count_text[:-8].strip(), 1, 24)
    p.patient = (kind, amount, duration_us, lockout, count)


def _read_trial(p, rest, _library):
    _once(p.trial_us, "trial")
    us = parse_duration("trial", rest)
    if not MIN_TRIAL_US <= us <= MAX_TRIAL_US:
        raise Refusal("trial", _text(_T_TRIAL) % rest)
    p.trial_us = us


_READERS = {
    "drug": _read_drug,
    "fill": _volume_reader("fill", "fill_nl", MAX_FILL_NL, False),
    "removed": _volume_reader("removed", "removed_nl", MAX_FILL_NL, True),
    "low-reservoir": _volume_reader("low-reservoir", "low_nl", MAX_LOW_NL, False),
    "empty-reservoir": _volume_reader("empty-reservoir", "empty_nl", MAX_LOW_NL, True),
    "stop": _read_stop,
    "basal": _read_basal,
    "flex": _read_flex,
    "bolus": _read_bolus,
    "prime": _read_prime,
    "bridge": _read_bridge,
    "patient-bolus": _read_patient,
    "trial": _read_trial,
}


def _text(n):
    """Text n of refusals.LINES (see there why a module of their own), for a refusal."""
    from firmware.refusals import LINES

    return LINES[n]


def _once(value, word):
    if value is not None:
        raise Refusal(word, _text(_T_ONCE) % word)


def _volume_or_none(field, text, max_nl):
    """A volume from 0 (none removed, or no reserve kept) to max_nl, in nL."""
    nl, _r = parse_volume(field, text)
    if not 0 <= nl <= max_nl:
        raise Refusal(field, _text(_T_VOLUME_OR_NONE) % (field, text, format_volume(max_nl)))
    return nl


def _volume(field, text, max_nl):
    """A volume above 0 and at most max_nl, in nL."""
    nl, _r = parse_volume(field, text)
    if not 0 < nl <= max_nl:
        raise Refusal(field, _text(_T_VOLUME) % (field, text, format_volume(max_nl)))
    return nl


def _split_over(rest, field, extra_words):
    """Split 'DOSE over TIME [w1 X] [w2 Y]'; return (dose_text, duration_us, [X or None, ...]).
    extra_words: (" w1 ", " w2 "), each with its spaces."""
    parts = rest.split(" over ")
    if len(parts) != 2:
        raise Refusal(field, _text(_T_OVER_FORM) % (field, rest))
    dose_text = parts[0].strip()
    tail = parts[1]
    found = [None] * len(extra_words)
    for i in range(len(extra_words) - 1, -1, -1):
        head, sep, value = tail.partition(extra_words[i])
        if sep:
            found[i] = value.strip()
            tail = head
    duration_us = parse_duration(field + " over", tail.strip())
    if not 0 < duration_us <= MAX_BOLUS_US:
        raise Refusal(field + " over", _text(_T_DURATION) % (field, tail.strip()))
    return dose_text, duration_us, found


def _dose(field, text):
    kind, amount, _rounded = parse_dose(field, text)
    if amount <= 0:
        raise Refusal(field, _text(_T_DOSE_ZERO) % (field, text))
    return kind, amount


def _dose_rate(field, text):
    kind, per_day, _rounded = parse_dose_rate(field, text)
    if per_day <= 0:
        raise Refusal(field, _text(_T_RATE_ZERO) % (field, text))
    return kind, per_day
