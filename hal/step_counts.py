# The counts every motor driver keeps (hal/stepper.py's real ones and the simulator's motor model,
# hal/sim/stepper.py), in a module of their own so the simulator loads nothing else of the drivers.

from firmware import const
from firmware.scheduler import STEP_RADIX

_MAX_COUNT = const(0x3FFFFFFF)  # 2**30 - 1: the largest small int on a 32-bit port


class StepCounts:
    """The counts every motor driver keeps, the simulator's (hal/sim/stepper.py) too: steps
    issued and not dropped (two words, 0 <= steps_lo < STEP_RADIX), steps dropped by halts
    (saturating at _MAX_COUNT) and halts. No allocation: the hot path counts through them."""

    def __init__(self):
        self.steps_hi = 0
        self.steps_lo = 0
        self.dropped = 0
        self.halts = 0

    def _issued(self, n):
        lo = self.steps_lo + n  # n < 2**29 (callers' bound), so lo < 2**30
        while lo >= STEP_RADIX:
            lo -= STEP_RADIX
            self.steps_hi += 1
        self.steps_lo = lo

    def _drop(self, k):
        if k <= 0:
            return
        lo = self.steps_lo - k
        while lo < 0:
            lo += STEP_RADIX
            self.steps_hi -= 1
        self.steps_lo = lo
        self.dropped = self.dropped + k if k < _MAX_COUNT - self.dropped else _MAX_COUNT
