# A simulated stepper: steps take time to move, and a halt cuts them off.
#
# true_step_pl is the volume one step really moves in the model; it equals
# the board's calibrated volume unless a test makes them differ (a
# calibration error that only a balance would see).
#
# Motion. Every step takes motion_us of pump time (the board's
# STEP_MOTION_US), one after another: step(n) at pump time t queues n steps
# behind any still moving, so the last finishes at max(t, end) + n * motion_us.
#   * A normal suspend just issues no more steps: the queue runs out, so the
#     step in motion finishes.
#   * halt() (a fault) stops the drive at t: every step not finished by t is
#     dropped, the one cut mid-motion included. A partial step is not a step
#     moved (what it pushed before the cut is not modelled): it counts in
#     `dropped`, never in the steps made. A step that finishes exactly at t
#     has finished.
#
# Counts:
#   steps_hi/lo  steps issued and not dropped: finished or still in motion,
#                i.e. the steps the motor makes unless a halt cuts them. Two
#                words, as the scheduler counts (0 <= lo < STEP_RADIX), so the
#                total equals the firmware's own count until a halt drops steps.
#   in_motion()  of those, the steps not finished by now (moving or queued)
#   dropped      steps dropped by halts, in all (saturates at 2**30 - 1)
#   halts        times halt() was called
#
# Pump time is the sim clock's never-wrapping (wraps, ticks_us()) pair, and
# the end of the queue is kept the same way, so a motion queued before any
# number of tick wraps is still known to have finished. Every value stays
# below 2**30 (small ints on a 32-bit port); step() allocates nothing, as it
# runs on the dosing hot path.
#
# The tally (sim only: boards/sim.py --tally FILE, hal/sim/tally.py). Given
# one, step() writes the new total (steps_hi, steps_lo) to it BEFORE it queues
# the steps, and halt() after it drops steps, so the file outlives the
# process holding at least what the motor was ever told to move.

from firmware.scheduler import STEP_RADIX

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:  # CPython (host-side unit tests): const() is only a marker there

    def const(x):
        return x


_TICKS_MASK = const(0x3FFFFFFF)  # the clock's ticks wrap at 2**30
_MAX_COUNT = const(0x3FFFFFFF)  # 2**30 - 1: the largest small int on a 32-bit port
# The most motion the queue may hold: 2**28 us (4.5 min). The firmware ticks
# at least every MAX_SLEEP_US (<= 2**28 us) of pump time and issues the steps
# due since its last tick; with a motion time well under the fastest step
# interval (boards/sim.py, checked by tests/test_sim_motor.py) their motion
# is a fraction of that gap. More would be a model error: step() raises.
MAX_QUEUE_US = const(268_435_456)


class SimStepper:
    def __init__(self, true_step_pl, clock, motion_us, tally=None):
        if not 0 < motion_us <= MAX_QUEUE_US:
            raise ValueError("motion_us must be in 1..MAX_QUEUE_US")
        self.true_step_pl = true_step_pl
        self.clock = clock
        self.motion_us = motion_us
        self.steps_hi = 0
        self.steps_lo = 0  # two words, as the scheduler counts: 0 <= lo < STEP_RADIX
        self.dropped = 0  # steps a halt stopped before they finished
        self.halts = 0  # times a fault cut the motor off
        self.tally = tally  # a hal/sim/tally.Tally, or None (see the header)
        # Pump time when the last queued step finishes (at or before now: idle).
        self.end_t = clock.ticks_us()
        self.end_w = clock.wraps

    def _left_us(self, w, t):
        """Motion still queued after pump time (w, t): 0..MAX_QUEUE_US us."""
        ew = self.end_w
        if ew == w:
            d = self.end_t - t
            return d if d > 0 else 0
        if ew > w:  # the queue ends after the next wrap (ew == w + 1)
            return self.end_t + (_TICKS_MASK - t) + 1
        return 0  # it ended before the last wrap

    def step(self, n):
        """Queue n steps (n >= 0) behind those still moving. Hot path: no allocation."""
        if n <= 0:
            return
        clock = self.clock
        t = clock.ticks_us()  # first: at speed N reading the ticks may wrap them
        w = clock.wraps
        motion = self.motion_us
        left = self._left_us(w, t)
        if n > (MAX_QUEUE_US - left) // motion:
            raise ValueError("sim motor: more steps queued than it can move in MAX_QUEUE_US")
        hi = self.steps_hi
        lo = self.steps_lo + n
        while lo >= STEP_RADIX:
            lo -= STEP_RADIX
            hi += 1
        if self.tally is not None:  # before the steps are queued: the file never holds less than was issued
            self.tally.write(hi, lo)
        left += n * motion  # <= MAX_QUEUE_US: from now until the last one finishes
        room = _TICKS_MASK - t
        if left > room:
            self.end_w = w + 1
            self.end_t = left - room - 1
        else:
            self.end_w = w
            self.end_t = t + left
        self.steps_hi = hi
        self.steps_lo = lo

    def in_motion(self):
        """Steps issued and not finished by now: the one moving and those queued."""
        clock = self.clock
        t = clock.ticks_us()
        motion = self.motion_us
        return (self._left_us(clock.wraps, t) + motion - 1) // motion

    def halt(self):
        """Cut the drive at once (a fault): drop every step not finished by now,
        the one in motion included, and count them in `dropped`."""
        clock = self.clock
        t = clock.ticks_us()
        w = clock.wraps
        motion = self.motion_us
        k = (self._left_us(w, t) + motion - 1) // motion  # <= MAX_QUEUE_US
        if k:
            lo = self.steps_lo - k
            while lo < 0:
                lo += STEP_RADIX
                self.steps_hi -= 1
            self.steps_lo = lo
            self.dropped = self.dropped + k if k < _MAX_COUNT - self.dropped else _MAX_COUNT
            self.end_t = t
            self.end_w = w
            if self.tally is not None:  # after: until now the file held the larger total
                self.tally.write(self.steps_hi, lo)
        self.halts += 1
