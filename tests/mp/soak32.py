# The soak (tests/firmware/test_soak.py): the sim board's firmware on the 32-bit webassembly
# MicroPython in a heap of soak_params.HEAP bytes takes a long seeded random mix of
# commands over the real wire protocol, across simulated days, and must never raise
# MemoryError nor refuse anything it should carry out.
#
#   node tests/mp/run.mjs ROOT tests/mp/soak32.py tests/mp/heaplock.py bench/mp/heap32*.py soak_params.py
#   (with RUN_MJS_FIXED_HEAP=1 and RUN_MJS_HEAP = soak_params.VM_HEAP)
#
# The pump is the heap bench's, bench/mp/heap32_pump.py (the sim board's PumpApp with
# the real storage driver on the VM's in-memory filesystem), and so is the host,
# heap32_host.py (frames encoded with the shared codec and auth, fed byte by byte into
# app.link.receive(), each reply decoded and its MAC checked; a reply of ERROR fails
# the run, ERR_INTERNAL included).
#
# The heap. run.mjs (RUN_MJS_FIXED_HEAP) stops the VM's heap from growing, so an
# allocation that does not fit raises MemoryError. The VM's heap is VM_HEAP; this
# script's own code and host objects take some of it, so its first steps fill every
# free block with a ballast that stays live, all but one block of HEAP bytes (and holes
# under 256 bytes): from then on the firmware (its modules as it imports them, its
# objects) has HEAP bytes; the run checks that HEAP - 1 KB fits and HEAP + 4 KB does not. This VM collects only
# between steps (each command, each allocating dosing turn is a step), never inside one:
# a command must find room for its garbage in what is free, as it would in a board's
# heap that had just been collected. A board collects when full, so this is the stricter
# test; fragmentation is as real as the VM's.
#
# Prints "SOAK {json}" at the end.

import gc
import json
import sys

import heap32 as hb
import soak_params as P

DAY_S = 86_400
CLOCK_S = 1_717_223_400  # 2024-06-01 06:30 local


class Rng:
    """A seeded generator of small ints (no allocation)."""

    def __init__(self, seed):
        self.s = seed % 65537 or 1

    def below(self, n):
        s = self.s
        s = (s * 75 + 74) % 65537
        self.s = s
        r = s
        s = (s * 75 + 74) % 65537
        self.s = s
        return ((r << 16) | s) % n


class World:
    """What the host knows (small ints and a few references)."""

    def __init__(self):
        self.app = None
        self.ballast = None
        self.pb_nl = 0  # the running program's patient-bolus dose, 0 if it has none
        self.pb_at_s = -1  # pump time (s) of the last patient bolus given, this boot
        self.drug = False  # the reservoir holds a drug (a plain rate is refused)
        self.library = 0
        self.wrong_proofs = 0
        self.commands = 0
        self.refused = 0
        self.accepted = {}
        self.restarts = 0
        self.days = 0
        self.steps_checked = 0
        self.steps_total = 0
        self.steps_at_boot = 0
        self.restart_drift = 0  # the largest difference, pump less motor, seen after a restart
        for k in ACTION_NAMES:
            self.accepted[k] = 0
        self.accepted["program-guarded"] = 0  # programs the dose guard refused (soak32.program)


# The programs the mix commits: each must be accepted (with --confirm-soft where it
# passes a soft limit). (lines, patient-bolus nL or 0)
PROGRAMS = (
    (("drug morphine 20 mg/mL", "fill 20 mL", "basal 3 mg/day"), 0),
    (
        (
            "drug morphine 20 mg/mL",
            "fill 20 mL",
            "basal 2 mg/day",
            "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day",
        ),
        10_000,
    ),
    (
        (
            "drug morphine 20 mg/mL",
            "fill 20 mL",
            "flex 00:00 2 mg/day",
            "flex 07:00 4 mg/day",
            "flex 22:00 1 mg/day",
            "patient-bolus 0.1 mg over 10 min lockout 2 h max 3 per day",
        ),
        5_000,
    ),
    (("drug hydromorphone 10 mg/mL", "fill 20 mL", "basal 1 mg/day"), 0),
    (
        (
            "drug morphine 20 mg/mL",
            "drug bupivacaine 7.5 mg/mL",
            "drug clonidine 500 mcg/mL",
            "fill 20 mL",
            "basal 2 mg/day",
        ),
        0,
    ),
)
# Programs the pump must refuse at STAGE (ERR_BAD_VALUE): over a hard limit, or not a program
# (a line the host reads can still be one too many: two fills).
REFUSED_PROGRAMS = (
    ("drug morphine 20 mg/mL", "fill 20 mL", "basal 900 mg/day"),
    (
        "drug morphine 20 mg/mL",
        "fill 20 mL",
        "basal 3 mg/day",
        "patient-bolus 0.5 mg over 10 min lockout 1 h max 4 per day",
    ),
    ("drug morphine 20 mg/mL", "fill 20 mL", "basal 1 mg/h"),
    ("drug morphine 90 mg/mL", "fill 20 mL", "basal 1 mg/day"),
    ("fill 20 mL", "fill 20 mL", "basal 1 mL/day"),
)
BOLUS_PROGRAM = ("basal 1 mg/day", "bolus 0.1 mg over 30 min")

ACTION_NAMES = (
    "program",
    "program-refused",
    "bolus",
    "patient-bolus",
    "patient-bolus-refused",
    "rate-refused",
    "library",
    "read-therapy",
    "read-review",
    "read-log",
    "read-library",
    "alarms",
    "clock",
    "session-refused",
    "stop",
    "restart",
)
# How often each comes, out of the sum.
WEIGHTS = (8, 5, 6, 8, 0, 4, 2, 10, 6, 3, 1, 4, 4, 3, 2, 2)


# -- the heap ---------------------------------------------------------------------


def fill(keep):
    """Fill every free block of the heap but one of HEAP bytes, which is freed at the end."""
    try:
        room = bytearray(P.HEAP)  # first fit: in the first block that holds it
    except MemoryError:
        raise AssertionError("the VM's heap has no free block of HEAP bytes: raise VM_HEAP") from None
    n = 0
    size = 65536
    while size >= 256:  # smaller holes stay (a heap filled to the last block hangs this VM's raise)
        try:
            while n < len(keep):
                keep[n] = bytearray(size)
                n += 1
        except MemoryError:
            size >>= 2
        if n == len(keep):
            raise AssertionError("the ballast needs more pieces")
    del room  # its block is the firmware's
    return n


def must_not_fit(size):
    try:
        bytearray(size)
    except MemoryError:
        return
    raise AssertionError("a bytearray of %d bytes fits: the heap is not limited" % size)


# -- the host's actions ---------------------------------------------------------------


def collect():
    gc.collect()
    yield


def program(host, w, lines, confirm):
    """Stage lines and commit them (yield from it): True once committed. The pump may refuse them for
    one reason only, the dose guard (what the last 24 h delivered with what the program would add passes
    a hard limit: a long run of boluses and patient boluses gets there), which the host does not foresee;
    then False, the stage discarded. Any other refusal fails the soak."""
    from firmware import codec

    yield from host.stage(lines)
    # The dose guard refuses it: the bolus passes its hard limit ({t59|..}), or the last 24 h and it would
    # pass a limit ({t60|..}).
    staged = yield from host.request_or_refused(codec.STAGE, (), codec.ERR_BAD_VALUE, ("{t59|", "{t60|"))
    if staged is None:
        w.accepted["program-guarded"] += 1
        yield from host.request(codec.DISCARD)
        return False
    _rows, warnings, crc, _exp = staged
    if warnings and not confirm:
        raise AssertionError("unexpected soft limits in %r" % (lines,))
    yield from host.review(codec.REVIEW_STAGED)
    got = (yield from host.request(codec.COMMIT, (crc, 1 if warnings else 0)))[0]
    if got != crc:
        raise AssertionError("committed crc differs from the staged one")
    return True


def refused_program(host, w, lines):
    from firmware import codec

    yield from host.stage(lines)
    yield from host.refused(codec.STAGE, (), "stage refused", codec.ERR_BAD_VALUE)
    yield from host.request(codec.DISCARD)


def therapy(host):
    from firmware import codec

    return (yield from host.request(codec.THERAPY))


def clear_alarms(host, w):
    """Read the latched alarms; if any, a clinician silences and acknowledges them all."""
    from firmware import auth, codec

    count = (yield from host.request(codec.ALARMS, (0,)))[0]
    for i in range(1, count):
        yield from host.request(codec.ALARMS, (i,))
    if count:
        yield from host.authenticate(auth.ROLE_CLINICIAN)
        yield from host.request(codec.SILENCE)
        yield from host.request(codec.ACK_ALARM, (0,))
        yield from host.end_session()
        if (yield from therapy(host))[12]:
            raise AssertionError("an alarm is still latched after all were acknowledged")
    return count


def pump_time_s(app):
    return app.timebase.total_us() // 1_000_000


def act(name, host, w, rng):
    from firmware import auth, codec, framing

    app = w.app
    if name == "program":
        lines, pb_nl = PROGRAMS[rng.below(len(PROGRAMS))]
        yield from host.authenticate(auth.ROLE_CLINICIAN)
        taken = yield from program(host, w, lines, True)
        yield from host.review(codec.REVIEW_RUNNING)
        yield from host.end_session()
        if not taken:  # the guard refused it: the running program goes on
            return False
        w.pb_nl = pb_nl
        w.drug = True
    elif name == "program-refused":
        yield from host.authenticate(auth.ROLE_CLINICIAN)
        yield from refused_program(host, w, REFUSED_PROGRAMS[rng.below(len(REFUSED_PROGRAMS))])
        yield from host.end_session()
    elif name == "bolus":  # pumpctl bolus: the running basal with a bolus line, when no bolus runs and no alarm
        t = yield from therapy(host)
        if t[3] or not w.drug:
            return False
        if t[12]:
            yield from clear_alarms(host, w)
        yield from host.authenticate(auth.ROLE_CLINICIAN)
        taken = yield from program(host, w, BOLUS_PROGRAM, True)
        yield from host.end_session()
        if not taken:
            return False
        w.pb_nl = 0
    elif name == "patient-bolus":
        now = pump_time_s(app)
        within = w.pb_at_s >= 0 and now - w.pb_at_s < 600  # every lockout in PROGRAMS is longer
        yield from host.authenticate(auth.ROLE_PATIENT)
        if w.pb_nl == 0 or within:  # no patient bolus in the program, or within its lockout: refused
            yield from host.refused(codec.PATIENT_BOLUS, (), "patient-bolus refused", codec.ERR_BAD_VALUE)
            w.accepted["patient-bolus-refused"] += 1
        else:  # allowed by the program: given (the dose asked), or refused for its reason
            # (the daily count, a bolus running, the guard), never for want of memory
            host._build(codec.PATIENT_BOLUS, ())
            host.stats.op = "patient-bolus"
            yield from host.stats.collect()
            served = host._feed()
            yield from host.stats.after_op()
            wire = b"".join(host.serial.out)
            kind = framing.decode_frame(framing.cobs_decode(wire, len(wire) - 1))[0]
            if kind == codec.ERROR:
                host.serial.out = [wire]
                host.refusals += 1
                host._refusal(codec.PATIENT_BOLUS, served, codec.ERR_BAD_VALUE)
                w.accepted["patient-bolus-refused"] += 1
            else:
                host.serial.out = [wire]
                volume_nl = host._reply(codec.PATIENT_BOLUS, served)[0]
                if volume_nl != w.pb_nl:
                    raise AssertionError("a patient bolus of %d nL, not the program's %d" % (volume_nl, w.pb_nl))
                w.pb_at_s = now
        yield from host.end_session()
    elif name == "rate-refused":  # a rate past the pump's range; with a drug in, no plain rate at all
        yield from host.authenticate(auth.ROLE_CLINICIAN)
        rate = 240_000_001 if rng.below(2) or not w.drug else 500_000  # nL/day: past 10 mL/h, or a plain rate
        yield from host.refused(codec.SET_RATE, (rate,), "set-rate refused", codec.ERR_BAD_VALUE)
        yield from host.end_session()
    elif name == "library":  # the library in force, staged as a new version, checked, read back, committed
        w.library += 1
        yield from host.authenticate(auth.ROLE_CLINICIAN)
        drugs = (yield from host.request(codec.LIB_GET, (0, codec.LIB_IN_FORCE)))[1]
        for d in range(drugs):
            drug = (yield from host.request(codec.LIB_GET, (d, codec.LIB_IN_FORCE)))[2:13]
            if d == 0:
                drug[2] -= 1  # daily_soft_ng_per_day: a soft limit, lower by 1 ng at each load
            yield from host.request(codec.LIB_DRUG, [d] + drug)
            drug = None
        lib_hash, _d, changed, raised, _e = yield from host.request(codec.LIB_STAGE, ("soak-%d" % w.library, drugs))
        if changed != 1 or raised != 0:
            raise AssertionError("the library changes %d fields and raises %d" % (changed, raised))
        yield from host.request(codec.LIB_GET, (0, codec.LIB_STAGED))
        yield from host.request(codec.LIB_COMMIT, (lib_hash, 0))
        lib_hash = None
        yield from host.end_session()
    elif name == "read-therapy":
        yield from host.look(hb.Facts())
    elif name == "read-review":
        yield from host.review(codec.REVIEW_RUNNING)
    elif name == "read-log":
        count = (yield from host.request(codec.EVENT, (0,)))[0]
        for i in range(1, count):
            yield from host.request(codec.EVENT, (i,))
    elif name == "read-library":
        drugs = (yield from host.request(codec.LIB_GET, (0, codec.LIB_IN_FORCE)))[1]
        for d in range(1, drugs):
            yield from host.request(codec.LIB_GET, (d, codec.LIB_IN_FORCE))
    elif name == "alarms":
        yield from clear_alarms(host, w)
    elif name == "clock":  # drift corrections of a minute or less, now and then a daylight-saving hour
        clock_s = (yield from therapy(host))[13]
        shift = (rng.below(121) - 60) if rng.below(4) else (3600 if rng.below(2) else -3600)
        yield from host.authenticate(auth.ROLE_CLINICIAN)
        if (yield from host.request(codec.CLOCK_SET, (clock_s + shift,)))[0] != clock_s + shift:
            raise AssertionError("the clock was not set")
        yield from host.end_session()
    elif name == "session-refused":  # a wrong key's proof, then a command that needs a key, without one
        if w.wrong_proofs >= 2:  # two in a row at most: the third would start a lockout
            return False
        w.wrong_proofs += 1
        yield from host.wrong_proof()
        yield from host.refused(codec.STOP, (), "stop refused", codec.ERR_NEED_KEY)
        return True
    elif name == "stop":
        yield from host.authenticate(auth.ROLE_CLINICIAN)
        yield from host.request(codec.STOP)
        yield from host.end_session()
        w.pb_nl = 0
    elif name == "restart":  # a power cut: the pump starts again from its storage
        yield from check_motor(host, w)
        host.detach(app)
        w.app = app = None
        yield from collect()
        hw = hb.make_hardware(provision=False)
        host.stats.op = "restart"
        w.app = hb.boot(hw)
        hw = None
        yield from host.stats.after_op()
        host.attach(w.app)
        status = yield from host.request(codec.STATUS)
        w.steps_at_boot = status[4] * (1 << 29) + status[5]  # the new motor has made none
        status = None
        w.restarts += 1
        w.pb_at_s = -1
        yield from host.request(codec.HELLO)
        if not (yield from clear_alarms(host, w)):
            raise AssertionError("a restart latched no alarm")
    if name in ("program", "bolus", "library", "clock", "stop") or name.startswith("patient"):
        w.wrong_proofs = 0  # a session opened with the right key
    return True


def check_motor(host, w):
    """The pump's count of steps (STATUS) equals what the simulated motor made, read
    from the motor itself and from SIM_STATE."""
    from firmware import codec

    status = yield from host.request(codec.STATUS)
    sim = yield from host.request(codec.SIM_STATE)
    motor = w.app.motor
    pump_steps = status[4] * (1 << 29) + status[5] - w.steps_at_boot  # the pump's count goes on over restarts
    true_steps = motor.steps_hi * (1 << 29) + motor.steps_lo
    sim_steps = sim[0] * (1 << 29) + sim[1]
    if sim[3] or sim[4]:
        raise AssertionError("the motor was halted (%d steps dropped): nothing here should halt it" % sim[3])
    if true_steps != sim_steps:
        raise AssertionError("the motor made %d steps, SIM_STATE says %d" % (true_steps, sim_steps))
    if w.restarts and pump_steps != true_steps:
        # After a restart the pump's count resumes from its last save (not the steps the motor
        # made before the cut) and then differs: recorded, reported by tests/firmware/test_soak.py.
        d = pump_steps - true_steps
        if abs(d) > abs(w.restart_drift):
            w.restart_drift = d
    elif pump_steps != true_steps:
        raise AssertionError(
            "the pump counts %d steps, the motor made %d (%d by SIM_STATE)" % (pump_steps, true_steps, sim_steps)
        )
    w.steps_checked += 1
    w.steps_total = true_steps


def advance(w, stats, us):
    """Pump time forward by us: the dosing task's turns, as PumpApp.tick_and_wait()."""
    while us > 0:
        stats.op = "tick"
        wait = w.app.tick_and_wait()
        yield from stats.after_op()
        if wait > us:
            wait = us
        if wait < 1:
            wait = 1
        w.app.clock.advance(wait)
        us -= wait


def soak(stats, host, w):
    # The heap: the ballast fills every free block but one of HEAP bytes. (Few failed
    # allocations: each costs the VM a try at growing its C heap.)
    yield from collect()
    w.ballast = [None] * 2048
    yield from collect()
    n = fill(w.ballast)
    if P.TRACE:
        print("ballast", n, file=sys.stderr)
    yield from collect()
    bytearray(P.HEAP - 1024)  # the firmware's room is there (MemoryError if not)
    yield from collect()
    must_not_fit(P.HEAP + 4096)
    yield from collect()
    yield from collect()
    stats.baseline = gc.mem_alloc()
    stats.live = 0
    stats.max_live = 0

    from firmware import auth, codec, framing  # noqa: E402, F401 - the firmware's first imports, in its heap

    hw = hb.make_hardware()
    stats.op = "boot"
    w.app = hb.boot(hw)
    hw = None
    yield from stats.after_op()
    host.attach(w.app)
    yield from host.request(codec.HELLO)
    yield from host.authenticate(auth.ROLE_CLINICIAN)
    yield from host.request(codec.SET_RATE, (500_000,))  # a bench run at a plain rate first
    yield from host.request(codec.CLOCK_SET, (CLOCK_S,))
    yield from host.end_session()

    rng = Rng(P.SEED)
    total = 0
    for k in WEIGHTS:
        total += k
    slot_us = DAY_S * 1_000_000 // P.COMMANDS_PER_DAY
    for day in range(P.DAYS):
        for _ in range(P.COMMANDS_PER_DAY):
            yield from advance(w, stats, 1 + rng.below(slot_us))
            pick = rng.below(total)
            i = 0
            while pick >= WEIGHTS[i]:
                pick -= WEIGHTS[i]
                i += 1
            name = ACTION_NAMES[i]
            if P.TRACE:
                print("day", day, name, stats.max_alloc, file=sys.stderr)
            if (yield from act(name, host, w, rng)):
                w.accepted[name] += 1
                w.commands += 1
        yield from check_motor(host, w)
        w.days += 1
    yield from clear_alarms(host, w)
    yield from check_motor(host, w)
    report(stats, host, w)


def report(stats, host, w):
    out = {
        "heap": P.HEAP,
        "vm_heap": P.VM_HEAP,
        "days": w.days,
        "actions": w.commands,
        "done": w.accepted,
        "restarts": w.restarts,
        "frames_sent": host.frames,
        "frames_served": host.served_before + w.app.link.frames_handled,
        "frames_refused": host.refused_before + w.app.link.frames_refused,
        "refusals_asked": host.refusals,
        "motor_checks": w.steps_checked,
        "restart_drift_steps": w.restart_drift,
        "max_live_bytes": stats.max_live,
        "max_alloc_bytes": stats.max_alloc,
        "max_op_bytes": stats.max_op_bytes,
        "max_op": stats.max_op,
    }
    print("SOAK " + json.dumps(out))


_stats = hb.Stats()
_host = hb.Host(_stats, hb.Counter(999))
_world = World()
RUN_MJS_STEPS = soak(_stats, _host, _world)
