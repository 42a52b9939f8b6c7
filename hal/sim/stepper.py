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
# Turning (the monitors, hal/sim/monitors.py, and the fault plan,
# hal/sim/faults.py). A step issued does not always turn the head, and a
# step that turns does not always move fluid out:
#   jammed   the rotor is stalled (FAULT_STALL): the driver's stall line is active
#   sheared  the coupling to the head is broken (FAULT_ENCODER): no stall signal
#   failed   the driver does not respond (FAULT_MOTOR, --motor-dead): for good
#   blocked  the outlet is occluded (FAULT_OCCLUSION): the head turns, fluid stays
# The first three make the head stand still (mode _STILL), the fourth makes it
# turn against the block (_BLOCKED), none of them turn it freely (_FREE).
# set_fault() changes them. Every step still in motion takes the fate of the
# conditions in force: step() counts the steps it queues in the mode of the
# moment, and set_fault() moves the steps in motion to the new mode (a step
# moving when the rotor jams does not complete its turn; one still queued when
# the jam clears turns). So all the steps in motion share one mode, and a
# halt, which drops only steps in motion, knows what it drops.
#   turned_hi/lo  steps issued, not dropped, that turn the head (in motion
#                 included, as in steps_hi/lo); two words like those
#   blocked_hi/lo of those, the steps that pushed against an occlusion: they
#                 moved no fluid out (the model keeps it in the reservoir)
#   pushed        turned steps against the present block, since it began (the
#                 pressure in the line; 0 once the block ends), saturating
# The encoder sees the turned steps that have finished their motion; the
# reservoir loses the turned steps less the blocked ones; the battery pays
# for the turned steps. In the normal mode step() pays one compare and a
# two-word increment for this.
#
# The tally (sim only: boards/sim.py --tally FILE, hal/sim/tally.py). Given
# one, step() writes the new total (steps_hi, steps_lo) to it BEFORE it queues
# the steps, and halt() after it drops steps, so the file outlives the
# process holding at least what the motor was ever told to move.

from firmware import const
from firmware.scheduler import STEP_RADIX
from hal.step_counts import StepCounts

_TICKS_MASK = const(0x3FFFFFFF)  # the clock's ticks wrap at 2**30
_MAX_COUNT = const(0x3FFFFFFF)  # 2**30 - 1: the largest small int on a 32-bit port
# The most motion the queue may hold: 2**28 us (4.5 min). The firmware ticks
# at least every MAX_SLEEP_US (<= 2**28 us) of pump time and issues the steps
# due since its last tick; with a motion time well under the fastest step
# interval (boards/sim.py, checked by tests/hal/test_sim_stepper.py) their motion
# is a fraction of that gap. More would be a model error: step() raises.
MAX_QUEUE_US = const(268_435_456)
# Modes of the head (see the header).
_FREE = const(0)  # turns, and fluid leaves
_BLOCKED = const(1)  # turns against a blocked outlet
_STILL = const(2)  # does not turn
MODE_FREE = _FREE
MODE_BLOCKED = _BLOCKED
MODE_STILL = _STILL
# The conditions set_fault() sets (see the header).
JAMMED = const(0)
SHEARED = const(1)
FAILED = const(2)
BLOCKED = const(3)


class SimStepper(StepCounts):
    """The motor model. Its counts are a real driver's (hal/step_counts.py): steps issued
    and not dropped, steps a halt stopped before they finished, and the times a fault cut it off."""

    def __init__(self, true_step_pl, clock, motion_us, tally=None):
        if not 0 < motion_us <= MAX_QUEUE_US:
            raise ValueError("motion_us must be in 1..MAX_QUEUE_US")
        StepCounts.__init__(self)
        self.true_step_pl = true_step_pl
        self.clock = clock
        self.motion_us = motion_us
        self.tally = tally  # a hal/sim/tally.Tally, or None (see the header)
        # Pump time when the last queued step finishes (at or before now: idle).
        self.end_t = clock.ticks_us()
        self.end_w = clock.wraps
        self.turned_hi = 0
        self.turned_lo = 0  # 0 <= lo < STEP_RADIX
        self.blocked_hi = 0
        self.blocked_lo = 0
        self.pushed = 0  # 0..2**30 - 1
        self.jammed = False
        self.sheared = False
        self.failed = False
        self.blocked = False
        self.mode = _FREE

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
        self._issued(n)
        if self.tally is not None:  # before the steps are queued: the file never holds less than was issued
            self.tally.write(self.steps_hi, self.steps_lo)
        left += n * motion  # <= MAX_QUEUE_US: from now until the last one finishes
        room = _TICKS_MASK - t
        if left > room:
            self.end_w = w + 1
            self.end_t = left - room - 1
        else:
            self.end_w = w
            self.end_t = t + left
        mode = self.mode  # read after the ticks: at speed N reading them may fire a fault
        if mode != _STILL:
            self._count(n, mode)

    def _count(self, n, mode):
        """n (< STEP_RADIX) more steps turn the head in mode (_FREE or _BLOCKED). No allocation."""
        lo = self.turned_lo + n
        if lo >= STEP_RADIX:
            lo -= STEP_RADIX
            self.turned_hi += 1
        self.turned_lo = lo
        if mode == _BLOCKED:
            lo = self.blocked_lo + n
            if lo >= STEP_RADIX:
                lo -= STEP_RADIX
                self.blocked_hi += 1
            self.blocked_lo = lo
            p = self.pushed
            self.pushed = p + n if n < _MAX_COUNT - p else _MAX_COUNT

    def _uncount(self, n, mode):
        """n (< STEP_RADIX) steps counted in mode turn after all not (dropped, or the head stopped)."""
        lo = self.turned_lo - n
        if lo < 0:
            lo += STEP_RADIX
            self.turned_hi -= 1
        self.turned_lo = lo
        if mode == _BLOCKED:
            lo = self.blocked_lo - n
            if lo < 0:
                lo += STEP_RADIX
                self.blocked_hi -= 1
            self.blocked_lo = lo
            p = self.pushed - n
            self.pushed = p if p > 0 else 0

    def set_fault(self, which, on):
        """Start (on True) or end one condition of the header (JAMMED, SHEARED, FAILED or
        BLOCKED); the steps in motion take the new mode."""
        q = self.in_motion()  # first: at speed N reading the clock may fire a fault, which lands before this one
        old = self.mode
        if q and old != _STILL:
            self._uncount(q, old)
        if which == JAMMED:
            self.jammed = on
        elif which == SHEARED:
            self.sheared = on
        elif which == FAILED:
            self.failed = on
        elif which == BLOCKED:
            if on != self.blocked:  # a block begins (pressure builds from nothing) or ends (the line relaxes)
                self.pushed = 0
            self.blocked = on
        else:
            raise ValueError("sim motor: no condition %r (JAMMED, SHEARED, FAILED, BLOCKED)" % (which,))
        new = _STILL if self.jammed or self.sheared or self.failed else (_BLOCKED if self.blocked else _FREE)
        self.mode = new
        if q and new != _STILL:
            self._count(q, new)

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
            self._drop(k)
            self.end_t = t
            self.end_w = w
            mode = self.mode
            if mode != _STILL:  # the dropped steps shared the mode of the moment (see the header)
                self._uncount(k, mode)
            if self.tally is not None:  # after: until now the file held the larger total
                self.tally.write(self.steps_hi, self.steps_lo)
        self.halts += 1
