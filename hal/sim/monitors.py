# The simulated motor monitors (hal/__init__.py, "The monitors"): the
# driver's stall line, an encoder on the pump head and the occlusion input,
# all read off the motor model (hal/sim/stepper.py) and set by the fault plan
# (hal/sim/faults.py). The firmware may call them on every tick: no
# allocation, a few compares each.
#
#   SimStall      like hal/stall.StallInput: stalled() is True while the line
#                 is active (FAULT_STALL on) and stays True after it ends
#                 until clear(), which forgets the events seen.
#   SimEncoder    like hal/stall.EncoderInput with steps_per_pulse 1 and a
#                 tolerance of 1 pulse (the step in motion): a pulse is a step
#                 that turned the head and has finished its motion (the
#                 motor's turned steps less those still moving). Steps issued
#                 but not turned (a stall, a sheared coupling, a failed
#                 driver) and steps a halt dropped owe pulses that never come.
#   SimOcclusion  occluded() is True while the outlet is blocked
#                 (FAULT_OCCLUSION on) once TRIP_STEPS steps have finished
#                 turning against the block (the pressure rising), and False
#                 at once when the block ends.

from firmware import const
from firmware.scheduler import STEP_RADIX
from hal.sim.stepper import MODE_BLOCKED, MODE_STILL

_COUNT_MAX = const(0x3FFFFFFF)  # counts saturate below 2**30: small ints on a 32-bit port
TRIP_STEPS = const(8)  # steps against a block before the occlusion input trips


class SimStall:
    def __init__(self):
        self.line = False  # the stall line is active now (the rotor is jammed)
        self.events = 0  # times the line went active since clear(), saturating

    def set_line(self, active):
        """The fault plan: the rotor jams (True) or turns again (False)."""
        if active and not self.line and self.events < _COUNT_MAX:
            self.events += 1
        self.line = active

    def stalled(self):
        """True if the line is active now or went active since clear()."""
        return self.events > 0 or self.line

    def clear(self):
        """After recovery (the motor turns again): forget the stalls seen."""
        self.events = 0


class SimEncoder:
    def __init__(self, motor, steps_per_pulse=1, tolerance_pulses=1):
        from hal.stall import check_encoder

        check_encoder(steps_per_pulse, tolerance_pulses)
        self._motor = motor
        self.steps_per_pulse = steps_per_pulse
        self.tolerance_pulses = tolerance_pulses
        self._base_issued = 0  # the firmware's step total at restart()
        self._base_hi = 0  # the motor's finished turned steps at restart(), two words
        self._base_lo = 0
        self.restart(0)

    def _finished(self):
        """(hi, lo) of the motor's turned steps that have finished their motion: what the encoder
        has seen since boot (never falls: a halt or a stall takes only steps still in motion)."""
        m = self._motor
        q = m.in_motion() if m.mode != MODE_STILL else 0  # the steps in motion share the mode of the moment
        hi = m.turned_hi
        lo = m.turned_lo - q
        if lo < 0:  # q < STEP_RADIX: one borrow
            lo += STEP_RADIX
            hi -= 1
        return hi, lo

    def _seen_steps(self):
        """Finished turned steps since restart(), below 2**30 between restarts (as
        hal/stall.EncoderInput states for its count). No allocation."""
        m = self._motor
        q = m.in_motion() if m.mode != MODE_STILL else 0
        sh = m.turned_hi - self._base_hi
        sl = m.turned_lo - q - self._base_lo  # > -2 * STEP_RADIX
        while sl < 0:
            sl += STEP_RADIX
            sh -= 1
        return sh * STEP_RADIX + sl if sh else sl

    def restart(self, steps_issued):
        """Count afresh from this step total (at boot, after a recovery)."""
        self._base_issued = steps_issued
        self._base_hi, self._base_lo = self._finished()

    def pulses(self):
        """Pulses seen since restart()."""
        return self._seen_steps() // self.steps_per_pulse

    def missing(self, steps_issued):
        """Pulses owed by the steps issued since restart() and not seen, beyond the tolerance (0: all
        there). steps_issued: the firmware's total of steps given to the motor."""
        spp = self.steps_per_pulse
        owed = (steps_issued - self._base_issued) // spp
        short = owed - self._seen_steps() // spp - self.tolerance_pulses
        return short if short > 0 else 0


class SimOcclusion:
    def __init__(self, motor, trip_steps=TRIP_STEPS):
        if trip_steps < 1:
            raise ValueError("trip_steps must be 1 or more steps against the block, not %r" % (trip_steps,))
        self._motor = motor
        self.trip_steps = trip_steps

    def occluded(self):
        """The outlet is blocked and trip_steps steps have finished turning against it."""
        m = self._motor
        if not m.blocked:
            return False
        pushed = m.pushed
        if m.mode == MODE_BLOCKED:
            pushed -= m.in_motion()  # still moving: not pushed yet
        return pushed >= self.trip_steps
