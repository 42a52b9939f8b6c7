# The pump of bench/mp/heap32.py on the 32-bit webassembly MicroPython: the sim board's
# firmware (PumpApp, unchanged), provisioned with the bench's keys, with parts that work
# on this VM:
#   clock    hal.sim.clock.SimClock(0): time moves only when the bench advances it
#   motor    hal.sim.stepper.SimStepper with the sim board's step volume and motion time
#   storage  hal.file_storage.FileStorage, the real storage driver, on a folder of the
#            VM's in-memory filesystem (file contents live outside the GC heap, as on a
#            board's flash); the keys are kept there too, as on the sim board
#   serial   a stand-in that collects the replies (the VM has no serial port)
#   random   a deterministic counter: this VM has no os.urandom (hal/entropy.py)
# Loaded beside heap32.py (tests/vms.py HEAP32_PARTS) before its baseline is measured:
# this code is the harness's, not counted as the pump's.

import os

# The keys and device id are literals: they live in this script's compiled
# code, inside the baseline, so the host's copy of them is not counted.
DEVICE_ID = "heap32-bench"
CLINICIAN_KEY = b"clinician-key-for-the-heap-bench"  # 32 bytes
PATIENT_KEY = b"patient-key-for-the-heap-bench!!"  # 32 bytes
STORAGE_DIR = "/pump"  # on the VM's in-memory filesystem


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


def make_hardware(provision=True):
    from boards import sim as board
    from firmware.lazy import values
    from hal.file_storage import FileStorage
    from hal.sim.clock import SimClock
    from hal.sim.stepper import SimStepper

    # The provisioning file, as flashing writes it: the firmware moves the keys
    # into its key store at boot and empties the file.
    if provision:
        try:
            os.mkdir(STORAGE_DIR)
        except OSError:
            pass
        # keyring.py forgotten after, as the boot forgets it: the harness must not keep it on the pump's heap
        name, encode_keys = values("firmware.keyring", "PROVISION_FILE", "encode_keys")
        with open(STORAGE_DIR + "/" + name, "wb") as f:
            f.write(encode_keys(DEVICE_ID, CLINICIAN_KEY, PATIENT_KEY))
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
