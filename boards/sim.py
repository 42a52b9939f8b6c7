# The simulated board: the same firmware as a Pico, with the hardware
# replaced by physical models (hal/sim) and the USB serial link by a pty.

NAME = "sim"

# What mpy-cross compiles this board's modules for (-march): the unix port runs the simulator on x64.
MPY_ARCH = "x64"

# Calibrated volume per motor step: a peristaltic head moving 62.5 uL per
# revolution of 1200 microsteps, i.e. 52.083 nL (to 1 pL).
STEP_VOLUME_PL = 52_083

# Motion time of one step in the motor model (hal/sim/stepper.py): 2 ms. A
# 1200-microstep head (a 200-step motor at 1/6 microstepping) moving one
# microstep and settling takes on the order of a millisecond or two; 2 ms is
# 500 microsteps/s, 25 rpm of the head, up to 94 mL/h. The pump's fastest
# rate, 10 mL/h, is 53.3 steps/s, one every 18.75 ms, so the motor keeps up
# with room to spare (steps issued on time never queue behind each other),
# and at that rate a step is in motion about a tenth of the time: a window a
# test can land in, where a fault and a normal suspend differ.
STEP_MOTION_US = 2_000

# The dosing loop wakes at least this often when no step is due. The sim can
# sleep long (time is virtual); a real board wakes often to serve the link.
MAX_SLEEP_US = 268_435_456  # 2**28 us, about 4.5 min

# A tick gap beyond this is a clock fault (firmware/monitors.py): more than the
# longest sleep, with room for a slow command at speed N, and below the largest
# jump a test injects (FAULT_CLOCK_JUMP, up to 500 s; ticks_diff sees 536 s).
CLOCK_JUMP_US = 400_000_000

# The reservoir's capacity (--reservoir-ml: 20 or 40, the two sizes of
# implanted pumps). The firmware should take it from hw.reservoir.capacity_nl,
# which follows the option.
RESERVOIR_ML = 20
RESERVOIR_SIZES_ML = (20, 40)

# The watchdog's timeout, in pump time (hal/sim/watchdog.py): the dosing task
# may sleep MAX_SLEEP_US between ticks, so two of those and a minute to spare;
# 596_870_912 us (about 10 min), below 2**30.
WATCHDOG_US = 2 * MAX_SLEEP_US + 60_000_000

MOTOR_DEAD = "motor driver not responding"  # motor_check()'s reason after FAULT_MOTOR or --motor-dead 1


class Hardware:
    def __init__(
        self,
        speed=0,
        storage_dir=None,
        cut_after_bytes=None,
        tally=None,
        keys_dir=None,
        reservoir_nl=None,
        reservoir_ml=RESERVOIR_ML,
        battery_permille=1000,
        seed=1,
        motor_dead=False,
        clock_dead=False,
        true_step_pl=STEP_VOLUME_PL,
    ):
        from hal.entropy import random_bytes
        from hal.sim.battery import SimBattery
        from hal.sim.buzzer import SimBuzzer
        from hal.sim.clock import SimClock
        from hal.sim.faults import FaultPlan
        from hal.sim.monitors import SimEncoder, SimOcclusion, SimStall
        from hal.sim.reservoir import SimReservoir
        from hal.sim.stepper import FAILED, SimStepper
        from hal.sim.watchdog import SimWatchdog
        from hal.stdio_serial import StdioSerial

        if reservoir_ml not in RESERVOIR_SIZES_ML:
            raise ValueError("--reservoir-ml must be 20 or 40 (mL), not %r" % (reservoir_ml,))
        self.clock = SimClock(speed)
        self.clock.dead = clock_dead
        # What one step really moves: the calibrated volume, unless the run says the head differs
        # (--true-step-pl: worn tubing, another head), which only weighing finds (pumpctl calibrate).
        self.motor = SimStepper(true_step_pl, self.clock, STEP_MOTION_US)
        if motor_dead:
            self.motor.set_fault(FAILED, True)
        if tally is not None:  # the motor's step total in a file that survives a kill (hal/sim/tally.py)
            from hal.sim.tally import Tally

            self.motor.tally = Tally(tally)
        self.serial = StdioSerial()
        self.random_bytes = random_bytes
        self.sim = True  # offers the simulator-only commands
        # Files in a folder of the host, with a power cut if asked (hal/sim/file_storage.py);
        # None without --storage: the pump keeps nothing, as before storage existed.
        self.storage = None
        if storage_dir is not None:
            from hal.sim.file_storage import SimStorage

            self.storage = SimStorage(storage_dir, cut_after_bytes)
        elif cut_after_bytes is not None:
            raise ValueError("--cut-after-bytes needs --storage DIR")
        # The keys live with the pump's files (and meet the same power cuts),
        # or in their own folder on a pump that keeps nothing else.
        self.key_storage = self.storage
        if keys_dir is not None:
            if self.storage is not None:
                raise ValueError("--keys DIR is for a pump without --storage; with it the keys live there")
            from hal.file_storage import FileStorage

            self.key_storage = FileStorage(keys_dir)
        # The monitored parts (hal/__init__.py, "The monitors"): physical models read off the motor.
        self.reservoir_ml = reservoir_ml
        # The reservoir is always modelled (what the head draws from it, fills, leaks); its sensor is
        # fitted only when the run says what the reservoir holds at boot (--reservoir-nl): a test that
        # programs "fill 20 mL" without filling the model would otherwise see the two disagree.
        self.reservoir_model = SimReservoir(self.motor, reservoir_ml * 1_000_000, reservoir_nl or 0, seed)
        self.reservoir = self.reservoir_model if reservoir_nl is not None else None
        self.battery = SimBattery(self.clock, self.motor, battery_permille)
        self.stall = SimStall()
        self.encoder = SimEncoder(self.motor)
        self.occlusion = SimOcclusion(self.motor)
        self.buzzer = SimBuzzer()
        # The host's faults (SIM_FAULT), at exact pump times; it also keeps the watchdog's bite on the clock.
        self.faults = FaultPlan(self.clock, self.motor, self.reservoir_model, self.battery, self.stall)
        self.watchdog = SimWatchdog(
            self.clock, self.faults, WATCHDOG_US, None if self.storage is None else self.storage.directory
        )

    def reset_cause(self):
        """Why the board started: "watchdog" if the watchdog reset it (its marker in the storage
        folder, hal/sim/watchdog.py: read once), else "power"."""
        from hal.sim.watchdog import read_reset_cause

        return read_reset_cause(None if self.storage is None else self.storage.directory)

    def firmware_check(self):
        """The problems hal/manifest.py finds in a flashed folder (its manifest.sha256 in the current
        directory), or None run from the source tree (no manifest)."""
        from hal.manifest import check_once

        return check_once("")

    def motor_check(self):
        """Why the motor driver does not respond (FAULT_MOTOR, --motor-dead 1), or None."""
        return MOTOR_DEAD if self.motor.failed else None


def _flag(options, name):
    value = options.get(name, "0")
    if value not in ("0", "1"):
        raise ValueError("--%s must be 0 or 1, not %r" % (name, value))
    return value == "1"


def make(options):
    """Build the board's hardware; options come from the command line:

    --speed N            pump time runs N times the wall clock (0: only when the host grants it)
    --storage DIR        keep the pump's files in folder DIR (created if missing); none without it
    --cut-after-bytes N  cut the power (end the process at once) after N more bytes are written
    --keys DIR           keep the keys (provisioning file and key store) in folder DIR, for a pump
                         without --storage (with it they live in the storage folder)
    --tally FILE         keep the motor's running step total in FILE, rewritten in place at every
                         step (hal/sim/tally.py): what it moved survives the process
    --reservoir-nl N     the reservoir holds N nL at boot, up to its capacity, and its sensor is fitted
                         (without it the reservoir is modelled, starting empty, but has no sensor)
    --reservoir-ml N     the reservoir's capacity: 20 (default, RESERVOIR_ML) or 40 mL
    --battery-permille N the cell's charge at boot, 0..1000 permille (default 1000: full)
    --seed N             seed of the reservoir sensor's noise (default 1; hal/sim/reservoir.py)
    --motor-dead 1       the motor driver does not respond from boot (motor_check() says so)
    --clock-dead 1       the power-on self-test finds the clock not running (clock.running() False)
    --true-step-pl N     what one step really moves, in pL (default STEP_VOLUME_PL, the calibrated
                         volume): a head that differs, which weighing finds (pumpctl calibrate)
    """
    cut = options.get("cut-after-bytes")
    return Hardware(
        speed=int(options.get("speed", 0)),
        storage_dir=options.get("storage"),
        cut_after_bytes=None if cut is None else int(cut),
        tally=options.get("tally"),
        keys_dir=options.get("keys"),
        reservoir_nl=None if "reservoir-nl" not in options else int(options["reservoir-nl"]),
        reservoir_ml=int(options.get("reservoir-ml", RESERVOIR_ML)),
        battery_permille=int(options.get("battery-permille", 1000)),
        seed=int(options.get("seed", 1)),
        motor_dead=_flag(options, "motor-dead"),
        clock_dead=_flag(options, "clock-dead"),
        true_step_pl=_true_step_pl(options),
    )


def _true_step_pl(options):
    value = int(options.get("true-step-pl", STEP_VOLUME_PL))
    if not STEP_VOLUME_PL // 2 <= value <= 2 * STEP_VOLUME_PL:
        raise ValueError("--true-step-pl must be %d..%d pL, not %d" % (STEP_VOLUME_PL // 2, 2 * STEP_VOLUME_PL, value))
    return value
