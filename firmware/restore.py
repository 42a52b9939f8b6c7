# A saved record put back into a freshly built pump at a restart (persist.py writes it, and says
# what each section holds). Loaded by the boot only (lazy.TRANSIENT: boot.py runs it inside its own
# lazy.call, which forgets both after): a running pump never reads a record again, so this code is
# off the heap between restarts (about 3 KB of bytecode with the modules as .mpy in RAM).
# Command path only: allocates freely.

from firmware import const
from firmware.codec import ALARM_NONE, alarm_priority
from firmware.errors import Refusal
from firmware.eventlog import MAX_TEXT
from firmware.eventlog import _parse as _parse_line
from firmware.eventlog import unesc as _unesc
from firmware.lazy import call
from firmware.library import DrugLimits, Library
from firmware.persist import (
    FORMAT,
    TAG_ALARMS,
    TAG_GUARD,
    TAG_LAST_ITEMS,
    TAG_LIBRARY,
    TAG_LIBRARY_LIMITS,
    TAG_LIBRARY_NUMBERS,
    TAG_LOG,
    TAG_META,
    TAG_MONITOR,
    TAG_PROGRAM,
    TAG_PROGRAM_ITEMS,
    TAG_PROGRAM_VALUES,
    TAG_RING,
    TAG_THERAPY,
)
from firmware.therapy import INT_STATE, OPTIONAL_INT_STATE

_LOG_SECTIONS = 4  # a record written before the log was one ring: a ring of 128 entries in 4 sections of 32
_READS = const((1, 2, 3, 4, 5))  # the formats this firmware reads (persist.FORMAT: what each changed)


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
    call(
        "firmware.guard_records", "restore_guard", app.guard, ints, departed, record[TAG_RING], app.guard_limits(fluid)
    )
    app.guard_fluid = list(fluid)
    app.fill_nl = _opt_int(meta["fill_nl"])
    app.fill_steps = int(meta["fill_steps"])
    if TAG_ALARMS in record:
        text = record[TAG_ALARMS].decode()
        restore_alarms(app.alarms, [_unesc(line) for line in text.split("\n")] if text else [])
    elif int(meta["alarm"]):
        app.alarms.raise_alarm(int(meta["alarm"]), 0, "restored from an older record")
    if TAG_MONITOR in record:
        restore_motor_watch(app.monitors.motor_watch, {k: _opt_int(v) for k, v in _fields(record[TAG_MONITOR]).items()})
    parts = [record[TAG_LOG + k] for k in range(_LOG_SECTIONS) if TAG_LOG + k in record]
    _restore_log(app.log, parts, int(meta["format"]) >= 4)
    return int(meta["mday"]), int(meta["us"]), int(meta["reserved_steps"])


def _restore_log(log, parts, clock):
    """Put back the LOG sections present (in order): their lines, split at newlines across all
    of them, are the count and then the entries. Each entry is taken from its section's bytes
    (put_line()), not from a decoded copy of the whole log. clock: the lines carry the device clock
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
            put_line(log, mv[start:end], clock)
            start = end + 1
        start = 0
    if log.count != count:
        raise ValueError("event log of %d entries does not end at %d" % (rows - 1, count))
    after_restore(log)


def after_restore(log):
    """The log's ring is back: if it is of an older record than the archive's newest entry (a cut
    after an archive and before the next save), the log goes on above the archive, the ring
    emptied (what it held there is archived, or CHATTER). (Here, not in eventlog.py: a running
    pump never restores, so its bytecode stays off the heap.)"""
    archive = log.archive
    if archive is not None and archive.end > log.count:
        log.first = log.count = archive.end
        log._end = log._wrap = 0
    log.archived = log.count if archive is None else max(log.first, archive.end)


def restore_motor_watch(watch, fields):
    """Put back a MotorWatch.saved_state() into watch (a missing field: none)."""
    watch.hold = fields.get("hold") or ALARM_NONE
    watch._hold_since_us = fields.get("hold_since_us") or 0
    watch._held_steps = fields.get("held_steps") or 0


def restore_alarms(alarms, lines):
    """Put back what AlarmSet.saved() wrote into alarms. Silence is not restored: a restart sounds again."""
    entries = alarms._entries = []
    alarms.mask = 0
    for line in lines:
        code, raised_us, active, acked, text = line.split(" ", 4)
        c = int(code)
        if not alarm_priority(c):
            raise ValueError("alarm code %d is not known to this firmware" % c)
        entries.append([c, int(raised_us), text, active == "1", acked == "1"])
        alarms.mask |= 1 << c


def put_line(log, line, clock=True):
    """Add to log an entry from its saved line (bytes-like: a view of a LOG section's line). A line
    as add() writes it (_plain) is copied into the ring as it is (the log's own _put: this module is
    the one reader of saved lines); any other is read and written again by add(), as it always was.
    clock: the line has the clock field (a record written before entries had it: False). Here, not
    in eventlog.py, as only a restart reads saved lines."""
    if clock and _plain(line):
        log._put(line, _code_of(line))
        return
    if clock:
        mday, us, code, text, clock_s = _parse_line(line)
    else:
        mday, us, code, text = bytes(line).decode().split(" ", 3)
        mday, us, code, text, clock_s = int(mday), int(us), int(code), _unesc(text), None
    log.add(mday, us, code, text, clock_s)


def _code_of(line):
    """The code of a line as add() writes it (its third number), read in place."""
    i = 0
    for _ in range(2):
        while line[i] != 0x20:
            i += 1
        i += 1
    code = 0
    while line[i] != 0x20:
        code = code * 10 + line[i] - 0x30
        i += 1
    return code


def _plain(line):
    """True if add() would write line's entry again as the same bytes: three decimal numbers
    without a sign or leading zero, then a decimal number or "-" (the clock), a space after each,
    then at most MAX_TEXT bytes of ASCII text with no backslash or tab (nothing esc() changes).
    Reads the bytes in place."""
    n = len(line)
    i = 0
    for k in range(4):
        start = i
        if k == 3 and i < n and line[i] == 0x2D:  # "-": no clock
            i += 1
        else:
            while i < n and 0x30 <= line[i] <= 0x39:
                i += 1
            if i > start and line[start] == 0x30 and i - start > 1:
                return False
        if i == start or i == n or line[i] != 0x20:
            return False
        i += 1
    if n - i > MAX_TEXT:
        return False
    while i < n:
        c = line[i]
        if c >= 0x80 or c == 0x5C or c == 0x09:  # not ASCII, a backslash, a tab
            return False
        i += 1
    return True


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


def _fields(data):
    out = {}
    for line in data.decode().split("\n"):
        key, _, value = line.partition(" ")
        out[key] = value
    return out


def _opt_int(text):
    return None if text == "-" else int(text)


def _drugs(text):
    out = []
    for item in text.split(",") if text else ():
        name, _, conc = item.partition(":")
        out.append((name, int(conc)))
    return out
