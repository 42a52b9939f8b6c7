# A program's values checked against the pump and the drug library: what the
# pump decides, whatever the host sent. program_items.py builds a Program from
# the items a host sent and checks it here (program_write.py then writes it as
# the pump understood it); a library change checks the running program's
# values again here (recheck), and keeps its items as they were written.
#
# A hard limit refuses (Refusal naming the field, and a token of the code and
# values that pumpctl words); a soft limit adds a warning, a token too, that the
# commit must confirm. Every dose, limit and check applies to each drug in the
# blend.
#
# Imported for one call and forgotten after it (lazy.py).
#
# Command path only: may allocate and use long ints.

from firmware import const
from firmware.errors import Refusal
from firmware.eventlog import esc
from firmware.program import (
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

# The refusals' codes: a refusal's message is the token "{pN|value|...}" that pumpctl words
# (host/pumpctl/program_words.py), the values in the pump's units (nL, nL/day, ng, us).
_P_NONE_WITH_DRUGS = const(30)
_P_ONE_BASAL = const(31)
_P_STOPPED_DOSES = const(32)
_P_ONE_BOLUS = const(33)
_P_MASS_NEEDS_DRUG = const(34)
_P_REMOVED_NEEDS_FILL = const(35)
_P_EMPTY_BELOW_LOW = const(36)  # empty nL, low nL
_P_BLEND_NEEDS_FILL = const(37)
_P_BRIDGE_NO_CHANGE = const(38)
_P_BRIDGE_SAME_DRUGS = const(39)
_P_BRIDGE_MASS = const(40)
_P_COMBINED_RATE = const(41)  # nL/day
_P_TOO_SMALL = const(42)  # what, duration us
_P_PRIME_TOO_SMALL = const(43)  # duration us
_P_BELOW_MIN_RATE = const(44)  # what, nL/day
_P_NO_PATIENT_BOLUS = const(45)  # drug
_P_LOCKOUT_SHORT = const(46)  # lockout us, minimum us, drug
_P_PATIENT_MAX = const(47)  # count, maximum, drug
# A limit passed: soft (a warning) _P_SOFT + what, hard (a refusal) _P_HARD + what; values: drug,
# the dose rounded up (ng, or ng/day), the limit (ng, or ng/day), and for a refusal the library.
_P_SOFT = const(50)
_P_HARD = const(60)
# what: which dose passed it (its shape: a day's dose, a rate written per hour, a single dose).
_DAILY = const(0)
_BASAL_RATE = const(1)
_BOLUS_RATE = const(2)  # basal plus bolus
_PATIENT_RATE = const(3)  # basal plus patient bolus
_PRIME_RATE = const(4)
_BOLUS = const(5)
_PRIME = const(6)
_PATIENT = const(7)


def token(code, *values):
    """A refusal's or a warning's message: "{pN|value|...}", which pumpctl words."""
    return "{p%d%s}" % (code, "".join("|%s" % (v,) for v in values))


def check(p, library, old_drugs, bridging=None, stopped=False):
    """Check Program p's values against the pump and library: refuse (Refusal), or put the
    library's version and its soft-limit warnings into p (what it understood is written after:
    program_write.saved). stopped: p was written as a stop.

    old_drugs: the blend in the reservoir now, [(name, conc_ng_per_ml)], for the refill and
    bridge checks (it stays there when the pump is stopped); a program without drug lines
    takes it. bridging: the old blend a running bridge still pushes out, or None; a bridge
    is checked against it (the same bridge, committed again)."""
    p.library_version = library.version
    p.warnings = []
    _check_shape(p, stopped, list(old_drugs), bridging)
    _check_limits(p, library)
    p.saved = None
    p.crc = None


def recheck(program, library, old_drugs, bridging=None):
    """The running program under another library: a copy of its values checked by check(), or
    Refusal. Its items are written as they were (the same values); only the library's version and
    warnings change."""
    p = program.copy()
    check(p, library, old_drugs, bridging, program.basal_kind == BASAL_STOPPED)
    if p.drugs != program.drugs:  # not for a program that runs (its blend is the reservoir's): as any
        return _written(p)
    old = program.understood()
    first = old.find(b"\n")  # the version's line ends; the items' lines, then the warnings'
    end = old.find(b"\nw")
    out = [esc(p.library_version).encode(), old[first : end if end >= 0 else len(old)] if first >= 0 else b""]
    for w in p.warnings:
        out.append(b"\nw" + esc(w).encode())
    p.saved = b"".join(out)
    return p


def rate_program(rate_nl_per_day, library, old_drugs=()):
    """The Program of a plain volume rate in nL/day (in the pump's range), or of a stop for 0: built
    from the number, as build_program builds a basal item of the rate or a stop."""
    p = Program()
    if rate_nl_per_day:
        p.basal = (DOSE_VOLUME, rate_nl_per_day)
        p.basal_kind = BASAL_CONTINUOUS
    check(p, library, old_drugs, None, not rate_nl_per_day)
    return _written(p)


def _written(p):
    """p, with what it understood written, and its CRC (program_write.written)."""
    from firmware.program_write import written

    return written(p)


def _check_shape(p, seen_stop, old_drugs, bridging=None):
    if p.no_drug and p.drugs:
        raise Refusal("drug none", token(_P_NONE_WITH_DRUGS))
    if not p.drugs and not p.no_drug:
        # No drug lines: the reservoir still holds what it held, and every
        # dose is checked against it (never a silent switch to "no drug").
        p.drugs = list(old_drugs)
    basal_lines = (p.basal is not None) + bool(p.flex) + seen_stop
    if basal_lines != 1:
        raise Refusal("program", token(_P_ONE_BASAL))
    if seen_stop and (p.bolus or p.patient or p.bridge_nl or p.trial_us):
        # A prime may: it fills the catheter before therapy starts, and the pump stays stopped after it.
        raise Refusal("program", token(_P_STOPPED_DOSES))
    if (p.bolus is not None) + (p.prime is not None) + (p.bridge_nl is not None) > 1:
        raise Refusal("program", token(_P_ONE_BOLUS))
    uses_mass = (
        (p.basal is not None and p.basal[0] == DOSE_MASS)
        or (p.bolus is not None and p.bolus[0] == DOSE_MASS)
        or (p.patient is not None and p.patient[0] == DOSE_MASS)
    )
    for _m, kind, _r in p.flex:  # (a loop: any() of a generator is one more object)
        uses_mass = uses_mass or kind == DOSE_MASS
    if uses_mass and not p.drugs:
        raise Refusal("drug", token(_P_MASS_NEEDS_DRUG))
    if p.removed_nl is not None and p.fill_nl is None:
        raise Refusal("removed", token(_P_REMOVED_NEEDS_FILL))
    if p.empty_level() >= p.low_level():
        raise Refusal("empty-reservoir", token(_P_EMPTY_BELOW_LOW, p.empty_level(), p.low_level()))
    if p.drugs != old_drugs and p.fill_nl is None:
        raise Refusal("fill", token(_P_BLEND_NEEDS_FILL))
    if p.bridge_nl is not None:
        if bridging is not None:
            old_drugs = bridging
        if not old_drugs or p.drugs == old_drugs:
            raise Refusal("bridge", token(_P_BRIDGE_NO_CHANGE))
        if [n for n, _c in p.drugs] != [n for n, _c in old_drugs]:
            raise Refusal("bridge", token(_P_BRIDGE_SAME_DRUGS))
        if p.basal_kind == BASAL_STOPPED or not _basal_in_mass(p):
            raise Refusal("bridge", token(_P_BRIDGE_MASS))
    # Pump limits on the combined rate.
    basal = p.basal_max_rate()
    top = basal  # the fastest the pump would run (no list of the rates: command garbage)
    if p.prime is not None:
        top = max(top, bolus_rate(p.prime[0], p.prime[1]))  # the basal pauses while priming
    if p.bolus is not None:
        top = max(top, basal + bolus_rate(p.bolus_volume_nl(), p.bolus[2]))
    if p.patient is not None:
        top = max(top, basal + bolus_rate(p.patient_volume_nl(), p.patient[2]))
    if top > MAX_RATE_NL_PER_DAY:
        raise Refusal("program", token(_P_COMBINED_RATE, top))
    if p.basal_kind == BASAL_CONTINUOUS:
        _min_rate("basal", p.basal_rate_at(0))
    for start, rate in p.flex_rates():
        if rate < MIN_RATE_NL_PER_DAY:  # the step's name is written only for the refusal
            _min_rate("flex %02d:%02d" % (start // 60, start % 60), rate)
    for name, what in (("bolus", p.bolus), ("patient-bolus", p.patient)):
        if what is not None and bolus_rate(p.volume(what[0], what[1]), what[2]) < MIN_RATE_NL_PER_DAY:
            raise Refusal(name, token(_P_TOO_SMALL, name, what[2]))
    if p.prime is not None and bolus_rate(p.prime[0], p.prime[1]) < MIN_RATE_NL_PER_DAY:
        raise Refusal("prime", token(_P_PRIME_TOO_SMALL, p.prime[1]))


def _basal_in_mass(p):
    if p.basal_kind == BASAL_CONTINUOUS:
        return p.basal[0] == DOSE_MASS
    return all(kind == DOSE_MASS for _m, kind, _r in p.flex)


def _min_rate(field, rate):
    if rate < MIN_RATE_NL_PER_DAY:
        raise Refusal(field, token(_P_BELOW_MIN_RATE, field, rate))


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
        _limit(p, name, conc, _DAILY, daily_nl_min, d.daily_soft_ng, d.daily_hard_ng, MIN_PER_DAY)
        # Rate: the basal's fastest step plus a running bolus (per hour).
        soft = d.rate_soft_ng_per_day
        hard = d.rate_hard_ng_per_day
        _limit(p, name, conc, _BASAL_RATE, max_rate, soft, hard)
        if p.bolus is not None:
            _limit(p, name, conc, _BOLUS_RATE, max_rate + bolus_rate(p.bolus_volume_nl(), p.bolus[2]), soft, hard)
        if p.patient is not None:
            _limit(p, name, conc, _PATIENT_RATE, max_rate + bolus_rate(p.patient_volume_nl(), p.patient[2]), soft, hard)
        if p.prime is not None:
            _limit(p, name, conc, _PRIME_RATE, bolus_rate(p.prime[0], p.prime[1]), soft, hard)
        # Single doses. A prime counts as a bolus: if the catheter was in fact
        # full (the 2013-2016 recalls), the patient receives all of it.
        if p.bolus is not None:
            _limit(p, name, conc, _BOLUS, p.bolus_volume_nl(), d.bolus_soft_ng, d.bolus_hard_ng)
        if p.prime is not None:
            _limit(p, name, conc, _PRIME, p.prime[0], d.bolus_soft_ng, d.bolus_hard_ng)
        if p.patient is not None:
            if not d.patient_allowed:
                raise Refusal("patient-bolus", token(_P_NO_PATIENT_BOLUS, name))
            hard = d.patient_dose_hard_ng
            _limit(p, name, conc, _PATIENT, p.patient_volume_nl(), hard, hard)
            if p.patient[3] < d.patient_lockout_min_us:
                raise Refusal(
                    "patient-bolus lockout", token(_P_LOCKOUT_SHORT, p.patient[3], d.patient_lockout_min_us, name)
                )
            if p.patient[4] > d.patient_max_per_day:
                raise Refusal("patient-bolus max", token(_P_PATIENT_MAX, p.patient[4], d.patient_max_per_day, name))


# The field a limit's refusal names, by what passed it.
_WHAT_FIELDS = const(
    (
        "daily dose",
        "basal rate",
        "basal plus bolus rate",
        "basal plus patient-bolus rate",
        "prime rate",
        "bolus",
        "prime",
        "patient-bolus",
    )
)


def _limit(p, drug, conc, what, volume, soft_ng, hard_ng, per=1):
    """Compare volume / per (nL, or nL/day) of fluid at conc with a drug's limits, exactly. A token
    is written only for a refusal or a warning: a dose within its limits writes nothing."""
    exact = volume * conc  # ng * 1e6 * per
    scale = NL_PER_ML * per
    hard = exact > hard_ng * scale
    if not hard and exact <= soft_ng * scale:
        return
    # The dose rounded up, so a refusal never reads "15 above 15".
    shown = -(-exact // scale)
    if hard:
        raise Refusal(_WHAT_FIELDS[what], token(_P_HARD + what, drug, shown, hard_ng, p.library_version))
    p.warnings.append(token(_P_SOFT + what, drug, shown, soft_ng))
