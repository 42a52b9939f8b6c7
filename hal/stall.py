# Stall feedback from the motor, two kinds: a driver's stall output (TMC2209
# DIAG: StallGuard4 drives it high when the load angle says the rotor has
# stopped following, Trinamic TMC2209 datasheet, "DIAG output") or an encoder
# on the pump head, whose pulses are counted against the steps issued.
#
# Both are read by the firmware's fault detection (firmware/monitors.py):
#   StallInput.stalled()              True once the stall line was seen active
#   EncoderInput.missing(steps_issued) encoder pulses short of what the steps owe
# Pin interrupts only count (an int attribute, no allocation: an IRQ handler
# may not allocate); the arithmetic happens when the firmware asks.

from firmware import const

_COUNT_MAX = const(0x3FFFFFFF)  # counts saturate below 2**30: small ints on a 32-bit port


class StallInput:
    """A driver's stall line (TMC2209 DIAG), on an input pin with an IRQ; active_high as wired."""

    def __init__(self, pin, rising, falling, active_high=True):
        """pin: a machine.Pin input; rising, falling: its Pin.IRQ_RISING and Pin.IRQ_FALLING."""
        self._pin = pin
        self._active = 1 if active_high else 0
        self.events = 0  # times the line went active, saturating
        self._on_edge_ref = self._on_edge  # one bound method, made here: an IRQ may not allocate
        pin.irq(handler=self._on_edge_ref, trigger=rising if active_high else falling)

    def _on_edge(self, _pin):
        if self.events < _COUNT_MAX:
            self.events += 1

    def stalled(self):
        """True if the line is active now or went active since clear()."""
        return self.events > 0 or self._pin.value() == self._active

    def clear(self):
        """After recovery (the motor turns again): forget the stalls seen."""
        self.events = 0

    def active_now(self):
        """True if the line is active at this moment (no latch): the power-on motor check."""
        return self._pin.value() == self._active


def check_encoder(steps_per_pulse, tolerance_pulses):
    """Refuse an encoder setting no head could have (also the simulated encoder's, hal/sim/monitors.py)."""
    if steps_per_pulse < 1:
        raise ValueError("steps_per_pulse must be at least 1 motor step per encoder pulse, not %r" % steps_per_pulse)
    if tolerance_pulses < 0:
        raise ValueError("tolerance_pulses must be 0 or more pulses, not %r" % tolerance_pulses)


class EncoderInput:
    """An encoder on the pump head: pulses counted on one edge, checked against the steps issued."""

    def __init__(self, pin, rising, steps_per_pulse, tolerance_pulses=1):
        """steps_per_pulse: motor steps per encoder pulse (from the head's gearing, >= 1);
        tolerance_pulses: how many pulses may lag (the edge of a pulse still under way)."""
        check_encoder(steps_per_pulse, tolerance_pulses)
        self.steps_per_pulse = steps_per_pulse
        self.tolerance_pulses = tolerance_pulses
        self.pulses = 0  # saturating
        self._base_steps = 0  # steps issued when the count last started
        self._on_edge_ref = self._on_edge
        pin.irq(handler=self._on_edge_ref, trigger=rising)

    def _on_edge(self, _pin):
        if self.pulses < _COUNT_MAX:
            self.pulses += 1

    def missing(self, steps_issued):
        """Pulses owed by the steps issued since restart() and not seen, beyond the tolerance (0: all
        there). steps_issued and the count are below 2**30 between restarts."""
        owed = (steps_issued - self._base_steps) // self.steps_per_pulse
        short = owed - self.pulses - self.tolerance_pulses
        return short if short > 0 else 0

    def restart(self, steps_issued):
        """Count afresh from now (at boot, after a recovery)."""
        self._base_steps = steps_issued
        self.pulses = 0
