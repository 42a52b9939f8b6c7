# The drug library (library.py): stage a new one field by field, check it
# beside the one in force, commit it, read either. A library change is a
# programming session of its own: staged, checked, committed with its hash.

from firmware import codec, eventlog
from firmware.commands import SAVES, STAGED_TTL_US, StagedTexts
from firmware.errors import Refusal
from firmware.library import FIELD_NAMES, MAX_DRUGS, Library, changes, field_change
from firmware.program import recheck_program


def lib_field(pump, values):
    drug, field, text = values
    if drug >= MAX_DRUGS or field >= len(FIELD_NAMES):
        raise Refusal(
            "field", "drug %d field %d is outside %d drugs x %d fields" % (drug, field, MAX_DRUGS, len(FIELD_NAMES))
        )
    staging = pump.staging
    if (drug == 0 and field == 0) or staging.lib_fields is None:
        staging.lib_fields = StagedTexts(MAX_DRUGS * len(FIELD_NAMES))
    staging.library = None  # a staged library is checked again after any change of its fields
    staging.lib_fields.put(drug * len(FIELD_NAMES) + field, text)
    return (staging.lib_fields.count,)


def lib_stage(pump, values):
    """Check the staged fields as a library, beside the one in force; nothing changes yet."""
    version, drugs = values
    pump.staging.library = None
    entries = []
    staged = pump.staging.lib_fields
    for d in range(drugs):
        fields = []
        for f in range(len(FIELD_NAMES)):
            text = None if staged is None else staged.get(d * len(FIELD_NAMES) + f)
            if text is None:
                raise Refusal("library", "drug %d is missing field %s" % (d, FIELD_NAMES[f]))
            fields.append(text)
        entries.append(fields)
    library = Library(version, entries)
    entries = None
    staged = None
    pump.staging.lib_fields = None  # in the Library now; the host sends them again to stage again
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
    pump.staging.lib_fields = None
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
    drug, field, which = values
    if which == codec.LIB_IN_FORCE:
        lib = pump.library
    elif which == codec.LIB_STAGED:
        if pump.staging.library is None:
            raise Refusal("which", "no library is staged")
        lib = pump.staging.library[0]
    else:
        raise Refusal("which", "which must be 0 (in force) or 1 (staged), not %d" % which)
    if drug >= len(lib.order) or field >= len(FIELD_NAMES):
        raise Refusal(
            "drug", "drug %d field %d does not exist; the library has %d drugs" % (drug, field, len(lib.order))
        )
    d = lib.drugs[lib.order[drug]]
    change = field_change(pump.library, d, field) if which == codec.LIB_STAGED else 0
    for name, _conc in pump.therapy.fluid():
        if name == d.name:
            change |= codec.LIB_IN_USE
    return (lib.version, len(lib.order), d.text[field], change)


COMMANDS = (
    (codec.LIB_FIELD, lib_field, 0),
    (codec.LIB_STAGE, lib_stage, 0),
    (codec.LIB_COMMIT, lib_commit, SAVES),
    (codec.LIB_GET, lib_get, 0),
)
