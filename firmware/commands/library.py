# The drug library (library.py): stage a new one field by field, check it
# beside the one in force, commit it, read either. A library change is a
# programming session of its own: staged, checked, committed with its hash.

from firmware import codec, eventlog
from firmware.commands import SAVES, STAGED_TTL_US
from firmware.errors import Refusal
from firmware.library import MAX_DRUGS, MAX_PATIENT_BOLUSES_PER_DAY, DrugLimits, Library, changes, drug_changes
from firmware.program import recheck_program

_MAX_NAME = 24
_MAX_LOCKOUT_S = 400 * 86_400  # the longest duration a person can type (units.MAX_DURATION_DAYS)
# How a refusal shows field f's number (codec.LIBRARY_FIELDS): a token pumpctl renders in a
# clinician's units (host/pumpctl/words.py): k ng/mL, r ng/day per day, h ng/day per hour, g ng,
# s seconds; a count as it is.
_TOKEN = " krrhhgggs"


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
