# A simulated stepper that counts steps into a delivered-volume model.
#
# true_step_pl is the volume one step really moves in the model; it equals
# the board's calibrated volume unless a test makes them differ (a
# calibration error that only a balance would see).


from firmware.scheduler import STEP_RADIX


class SimStepper:
    def __init__(self, true_step_pl):
        self.true_step_pl = true_step_pl
        self.steps_hi = 0
        self.steps_lo = 0  # two words, as the scheduler counts: 0 <= lo < STEP_RADIX
        self.halts = 0  # times a fault cut the motor off mid-move

    def step(self, n):
        lo = self.steps_lo + n
        while lo >= STEP_RADIX:
            lo -= STEP_RADIX
            self.steps_hi += 1
        self.steps_lo = lo

    def halt(self):
        """Cut the drive at once (a fault). A model step is instantaneous, so
        nothing is in flight; a real driver aborts its queued pulses here."""
        self.halts += 1
