# firmware_heap_bytes on the 32-bit webassembly MicroPython (run by
# bench/heap_bench.py through tests/mp/run.mjs):
#
#   node tests/mp/run.mjs ROOT bench/mp/heap32.py bench/mp/heap32_pump.py bench/mp/heap32_host.py
#
# How much of the GC heap the pump holds: after boot, and after an hour of
# pump time in which a host programs it over the real link, takes a patient
# bolus and reads it now and then. Its parts, loaded beside it (tests/vms.py
# HEAP32_PARTS: run.mjs copies them into the VM's working directory):
#   heap32_pump.py  the pump: the sim board's firmware (PumpApp, unchanged) with
#                   stand-ins for the parts this VM lacks
#   heap32_host.py  the host: pumpctl's requests as frames, fed byte by byte into
#                   app.link.receive() as the link task would feed them
#
# Collections. On this VM gc.collect() only marks a collection as due; it
# runs when control returns to JS (no Python frame is live then, so no stack
# needs scanning), and inside one long call the heap just grows. So the bench
# is a generator left in RUN_MJS_STEPS: run.mjs runs each step in a call of
# its own, and `yield from stats.collect()` is a real collection. The
# generators' frames are heap objects whose dead slots are scanned too, so the
# work is done in plain functions and the generators keep small ints.
#
# What is counted: gc.mem_alloc() after a collection, less the bare VM's
# (this script and its parts compiled and its host objects made, nothing of
# the firmware imported): every module the pump imports (compiled to bytecode in RAM here:
# a board with frozen modules keeps that in flash) and every object it holds.
# The host's own state is made before the baseline or dropped before a
# measurement, so the figures are the pump's (within a few hundred bytes).
#
# Prints one line per import ("HEAP32_IMPORT name live_bytes modules,..."),
# micropython.qstr_info(1)'s lines (its pools, then each interned name, "Q(name)") at the
# baseline after a line "HEAP32_QSTR baseline" and at the end after "HEAP32_QSTR end", and
# then one line "HEAP32 {json}".

import gc
import json
import sys

from heap32_host import NEW_PATIENT_KEY, Facts, Host
from heap32_pump import Counter, boot, hour_figures, make_hardware, telemetry_sample

SLOT_US = 300_000_000  # the host looks at the pump every 5 min of pump time (< 2**30: a small int)
SLOTS = 12  # 12 x 5 min: one hour

# The program of the README: morphine flex 2/4/1 mg/day with a patient bolus.
PROGRAM = (
    "drug morphine 20 mg/mL",
    "fill 20 mL",
    "flex 00:00 2 mg/day",
    "flex 07:00 4 mg/day",
    "flex 22:00 1 mg/day",
    "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day",
)
# Device clock at boot: 2024-06-01 06:30:00 local (seconds since 1970), so the
# 07:00 flex step comes 30 min into the hour.
CLOCK_S = 1_717_223_400
CLOCK_FIX_S = 2  # a drift correction of the clock 45 min in

# Imports, in the order the pump needs them, each measured; the modules an
# import brings in with it are charged to it.
IMPORT_ORDER = (
    "firmware.errors",
    "firmware.scheduler",
    "firmware.timebase",
    "firmware.auth",
    "firmware.codec",
    "firmware.framing",
    "firmware.eventlog",
    "firmware.guard",
    "firmware.lazy",
    "firmware.library",
    "firmware.program",
    "firmware.therapy",
    "firmware.link",
    "firmware.app",
    "firmware.store",  # imported by PumpApp on a board with storage
    "firmware.persist",  # imported at the first save
    # Not here: the text parsers and the factory library's text (lazy.TRANSIENT), which
    # are imported only for the call that reads text and forgotten after it.
    "boards.sim",
    "hal.sim.clock",
    "hal.sim.stepper",
    "hal.file_storage",
)


# The kinds of operation measured: every command by its name (heap32_host.COMMAND_NAMES)
# gives it, the refusals the host provokes (a refusal is its own path), and
# the pump's own turns.
OP_NAMES = (
    "hello",
    "status",
    "therapy",
    "auth-begin",
    "auth-prove",
    "auth-end",
    "key-change",
    "set-rate",
    "stop",
    "clock-set",
    "ack-alarm",
    "service",
    "silence",
    "calibrate",
    "cal-weighing",
    "stage-line",
    "stage",
    "review",
    "commit",
    "discard",
    "patient-bolus",
    "lib-drug",
    "lib-commit",
    "lib-get",
    "lib-stage",
    "event",
    "telemetry",
    "alarms",
    "sim-advance",
    "sim-state",
    "sim-fault",
    # refused, each on purpose: the pump must answer them without a big allocation either
    "stage refused",  # a program past a hard limit
    "patient-bolus refused",  # within the lockout
    "auth-prove refused",  # a wrong proof: a session refused
    "stop refused",  # no session: needs the clinician's key
    "set-rate refused",  # the pump holds a drug
    # the pump's own turns
    "boot",  # the first boot: no saved state
    "restart",  # a boot that resumes from the saved state (after a power cut)
    "tick",  # one turn of the dosing task (with the monitoring's, PumpApp.tick_and_wait)
    "telemetry-data",  # one sample of the telemetry stream
)
# Two weighings (pumpctl calibrate) of steps the pump made in the hour, in bench
# water at 998,000 ug/mL: 150 steps of 52,083 pL each weigh 7,797 ug (to the ug).
CAL_DENSITY = 998_000
CAL_WEIGHINGS = ((0, 150, 7_797), (150, 300, 7_797))


class Stats:
    """Heap figures in bytes above the baseline (small ints: no allocation)."""

    def __init__(self):
        self.baseline = 0
        self.live = 0  # after the last collection
        self.max_live = 0  # largest live heap at a collection between two operations
        self.max_live_op = ""  # the operation after which it was seen
        self.max_alloc = 0  # largest heap right after an operation, before its garbage is collected
        self.max_op_bytes = 0  # most allocated by one operation (a frame served, a tick, the boot)
        self.max_op = ""  # which one
        self.op = ""  # the operation running
        self.collections = 0
        # Most allocated by one operation of each kind, keys made here (before
        # the baseline) so that updating them allocates nothing.
        self.op_bytes = {}
        self.op_count = {}  # how many of each kind ran: the bench checks it ran every kind
        for name in OP_NAMES:
            self.op_bytes[name] = 0
            self.op_count[name] = 0

    def collect(self):
        """A real collection (yield from it): it runs while the step is suspended."""
        gc.collect()
        yield
        self.collections += 1
        self.live = gc.mem_alloc() - self.baseline
        if self.live > self.max_live:
            self.max_live = self.live
            self.max_live_op = self.op
        return self.live

    def after_op(self):
        """yield from it after each operation (the heap was collected just before it)."""
        a = gc.mem_alloc() - self.baseline
        self.op_count[self.op] += 1
        if a > self.live:  # it allocated: note the high-water mark, then collect
            if a > self.max_alloc:
                self.max_alloc = a
            if a - self.live > self.max_op_bytes:
                self.max_op_bytes = a - self.live
                self.max_op = self.op
            if a - self.live > self.op_bytes[self.op]:
                self.op_bytes[self.op] = a - self.live
            yield from self.collect()


# -- plain functions: their frames are gone before any collection -------------


def report_import(name, live):
    new = ",".join(m for m in sys.modules if m not in PRELOADED)
    print("HEAP32_IMPORT %s %d %s" % (name, live, new))


def check_no_parser(when):
    """The running pump holds none of the text modules (lazy.py) between commands."""
    from firmware.lazy import TRANSIENT

    kept = [m for m in TRANSIENT if m in sys.modules or hasattr(sys.modules["firmware"], m[9:])]
    if kept:
        raise AssertionError("%s the pump still holds %s" % (when, ", ".join(kept)))


def check_all_ran(stats):
    missing = [name for name in OP_NAMES if not stats.op_count[name]]
    if missing:
        raise AssertionError("the bench never ran: " + ", ".join(missing))


def result(stats, host, facts, app, figures):
    out = {
        "baseline_bytes": stats.baseline,
        "max_live_bytes": stats.max_live,
        "max_live_op": stats.max_live_op,
        "max_alloc_bytes": stats.max_alloc,
        "max_op_bytes": stats.max_op_bytes,
        "max_op": stats.max_op,
        "collections": stats.collections,
        "op_bytes": stats.op_bytes,
        "op_count": stats.op_count,
        "pump_time_us": facts.pump_time_s * 1_000_000,  # these four: the hour's, before the restart
        "steps": facts.steps,
        "motor_steps": facts.motor_steps,
        "step_volume_pl": facts.step_pl,
        "bolus_volume_nl": facts.bolus_nl,
        "day_nl": facts.day_nl,
        "hour_nl": facts.hour_nl,
        "reservoir_nl": facts.reservoir_nl,
        "rate_nl_per_day": facts.rate_nl_per_day,
        "mode": facts.mode,
        "alarm": facts.alarm,
        "log_entries": facts.log_entries,  # after the hour
        "end_log_entries": app.log.count,
        "frames_sent": host.frames,
        "frames_served": host.served_before + app.link.frames_handled,
        "frames_refused": host.refused_before + app.link.frames_refused,
        "refusals_asked": host.refusals,  # the refusals the bench provoked: all of frames_refused
        "ticks": facts.ticks,
        "platform": "%s %s %s"
        % (sys.implementation.name, ".".join(str(v) for v in sys.implementation.version[:3]), sys.platform),
    }
    for k, v in figures:
        out[k] = v
    print_qstrs("end")
    print("HEAP32 " + json.dumps(out))


def print_qstrs(when):
    """micropython.qstr_info(1): "qstr pool: n_pool=P, n_qstr=N, ..., n_total_bytes=B" (the interned
    names, part of the heap) and then each name as "Q(name)"; printed, so none of it is on the heap."""
    import micropython

    print("HEAP32_QSTR " + when)
    micropython.qstr_info(1)


# -- the bench, step by step ------------------------------------------------------


def run_slot(app, stats, facts):
    """Five minutes of pump time: the dosing task's turns run as
    PumpApp.tick_and_wait() and a clock jump."""
    clock = app.clock
    left_us = SLOT_US
    while left_us > 0:
        stats.op = "tick"
        wait_us = app.tick_and_wait()
        yield from stats.after_op()
        facts.ticks += 1
        if wait_us > left_us:
            wait_us = left_us
        clock.advance(wait_us)  # <= the board's MAX_SLEEP_US = 2**28, as SimClock.advance needs
        left_us -= wait_us
        if facts.ticks > 1_000_000:
            raise AssertionError("the dosing loop does not advance")


def run_hour(app, stats, host, facts):
    """One hour of pump time in 5-min slots; the host looks after each slot,
    and does one more thing in some of them."""
    from firmware import auth, codec

    for slot in range(1, SLOTS + 1):
        yield from run_slot(app, stats, facts)
        yield from host.look(facts)
        if slot == 1:  # 5 min: everything a reader can see, without a key
            yield from host.read_all()
        elif slot == 2:  # 10 min: a clinician watches telemetry, tries a program the library refuses
            yield from host.authenticate(auth.ROLE_CLINICIAN)
            yield from host.request(codec.TELEMETRY, (1000,))
            stats.op = "telemetry-data"
            telemetry_sample(app)
            yield from stats.after_op()
            yield from host.request(codec.TELEMETRY, (0,))
            yield from host.stage((PROGRAM[0], "basal 900 mg/day"))
            yield from host.refused(codec.STAGE, (), "stage refused", codec.ERR_BAD_VALUE)
            yield from host.request(codec.DISCARD)
            yield from host.end_session()
        elif slot == 3:  # 15 min: a site library (the one in force, a new version) staged and committed
            yield from host.authenticate(auth.ROLE_CLINICIAN)
            yield from host.site_library()
            yield from host.end_session()
        elif slot == 4:  # 20 min: a session refused (a wrong proof), a command refused for want of a key
            yield from host.wrong_proof()
            yield from host.refused(codec.STOP, (), "stop refused", codec.ERR_NEED_KEY)
        elif slot == 6:  # 30 min: the patient asks again, within the lockout
            yield from host.authenticate(auth.ROLE_PATIENT)
            yield from host.refused(codec.PATIENT_BOLUS, (), "patient-bolus refused", codec.ERR_BAD_VALUE)
            yield from host.end_session()
        elif slot == 9:  # 45 min: a clinician corrects the clock (the first session timed out long ago)
            yield from host.authenticate(auth.ROLE_CLINICIAN)
            yield from host.request(codec.CLOCK_SET, (CLOCK_S + slot * (SLOT_US // 1_000_000) + CLOCK_FIX_S,))
            yield from host.end_session()
        elif slot == 10:  # 50 min: a patient session that reads signed, then is left to time out
            yield from host.authenticate(auth.ROLE_PATIENT)
            yield from host.request(codec.STATUS)
            host.session = None


def after_restart(app, stats, host, facts):
    """The pump resumed from its saved state with the restart alarm: a clinician
    reads and clears the alarm, lets it dose 5 min, stops it, calibrates it,
    changes the patient's key and sends it to service (to be flashed)."""
    from firmware import auth, codec

    yield from host.request(codec.HELLO)
    yield from host.request(codec.ALARMS, (0,))
    yield from host.authenticate(auth.ROLE_CLINICIAN)
    yield from host.request(codec.SILENCE)
    yield from host.request(codec.ACK_ALARM, (0,))
    yield from host.end_session()
    yield from run_slot(app, stats, facts)
    yield from host.look(facts)
    yield from host.authenticate(auth.ROLE_CLINICIAN)
    yield from host.request(codec.STOP)
    for i in range(len(CAL_WEIGHINGS)):
        start, end, mass_ug = CAL_WEIGHINGS[i]
        yield from host.request(codec.CAL_WEIGHING, (i, 0, start, 0, end, mass_ug))
    n = len(CAL_WEIGHINGS)
    yield from host.request(codec.CALIBRATE, (n, CAL_DENSITY, codec.CAL_CHECK))
    if (yield from host.request(codec.CALIBRATE, (n, CAL_DENSITY, codec.CAL_STORE)))[4] != 1:
        raise AssertionError("the calibration was not stored")
    yield from host.refused(codec.SET_RATE, (500_000,), "set-rate refused", codec.ERR_BAD_VALUE)
    yield from host.change_key(auth.ROLE_PATIENT, NEW_PATIENT_KEY)
    yield from host.request(codec.SERVICE)
    yield from host.end_session()
    yield from host.look(facts)


def bench(stats, host, facts):
    yield from stats.collect()
    stats.baseline = gc.mem_alloc()
    stats.live = 0
    stats.max_live = 0
    print_qstrs("baseline")

    # The breakdown is printed as it is measured, so none of it stays on the heap.
    for name in IMPORT_ORDER:
        __import__(name)
        yield from stats.collect()
        report_import(name, stats.live)
        yield from stats.collect()
    after_imports = stats.live
    if allocprof is not None:
        allocprof.install(stats)

    hw = make_hardware()
    yield from stats.collect()
    drivers = stats.live - after_imports
    stats.op = "boot"
    app = boot(hw)
    hw = None
    yield from stats.after_op()
    yield from stats.collect()
    after_boot = yield from stats.collect()
    check_no_parser("after boot")

    from firmware import auth, codec

    host.attach(app)

    # Program it as `pumpctl clock --set` and `pumpctl program ... --confirm-soft` do,
    # after a bench engineer ran it at a plain rate (no drug in it yet).
    yield from host.request(codec.HELLO)
    yield from host.authenticate(auth.ROLE_CLINICIAN)
    yield from host.request(codec.SET_RATE, (500_000,))  # 0.5 mL/day, as pumpctl reads it
    yield from host.request(codec.CLOCK_SET, (CLOCK_S,))
    yield from host.stage(PROGRAM)
    _rows, warnings, crc, _expires_s = yield from host.request(codec.STAGE)
    yield from host.review(codec.REVIEW_STAGED)
    got_crc = (yield from host.request(codec.COMMIT, (crc, 1 if warnings else 0)))[0]
    if got_crc != crc:
        raise AssertionError("the committed program's crc differs from the staged one")
    crc = got_crc = _rows = _expires_s = None  # a crc past 2**30 is a long int: the host's, dropped
    yield from host.review(codec.REVIEW_RUNNING)
    yield from host.end_session()
    yield from host.look(facts)
    if facts.mode != codec.MODE_FLEX:
        raise AssertionError("the program is not in force: mode %d" % facts.mode)
    # The patient asks for the bolus the program allows (pumpctl uses the patient's key: least privilege).
    yield from host.authenticate(auth.ROLE_PATIENT)
    facts.bolus_nl = (yield from host.request(codec.PATIENT_BOLUS))[0]
    yield from host.end_session()
    yield from stats.collect()
    after_programming = yield from stats.collect()
    check_no_parser("after programming")

    yield from run_hour(app, stats, host, facts)
    yield from host.look(facts)
    hour_figures(app, facts)
    yield from stats.collect()
    after_hour = yield from stats.collect()
    check_no_parser("after the hour")

    # A power cut: the pump starts again on the same storage and resumes.
    host.detach(app)
    app = None
    hw = make_hardware(provision=False)
    yield from stats.collect()
    stats.op = "restart"
    app = boot(hw)
    hw = None
    yield from stats.after_op()
    host.attach(app)
    yield from after_restart(app, stats, host, facts)
    check_all_ran(stats)
    check_no_parser("after every command")
    if allocprof is not None:
        allocprof.report(OP_NAMES)

    result(
        stats,
        host,
        facts,
        app,
        (
            ("after_imports_bytes", after_imports),
            ("drivers_bytes", drivers),
            ("after_boot_bytes", after_boot),
            ("after_programming_bytes", after_programming),
            ("after_hour_bytes", after_hour),
        ),
    )


# Where each operation's garbage comes from, when bench/alloc_profile.py passes this file beside it.
try:
    import allocprof
except ImportError:
    allocprof = None
# The standard modules the firmware imports that a board has built in and this VM has as frozen
# Python (micropython-lib's binascii, os with os.path and collections, time: about 2.7 KB of this
# heap and their interned names). On a board they are C and take no heap: on the emulated Pico
# (stock MicroPython 1.29, RPI_PICO) importing each leaves gc.mem_alloc() as it was and adds
# nothing to sys.modules. So they load before the baseline, as a board has them before the pump.
import binascii  # noqa: E402,F401
import os  # noqa: E402,F401
import time  # noqa: E402,F401

# The modules loaded before the baseline (built in, the board's standard ones above, or this harness's).
PRELOADED = tuple(sys.modules)
# The host's state is made here, before the baseline.
_stats = Stats()
_facts = Facts()
_host = Host(_stats, Counter(999))  # its nonces differ from the pump's
RUN_MJS_STEPS = bench(_stats, _host, _facts)
