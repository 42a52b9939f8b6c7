# Programming, its second half: review a program row by row (the staged one, the running one, the
# last one that dosed), commit the staged one with its CRC, or discard it. A family of its own
# (commands/__init__.py), apart from the staging (program.py: STAGE_ITEM, STAGE), so that the lines
# of a program come in with less code loaded; it takes the checks a COMMIT makes again from there
# (imported with it, and forgotten with it).

from firmware import codec, eventlog
from firmware.commands import SAVES
from firmware.commands.program import (
    DELIVERY_CANCEL,
    DELIVERY_NONE,
    check_admission,
    delivery_plan,
    refuse_dosing,
    row_count,
)
from firmware.errors import Refusal
from firmware.lazy import call

USES = ("program",)  # the families it imports: forgotten with it (commands/__init__.py)


# One row of the running or the staged program, as the pump
# understood it: an item's numbers, or a row that is no item.
#
# Request:
# which: 0 the running program, 1 the staged one, 2 the last program that dosed, kept while a stop replaces it (its
#     items without bolus, prime, bridge, fill and removed; volume_nl 0): what `pumpctl resume` stages again
# index: the row, from 0
#
# Reply:
# rows: rows the program has
# item: the item (codec.ITEM_*, its values in the fields it uses, as STAGE_ITEM's, the drug's name as the library
#     spells it), in canonical order; ITEM_FLEX_TOTAL after a flex schedule's last step, ITEM_NOTE (a cancelled
#     bolus), ITEM_WARNING for a soft-limit warning, ITEM_NO_PROGRAM when none runs
# drug: see STAGE_ITEM
# dose_kind: see STAGE_ITEM
# amount: see STAGE_ITEM
# start_min: see STAGE_ITEM
# duration_s: see STAGE_ITEM
# duration_us: see STAGE_ITEM
# then_s: see STAGE_ITEM
# then_us: see STAGE_ITEM
# count: see STAGE_ITEM
# volume_nl: the item in the fluid: nL (a dose), nL/day (a rate, a flex day's total), as the pump converted it
# note: a soft-limit warning, or what committing does to a bolus, prime or bridge: a token pumpctl words
#
# **Refusals:** `which` "no program is staged"; `which` "no stopped program
# is kept: a program doses, or none ever did"; `which` "which must be 0
# (running), 1 (staged) or 2 (last stopped), not N"; `index` "row N does not
# exist; there are M".
#
# **Notes:** pumpctl reads the rows back after COMMIT and refuses to report
# success unless they are the lines reviewed.
def review(pump, values):
    which, index = values
    verdict, note = DELIVERY_NONE, ""
    if which == codec.REVIEW_RUNNING:
        program = pump.therapy.program
    elif which == codec.REVIEW_STAGED:
        if pump.staging.program is None:
            raise Refusal("which", "no program is staged")
        program, _crc, _expires, _refill, note, verdict = pump.staging.program
    elif which == codec.REVIEW_LAST:
        program = pump.therapy.last_program
        if program is None:
            raise Refusal("which", "no stopped program is kept: a program doses, or none ever did")
    else:
        raise Refusal("which", "which must be 0 (running), 1 (staged) or 2 (last stopped), not %d" % which)
    count = 1 if program is None else row_count(program, verdict)
    if index >= count:
        raise Refusal("index", "row %d does not exist; there are %d" % (index, count))
    if program is None:
        item, volume = (codec.ITEM_NO_PROGRAM, "", 0, 0, 0, 0, 0, 0, 0, 0), 0
    else:
        item, volume, note = call("firmware.program_rows", "row", program, index, verdict, note)
    if which == codec.REVIEW_LAST:
        volume = 0
    return (count,) + tuple(item) + (volume, note)


# Puts the staged program in force now (the second step
# of programming).
#
# Request:
# program_crc: the `program_crc` STAGE gave: proof the host commits what it reviewed
# confirm_soft: 1 to confirm the soft-limit warnings; needed if there are any
#
# Reply:
# program_crc: the program now in force
# effective_mday: pump time it took effect, millidays
# effective_us: and microseconds
#
# **Refusals:** `program` "no program is staged" (with ": its session ended
# (why); stage it again" if a session end dropped its lines before STAGE); `program` "the staged
# program expired after 10 min without a commit; stage it again";
# `program_crc` "program_crc X is not the staged program's Y";
# `confirm_soft` "N soft-limit warning(s) need confirm_soft=1: ...";
# `bolus` "no bolus while an alarm is active (...)"; `program` "the running
# bolus ended since the review; stage the program again" (what the review
# said of the bolus no longer holds); and the refusals of STAGE, checked again
# (the last 24 h have moved on).
#
# **Notes:** logged (event 2) with the library version and `library_hash`
# ("crc X library V hash H: lines"); a refill also as
# event 19, and the reservoir forecast as event 3; a bolus, prime or bridge
# also as event 3, with what the review said of it ("bolus: new dose: ...",
# "bolus: running: ..., unchanged", "bolus cancelled: ..."). A fill puts the low and
# empty marks afresh: the reservoir alarms whose volume it is now above
# clear.
def commit(pump, values):
    crc, confirm = values
    pump.tick()
    now = pump.timebase.total_us()
    if pump.staging.program is None:
        raise Refusal("program", "no program is staged" + pump.staging.dropped)
    program, staged_crc, expires, refill, _note, verdict = pump.staging.program
    if now >= expires:
        pump.staging.program = None
        raise Refusal("program", "the staged program expired after 10 min without a commit; stage it again")
    if crc != staged_crc:
        raise Refusal("program_crc", "program_crc %08x is not the staged program's %08x" % (crc, staged_crc))
    if program.warnings and confirm != 1:
        raise Refusal(
            "confirm_soft",
            "%d soft-limit warning(s) need confirm_soft=1: %s" % (len(program.warnings), program.warnings[0]),
        )
    if (program.bolus is not None or program.prime is not None) and pump.bolus_refusal():
        raise Refusal("bolus", pump.bolus_refusal())
    now_verdict, note = delivery_plan(pump, program, now)
    if now_verdict != verdict and not (verdict == DELIVERY_CANCEL and now_verdict == DELIVERY_NONE):
        raise Refusal("program", "the running bolus ended since the review; stage the program again")
    refuse_dosing(pump, program)
    check_admission(pump, program, now)  # the last 24 h moved on since staging
    pump.staging.program = None
    if refill is not None:
        pump.log_event(eventlog.EV_REFILL, refill)
    pump.put_in_force(program, now)
    # a library commit drops a staged program: it was checked against the library in force
    head = "crc %08x library %s hash %08x: " % (crc, program.library_version, pump.library.hash)
    _log_program(pump, head, crc, program)
    if now_verdict == DELIVERY_CANCEL:
        pump.log_event(eventlog.EV_THERAPY, note)
    elif now_verdict != DELIVERY_NONE:  # a new dose, or the same one going on
        word = "bolus" if program.bolus is not None else "prime" if program.prime is not None else "bridge"
        pump.log_event(eventlog.EV_THERAPY, "%s: %s" % (word, note))
    call("firmware.forecast", "log_low", pump, now)  # the reservoir, and when it reaches the low volume
    tb = pump.timebase
    return (crc, tb.mday, tb.us)


def _log_program(pump, head, crc, program):
    """The program committed, whole in the log: its items after head, each a token "{iITEM,KIND,AMOUNT,
    START,DURATION_S,DURATION_US,THEN_S,THEN_US,COUNT,DRUG}" (its saved row) that pumpctl writes as its
    line, "; " between them, in as many entries as the log's 100 bytes of text
    need (each further one "crc X continued: ..."), an item never split between two. The rows are
    copied as bytes from what the program keeps (Program.saved), one at a time."""
    saved = program.understood()
    entry = bytearray(head.encode())
    items = 0  # in this entry
    at = saved.find(b"\ni")
    while at >= 0:
        end = saved.find(b"\n", at + 1)
        if end < 0:  # the last row
            end = len(saved)
        if items and len(entry) + 2 + (end - at + 1) > eventlog.MAX_TEXT:  # "; {", the row, "}"
            pump.log_event(eventlog.EV_PROGRAM, entry)  # bytes: kept as they are (EventLog.add)
            entry = bytearray(b"crc %08x continued: " % crc)
            items = 0
        if items:
            entry += b"; "
        entry += b"{"
        entry += saved[at + 1 : end]
        entry += b"}"
        items += 1
        at = saved.find(b"\ni", end)
    pump.log_event(eventlog.EV_PROGRAM, entry)


# Drops the staged program and its lines.
#
# **Refusals:** none.
def discard(pump, values):
    pump.staging.program = None
    pump.staging.items = []
    return ()


COMMANDS = (
    (codec.REVIEW, review, 0),
    (codec.COMMIT, commit, SAVES),
    (codec.DISCARD, discard, 0),
)
