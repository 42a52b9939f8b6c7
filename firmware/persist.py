# What a restart needs, as the sections of one store record (store.py), and
# how to put it back. Taken at every durable point: a commit, a stop, a
# patient bolus, a clock set, an alarm or its acknowledgement, a library, and
# each new dose reservation (app.py, _reserve).
#
#   META     pump time of the record, steps reserved and not yet delivered,
#            reservoir fill, alarm, the blend the program was checked against
#   PROGRAM  empty (a record of protocol 8's firmware: the committed program's canonical lines, with
#            PROGRAM_VALUES, what that firmware made of them after its version: read from those
#            values, this firmware having no parser; a program it cannot read so is not run: the pump
#            comes up stopped with ALARM_PROGRAM_UNREAD, the rest of the record restored)
#   PROGRAM_ITEMS  the committed program as its items' numbers (Program.saved): the library
#            version it was checked with, a line per item, a line per soft-limit warning
#   THERAPY  the running therapy's own state: flex day, bolus, bridge, trial,
#            clock offset, patient-bolus times
#   GUARD    the dose guard's ring position, latched trip and counts, the
#            drugs that left the fluid (with their saturation flags)
#   RING     the guard's 2400 buckets, as their bytes: u16 little-endian (4.8 KB); a record of
#            format 4 or older has them as u32 (9.6 KB), read alike (guard_records.read_ring)
#   LOG      the event log's ring: its count, then its entries' lines (eventlog.py's ring, at
#            most 2 KB; older entries are in the therapy log in flash, archive.py). A record
#            written before the ring was one buffer has them in sections of 32 entries (tags
#            LOG..LOG+3), read alike
#   LIBRARY_LIMITS  a site library (absent for the factory library, same version and
#            content hash): its version, then a line per drug, its name and its numbers as
#            LIB_DRUG carries them. A record written while the pump held a library as text
#            has LIBRARY (the texts) and LIBRARY_NUMBERS (their numbers, the lockout in us)
#            instead: read from the names of the one and the numbers of the other
#   ALARMS   the latched alarms, one line each (alarms.py); a record written
#            before alarms could be several holds the one in META instead
#   MONITOR  the reservoir marks and what the monitors hold between checks
#   LAST_ITEMS  while stopped: the last program that dosed, as PROGRAM_ITEMS (resume). A record of
#            protocol 8's firmware has LAST_PROGRAM, its lines: not read (a resume then has nothing
#            to run again, and says so)
#
# Every section but RING is text: "key value" lines, values as decimal
# integers ("-" for none) or escaped strings, so a record can be read by eye
# and long ints need no fixed width. Command path only: allocates freely.
#
# Putting a record back is restore.py's, loaded only by the boot (lazy.TRANSIENT): this
# module, on the heap from the first save on, writes.

from firmware import const
from firmware.eventlog import esc as _esc
from firmware.store import Pieces
from firmware.therapy import INT_STATE, OPTIONAL_INT_STATE

TAG_META = 1
TAG_PROGRAM = 2
TAG_THERAPY = 3
TAG_GUARD = 4
TAG_RING = 5
TAG_LIBRARY = 7  # written before the library was numbers: read, not written
TAG_ALARMS = 8
TAG_MONITOR = 9
TAG_LIBRARY_NUMBERS = 10  # the same
TAG_PROGRAM_VALUES = 11  # written by protocol 8's firmware: read, not written
TAG_LIBRARY_LIMITS = 12
TAG_LAST_PROGRAM = 13  # the lines of the last program that dosed (protocol 8's firmware): not read
TAG_PROGRAM_ITEMS = 14
TAG_LAST_ITEMS = 15  # the last program that dosed, while a stop replaces it (Therapy.last_program)
TAG_LOG = 16  # and up to TAG_LOG + 3: a record written before the log was one ring has it in 4 sections

FORMAT = 5  # bumped when a section's meaning changes; an unknown format is not restored
# 2: the guard's ring may hold saturated buckets and a departed drug carries their flags;
# a format 1 record has neither, so it still reads as one of format 2 with no flags.
# 3: a site library is LIBRARY_LIMITS, numbers (a firmware that reads only 1 and 2 would take the
# factory library in its place, so it must not restore such a record).
# 4: a LOG line has the device clock after its code ("-" before the clock was set).
# 5: RING's buckets are u16 (a firmware that reads only 1 to 4 would refuse the ring by its length:
# the format says why first).
# (restore.py reads each of these formats.)

# A site library's drug in LIBRARY_LIMITS: a line of its name and its numbers (these after its name):
# codec.LIBRARY_LIMITS of them (a test keeps them equal).
_LIBRARY_NUMBERS = const(",%d,%d,%d,%d,%d,%d,%d,%d,%d,%d")
# The text sections' formats: "key value" lines, as _fields() reads them ("-" for None).
_META = const(
    "format %s\nmday %s\nus %s\nreserved_steps %s\nfill_nl %s\nfill_steps %s\nalarm %s\nparsed_with %s\n"
    "library_version %s\nstep_pl %s"
)
# THERAPY: therapy.INT_STATE's, then OPTIONAL_INT_STATE's values, then the drugs, the bridge's and the patient's
# bolus times (restore.py reads them by key; a test keeps the keys equal to the therapy's).
_THERAPY = const(
    "day_start %s\nday_end %s\nbolus_kind %s\nbolus_rate %s\nbolus_start %s\nbolus_end %s\nbolus_volume_nl %s\n"
    "bridge_left %s\nbridge_mark %s\nclock_offset_us %s\ntrial_end %s\ndrugs %s\nbridge_drugs %s\npatient_times %s"
)
# GUARD: DoseGuard.saved_state()'s seven ints (one format: no string per int), then the departed drugs.
_GUARD = const("ints %d,%d,%d,%d,%d,%d,%d\ndeparted ")
# MONITOR: motor_watch.saved_state()'s ints, in its order (one format: no dict, no line per value).
_MONITOR = const("hold %d\nhold_since_us %d\nheld_steps %d")


def sections(app, reserved_steps):
    """The record for app's state now, with reserved_steps reserved ahead."""
    t = app.therapy
    tb = app.timebase
    # Each text section is made by one format of its own (made once, below): a dict and a line per
    # value were most of a save's garbage, and a save comes with each reservation while dosing.
    meta = _META % (
        FORMAT,
        tb.mday,
        tb.us,
        reserved_steps,
        "-" if app.fill_nl is None else app.fill_nl,
        app.fill_steps,
        app.alarm,
        _drugs_text(app.program_old_drugs),
        app.library.version,
        app.sched.step_pl,  # the calibrated volume per step
    )
    values = [getattr(t, name) for name in INT_STATE]
    for name in OPTIONAL_INT_STATE:
        v = getattr(t, name)
        values.append("-" if v is None else v)
    values.append(_drugs_text(t.drugs))
    values.append("-" if t.bridge_drugs is None else _drugs_text(t.bridge_drugs))
    times = t.patient_times  # none or one, as most saves find them: no generator, no join
    values.append(("%d" % times[0] if len(times) == 1 else ",".join(str(v) for v in times)) if times else "")
    therapy = _THERAPY % tuple(values)
    values = None
    ints, departed, ring = app.guard.saved_state()
    guard = _GUARD % ints + ";".join("%s:%d:%d:%d:%d:%d" % d for d in departed)
    p = t.program
    out = [
        (TAG_META, meta.encode()),
        (TAG_PROGRAM, b""),  # a firmware of protocol 8 restored stopped, not with another program
        (TAG_THERAPY, therapy.encode()),
        (TAG_GUARD, guard.encode()),
        (TAG_RING, ring),  # the guard's Pieces: its chunks of u16, as they are
        # none latched, as most saves find them: no list, no join
        (TAG_ALARMS, "\n".join(_esc(line) for line in app.alarms.saved()).encode() if app.alarms.count() else b""),
        (TAG_MONITOR, (_MONITOR % app.monitors.motor_watch.saved_state()).encode()),
    ]
    if p is not None:
        out.append((TAG_PROGRAM_ITEMS, _saved(p)))
    if t.last_program is not None:
        out.append((TAG_LAST_ITEMS, _saved(t.last_program)))
    log = app.log  # its count, then its lines as they lie in its ring: written as they are
    pieces = [("%d" % log.count).encode()]
    n = len(pieces[0])
    lines = memoryview(log.ring())
    spans = log.spans()
    if spans:
        pieces.append(b"\n")
        n += 1
    for start, end in spans:  # a first of two spans ends with its last line's newline
        pieces.append(lines[start:end])
        n += end - start
    out.append((TAG_LOG, Pieces(n, pieces)))
    lib = app.library
    if lib.version != app.default_library_version or lib.hash != app.default_library_hash:
        if lib.saved is None:  # made at its first save and kept: a library never changes
            # The version, then for each drug a newline, its name and its numbers (one format), joined
            # once: no row made of the name and the numbers (the factory's 8 drugs: 2.1 -> 1.3 KB).
            order = lib.order
            parts = ["\n"] * (1 + 3 * len(order))
            parts[0] = _esc(lib.version)
            for i in range(len(order)):
                parts[2 + 3 * i] = order[i]
                parts[3 + 3 * i] = _LIBRARY_NUMBERS % lib.drugs[order[i]].numbers
            lib.saved = "".join(parts).encode()
        out.append((TAG_LIBRARY_LIMITS, lib.saved))
    return out


def _saved(p):
    """Program p's PROGRAM_ITEMS section: what its check wrote (program_write.saved); a program of a
    record of protocol 8's firmware (program_saved.from_values) is written once, at its first save."""
    return p.understood()


# -- text encoding --------------------------------------------------------------


def _drugs_text(drugs):
    if len(drugs) == 1:  # the most blends: one format, not a generator and a join
        d = drugs[0]
        return "%s:%d" % (d[0], d[1])
    return ",".join("%s:%d" % (name, conc) for name, conc in drugs)
