# firmware_heap_bytes on the 32-bit webassembly MicroPython (run by
# bench/heap_bench.py through tests/mp/run.mjs):
#
#   node tests/mp/run.mjs ROOT bench/mp/heap32.py
#
# How much of the GC heap the pump holds: after boot, and after an hour of
# pump time in which a host programs it over the real link, takes a patient
# bolus and reads it now and then. The pump is the sim board's firmware
# (PumpApp, unchanged) with parts that work on this VM:
#   clock    hal.sim.clock.SimClock(0): time moves only when this script advances it
#   motor    hal.sim.motor.SimStepper with the sim board's step volume and motion time
#   storage  hal.file_storage.FileStorage, the real storage driver, on a folder of the
#            VM's in-memory filesystem (file contents live outside the GC heap, as on a
#            board's flash); the keys are kept there too, as on the sim board
#   serial   a stand-in that collects the replies (the VM has no serial port)
#   random   a deterministic counter: this VM has no os.urandom (hal/entropy.py)
# The host side runs in the same VM and speaks the wire protocol byte by byte
# into app.link.receive(), as the link task would feed it.
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
# (this script compiled and its host objects made, nothing of the firmware
# imported): every module the pump imports (compiled to bytecode in RAM here:
# a board with frozen modules keeps that in flash) and every object it holds.
# The host's own state is made before the baseline or dropped before a
# measurement, so the figures are the pump's (within a few hundred bytes).
#
# Prints one line per import ("HEAP32_IMPORT name live_bytes modules,..."),
# micropython.qstr_info()'s line and then one line "HEAP32 {json}".

import gc
import json
import os
import sys

# The keys and device id are literals: they live in this script's compiled
# code, inside the baseline, so the host's copy of them is not counted.
DEVICE_ID = "heap32-bench"
CLINICIAN_KEY = b"clinician-key-for-the-heap-bench"  # 32 bytes
PATIENT_KEY = b"patient-key-for-the-heap-bench!!"  # 32 bytes
STORAGE_DIR = "/pump"  # on the VM's in-memory filesystem

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
    "asyncio",
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
    "hal.sim.motor",
    "hal.file_storage",
)


# The kinds of operation measured: every command by its name (COMMAND_NAMES below)
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
# Each command's name, by its code: the host's names (pumpctl.words.COMMAND_NAMES), kept here
# because the codec holds none (they would be the pump's heap); codes as literals, so that the
# codec is not imported before the baseline is measured.
COMMAND_NAMES = {
    0x01: "hello",
    0x02: "status",
    0x03: "therapy",
    0x08: "auth-begin",
    0x09: "auth-prove",
    0x0A: "auth-end",
    0x0B: "key-change",
    0x10: "set-rate",
    0x11: "stop",
    0x12: "clock-set",
    0x13: "ack-alarm",
    0x14: "service",
    0x15: "silence",
    0x16: "calibrate",
    0x17: "cal-weighing",
    0x20: "stage-line",
    0x21: "stage",
    0x22: "review",
    0x23: "commit",
    0x24: "discard",
    0x25: "patient-bolus",
    0x28: "lib-drug",
    0x29: "lib-commit",
    0x2A: "lib-get",
    0x2B: "lib-stage",
    0x30: "event",
    0x31: "telemetry",
    0x32: "alarms",
    0x60: "sim-advance",
    0x61: "sim-state",
    0x62: "sim-fault",
}
# The site library the clinician stages and commits: the one in force, read
# field by field, with a new version and this source text for its first drug.
SITE_LIBRARY_VERSION = "heap-bench-site-2"
NEW_PATIENT_KEY = b"new-patient-key-for-heap-bench!!"  # 32 bytes: KEY_CHANGE at the end
# Two weighings (pumpctl calibrate) of steps the pump made in the hour, in bench
# water at 998,000 ug/mL: 150 steps of 52,083 pL each weigh 7,797 ug (to the ug).
CAL_DENSITY = 998_000
CAL_WEIGHINGS = ((0, 150, 7_797), (150, 300, 7_797))


class Counter:
    """Deterministic stand-in for the board's entropy (session nonces): this
    VM has no os.urandom. A nonce need only never repeat within the run."""

    def __init__(self, state):
        self.state = state

    def random_bytes(self, n):
        out = bytearray(n)
        s = self.state
        for i in range(n):
            s = (s * 75 + 74) % 65537  # the ZX81 generator: every value a small int
            out[i] = s & 0xFF
        self.state = s
        return bytes(out)


class BenchSerial:
    """The serial driver's interface (hal/__init__.py) without a line: the
    link is fed by receive() directly, and replies collect in `out`."""

    def __init__(self):
        self.out = []

    async def read_byte(self):  # unused: nothing runs the link task
        return -1

    def read_ready(self):
        return -1

    def write(self, data):
        self.out.append(bytes(data))

    def write_ready(self):
        return True


class BenchFaults:
    """The sim board's fault plan (hal/sim/faults.py) as SIM_FAULT sees it: this
    bench only schedules a fault for later and never reaches it."""

    def __init__(self):
        self.scheduled = 0

    def schedule(self, kind, delay_us, value):
        self.scheduled += 1


class Hardware:
    """What boards/sim.Hardware gives, built from parts that run on this VM."""

    def __init__(self, clock, motor, serial, random_bytes, storage):
        self.faults = BenchFaults()
        self.clock = clock
        self.motor = motor
        self.serial = serial
        self.random_bytes = random_bytes
        self.sim = True  # offers the simulator-only commands, as the sim board does
        self.storage = storage
        self.key_storage = storage  # the sim board keeps the keys with the pump's files


class Stats:
    """Heap figures in bytes above the baseline (small ints: no allocation)."""

    def __init__(self):
        self.baseline = 0
        self.live = 0  # after the last collection
        self.max_live = 0  # largest live heap at a collection between two operations
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


class Host:
    """pumpctl's side of the link (host/pumpctl/client.py), in the VM: frames
    are encoded with the shared codec and auth, fed to the pump byte by byte,
    and each reply is checked (one reply, its type, sequence number and MAC)."""

    def __init__(self, stats, random):
        self.stats = stats
        self.random = random
        self.app = None
        self.serial = None
        self.codec = None
        self.framing = None
        self.auth = None
        self.seq = 0
        self.session = None  # auth.Hmac of the open session, None outside one
        self.frame = None  # the request being fed
        self.frames = 0
        self.errors = 0
        self.refusals = 0  # refusals the host asked for (refused())
        self.served_before = 0  # frames served and refused by the pump before a restart
        self.refused_before = 0

    def request(self, msg_type, values=()):
        """Send one command (yield from it); returns the reply's values."""
        self._build(msg_type, values)
        self.stats.op = COMMAND_NAMES[msg_type]
        yield from self.stats.collect()  # the frame is built: what is allocated from here on is the pump's
        served = self._feed()
        yield from self.stats.after_op()
        return self._reply(msg_type, served)

    def refused(self, msg_type, values, op, code):
        """Send one command the pump must refuse with error `code` (yield from it);
        op: its kind in OP_NAMES."""
        self._build(msg_type, values)
        self.stats.op = op
        yield from self.stats.collect()
        served = self._feed()
        yield from self.stats.after_op()
        self.refusals += 1
        self._refusal(msg_type, served, code)

    def _build(self, msg_type, values):
        self.seq += 1
        payload = _encode_request(self.codec, self.framing, msg_type, values)
        self.frame = self.framing.encode_frame(msg_type, self.seq, payload, self.session)
        self.serial.out = []

    def _feed(self):
        receive = self.app.link.receive
        served = 0
        for b in self.frame:
            if receive(b):
                served += 1
        self.frame = None
        return served

    def _reply(self, msg_type, served):
        codec = self.codec
        auth = self.auth
        self.frames += 1
        wire = b"".join(self.serial.out)
        self.serial.out = []
        if served != 1 or wire.count(b"\x00") != 1 or wire[-1] != 0:
            raise AssertionError("one frame must get exactly one reply, got %r" % wire)
        kind, seq, body, mac, signed = self.framing.decode_frame(self.framing.cobs_decode(wire, len(wire) - 1))
        if seq != self.seq:
            raise AssertionError("the reply to seq %d came with seq %d" % (self.seq, seq))
        if self.session is not None:  # a signed request gets a reply the pump signed
            if mac is None or not auth.same_bytes(mac, self.session.digest(signed)[: auth.MAC_BYTES]):
                raise AssertionError("the reply to %s is not signed by the session" % COMMAND_NAMES[msg_type])
        if kind == codec.ERROR:
            self.errors += 1
            code, field, message, _more = _decode_reply(codec, self.framing, codec.ERROR, body)
            raise AssertionError(
                "the pump refused %s: error %d (%s) %s" % (COMMAND_NAMES[msg_type], code, field, message)
            )
        if kind != msg_type | codec.REPLY:
            raise AssertionError("reply of type 0x%02x to 0x%02x" % (kind, msg_type))
        return _decode_reply(codec, self.framing, msg_type, body)

    def _refusal(self, msg_type, served, code):
        codec = self.codec
        self.frames += 1
        wire = b"".join(self.serial.out)
        self.serial.out = []
        if served != 1 or wire.count(b"\x00") != 1 or wire[-1] != 0:
            raise AssertionError("one frame must get exactly one reply, got %r" % wire)
        kind, seq, body, _mac, _signed = self.framing.decode_frame(self.framing.cobs_decode(wire, len(wire) - 1))
        if kind != codec.ERROR or seq != self.seq:
            raise AssertionError("%s was not refused" % COMMAND_NAMES[msg_type])
        got = _decode_reply(codec, self.framing, codec.ERROR, body)[0]
        if got != code:
            raise AssertionError("%s refused with error %d, not %d" % (COMMAND_NAMES[msg_type], got, code))

    def authenticate(self, role):
        """Open a session as pumpctl's Pump.authenticate() does (yield from it)."""
        auth = self.auth
        codec = self.codec
        key = CLINICIAN_KEY if role == auth.ROLE_CLINICIAN else PATIENT_KEY
        self.session = None
        (pump_nonce,) = yield from self.request(codec.AUTH_BEGIN, (role,))
        host_nonce = self.random.random_bytes(auth.NONCE_BYTES)
        proof = auth.proof(key, role, pump_nonce, host_nonce)
        pump_proof, _timeout_s = yield from self.request(codec.AUTH_PROVE, (role, pump_nonce, host_nonce, proof))
        if not auth.same_bytes(pump_proof, auth.pump_proof(key, role, pump_nonce, host_nonce)):
            raise AssertionError("the pump did not prove it holds the key")
        self.session = auth.Hmac(auth.session_key(key, role, pump_nonce, host_nonce))

    def end_session(self):
        yield from self.request(self.codec.AUTH_END)
        self.session = None

    def attach(self, app):
        self.app = app
        self.serial = app.hw.serial

    def detach(self, app):
        """The pump is about to go (a power cut): keep its link's counts."""
        self.served_before += app.link.frames_handled
        self.refused_before += app.link.frames_refused
        self.app = None
        self.serial = None
        self.session = None

    def wrong_proof(self):
        """A session the pump refuses: the proof of a key it does not hold."""
        auth = self.auth
        self.session = None
        (pump_nonce,) = yield from self.request(self.codec.AUTH_BEGIN, (auth.ROLE_CLINICIAN,))
        host_nonce = self.random.random_bytes(auth.NONCE_BYTES)
        proof = auth.proof(NEW_PATIENT_KEY, auth.ROLE_CLINICIAN, pump_nonce, host_nonce)
        yield from self.refused(
            self.codec.AUTH_PROVE,
            (auth.ROLE_CLINICIAN, pump_nonce, host_nonce, proof),
            "auth-prove refused",
            auth.ERR_AUTH,
        )

    def change_key(self, role, new_key):
        """KEY_CHANGE as pumpctl's change_key() sends it: the key masked with the session's pad."""
        auth = self.auth
        masked = auth.xor_bytes(new_key, auth.wrap_pad(self.session, role, self.seq + 1))
        if (yield from self.request(self.codec.KEY_CHANGE, (role, masked)))[0] != role:
            raise AssertionError("the key was not changed")

    def read_all(self):
        """What a reader can see without a key: the alarms, the whole event log, the
        whole library, the simulator's state (and a fault scheduled for later)."""
        codec = self.codec
        yield from self.request(codec.ALARMS, (0,))
        count = (yield from self.request(codec.EVENT, (0,)))[0]
        for i in range(1, count):
            yield from self.request(codec.EVENT, (i,))
        drugs = (yield from self.request(codec.LIB_GET, (0, codec.LIB_IN_FORCE)))[1]
        for d in range(1, drugs):
            yield from self.request(codec.LIB_GET, (d, codec.LIB_IN_FORCE))
        yield from self.request(codec.SIM_STATE)
        yield from self.request(codec.SIM_ADVANCE, (0, 0))
        yield from self.request(codec.SIM_FAULT, (codec.FAULT_LEAK, 1_000_000, 0))

    def site_library(self):
        """Stage the library in force, drug by drug, as a new version with its first drug's
        daily soft limit 1 ng lower; check it, read it back and commit it."""
        codec = self.codec
        drugs = (yield from self.request(codec.LIB_GET, (0, codec.LIB_IN_FORCE)))[1]
        for d in range(drugs):
            drug = (yield from self.request(codec.LIB_GET, (d, codec.LIB_IN_FORCE)))[2:13]
            if d == 0:
                drug[2] -= 1  # daily_soft_ng_per_day: a soft limit, lowered
            yield from self.request(codec.LIB_DRUG, [d] + drug)
            drug = None
        lib_hash, _drugs, changed, raised, _expires = yield from self.request(
            codec.LIB_STAGE, (SITE_LIBRARY_VERSION, drugs)
        )
        if changed != 1 or raised != 0:
            raise AssertionError("the site library changes %d fields and raises %d" % (changed, raised))
        yield from self.request(codec.LIB_GET, (0, codec.LIB_STAGED))
        yield from self.request(codec.LIB_COMMIT, (lib_hash, 0))
        lib_hash = None  # past 2**30: a long int, the host's

    def review(self, which):
        """All rows of the running or staged program, as pumpctl reads them."""
        rows = (yield from self.request(self.codec.REVIEW, (which, 0)))[0]
        for i in range(1, rows):
            yield from self.request(self.codec.REVIEW, (which, i))

    def look(self, facts):
        """What `pumpctl status` and `pumpctl therapy` read, and the newest log
        entry; keeps a few numbers in facts (small ints, no lists held)."""
        codec = self.codec
        status = yield from self.request(codec.STATUS)
        facts.mode = status[2]
        facts.rate_nl_per_day = status[3]
        therapy = yield from self.request(codec.THERAPY)
        facts.reservoir_nl = therapy[7]
        facts.day_nl = therapy[9]
        facts.hour_nl = therapy[10]
        facts.alarm = therapy[12]
        count = (yield from self.request(codec.EVENT, (0,)))[0]
        yield from self.request(codec.EVENT, (count - 1,))


class Facts:
    """What the host learnt, as small ints."""

    def __init__(self):
        self.mode = 0
        self.rate_nl_per_day = 0
        self.reservoir_nl = 0
        self.day_nl = 0
        self.hour_nl = 0
        self.alarm = 0
        self.bolus_nl = 0
        self.ticks = 0
        self.pump_time_s = 0
        self.steps = 0
        self.motor_steps = 0
        self.step_pl = 0
        self.log_entries = 0


# -- plain functions: their frames are gone before any collection -------------


def _encode_request(codec, framing, msg_type, values):
    """A request's payload, packed by its fields where they lie in codec.MESSAGES: the host's
    lists of fields (host/pumpctl/schema.py) would be heap counted as the pump's."""
    at = codec.span(msg_type, False)
    return framing.encode_spec(codec.MESSAGES, at >> 16, at & 0xFFFF, values)


def _decode_reply(codec, framing, msg_type, body):
    """A reply's values (or an ERROR's), unpacked as _encode_request packs."""
    at = codec.span(msg_type, True)
    return framing.decode_spec(codec.MESSAGES, at >> 16, at & 0xFFFF, body)


def report_import(name, live):
    new = ",".join(m for m in sys.modules if m not in PRELOADED)
    print("HEAP32_IMPORT %s %d %s" % (name, live, new))


def make_hardware(provision=True):
    from boards import sim as board
    from firmware import auth
    from hal.file_storage import FileStorage
    from hal.sim.clock import SimClock
    from hal.sim.motor import SimStepper

    # The provisioning file, as flashing writes it: the firmware moves the keys
    # into its key store at boot and empties the file.
    if provision:
        try:
            os.mkdir(STORAGE_DIR)
        except OSError:
            pass
        with open(STORAGE_DIR + "/" + auth.PROVISION_FILE, "wb") as f:
            f.write(auth.encode_keys(DEVICE_ID, CLINICIAN_KEY, PATIENT_KEY))
    clock = SimClock(0)
    motor = SimStepper(board.STEP_VOLUME_PL, clock, board.STEP_MOTION_US)
    return Hardware(clock, motor, BenchSerial(), Counter(1).random_bytes, FileStorage(STORAGE_DIR))


def boot(hw):
    from boards import sim as board
    from firmware.app import PumpApp

    app = PumpApp(board, hw)
    if app.auth.device_id != DEVICE_ID:
        raise AssertionError("the pump was not provisioned from the file")
    return app


def telemetry_sample(app):
    """One turn of the telemetry task (PumpApp.telemetry) that sends a sample."""
    from firmware import codec

    app.link.send(codec.TELEMETRY_DATA, app.telemetry.sent & 0xFFFFFFFF, app.telemetry.sample())
    app.telemetry.sent += 1
    app.hw.serial.out = []  # the host does not read the stream here


def hour_figures(app, facts):
    """What the hour did, kept before the restart replaces the app (small ints)."""
    motor = app.motor
    facts.pump_time_s = app.timebase.total_us() // 1_000_000
    facts.steps = app.sched.steps()
    facts.motor_steps = motor.steps_hi * (1 << 29) + motor.steps_lo
    facts.step_pl = app.sched.step_pl
    facts.log_entries = app.log.count


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
    import micropython

    micropython.qstr_info()  # "qstr pool: ... n_total_bytes=N": the interned names, part of the heap
    print("HEAP32 " + json.dumps(out))


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
            yield from host.request(codec.STAGE_LINE, (0, PROGRAM[0]))
            yield from host.request(codec.STAGE_LINE, (1, "basal 900 mg/day"))
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

    from firmware import auth, codec, framing

    host.attach(app)
    host.codec = codec
    host.framing = framing
    host.auth = auth

    # Program it as `pumpctl clock --set` and `pumpctl program ... --confirm-soft` do,
    # after a bench engineer ran it at a plain rate (no drug in it yet).
    yield from host.request(codec.HELLO)
    yield from host.authenticate(auth.ROLE_CLINICIAN)
    yield from host.request(codec.SET_RATE, (500_000,))  # 0.5 mL/day, as pumpctl reads it
    yield from host.request(codec.CLOCK_SET, (CLOCK_S,))
    for i in range(len(PROGRAM)):
        yield from host.request(codec.STAGE_LINE, (i, PROGRAM[i]))
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
# The modules loaded before the baseline (built in, or this harness's).
PRELOADED = tuple(sys.modules)
# The host's state is made here, before the baseline.
_stats = Stats()
_facts = Facts()
_host = Host(_stats, Counter(999))  # its nonces differ from the pump's
RUN_MJS_STEPS = bench(_stats, _host, _facts)
