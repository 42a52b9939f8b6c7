# What a restart needs, as the sections of one store record (store.py), and
# how to put it back. Taken at every durable point: a commit, a stop, a
# patient bolus, a clock set, an alarm or its acknowledgement, a library, and
# each new dose reservation (app.py, _reserve).
#
#   META     pump time of the record, steps reserved and not yet delivered,
#            reservoir fill, alarm, the blend the program was parsed against
#   PROGRAM  the committed program's canonical lines
#   PROGRAM_VALUES  what this firmware made of those lines (program.py's Program: its numbers, its
#            review rows and warnings) after the firmware's version: a restart by the same firmware
#            takes them as they are instead of loading the parser and reading the lines again (about
#            40 KB of garbage on a 32-bit board); another version parses the lines
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
#   LAST_PROGRAM  while stopped: the lines of the last program that dosed, one each (resume)
#
# Every section but RING is text: "key value" lines, values as decimal
# integers ("-" for none) or escaped strings, so a record can be read by eye
# and long ints need no fixed width. Command path only: allocates freely.

from firmware.codec import LIBRARY_LIMITS
from firmware.eventlog import esc as _esc
from firmware.eventlog import unesc as _unesc
from firmware.library import DrugLimits, Library
from firmware.program import Program, parse_program
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
TAG_PROGRAM_VALUES = 11
TAG_LIBRARY_LIMITS = 12
TAG_LAST_PROGRAM = 13  # the lines of the last program that dosed, while a stop replaces it (Therapy.last_lines)
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
    values.append(",".join(str(v) for v in t.patient_times))
    therapy = _THERAPY % tuple(values)
    values = None
    ints, departed, ring = app.guard.saved_state()
    guard = _GUARD % ints + ";".join("%s:%d:%d:%d:%d:%d" % d for d in departed)
    p = t.program
    if p is not None and p.saved is None:  # made at its first save and kept: a program in force never changes
        p.saved = ("\n".join(_esc(line) for line in p.lines).encode(), _program_values(p))
    out = [
        (TAG_META, meta.encode()),
        (TAG_PROGRAM, p.saved[0] if p is not None else b""),
        (TAG_THERAPY, therapy.encode()),
        (TAG_GUARD, guard.encode()),
        (TAG_RING, ring),  # the guard's Pieces: its chunks of u16, as they are
        (TAG_ALARMS, "\n".join(_esc(line) for line in app.alarms.saved()).encode()),
        (TAG_MONITOR, (_MONITOR % app.monitors.motor_watch.saved_state()).encode()),
    ]
    if p is not None:
        out.append((TAG_PROGRAM_VALUES, p.saved[1]))
    if t.last_lines is not None:
        out.append((TAG_LAST_PROGRAM, "\n".join(_esc(line) for line in t.last_lines).encode()))
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
            rows = [_esc(lib.version)]
            for name in lib.order:
                rows.append(_LIBRARY_ROW % ((name,) + lib.drugs[name].numbers))  # one string a drug
            lib.saved = "".join(rows).encode()
        out.append((TAG_LIBRARY_LIMITS, lib.saved))
    return out


# A site library's drug in LIBRARY_LIMITS: a line of its name and its numbers.
_LIBRARY_ROW = "\n%s" + ",%d" * LIBRARY_LIMITS
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
    if TAG_LAST_PROGRAM in record:
        t.last_lines = [_unesc(line) for line in bytes(record[TAG_LAST_PROGRAM]).decode().split("\n")]
    program_text = record[TAG_PROGRAM].decode()
    app.program_old_drugs = _drugs(meta["parsed_with"])
    if program_text:
        lines = [_unesc(line) for line in program_text.split("\n")]
        values = record.get(TAG_PROGRAM_VALUES)
        program = None if values is None else _program_from_values(values, lines, app.library.version)
        if program is None:  # another firmware's record, or one from before the values were kept
            program = parse_program(lines, app.library, app.program_old_drugs, t.bridge_drugs)
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


# A Program's values, one line each after the firmware's version, in this order: the ints ("-" for
# None), each optional tuple as its ints joined by "," ("-" for None), the flex steps ("start,kind,
# per_day" joined by ";"), the blend, the library version, then one line per canonical line ("d" line
# TAB: the values are of these lines; what each means is written when a review asks) and per warning
# ("w" text), escaped.
_PROGRAM_INTS = ("no_drug", "fill_nl", "removed_nl", "low_nl", "empty_nl", "basal_kind", "bridge_nl", "trial_us")
_PROGRAM_TUPLES = ("basal", "bolus", "prime", "patient")


def _program_values(p):
    ints = " ".join("-" if getattr(p, n) is None else str(int(getattr(p, n))) for n in _PROGRAM_INTS)
    out = [_firmware_version(), ints]
    for name in _PROGRAM_TUPLES:
        v = getattr(p, name)
        out.append("-" if v is None else ",".join(str(x) for x in v))
    out.append(";".join("%d,%d,%d" % step for step in p.flex))
    out.append(_drugs_text(p.drugs))
    out.append(_esc(p.library_version))
    for line in p.lines:
        out.append("d%s\t" % _esc(line))
    for w in p.warnings:
        out.append("w" + _esc(w))
    return "\n".join(out).encode()


def _program_from_values(data, lines, library_version):
    """The Program a PROGRAM_VALUES section holds, or None if another firmware wrote it, or for
    other lines or under another library: the lines are then parsed again. A section of the wrong
    shape is a bad record (ValueError)."""
    rows = data.decode().split("\n")
    if rows[0] != _firmware_version() or len(rows) < 9 or _unesc(rows[8]) != library_version:
        return None
    p = Program()
    ints = rows[1].split(" ")
    if len(ints) != len(_PROGRAM_INTS):
        raise ValueError("program values: %d ints, not %d" % (len(ints), len(_PROGRAM_INTS)))
    for i in range(len(ints)):
        setattr(p, _PROGRAM_INTS[i], _opt_int(ints[i]))
    p.no_drug = bool(p.no_drug)
    for i in range(len(_PROGRAM_TUPLES)):
        v = rows[2 + i]
        setattr(p, _PROGRAM_TUPLES[i], None if v == "-" else tuple(int(x) for x in v.split(",")))
    p.flex = [tuple(int(x) for x in step.split(",")) for step in rows[6].split(";")] if rows[6] else []
    p.drugs = _drugs(rows[7])
    p.library_version = library_version
    of_lines = []  # the lines these values are of
    for row in rows[9:]:
        if row[:1] == "d":
            line, tab, _detail = row[1:].partition("\t")
            if not tab:
                raise ValueError("program values: a line's row without its tab")
            if line:
                of_lines.append(_unesc(line))
        elif row[:1] == "w":
            p.warnings.append(_unesc(row[1:]))
        else:
            raise ValueError("program values: unknown row %r" % row[:10])
    if of_lines != lines:
        return None  # not these lines' values: read the lines
    p.lines = lines
    return p


def _firmware_version():
    from firmware.app import FIRMWARE_VERSION  # loaded: the app runs

    return FIRMWARE_VERSION


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
    return ",".join("%s:%d" % (name, conc) for name, conc in drugs)


def _drugs(text):
    out = []
    for item in text.split(",") if text else ():
        name, _, conc = item.partition(":")
        out.append((name, int(conc)))
    return out
