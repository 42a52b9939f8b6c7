# Programming: stage a program item by item (a line's numbers: pumpctl reads
# the text) and check it (STAGE). Reviewing it row by row, committing it with
# its CRC and discarding it are the family commit.py's, which takes the checks
# a COMMIT makes again from here (delivery_plan, refuse_dosing, check_admission)
# and row_count. Every change of the therapy passes the dose guard's
# admission (PumpApp.admit) before it goes in force. (A plain rate is the
# family rate.py, the patient's bolus patient.py: neither loads this code.)

import gc

from firmware import codec, const
from firmware.commands import STAGED_TTL_US
from firmware.errors import Refusal, sentence
from firmware.lazy import loaded
from firmware.program import BASAL_FLEX, BASAL_STOPPED, build_program
from firmware.therapy import BOLUS_NONE, BRIDGE

# What committing a program does to a bolus, prime or bridge (delivery_plan).
DELIVERY_NONE = 0
DELIVERY_KEEP = 1  # the same line as the one running or waiting: it goes on untouched
DELIVERY_NEW = 2  # a new dose
DELIVERY_CANCEL = 3  # the program leaves the running one out: it is cancelled

# What STAGE builds and checks a program with (program_items, program_check, program_write: lazy.TRANSIENT),
# loaded by the first STAGE_ITEM of a program (_load_checks) and forgotten after STAGE or at any other
# command (Staging.release_checks). Loading them is the biggest part of staging (about 6 KB of code as
# .mpy in RAM); loaded while the lines come, a STAGE allocates only what it builds and checks, and no
# command holds both.
_CHECKS = const(("firmware.program_check", "firmware.program_write"))


def _load_checks(staging):
    if staging.checks is None:
        staging.checks = loaded()
        gc.collect()  # a module's bytecode needs blocks of a few KB (lazy.call)
        for name in _CHECKS:
            __import__(name)


# Adds one item to the program being staged: one line of a program as the
# clinician wrote it, as numbers (pumpctl reads the text; programs: see the
# README and docs/drug-library.md).
#
# Request:
# index: the item's number: 0 starts a new program (dropping any staged one), then 1, 2, ... in order
# item: what the line is (ITEM_DRUG, ITEM_FILL, ..., codec.py), and its values in the fields it uses (the others 0):
# drug: ITEM_DRUG: the drug's name as typed (the library's entry, case ignored)
# dose_kind: ITEM_BASAL, ITEM_FLEX, ITEM_BOLUS, ITEM_PATIENT: 1 a mass (ng, ng/day), 2 a volume (nL, nL/day)
# amount: the dose, rate (per day), volume (nL) or concentration (ng/mL) of the item
# start_min: ITEM_FLEX: the step's start, minutes after 00:00
# duration_s: ITEM_BOLUS, ITEM_PRIME, ITEM_PATIENT: over how long; ITEM_TRIAL: how long; whole seconds
# duration_us: and microseconds after them
# then_s: ITEM_BOLUS: the delay before it starts; ITEM_PATIENT: the lockout; whole seconds
# then_us: and microseconds after them
# count: ITEM_PATIENT: at most this many per day
#
# Reply:
# items: items staged so far
#
# **Refusals:** `index` "item N is out of order; the pump expects item M";
# `program` "a program has at most 40 lines, not 41" (no more is kept).
#
# **Notes:** the items are not checked until STAGE. Dropped when the session
# ends.
def stage_item(pump, values):
    index = values[0]
    _load_checks(pump.staging)
    if index == 0:
        pump.staging.items = []
        pump.staging.program = None
        pump.staging.dropped = ""
    items = pump.staging.items
    if index != len(items):
        raise Refusal("index", sentence(100, index, len(items)))  # item N is out of order: pumpctl.sentences
    if index >= 40:  # program_items.MAX_ITEMS: the pump keeps no more
        raise Refusal("program", "{p2|40|%d}" % (index + 1))
    items.append(tuple(values[1:]))
    return (len(items),)


# Checks the staged items as a program, against the drug
# library and the dose guard; holds it for COMMIT. Nothing changes yet.
#
# Reply:
# rows: rows REVIEW will show for it (its lines with details, then one per soft-limit warning)
# warnings: soft limits passed: COMMIT needs `confirm_soft` = 1
# program_crc: its `program_crc`, which COMMIT must quote
# expires_in_s: it is dropped after this many seconds of pump time without a COMMIT: 600
#
# **Refusals:** every refusal of the program's checks, with the field it names
# and a token of its code and values that pumpctl words (`program` "the
# program is empty; give at least a basal, flex or stop line", at most 40
# lines, hard limits of the drug library, ...); `bolus` "no bolus while an alarm is active (...)"; `flex` "a flex
# schedule runs on the device clock: set the clock first"; `bolus` "the
# bolus of N steps is above the bolus hard limit of M steps; the dose guard
# refuses it"; `program` "with what was delivered in the last 24 h, this
# would pass the ...; the dose guard refuses it"; `fill` "fill V is more than
# this pump's C reservoir holds", "fill V is at or below the empty volume E:
# the pump would stop at once"; `removed` "removed is part of a refill: give
# the fill line with it"; `empty-reservoir` "empty-reservoir E must be below
# low-reservoir L"; `program` (a program that doses) "the power-on self-test
# failed (...): the pump cannot dose until a restart passes it", "the battery
# reached end of service: the pump cannot dose", "the motor driver does not
# respond: the pump cannot dose"; `bolus` or `prime` "a bolus is running: L of
# T left; one at a time: wait, or drop its line to cancel it" (a different
# bolus or prime while one of any kind runs or waits; "waiting: starts in N
# min" for a delayed one); `bridge` "a bridge is running: L of T left; keep
# its line unchanged until it ends".
#
# **Notes:** a refill (a `fill` line with a `removed` line: the volume drawn
# out of the reservoir before filling it) is checked against the volume the
# pump counted was left. If they part by more than 1 mL per 20 mL of
# reservoir (2 mL for 40 mL), the program gets the soft-limit warning
# "refill discrepancy: removed R but the pump expected X left (D apart, over
# A): check for a refill into the pocket before going on", which COMMIT must
# confirm; a pump that counted no reservoir (no earlier fill) gives a warning
# that it cannot check. The check is logged (event 19) when the program is
# committed.
#
# A bolus, prime or bridge line is in the running program only while that
# delivery runs or waits (it leaves when it ends or is cancelled, and the
# `program_crc` changes). The staged program's row of such a line says what
# committing does: "new dose: ..." (nothing runs), or "running: L of T left,
# unchanged" / "waiting: starts in N min, unchanged" (the same line, same
# blend, as the one running: it goes on untouched). A staged program without
# the running bolus's line gets a row with an empty line and "bolus cancelled:
# L of T not given".
def stage(pump, values):
    try:
        return _stage(pump)
    finally:
        pump.staging.release_checks()


def _stage(pump):
    pump.tick()
    now = pump.timebase.total_us()
    program = build_program(pump.staging.items, pump.library, pump.therapy.drugs, pump.therapy.bridge_drugs)
    pump.staging.items = []  # built: the program holds them now (a new STAGE_ITEM 0 starts afresh)
    if (program.bolus is not None or program.prime is not None) and pump.bolus_refusal():
        raise Refusal("bolus", pump.bolus_refusal())
    verdict, note = delivery_plan(pump, program, now)
    refuse_dosing(pump, program)
    refill = refill_check(pump, program)
    check_admission(pump, program, now)
    crc = program.program_crc()
    pump.staging.program = (program, crc, now + STAGED_TTL_US, refill, note, verdict)
    return (row_count(program, verdict), len(program.warnings), crc, STAGED_TTL_US // 1_000_000)


def delivery_plan(pump, program, now):
    """What committing program does to a bolus, prime or bridge: (_DELIVERY_*, the
    review's note on it). One runs at a time: a different one while another runs
    or waits is refused (the intent of a second request is not clear), and so is
    leaving out a running bridge (its old blend stays in the path all the same)."""
    t = pump.therapy
    mine = program.delivery()
    kind = t.delivery()
    if kind == BOLUS_NONE:
        if mine is None:
            return DELIVERY_NONE, ""
        if program.bolus is not None:  # pumpctl: "new dose: V = drug M, ..."
            blend = "".join("|%s|%d" % d for d in program.drugs)
            return DELIVERY_NEW, "{p80|%d%s}" % (program.bolus_volume_nl(), blend)
        if program.prime is not None:
            return DELIVERY_NEW, "{p80|%d}" % program.prime[0]  # "new dose: V"
        return DELIVERY_NEW, "{p81|%d}" % program.bridge_nl  # "new: V of the old blend first, ..."
    left, total = t.delivery_left_nl(now)
    if t.bolus_kind != BOLUS_NONE and now < t.bolus_start:  # its state (pumpctl.sentences)
        state = sentence(101, -(-(t.bolus_start - now) // 60_000_000))  # waiting: starts in M min
    else:
        state = sentence(102, left, total)  # running: L of T left
    if t.same_delivery(program):
        return DELIVERY_KEEP, state + sentence(103)  # ..., unchanged
    if kind == BRIDGE:
        raise Refusal("bridge", sentence(104) + state + sentence(105))  # a bridge is ...; keep its line unchanged
    if mine is not None:  # a bolus (or prime, patient-bolus) is ...; one at a time
        raise Refusal("bolus" if program.bolus is not None else "prime", "{t106|%d}%s{t107}" % (kind, state))
    return DELIVERY_CANCEL, pump.therapy.cancelled_text("{b%d}" % kind, now)


def check_admission(pump, program, now):
    if program.basal_kind == BASAL_FLEX and pump.therapy.clock_offset_us is None:  # it runs on the device clock
        raise Refusal("flex", sentence(108))  # a flex schedule runs on the device clock: set the clock first
    candidate = pump.therapy.fork()
    candidate.commit(program, now)
    fluid = candidate.fluid()
    # A new fluid: the guard's history is checked as the change will rescale it (no copy of the guard).
    pump.admit(candidate, now, pump.guard_limits(fluid) if fluid != pump.therapy.fluid() else None)


def own_rows(program):
    """REVIEW's rows of a program's own: its items (program_write.saved), a flex day's total after them
    (as program_rows.own_rows)."""
    return program.understood().count(b"\ni") + bool(program.flex)


def row_count(program, verdict=DELIVERY_NONE):
    """How many review rows a program has (_row): its items, a flex day's total, a cancelled
    bolus's note, its warnings."""
    return own_rows(program) + (verdict == DELIVERY_CANCEL) + len(program.warnings)


def refuse_dosing(pump, program):
    if program.basal_kind != BASAL_STOPPED or program.bolus is not None or program.prime is not None:
        why = pump.monitors.dosing_refusal()
        if why is not None:
            raise Refusal("program", why)
        left = pump.reservoir_nl()  # the counted volume; None before any fill
        if program.fill_nl is None and left is not None and left <= program.empty_level():
            # It would stop again at once (pumpctl resume after an empty reservoir): refill first.
            raise Refusal("fill", sentence(109, left))  # the reservoir is at its empty volume: refill it first


def refill_check(pump, program):
    """A refill program (fill, with removed): compare the volume drawn out
    with what the pump counted was left. A gap over 1 mL per 20 mL of
    reservoir (2 mL for 40 mL) is the sign of a misplaced refill (drug into
    the tissue pocket, the 2011 recall): it becomes a warning the commit
    must confirm. Returns the text for the log."""
    if program.fill_nl is not None and program.fill_nl > pump.monitors.reservoir_capacity_nl:
        raise Refusal("fill", sentence(110, program.fill_nl, pump.monitors.reservoir_capacity_nl))  # too much
    if program.fill_nl is not None and program.fill_nl <= program.empty_level():
        raise Refusal("fill", sentence(111, program.fill_nl, program.empty_level()))  # at or below empty
    if program.removed_nl is None:
        return None
    expected = pump.reservoir_nl()
    if expected is None:
        program.warnings.append("{p70|%d}" % program.removed_nl)  # pumpctl: "refill: ... cannot check ..."
        return sentence(112, program.removed_nl, program.fill_nl)  # refill: removed R (not checked), filled F
    apart = abs(program.removed_nl - expected)
    allowed = pump.monitors.reservoir_capacity_nl // 20  # 1 mL per 20 mL
    text = sentence(113, program.removed_nl, expected, program.fill_nl)  # refill: removed, expected, filled
    if apart > allowed:
        # pumpctl: "refill discrepancy D (over A): check for a pocket fill; removed R, counted X"
        program.warnings.append("{p71|%d|%d|%d|%d}" % (apart, allowed, program.removed_nl, expected))
        text += sentence(114, apart)  # : DISCREPANCY D
    return text


COMMANDS = (
    (codec.STAGE_ITEM, stage_item, 0),
    (codec.STAGE, stage, 0),
)
