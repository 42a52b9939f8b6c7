# The simulated board: the same firmware as a Pico, with the hardware
# replaced by physical models (hal/sim) and the USB serial link by a pty.

NAME = "sim"

# Calibrated volume per motor step: a peristaltic head moving 62.5 uL per
# revolution of 1200 microsteps, i.e. 52.083 nL (to 1 pL).
STEP_VOLUME_PL = 52_083

# The dosing loop wakes at least this often when no step is due. The sim can
# sleep long (time is virtual); a real board wakes often to serve the link.
MAX_SLEEP_US = 268_435_456  # 2**28 us, about 4.5 min


class Hardware:
    def __init__(self, speed=0):
        from hal.sim.clock import SimClock
        from hal.sim.motor import SimStepper
        from hal.stdio_serial import StdioSerial

        self.clock = SimClock(speed)
        self.motor = SimStepper(STEP_VOLUME_PL)
        self.serial = StdioSerial()
        self.sim = True  # offers the simulator-only commands


def make(options):
    """Build the board's hardware; options come from the command line."""
    return Hardware(speed=int(options.get("speed", 0)))
