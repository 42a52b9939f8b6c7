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

from firmware.codec import LIBRARY_LIMITS
from firmware.errors import Refusal
from firmware.eventlog import esc as _esc
from firmware.eventlog import unesc as _unesc
from firmware.lazy import call
from firmware.library import DrugLimits, Library
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
TAG_LOG = 16  # and up to TAG_LOG + _LOG_SECTIONS - 1
_LOG_PER_SECTION = 32  # the sections of 32 entries a record may hold (written before the log was one ring)
_LOG_SECTIONS = 4  # a ring of 128 entries, as those records held

FORMAT = 5  # bumped when a section's meaning changes; an unknown format is not restored
# 2: the guard's ring may hold saturated buckets and a departed drug carries their flags;
# a format 1 record has neither, so it still reads as one of format 2 with no flags.
# 3: a site library is LIBRARY_LIMITS, numbers (a firmware that reads only 1 and 2 would take the
# factory library in its place, so it must not restore such a record).
# 4: a LOG line has the device clock after its code ("-" before the clock was set).
# 5: RING's buckets are u16 (a firmware that reads only 1 to 4 would refuse the ring by its length:
# the format says why first).
_READS = (1, 2, 3, 4, 5)


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


# A site library's drug in LIBRARY_LIMITS: a line of its name and its numbers (these after its name).
_LIBRARY_NUMBERS = ",%d" * LIBRARY_LIMITS
# The text sections' formats: "key value" lines, as _fields() reads them ("-" for None).
_META = "\n".join(
    k + " %s"
    for k in (
        "format",
        "mday",
        "us",
        "reserved_steps",
        "fill_nl",
        "fill_steps",
        "alarm",
        "parsed_with",
        "library_version",
        "step_pl",
    )
)
# GUARD: DoseGuard.saved_state()'s seven ints (one format: no string per int), then the departed drugs.
_GUARD = "ints %d,%d,%d,%d,%d,%d,%d\ndeparted "
# MONITOR: motor_watch.saved_state()'s ints, in its order (one format: no dict, no line per value).
_MONITOR = "hold %d\nhold_since_us %d\nheld_steps %d"
_THERAPY = "\n".join(k + " %s" for k in INT_STATE + OPTIONAL_INT_STATE + ("drugs", "bridge_drugs", "patient_times"))


def restore(app, record):
    """Put a loaded record's state back into a freshly built app; return the
    META values (pump time, reserved steps) for the caller to resume from."""
    meta = _fields(record[TAG_META])
    if int(meta["format"]) not in _READS:
        raise ValueError("state format %s, this firmware reads %d" % (meta["format"], FORMAT))
    if TAG_LIBRARY_LIMITS in record or TAG_LIBRARY in record:
        app.library = _library(record)
    t = app.therapy
    th = _fields(record[TAG_THERAPY])
    for name in INT_STATE:
        setattr(t, name, int(th[name]))
    for name in OPTIONAL_INT_STATE:
        setattr(t, name, _opt_int(th[name]))
    t.drugs = _drugs(th["drugs"])
    t.bridge_drugs = None if th["bridge_drugs"] == "-" else _drugs(th["bridge_drugs"])
    t.patient_times = [int(v) for v in th["patient_times"].split(",") if v]
    app.program_old_drugs = _drugs(meta["parsed_with"])
    # A program it cannot read is never run: the pump comes up stopped (boot.py raises ALARM_PROGRAM_UNREAD),
    # the rest of the record (the dose guard's history above all) restored.
    app.program_unread = None
    program = None
    try:
        if TAG_LAST_ITEMS in record:
            t.last_program = _from_saved(record[TAG_LAST_ITEMS])
        program_text = bytes(record[TAG_PROGRAM]).decode()
        if TAG_PROGRAM_ITEMS in record:
            program = _from_saved(record[TAG_PROGRAM_ITEMS])
        elif program_text:  # protocol 8's firmware: its lines, and what it made of them
            lines = [_unesc(line) for line in program_text.split("\n")]
            values = record.get(TAG_PROGRAM_VALUES)
            program = None if values is None else _program_from_values(values, lines, app.library.version)
            if program is None:
                app.program_unread = "the saved program could not be read after an update: send it again"
    except (ValueError, IndexError, UnicodeError, Refusal):  # not a program (a bug wrote it): the same
        program = None
        app.program_unread = "the saved program could not be read: send it again"
    if app.program_unread is not None:
        t.last_program = None
        _stopped(t)
    t.program = program
    g = _fields(record[TAG_GUARD])
    ints = tuple(int(v) for v in g["ints"].split(","))
    departed = []
    for d in g["departed"].split(";") if g["departed"] else ():
        name, conc, day, hour, end, *sat = d.split(":")  # format 1: no saturation flags
        departed.append((name, int(conc), int(day), int(hour), int(end), int(sat[0]) if sat else 0))
    fluid = t.fluid()
    step_pl = int(meta.get("step_pl", app.sched.step_pl))  # a record from before calibration: the board's
    if step_pl != app.sched.step_pl:
        app.set_step_volume(step_pl)  # the ring below is in steps of this volume
    app.guard.restore(ints, departed, record[TAG_RING], app.guard_limits(fluid))
    app.guard_fluid = list(fluid)
    app.fill_nl = _opt_int(meta["fill_nl"])
    app.fill_steps = int(meta["fill_steps"])
    if TAG_ALARMS in record:
        text = record[TAG_ALARMS].decode()
        app.alarms.restore([_unesc(line) for line in text.split("\n")] if text else [])
    elif int(meta["alarm"]):
        app.alarms.raise_alarm(int(meta["alarm"]), 0, "restored from an older record")
    if TAG_MONITOR in record:
        app.monitors.motor_watch.restore({k: _opt_int(v) for k, v in _fields(record[TAG_MONITOR]).items()})
    parts = [record[TAG_LOG + k] for k in range(_LOG_SECTIONS) if TAG_LOG + k in record]
    _restore_log(app.log, parts, int(meta["format"]) >= 4)
    return int(meta["mday"]), int(meta["us"]), int(meta["reserved_steps"])


def _restore_log(log, parts, clock):
    """Put back the LOG sections present (in order): their lines, split at newlines across all
    of them, are the count and then the entries. Each entry is taken from its section's bytes
    (put_line), not from a decoded copy of the whole log. clock: the lines carry the device clock
    (format 4). A record of an older firmware may hold more entries than the ring: those that
    make the record go to the archive as they leave it."""
    rows = len(parts)  # lines in all: each section has one more than its newlines
    for data in parts:
        rows += data.count(b"\n")
    first = parts[0]  # no LOG section: IndexError, a bad record
    end = first.find(b"\n")
    count = int(first[:end] if end >= 0 else first)
    log.count = log.first = count - (rows - 1)
    start = end + 1 if end >= 0 else len(first) + 1  # the first entry, after the count
    for data in parts:
        mv = memoryview(data)
        n = len(data)
        while start <= n:
            end = data.find(b"\n", start)
            if end < 0:
                end = n
            log.put_line(mv[start:end], clock)
            start = end + 1
        start = 0
    if log.count != count:
        raise ValueError("event log of %d entries does not end at %d" % (rows - 1, count))
    log.after_restore()


def _library(record):
    """The site library of a record (LIBRARY_LIMITS, or the two sections of a record written while
    the library was text: names from the one, numbers from the other)."""
    if TAG_LIBRARY_LIMITS in record:
        rows = record[TAG_LIBRARY_LIMITS].decode().split("\n")
        drugs = []
        for row in rows[1:]:
            cells = row.split(",")
            drugs.append(DrugLimits(cells[0], [int(v) for v in cells[1:]]))
        lib = Library(_unesc(rows[0]), drugs)
        lib.saved = record[TAG_LIBRARY_LIMITS]  # as its first save would make it again
        return lib
    if TAG_LIBRARY_NUMBERS not in record:
        raise ValueError("a library saved as text only: this firmware reads numbers")
    rows = record[TAG_LIBRARY].decode().split("\n")
    numbers = record[TAG_LIBRARY_NUMBERS].decode().split("\n")
    if len(numbers) != len(rows):
        raise ValueError("a library of %d drugs with %d lines of numbers" % (len(rows) - 1, len(numbers) - 1))
    drugs = []
    for i in range(1, len(rows)):
        n = [int(v) for v in numbers[i].split(",")]
        n[8] = -(-n[8] // 1_000_000)  # the lockout was kept in us: rounded up, never shortened
        drugs.append(DrugLimits(_unesc(rows[i].split("\t")[0]), n))
    return Library(_unesc(rows[0]), drugs)


def _saved(p):
    """Program p's PROGRAM_ITEMS section: what its check wrote (program_write.saved); a program of a
    record of protocol 8's firmware (program_saved.from_values) is written once, at its first save."""
    return p.understood()


def _from_saved(data):
    return call("firmware.program_saved", "from_saved", data, _unesc)


def _program_from_values(data, lines, library_version):
    """The Program of a PROGRAM_VALUES section of protocol 8's firmware, or None (program_saved.py, for
    the call: read once, at the first restart after the update)."""
    return call("firmware.program_saved", "from_values", data, lines, library_version, _unesc)


def _stopped(t):
    """Therapy t with no program: no bolus, bridge or trial goes on (the blend stays in the reservoir)."""
    t._end_bolus()
    t.bridge_left = 0
    t.bridge_drugs = None
    t.trial_end = None


# -- text encoding --------------------------------------------------------------


def _fields(data):
    out = {}
    for line in data.decode().split("\n"):
        key, _, value = line.partition(" ")
        out[key] = value
    return out


def _opt_int(text):
    return None if text == "-" else int(text)


def _drugs_text(drugs):
    if len(drugs) == 1:  # the most blends: one format, not a generator and a join
        d = drugs[0]
        return "%s:%d" % (d[0], d[1])
    return ",".join("%s:%d" % (name, conc) for name, conc in drugs)


def _drugs(text):
    out = []
    for item in text.split(",") if text else ():
        name, _, conc = item.partition(":")
        out.append((name, int(conc)))
    return out
