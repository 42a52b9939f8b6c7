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

from firmware.errors import Refusal
from firmware.program import (
    BASAL_CONTINUOUS,
    BASAL_FLEX,
    BASAL_STOPPED,
    MIN_PER_DAY,
    NL_PER_ML,
    Program,
    bolus_rate,
)
from firmware.scheduler import MAX_RATE_NL_PER_DAY, MIN_RATE_NL_PER_DAY
from firmware.units import (
    DOSE_MASS,
    DOSE_VOLUME,
    format_concentration,
    format_dose,
    format_dose_rate,
    format_duration,
    format_mass,
    format_time_of_day,
    format_volume,
    parse_concentration,
    parse_count,
    parse_dose,
    parse_dose_rate,
    parse_duration,
    parse_rate,
    parse_time_of_day,
    parse_volume,
)

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


def dose_of(volume_nl, conc_ng_per_ml):
    """ng of a drug in volume_nl of fluid, rounded down (for showing only)."""
    return volume_nl * conc_ng_per_ml // NL_PER_ML


def parse_program(lines, library, old_drugs=(), bridging=None):
    """Parse and check program lines; return a Program or raise Refusal.

    old_drugs: the blend in the reservoir now, [(name, conc_ng_per_ml)], for
    the refill and bridge checks (it stays there when the pump is stopped).
    bridging: the old blend a running bridge still pushes out, or None; a
    bridge line is checked against it (the same bridge, committed again).
    """
    if not lines:
        raise Refusal("program", "the program is empty; give at least a basal, flex or stop line")
    if len(lines) > MAX_LINES:
        raise Refusal("program", "a program has at most %d lines, not %d" % (MAX_LINES, len(lines)))
    p = Program()
    p.library_version = library.version
    seen_stop = False
    for raw in lines:
        text = raw.strip()
        word, _, rest = text.partition(" ")
        read = _READERS.get(word)
        if read is None:
            raise Refusal("program", "unknown line %r; lines start with one of: %s" % (text, _KEYWORDS))
        seen_stop = read(p, rest.strip(), library) or seen_stop
    _check_shape(p, seen_stop, list(old_drugs), bridging)
    _check_limits(p, library)
    _render(p)
    return p


# One reader per line keyword: reader(p, rest, library) puts the line's values into Program p (or
# refuses); True from the stop line's. Small functions: the parser is loaded for each programming
# step, and on a board each function's code needs a free block of its own size.


def _read_drug(p, rest, library):
    if rest == "none":
        if p.no_drug:
            raise Refusal("drug none", "only one drug none line is allowed")
        p.no_drug = True
        return False
    name, _, conc_text = rest.partition(" ")
    entry = library.get("drug", name)
    conc = parse_concentration("drug " + name, conc_text.strip())
    if conc > entry.max_conc_ng_per_ml:
        raise Refusal(
            "drug " + name,
            "%s %s is above the library's hard limit of %s"
            % (name, format_concentration(conc), format_concentration(entry.max_conc_ng_per_ml)),
        )
    for other, _c in p.drugs:
        if other == name:
            raise Refusal("drug " + name, "drug %s is listed twice" % name)
    if len(p.drugs) == MAX_DRUGS_IN_BLEND:
        raise Refusal(
            "drug",
            "a blend holds at most %d drugs; %s would be drug %d" % (MAX_DRUGS_IN_BLEND, name, MAX_DRUGS_IN_BLEND + 1),
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
        raise Refusal("stop", "stop takes no value (got %r)" % rest)
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
            "flex %s %s: use 24-hour time, without am/pm (for example 19:30)" % (when, rate_text.partition(" ")[0]),
        )
    kind, per_day = _dose_rate("flex " + when, rate_text)
    if len(p.flex) == MAX_FLEX_STEPS:
        raise Refusal(
            "flex",
            "a flex schedule has at most %d steps; flex %s would be step %d"
            % (MAX_FLEX_STEPS, when, MAX_FLEX_STEPS + 1),
        )
    if p.flex and minute <= p.flex[-1][0]:
        raise Refusal(
            "flex " + when,
            "flex steps must be in time order; %s is not after %s" % (when, format_time_of_day(p.flex[-1][0])),
        )
    if not p.flex and minute != 0:
        raise Refusal("flex " + when, "the first flex step must start at 00:00, not %s" % when)
    p.flex.append((minute, kind, per_day))
    p.basal_kind = BASAL_FLEX


def _read_bolus(p, rest, _library):
    _once(p.bolus, "bolus")
    dose_text, duration_us, after = _split_over(rest, "bolus", ("after",))
    kind, amount = _dose("bolus", dose_text)
    delay = parse_duration("bolus after", after[0]) if after[0] is not None else 0
    if delay > MAX_DELAY_US:
        raise Refusal("bolus after", "bolus delay %s is above %s" % (after[0], format_duration(MAX_DELAY_US)))
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
    dose_text, duration_us, more = _split_over(rest, "patient-bolus", ("lockout", "max"))
    if more[0] is None or more[1] is None:
        raise Refusal("patient-bolus", "write: patient-bolus DOSE over TIME lockout TIME max N per day")
    kind, amount = _dose("patient-bolus", dose_text)
    lockout = parse_duration("patient-bolus lockout", more[0])
    count_text = more[1]
    if not count_text.endswith(" per day"):
        raise Refusal("patient-bolus max", "write the count as 'max N per day' (got %r)" % count_text)
    count = parse_count("patient-bolus max", count_text[:-8].strip(), 1, 24)
    p.patient = (kind, amount, duration_us, lockout, count)


def _read_trial(p, rest, _library):
    _once(p.trial_us, "trial")
    us = parse_duration("trial", rest)
    if not MIN_TRIAL_US <= us <= MAX_TRIAL_US:
        raise Refusal("trial", "trial %s must be between 1 h and 30 day" % rest)
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
_KEYWORDS = ", ".join(_READERS)


def rate_program(rate_nl_per_day, library, old_drugs=()):
    """The Program of a plain volume rate in nL/day (in the pump's range: units.parse_rate), or of
    a stop for 0: built from the number, as parse_program builds "basal <rate>" or "stop"."""
    p = Program()
    p.library_version = library.version
    if rate_nl_per_day:
        p.basal = (DOSE_VOLUME, rate_nl_per_day)
        p.basal_kind = BASAL_CONTINUOUS
    _check_shape(p, not rate_nl_per_day, list(old_drugs))
    _check_limits(p, library)
    _render(p)
    return p


def parse_rate_program(field, text, library, old_drugs=()):
    """(the Program of the plain volume rate text, e.g. "0.5 mL/day", and whether it was rounded):
    the text read once, straight to the program (SET_RATE)."""
    rate, rounded = parse_rate(field, text)
    return rate_program(rate, library, old_drugs), rounded


def _once(value, word):
    if value is not None:
        raise Refusal(word, "only one %s line is allowed" % word)


def _volume_or_none(field, text, max_nl):
    """A volume from 0 (none removed, or no reserve kept) to max_nl, in nL."""
    nl, _r = parse_volume(field, text)
    if not 0 <= nl <= max_nl:
        raise Refusal(field, "%s %s must be 0 to %s" % (field, text, format_volume(max_nl)))
    return nl


def _volume(field, text, max_nl):
    """A volume above 0 and at most max_nl, in nL."""
    nl, _r = parse_volume(field, text)
    if not 0 < nl <= max_nl:
        raise Refusal(field, "%s %s must be above 0 and at most %s" % (field, text, format_volume(max_nl)))
    return nl


def _split_over(rest, field, extra_words):
    """Split 'DOSE over TIME [w1 X] [w2 Y]'; return (dose_text, duration_us, [X or None, ...])."""
    parts = rest.split(" over ")
    if len(parts) != 2:
        raise Refusal(field, "write: %s DOSE over TIME (got %r)" % (field, rest))
    dose_text = parts[0].strip()
    tail = parts[1]
    found = [None] * len(extra_words)
    for i in range(len(extra_words) - 1, -1, -1):
        head, sep, value = tail.partition(" " + extra_words[i] + " ")
        if sep:
            found[i] = value.strip()
            tail = head
    duration_us = parse_duration(field + " over", tail.strip())
    if not 0 < duration_us <= MAX_BOLUS_US:
        raise Refusal(field + " over", "%s duration %s must be above 0 and at most 24 h" % (field, tail.strip()))
    return dose_text, duration_us, found


def _dose(field, text):
    kind, amount, _rounded = parse_dose(field, text)
    if amount <= 0:
        raise Refusal(field, "%s %s must be above zero" % (field, text))
    return kind, amount


def _dose_rate(field, text):
    kind, per_day, _rounded = parse_dose_rate(field, text)
    if per_day <= 0:
        raise Refusal(field, "%s %s must be above zero (use a stop line to stop)" % (field, text))
    return kind, per_day


def _check_shape(p, seen_stop, old_drugs, bridging=None):
    if p.no_drug and p.drugs:
        raise Refusal("drug none", "drug none cannot be given with drug lines")
    if not p.drugs and not p.no_drug:
        # No drug lines: the reservoir still holds what it held, and every
        # dose is checked against it (never a silent switch to "no drug").
        p.drugs = list(old_drugs)
    basal_lines = (p.basal is not None) + bool(p.flex) + seen_stop
    if basal_lines != 1:
        raise Refusal("program", "give exactly one of: a basal line, flex lines, or stop")
    if seen_stop and (p.bolus or p.patient or p.prime or p.bridge_nl or p.trial_us):
        raise Refusal("program", "a stopped program cannot have a bolus, prime, bridge, patient-bolus or trial")
    if (p.bolus is not None) + (p.prime is not None) + (p.bridge_nl is not None) > 1:
        raise Refusal("program", "one bolus at a time: give at most one of bolus, prime and bridge")
    uses_mass = (
        (p.basal is not None and p.basal[0] == DOSE_MASS)
        or any(kind == DOSE_MASS for _m, kind, _r in p.flex)
        or (p.bolus is not None and p.bolus[0] == DOSE_MASS)
        or (p.patient is not None and p.patient[0] == DOSE_MASS)
    )
    if uses_mass and not p.drugs:
        raise Refusal("drug", "a dose in mg or mcg needs a drug line naming the drug and its concentration")
    if p.removed_nl is not None and p.fill_nl is None:
        raise Refusal("removed", "removed is part of a refill: give the fill line with it")
    if p.empty_level() >= p.low_level():
        raise Refusal(
            "empty-reservoir",
            "empty-reservoir %s must be below low-reservoir %s"
            % (format_volume(p.empty_level()), format_volume(p.low_level())),
        )
    if p.drugs != old_drugs and p.fill_nl is None:
        raise Refusal("fill", "the blend changed (a refill): give a fill line with the volume the reservoir now holds")
    if p.bridge_nl is not None:
        if bridging is not None:
            old_drugs = bridging
        if not old_drugs or p.drugs == old_drugs:
            raise Refusal("bridge", "a bridge bolus is for a refill that changed a concentration; none changed")
        if [n for n, _c in p.drugs] != [n for n, _c in old_drugs]:
            raise Refusal("bridge", "a bridge needs the same drugs as before, with new concentrations")
        if p.basal_kind == BASAL_STOPPED or not _basal_in_mass(p):
            raise Refusal("bridge", "a bridge keeps the dose steady, so the basal must be given as a dose (mg/day)")
    # Pump limits on the combined rate.
    rates = [p.basal_max_rate()]
    if p.prime is not None:
        rates.append(bolus_rate(p.prime[0], p.prime[1]))  # the basal pauses while priming
    if p.bolus is not None:
        rates.append(p.basal_max_rate() + bolus_rate(p.bolus_volume_nl(), p.bolus[2]))
    if p.patient is not None:
        rates.append(p.basal_max_rate() + bolus_rate(p.patient_volume_nl(), p.patient[2]))
    if max(rates) > MAX_RATE_NL_PER_DAY:
        raise Refusal(
            "program",
            "the combined rate %s is above the pump maximum of 10 mL/h" % format_dose_rate(DOSE_VOLUME, max(rates)),
        )
    if p.basal_kind == BASAL_CONTINUOUS:
        _min_rate("basal", p.basal_rate_at(0))
    for start, rate in p.flex_rates():
        _min_rate("flex " + format_time_of_day(start), rate)
    for name, what in (("bolus", p.bolus), ("patient-bolus", p.patient)):
        if what is not None and bolus_rate(p.volume(what[0], what[1]), what[2]) < MIN_RATE_NL_PER_DAY:
            raise Refusal(name, "%s is too small to deliver over %s" % (name, format_duration(what[2])))
    if p.prime is not None and bolus_rate(p.prime[0], p.prime[1]) < MIN_RATE_NL_PER_DAY:
        raise Refusal("prime", "prime is too small to deliver over %s" % format_duration(p.prime[1]))


def _basal_in_mass(p):
    if p.basal_kind == BASAL_CONTINUOUS:
        return p.basal[0] == DOSE_MASS
    return all(kind == DOSE_MASS for _m, kind, _r in p.flex)


def _min_rate(field, rate):
    if rate < MIN_RATE_NL_PER_DAY:
        raise Refusal(
            field,
            "%s is %s, below the pump minimum of 1 uL/day" % (field, format_dose_rate(DOSE_VOLUME, rate)),
        )


def _check_limits(p, library):
    """Every dose, in every drug of the blend, against the library."""
    basal_day_nl_min = p.basal_day_nl_min()
    max_rate = p.basal_max_rate()
    patient_daily = p.patient[4] * p.patient_volume_nl() if p.patient else 0
    for name, conc in p.drugs:
        d = library.get("drug", name)
        # Daily: a full day of basal plus every allowed patient bolus plus the
        # clinician's bolus or prime (Prometra-style worst case).
        extra = p.bolus_volume_nl() + (p.prime[0] if p.prime else 0)
        daily_nl_min = basal_day_nl_min + (patient_daily + extra) * MIN_PER_DAY
        _limit(p, name, conc, "daily dose", daily_nl_min, d.daily_soft_ng, d.daily_hard_ng, "per_day", MIN_PER_DAY)
        # Rate: the basal's fastest step plus a running bolus (per hour).
        peaks = [("basal rate", max_rate)]
        if p.bolus is not None:
            peaks.append(("basal plus bolus rate", max_rate + bolus_rate(p.bolus_volume_nl(), p.bolus[2])))
        if p.patient is not None:
            peaks.append(("basal plus patient-bolus rate", max_rate + bolus_rate(p.patient_volume_nl(), p.patient[2])))
        if p.prime is not None:
            peaks.append(("prime rate", bolus_rate(p.prime[0], p.prime[1])))
        for what, rate in peaks:
            _limit(p, name, conc, what, rate, d.rate_soft_ng_per_day, d.rate_hard_ng_per_day, "per_hour")
        # Single doses. A prime counts as a bolus: if the catheter was in fact
        # full (the 2013-2016 recalls), the patient receives all of it.
        if p.bolus is not None:
            _limit(p, name, conc, "bolus", p.bolus_volume_nl(), d.bolus_soft_ng, d.bolus_hard_ng, "dose")
        if p.prime is not None:
            _limit(p, name, conc, "prime", p.prime[0], d.bolus_soft_ng, d.bolus_hard_ng, "dose")
        if p.patient is not None:
            if not d.patient_allowed:
                raise Refusal("patient-bolus", "the library allows no patient bolus of %s" % name)
            _limit(
                p,
                name,
                conc,
                "patient-bolus",
                p.patient_volume_nl(),
                d.patient_dose_hard_ng,
                d.patient_dose_hard_ng,
                "dose",
            )
            if p.patient[3] < d.patient_lockout_min_us:
                raise Refusal(
                    "patient-bolus lockout",
                    "lockout %s is shorter than the library's minimum of %s for %s"
                    % (format_duration(p.patient[3]), format_duration(d.patient_lockout_min_us), name),
                )
            if p.patient[4] > d.patient_max_per_day:
                raise Refusal(
                    "patient-bolus max",
                    "%d patient boluses per day is above the library's maximum of %d for %s"
                    % (p.patient[4], d.patient_max_per_day, name),
                )


def _limit(p, drug, conc, what, volume, soft_ng, hard_ng, shape, per=1):
    """Compare volume / per (nL, or nL/day) of fluid at conc with a drug's limits, exactly."""
    exact = volume * conc  # ng * 1e6 * per
    scale = NL_PER_ML * per
    up = -(-exact // scale)  # the dose rounded up, so a refusal never reads "15 above 15"
    if shape == "per_hour":  # rate limits are written per hour; show them so
        shown = _per_hour(up)
        hard = _per_hour(hard_ng)
        soft = _per_hour(soft_ng)
    elif shape == "per_day":
        shown = format_dose_rate(DOSE_MASS, up)
        hard = format_dose_rate(DOSE_MASS, hard_ng)
        soft = format_dose_rate(DOSE_MASS, soft_ng)
    else:
        shown = format_mass(up)
        hard = format_mass(hard_ng)
        soft = format_mass(soft_ng)
    if exact > hard_ng * scale:
        raise Refusal(
            what,
            "%s of %s %s is above the hard limit of %s (library %s)" % (what, drug, shown, hard, p.library_version),
        )
    if exact > soft_ng * scale:
        p.warnings.append("%s of %s %s is above the soft limit of %s" % (what, drug, shown, soft))


def _per_hour(ng_per_day):
    """'1.083 mg/h' for a rate in ng/day (rounded up to the ng/h)."""
    return format_mass(-(-ng_per_day // 24)) + "/h"


def _per_drug(p, volume, per_day):
    parts = []
    for name, conc in p.drugs:
        ng = dose_of(volume, conc)
        parts.append("%s %s" % (name, format_dose_rate(DOSE_MASS, ng) if per_day else format_mass(ng)))
    vol = format_dose_rate(DOSE_VOLUME, volume) if per_day else format_volume(volume)
    return (vol + " = " + ", ".join(parts)) if parts else vol


def _render(p):
    """Canonical lines (what the pump understood) and per-drug details."""
    out = [("drug none", "")] if p.no_drug else []
    for name, conc in p.drugs:
        out.append(("drug %s %s" % (name, format_concentration(conc)), ""))
    if p.fill_nl is not None:
        out.append(("fill " + format_volume(p.fill_nl), ""))
    if p.removed_nl is not None:
        out.append(("removed " + format_volume(p.removed_nl), ""))
    if p.low_nl is not None:
        out.append(("low-reservoir " + format_volume(p.low_nl), ""))
    if p.empty_nl is not None:
        out.append(("empty-reservoir " + format_volume(p.empty_nl), ""))
    if p.basal_kind == BASAL_STOPPED:
        out.append(("stop", ""))
    elif p.basal_kind == BASAL_CONTINUOUS:
        out.append(("basal " + format_dose_rate(p.basal[0], p.basal[1]), _per_drug(p, p.basal_rate_at(0), True)))
    for start, kind, per_day in p.flex:
        out.append(
            (
                "flex %s %s" % (format_time_of_day(start), format_dose_rate(kind, per_day)),
                _per_drug(p, p.volume(kind, per_day), True),
            )
        )
    if p.basal_kind == BASAL_FLEX:
        out.append(("", "flex day total " + _per_drug(p, p.basal_daily_nl(), True)))
    if p.bolus is not None:
        kind, amount, dur, delay = p.bolus
        line = "bolus %s over %s" % (format_dose(kind, amount), format_duration(dur))
        if delay:
            line += " after " + format_duration(delay)
        out.append((line, _per_drug(p, p.bolus_volume_nl(), False)))
    if p.prime is not None:
        out.append(("prime %s over %s" % (format_volume(p.prime[0]), format_duration(p.prime[1])), ""))
    if p.bridge_nl is not None:
        out.append(("bridge " + format_volume(p.bridge_nl), ""))
    if p.patient is not None:
        kind, amount, dur, lockout, count = p.patient
        out.append(
            (
                "patient-bolus %s over %s lockout %s max %d per day"
                % (format_dose(kind, amount), format_duration(dur), format_duration(lockout), count),
                _per_drug(p, p.patient_volume_nl(), False),
            )
        )
    if p.trial_us is not None:
        out.append(("trial " + format_duration(p.trial_us), ""))
    p.lines = [line for line, _d in out if line]
    p.details = out
