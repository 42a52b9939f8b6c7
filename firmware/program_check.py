# A program's values checked against the pump and the drug library, and
# written as its canonical lines: what the pump decides, whoever read the
# text. program_text.py reads a clinician's lines into a Program and checks it
# here; a library change checks the running program's values again here,
# without reading its lines (recheck); a plain rate is built here from its
# number (rate_program).
#
# A hard limit refuses (Refusal naming field, value, limit and unit); a soft
# limit adds a warning that the commit must confirm. Every dose, limit and
# check applies to each drug in the blend.
#
# Imported for one call and forgotten after it (lazy.py), like the parser.
#
# Command path only: may allocate and use long ints.

from firmware import const
from firmware.errors import Refusal
from firmware.formats import (
    format_concentration,
    format_dose,
    format_dose_rate,
    format_duration,
    format_mass,
    format_time_of_day,
    format_volume,
)
from firmware.program import (
    _FIELDS,
    BASAL_CONTINUOUS,
    BASAL_STOPPED,
    DOSE_MASS,
    DOSE_VOLUME,
    MIN_PER_DAY,
    NL_PER_ML,
    Program,
    bolus_rate,
)
from firmware.scheduler import MAX_RATE_NL_PER_DAY, MIN_RATE_NL_PER_DAY

# The refusals' texts: refusals.CHECKS[n], imported only to refuse (_text).
_T_NONE_WITH_DRUGS = const(0)
_T_ONE_BASAL = const(1)
_T_STOPPED_DOSES = const(2)
_T_ONE_BOLUS = const(3)
_T_MASS_NEEDS_DRUG = const(4)
_T_REMOVED_NEEDS_FILL = const(5)
_T_EMPTY_BELOW_LOW = const(6)
_T_BLEND_NEEDS_FILL = const(7)
_T_BRIDGE_NO_CHANGE = const(8)
_T_BRIDGE_SAME_DRUGS = const(9)
_T_BRIDGE_MASS = const(10)
_T_COMBINED_RATE = const(11)
_T_TOO_SMALL = const(12)
_T_PRIME_TOO_SMALL = const(13)
_T_BELOW_MIN_RATE = const(14)
_T_NO_PATIENT_BOLUS = const(15)
_T_LOCKOUT_SHORT = const(16)
_T_PATIENT_MAX = const(17)


def _text(n):
    """Text n of refusals.CHECKS (see there why a module of their own), for a refusal."""
    from firmware.refusals import CHECKS

    return CHECKS[n]


def check(p, library, old_drugs, bridging=None, stopped=False):
    """Check Program p's values against the pump and library: refuse (Refusal), or put the
    library's version and its soft-limit warnings into p. stopped: p was written as a stop.

    old_drugs: the blend in the reservoir now, [(name, conc_ng_per_ml)], for the refill and
    bridge checks (it stays there when the pump is stopped); a program without drug lines
    takes it. bridging: the old blend a running bridge still pushes out, or None; a bridge
    is checked against it (the same bridge, committed again)."""
    p.library_version = library.version
    p.warnings = []
    _check_shape(p, stopped, list(old_drugs), bridging)
    _check_limits(p, library)


def recheck(program, library, old_drugs, bridging=None):
    """The running program under another library: a copy of its values (its lines and what
    they mean stay) checked by check(), or Refusal. Reads no text: no parser is loaded."""
    p = Program()
    for name in _FIELDS:
        setattr(p, name, getattr(program, name))
    check(p, library, old_drugs, bridging, program.basal_kind == BASAL_STOPPED)
    return p


def rate_program(rate_nl_per_day, library, old_drugs=()):
    """The Program of a plain volume rate in nL/day (in the pump's range: units.parse_rate), or of
    a stop for 0: built from the number, as parse_program builds "basal <rate>" or "stop"."""
    p = Program()
    if rate_nl_per_day:
        p.basal = (DOSE_VOLUME, rate_nl_per_day)
        p.basal_kind = BASAL_CONTINUOUS
    check(p, library, old_drugs, None, not rate_nl_per_day)
    render(p)
    return p


def _check_shape(p, seen_stop, old_drugs, bridging=None):
    if p.no_drug and p.drugs:
        raise Refusal("drug none", _text(_T_NONE_WITH_DRUGS))
    if not p.drugs and not p.no_drug:
        # No drug lines: the reservoir still holds what it held, and every
        # dose is checked against it (never a silent switch to "no drug").
        p.drugs = list(old_drugs)
    basal_lines = (p.basal is not None) + bool(p.flex) + seen_stop
    if basal_lines != 1:
        raise Refusal("program", _text(_T_ONE_BASAL))
    if seen_stop and (p.bolus or p.patient or p.bridge_nl or p.trial_us):
        # A prime may: it fills the catheter before therapy starts, and the pump stays stopped after it.
        raise Refusal("program", _text(_T_STOPPED_DOSES))
    if (p.bolus is not None) + (p.prime is not None) + (p.bridge_nl is not None) > 1:
        raise Refusal("program", _text(_T_ONE_BOLUS))
    uses_mass = (
        (p.basal is not None and p.basal[0] == DOSE_MASS)
        or any(kind == DOSE_MASS for _m, kind, _r in p.flex)
        or (p.bolus is not None and p.bolus[0] == DOSE_MASS)
        or (p.patient is not None and p.patient[0] == DOSE_MASS)
    )
    if uses_mass and not p.drugs:
        raise Refusal("drug", _text(_T_MASS_NEEDS_DRUG))
    if p.removed_nl is not None and p.fill_nl is None:
        raise Refusal("removed", _text(_T_REMOVED_NEEDS_FILL))
    if p.empty_level() >= p.low_level():
        raise Refusal(
            "empty-reservoir",
            _text(_T_EMPTY_BELOW_LOW) % (format_volume(p.empty_level()), format_volume(p.low_level())),
        )
    if p.drugs != old_drugs and p.fill_nl is None:
        raise Refusal("fill", _text(_T_BLEND_NEEDS_FILL))
    if p.bridge_nl is not None:
        if bridging is not None:
            old_drugs = bridging
        if not old_drugs or p.drugs == old_drugs:
            raise Refusal("bridge", _text(_T_BRIDGE_NO_CHANGE))
        if [n for n, _c in p.drugs] != [n for n, _c in old_drugs]:
            raise Refusal("bridge", _text(_T_BRIDGE_SAME_DRUGS))
        if p.basal_kind == BASAL_STOPPED or not _basal_in_mass(p):
            raise Refusal("bridge", _text(_T_BRIDGE_MASS))
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
            _text(_T_COMBINED_RATE) % format_dose_rate(DOSE_VOLUME, max(rates)),
        )
    if p.basal_kind == BASAL_CONTINUOUS:
        _min_rate("basal", p.basal_rate_at(0))
    for start, rate in p.flex_rates():
        if rate < MIN_RATE_NL_PER_DAY:  # the step's name is written only for the refusal
            _min_rate("flex " + format_time_of_day(start), rate)
    for name, what in (("bolus", p.bolus), ("patient-bolus", p.patient)):
        if what is not None and bolus_rate(p.volume(what[0], what[1]), what[2]) < MIN_RATE_NL_PER_DAY:
            raise Refusal(name, _text(_T_TOO_SMALL) % (name, format_duration(what[2])))
    if p.prime is not None and bolus_rate(p.prime[0], p.prime[1]) < MIN_RATE_NL_PER_DAY:
        raise Refusal("prime", _text(_T_PRIME_TOO_SMALL) % format_duration(p.prime[1]))


def _basal_in_mass(p):
    if p.basal_kind == BASAL_CONTINUOUS:
        return p.basal[0] == DOSE_MASS
    return all(kind == DOSE_MASS for _m, kind, _r in p.flex)


def _min_rate(field, rate):
    if rate < MIN_RATE_NL_PER_DAY:
        raise Refusal(
            field,
            _text(_T_BELOW_MIN_RATE) % (field, format_dose_rate(DOSE_VOLUME, rate)),
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
                raise Refusal("patient-bolus", _text(_T_NO_PATIENT_BOLUS) % name)
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
                    _text(_T_LOCKOUT_SHORT)
                    % (format_duration(p.patient[3]), format_duration(d.patient_lockout_min_us), name),
                )
            if p.patient[4] > d.patient_max_per_day:
                raise Refusal(
                    "patient-bolus max",
                    _text(_T_PATIENT_MAX) % (p.patient[4], d.patient_max_per_day, name),
                )


def _limit(p, drug, conc, what, volume, soft_ng, hard_ng, shape, per=1):
    """Compare volume / per (nL, or nL/day) of fluid at conc with a drug's limits, exactly. The texts
    are written only for a refusal or a warning: a dose within its limits formats nothing."""
    exact = volume * conc  # ng * 1e6 * per
    scale = NL_PER_ML * per
    over = "hard" if exact > hard_ng * scale else "soft" if exact > soft_ng * scale else None
    if over is None:
        return
    # The dose rounded up, so a refusal never reads "15 above 15".
    text = "%s of %s %s is above the %s limit of %s" % (
        what,
        drug,
        _shown(-(-exact // scale), shape),
        over,
        _shown(hard_ng if over == "hard" else soft_ng, shape),
    )
    if over == "hard":
        raise Refusal(what, "%s (library %s)" % (text, p.library_version))
    p.warnings.append(text)


def _shown(ng, shape):
    """A dose (ng) or a rate (ng/day) as its limit is written: per hour ('1.083 mg/h', rounded up to
    the ng/h), per day or a dose."""
    if shape == "per_hour":  # rate limits are written per hour; show them so
        return format_mass(-(-ng // 24)) + "/h"
    if shape == "per_day":
        return format_dose_rate(DOSE_MASS, ng)
    return format_mass(ng)


def render(p):
    """p's canonical lines: what the pump understood (program_rows.py writes what each means per drug)."""
    out = ["drug none"] if p.no_drug else []
    for name, conc in p.drugs:
        out.append("drug %s %s" % (name, format_concentration(conc)))
    if p.fill_nl is not None:
        out.append("fill " + format_volume(p.fill_nl))
    if p.removed_nl is not None:
        out.append("removed " + format_volume(p.removed_nl))
    if p.low_nl is not None:
        out.append("low-reservoir " + format_volume(p.low_nl))
    if p.empty_nl is not None:
        out.append("empty-reservoir " + format_volume(p.empty_nl))
    if p.basal_kind == BASAL_STOPPED:
        out.append("stop")
    elif p.basal_kind == BASAL_CONTINUOUS:
        out.append("basal " + format_dose_rate(p.basal[0], p.basal[1]))
    for start, kind, per_day in p.flex:
        out.append("flex %s %s" % (format_time_of_day(start), format_dose_rate(kind, per_day)))
    if p.bolus is not None:
        kind, amount, dur, delay = p.bolus
        line = "bolus %s over %s" % (format_dose(kind, amount), format_duration(dur))
        if delay:
            line += " after " + format_duration(delay)
        out.append(line)
    if p.prime is not None:
        out.append("prime %s over %s" % (format_volume(p.prime[0]), format_duration(p.prime[1])))
    if p.bridge_nl is not None:
        out.append("bridge " + format_volume(p.bridge_nl))
    if p.patient is not None:
        kind, amount, dur, lockout, count = p.patient
        out.append(
            "patient-bolus %s over %s lockout %s max %d per day"
            % (format_dose(kind, amount), format_duration(dur), format_duration(lockout), count)
        )
    if p.trial_us is not None:
        out.append("trial " + format_duration(p.trial_us))
    p.lines = out
