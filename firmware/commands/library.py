# The drug library (library.py): stage a new one field by field, check it
# beside the one in force, commit it, read either. A library change is a
# programming session of its own: staged, checked, committed with its hash.

from firmware import codec, const, eventlog
from firmware.commands import SAVES, STAGED_TTL_US
from firmware.errors import Refusal
from firmware.library import MAX_DRUGS, MAX_PATIENT_BOLUSES_PER_DAY, DrugLimits, Library, changes, drug_changes
from firmware.program import recheck_program

_MAX_NAME = 24
_MAX_LOCKOUT_S = 400 * 86_400  # the longest duration a person can type (units.MAX_DURATION_DAYS)
# How a refusal shows field f's number (codec.LIBRARY_FIELDS): a token pumpctl renders in a
# clinician's units (host/pumpctl/words.py): k ng/mL, r ng/day per day, h ng/day per hour, g ng,
# s seconds; a count as it is.
_TOKEN = const(" krrhhgggs")


# Stages one drug of a new drug library: its name and
# limits, as numbers in the pump's units.
#
# Request:
# drug: the drug's number, 0..15
# name: its name, 1-24 lowercase letters, digits or '-'
# max_concentration_ng_per_ml: the highest concentration a program may give
# daily_soft_ng_per_day: a day's dose above which a commit needs confirming
# daily_hard_ng_per_day: a day's dose above which a program is refused
# rate_soft_ng_per_day: the soft limit of the rate (any hour, with a bolus)
# rate_hard_ng_per_day: the hard limit of the rate
# bolus_soft_ng: a clinician bolus above which a commit needs confirming
# bolus_hard_ng: a clinician bolus (or prime) above which it is refused
# patient_dose_hard_ng: the largest patient bolus (0: none allowed)
# patient_lockout_s: the shortest lockout after a patient bolus
# patient_max_per_day: patient boluses in any 24 h, 0..24 (0: none allowed)
#
# Reply:
# drugs: drugs staged so far
#
# **Refusals:** `drug` "drug N is outside a library's 16"; `name` "drug name
# ... must be 1-24 lowercase letters, digits or '-'"; the field at fault named
# with the drug (e.g. `morphine daily_soft` "morphine: daily_soft {r20000000}
# is above daily_hard {r15000000}"): a soft limit above its hard limit,
# bolus_hard or patient_dose_hard above daily_hard, max_concentration,
# daily_hard or rate_hard zero, rate_hard below daily_hard spread over 24 h, a
# lockout above 400 days, more than 24 patient boluses a day. A refused drug
# is not staged.
#
# **Notes:** drug 0 starts a new library. Any LIB_DRUG drops a staged library
# (stage it again). Dropped when the session ends.
def lib_drug(pump, values):
    """Stage one drug of a new library, its numbers checked; drug 0 starts a new staging."""
    drug = values[0]
    if drug >= MAX_DRUGS:
        raise Refusal("drug", "drug %d is outside a library's %d" % (drug, MAX_DRUGS))
    d = DrugLimits(values[1], values[2:])
    check_drug(d)
    staging = pump.staging
    drugs: list = staging.lib_drugs if drug and staging.lib_drugs is not None else [None] * MAX_DRUGS
    drugs[drug] = d
    staging.lib_drugs = drugs
    staging.library = None  # a staged library is checked again after any change of its drugs
    return (MAX_DRUGS - drugs.count(None),)


def check_drug(d):
    """Refuse (Refusal naming the drug and field) limits that contradict each other."""
    name = d.name
    if not name or len(name) > _MAX_NAME or not _is_name(name):
        raise Refusal("name", "drug name %r must be 1-%d lowercase letters, digits or '-'" % (name, _MAX_NAME))
    n = d.numbers
    if n[0] == 0:
        raise Refusal(name + " max_concentration", "%s: max_concentration must be above zero" % name)
    _ordered(d, 2, 3)  # daily_soft <= daily_hard
    _ordered(d, 4, 5)  # rate_soft <= rate_hard
    _ordered(d, 6, 7)  # bolus_soft <= bolus_hard
    _ordered(d, 7, 3)  # bolus_hard <= daily_hard
    _ordered(d, 8, 3)  # patient_dose_hard <= daily_hard
    if d.daily_hard_ng == 0 or d.rate_hard_ng_per_day == 0:
        raise Refusal(name + " daily_hard", "%s: daily_hard and rate_hard must be above zero" % name)
    # A continuous program at the daily limit must fit under the rate limit.
    if d.rate_hard_ng_per_day < d.daily_hard_ng:
        raise Refusal(
            name + " rate_hard",
            "%s: rate_hard %s is below daily_hard %s spread over 24 h" % (name, _shown(5, n[4]), _shown(3, n[2])),
        )
    if n[8] > _MAX_LOCKOUT_S:
        raise Refusal(
            name + " patient_lockout_min", "%s: patient_lockout_min %s is above 400 day" % (name, _shown(9, n[8]))
        )
    if n[9] > MAX_PATIENT_BOLUSES_PER_DAY:
        raise Refusal(
            name + " patient_max_per_day",
            "%s: patient_max_per_day %d is above %d" % (name, n[9], MAX_PATIENT_BOLUSES_PER_DAY),
        )


def _ordered(d, low, high):
    """Refuse drug d if its field low (codec.LIBRARY_FIELDS) is above its field high."""
    if d.numbers[low - 1] > d.numbers[high - 1]:
        low_name = codec.LIBRARY_FIELDS[low]
        raise Refusal(
            d.name + " " + low_name,
            "%s: %s %s is above %s %s"
            % (
                d.name,
                low_name,
                _shown(low, d.numbers[low - 1]),
                codec.LIBRARY_FIELDS[high],
                _shown(high, d.numbers[high - 1]),
            ),
        )


def _shown(field, number):
    return "{%s%d}" % (_TOKEN[field], number) if field < len(_TOKEN) else "%d" % number


def _is_name(name):
    for ch in name:
        if not ("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "-"):
            return False
    return True


# Checks the drugs LIB_DRUG staged as a library, beside
# the one in force (the first step); nothing changes yet.
#
# Request:
# version: a name for the new library, 1-40 bytes of UTF-8, not the version in force; logged with every program
# drugs: how many drugs it holds, 1..16: drugs 0..drugs-1 must be staged
#
# Reply:
# library_hash: its `library_hash` (the host computes it from what it sent, and compares)
# drugs: its drugs
# changed: fields that differ from the library in force (a drug in only one of them: all 11 of its fields)
# raised: hard limits raised (LIB_GET `raised`): LIB_COMMIT then needs `confirm_raise`
# expires_in_s: seconds until the staged library is dropped unless committed (600)
#
# **Refusals:** `library` "drug N is not staged"; `name` "drug D is in the
# library twice"; `version` "library version ... must be 1-40 bytes of UTF-8", "library V is
# the version in force: give the new library a new version", "V is the
# factory library's version: give this library its own" (other content under
# the factory version); `library` "a library needs at least one drug", "a
# library holds at most 16 drugs, not N"; and, the field prefixed "running ",
# the running program's refusal under the new library (e.g. `running daily
# dose` "daily dose of morphine 12 mg/day is above the hard limit of 10 mg/day
# (library V)") or a drug in the reservoir that it lacks (`running drug`).
#
# **Notes:** the staged drugs are consumed: to stage again, send them again.
# The staged library is dropped after 10 min, by any LIB_DRUG, and when the
# session ends. What was delivered in the last 24 h is not checked against
# lowered limits here; the dose guard holds it to them from the commit on.
def lib_stage(pump, values):
    """Check the staged drugs as a library, beside the one in force; nothing changes yet."""
    version, drugs = values
    pump.staging.library = None
    staged = pump.staging.lib_drugs
    if drugs > MAX_DRUGS:
        raise Refusal("library", "a library holds at most %d drugs, not %d" % (MAX_DRUGS, drugs))
    for d in range(drugs):
        if staged is None or staged[d] is None:
            raise Refusal("library", "drug %d is not staged" % d)
    library = Library(version, staged[:drugs] if drugs else [])
    staged = None
    pump.staging.lib_drugs = None  # in the Library now; the host sends them again to stage again
    if version == pump.library.version:
        raise Refusal("version", "library %s is the version in force: give the new library a new version" % version)
    if version == pump.default_library_version and library.hash != pump.default_library_hash:
        raise Refusal("version", "%s is the factory library's version: give this library its own" % version)
    read = _check_library(pump, library)
    changed, raised = changes(pump.library, library)
    pump.tick()
    pump.staging.library = (library, changed, raised, pump.timebase.total_us() + STAGED_TTL_US, read)
    return (library.hash, drugs, changed, raised, STAGED_TTL_US // 1_000_000)


def _check_library(pump, library, read=None):
    """Refuse a library under which the running therapy would not be admitted: its
    program's values (checked again, its lines not read: no parser is loaded), the drugs in
    the reservoir, and its deliveries from now on with what was delivered in the last 24 h,
    checked by the dose guard against the new library's limits (without a copy of the guard:
    a board has no room for one). The refusal's field starts with "running ".

    Returns what it found of the running program under the new library, for the next check:
    (the running program, its blend, the bridge's, the program under the new library: the same
    lines and numbers, its library and that library's soft-limit warnings), or None if none
    runs. read: such a tuple from the check at LIB_STAGE, taken again at LIB_COMMIT if the same
    program and blends still run (only the last 24 h moved on): so a commit loads no checks'
    code, which on the emulated Pico found no room after a long session."""
    t = pump.therapy
    try:
        if t.program is None:
            read = None
        elif read is None or read[0] is not t.program or read[1] != t.drugs or read[2] != t.bridge_drugs:
            program = recheck_program(t.program, library, t.drugs, t.bridge_drugs)
            read = (t.program, list(t.drugs), t.bridge_drugs, program)
        fluid = t.fluid()
        if fluid:  # each drug in the reservoir must be in it, and its limits must hold
            limits = pump.guard.limits_for(pump.guard_limits(fluid, library))
            pump.tick()
            pump.admit(t.fork(), pump.timebase.total_us(), limits=limits)
    except Refusal as e:
        raise Refusal("running " + e.field, e.message) from None
    return read


# Puts the staged library in force (the second step).
#
# Request:
# library_hash: the `library_hash` LIB_STAGE gave: proof the host commits what it reviewed
# confirm_raise: 1 to confirm the hard limits raised; needed if LIB_STAGE counted any
#
# Reply:
# version: the library now in force
# drugs: its drugs
# library_hash: its content hash
#
# **Refusals:** `library` "no library is staged"; `library` "the staged
# library expired after 10 min without a commit; stage it again";
# `library_hash` "library_hash X is not the staged library's Y";
# `confirm_raise` "N hard limit(s) raised need confirm_raise=1"; and the
# running therapy's refusals of LIB_STAGE, checked again. The library in
# force is unchanged after a refusal.
#
# **Notes:** logged (event 9) as "library V hash H: N fields changed, M hard
# limits raised". A program staged and not yet committed is dropped (COMMIT
# then says ": the library changed; stage it again"): it was checked against
# the old library. The dose guard takes the new limits at once.
def lib_commit(pump, values):
    library_hash, confirm = values
    pump.tick()
    if pump.staging.library is None:
        raise Refusal("library", "no library is staged")
    library, changed, raised, expires, read = pump.staging.library
    if pump.timebase.total_us() >= expires:
        pump.staging.library = None
        raise Refusal("library", "the staged library expired after 10 min without a commit; stage it again")
    if library_hash != library.hash:
        raise Refusal(
            "library_hash", "library_hash %08x is not the staged library's %08x" % (library_hash, library.hash)
        )
    if raised and confirm != 1:
        raise Refusal("confirm_raise", "%d hard limit(s) raised need confirm_raise=1" % raised)
    read = _check_library(pump, library, read)  # the therapy and the last 24 h moved on since staging
    pump.library = library
    if read is not None:  # it runs on, under the library now in force (what a restart reads it as)
        pump.therapy.program = read[3]
    pump.staging.lib_drugs = None
    pump.staging.library = None
    if pump.staging.program is not None:  # it was checked against the old library
        pump.staging.program = None
        pump.staging.dropped = ": the library changed; stage it again"
    pump.guard_fluid = None  # reconfigure the guard with the new limits
    pump.sync_fluid()
    pump.log_event(
        eventlog.EV_LIBRARY,
        "library %s hash %08x: %d fields changed, %d hard limits raised"
        % (library.version, library.hash, changed, raised),
    )
    return (library.version, len(library.order), library.hash)


# Reads one drug of the library in force or of the staged one.
#
# Request:
# drug: the drug's number, from 0
# which: 0 the library in force (`LIB_IN_FORCE`), 1 the staged one (`LIB_STAGED`)
#
# Reply:
# version: version of that library
# drugs: how many drugs it holds
# name: the drug's name
# max_concentration_ng_per_ml: as LIB_DRUG
# daily_soft_ng_per_day: as LIB_DRUG
# daily_hard_ng_per_day: as LIB_DRUG
# rate_soft_ng_per_day: as LIB_DRUG
# rate_hard_ng_per_day: as LIB_DRUG
# bolus_soft_ng: as LIB_DRUG
# bolus_hard_ng: as LIB_DRUG
# patient_dose_hard_ng: as LIB_DRUG
# patient_lockout_s: as LIB_DRUG
# patient_max_per_day: as LIB_DRUG
# changed: staged only: bit f set where field f differs from the library in force (above)
# raised: staged only: bit f set where field f loosens a hard limit
# in_use: 1 if the drug is in the reservoir
#
# **Refusals:** `drug` "drug N does not exist; the library has K drugs"; `which` "no library is staged", "which must
#     be 0 (in force) or 1
# (staged), not N".
def lib_get(pump, values):
    drug, which = values
    if which == codec.LIB_IN_FORCE:
        lib = pump.library
    elif which == codec.LIB_STAGED:
        if pump.staging.library is None:
            raise Refusal("which", "no library is staged")
        lib = pump.staging.library[0]
    else:
        raise Refusal("which", "which must be 0 (in force) or 1 (staged), not %d" % which)
    if drug >= len(lib.order):
        raise Refusal("drug", "drug %d does not exist; the library has %d drugs" % (drug, len(lib.order)))
    d = lib.drugs[lib.order[drug]]
    changed, raised = drug_changes(pump.library, d) if which == codec.LIB_STAGED else (0, 0)
    in_use = 0
    for name, _conc in pump.therapy.fluid():
        if name == d.name:
            in_use = 1
    return (lib.version, len(lib.order), d.name) + d.numbers + (changed, raised, in_use)


COMMANDS = (
    (codec.LIB_DRUG, lib_drug, 0),
    (codec.LIB_STAGE, lib_stage, 0),
    (codec.LIB_COMMIT, lib_commit, SAVES),
    (codec.LIB_GET, lib_get, 0),
)
