# The simulated board: the same firmware as a Pico, with the hardware
# replaced by physical models (hal/sim) and the USB serial link by a pty.

NAME = "sim"

# What mpy-cross compiles this board's modules for (-march): the unix port runs the simulator on x64.
MPY_ARCH = "x64"

# Calibrated volume per motor step: a peristaltic head moving 62.5 uL per
# revolution of 1200 microsteps, i.e. 52.083 nL (to 1 pL).
STEP_VOLUME_PL = 52_083

# Motion time of one step in the motor model (hal/sim/motor.py): 2 ms. A
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


class Hardware:
    def __init__(self, speed=0, storage_dir=None, cut_after_bytes=None, tally=None, keys_dir=None):
        from hal.entropy import random_bytes
        from hal.sim.clock import SimClock
        from hal.sim.motor import SimStepper
        from hal.stdio_serial import StdioSerial

        self.clock = SimClock(speed)
        self.motor = SimStepper(STEP_VOLUME_PL, self.clock, STEP_MOTION_US)
        if tally is not None:  # the motor's step total in a file that survives a kill (hal/sim/tally.py)
            from hal.sim.tally import Tally

            self.motor.tally = Tally(tally)
        self.serial = StdioSerial()
        self.random_bytes = random_bytes
        self.sim = True  # offers the simulator-only commands
        # Files in a folder of the host, with a power cut if asked (hal/sim/storage.py);
        # None without --storage: the pump keeps nothing, as before storage existed.
        self.storage = None
        if storage_dir is not None:
            from hal.sim.storage import SimStorage

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


def make(options):
    """Build the board's hardware; options come from the command line:

    --speed N            pump time runs N times the wall clock (0: only when the host grants it)
    --storage DIR        keep the pump's files in folder DIR (created if missing); none without it
    --cut-after-bytes N  cut the power (end the process at once) after N more bytes are written
    --keys DIR           keep the keys (provisioning file and key store) in folder DIR, for a pump
                         without --storage (with it they live in the storage folder)
    --tally FILE         keep the motor's running step total in FILE, rewritten in place at every
                         step (hal/sim/tally.py): what it moved survives the process
    """
    cut = options.get("cut-after-bytes")
    return Hardware(
        speed=int(options.get("speed", 0)),
        storage_dir=options.get("storage"),
        cut_after_bytes=None if cut is None else int(cut),
        tally=options.get("tally"),
        keys_dir=options.get("keys"),
    )
