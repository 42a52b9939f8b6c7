# A simulated stepper that counts steps into a delivered-volume model.
#
# true_step_pl is the volume one step really moves in the model; it equals
# the board's calibrated volume unless a test makes them differ (a
# calibration error that only a balance would see).


class SimStepper:
    STEP_RADIX = 536_870_912  # two-word count, as in firmware/scheduler.py

    def __init__(self, true_step_pl):
        self.true_step_pl = true_step_pl
        self.steps_hi = 0
        self.steps_lo = 0  # 0 <= steps_lo < STEP_RADIX

    def step(self, n):
        lo = self.steps_lo + n
        while lo >= self.STEP_RADIX:
            lo -= self.STEP_RADIX
            self.steps_hi += 1
        self.steps_lo = lo

    def delivered_pl(self):
        """Volume the model has moved (a long int: not for the hot path)."""
        return (self.steps_hi * self.STEP_RADIX + self.steps_lo) * self.true_step_pl
