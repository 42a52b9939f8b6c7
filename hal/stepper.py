# Step/dir/enable stepper drivers: their timing, microstep pinning, and the
# step counters every step generator (hal/rp2_stepper.py, hal/esp32_stepper.py)
# keeps the way hal/sim/stepper.py does.
#
# Timing each driver needs on its STEP/DIR inputs (datasheet minimums):
#
#   driver   STEP high  STEP low  DIR/MSx setup  source
#   A4988    1000 ns    1000 ns   200 ns         Allegro A4988 datasheet, "Logic Interface Timing" (tA, tB, tC)
#   DRV8825  1900 ns    1900 ns   650 ns         TI DRV8825 (SLVSA73), 7.6 Timing Requirements (tWH, tWL, tSU);
#                                                fSTEP max 250 kHz
#   TMC2209   100 ns     100 ns    20 ns         Trinamic TMC2209 datasheet, STEP/DIR timing (tSH, tSL, tDSU)
#
# Microstep settings and how MS1..MS3 are strapped for each (1 = high):
#
#   A4988    (MS1, MS2, MS3)   1: 000  2: 100  4: 010  8: 110  16: 111         (A4988 Table 1)
#   DRV8825  (MODE0..MODE2)    1: 000  2: 100  4: 010  8: 110  16: 001  32: 101 (DRV8825 Table 1;
#                              wired as MS1=MODE0, MS2=MODE1, MS3=MODE2; 110 and 111 are 1/32 too)
#   TMC2209  (MS1, MS2)        8: 00  32: 10  64: 01  16: 11                    (TMC2209 standalone
#                              microstep table, with interpolation to 256 off or on per its OTP; in
#                              UART mode MS1/MS2 are the node address instead)
#
# The A4988 and DRV8825 tables agree with their datasheets as commonly
# quoted (checked against a secondary table, not the PDFs); the TMC2209
# MS1/MS2 table is UNVERIFIED: check it against your module's datasheet
# before trusting a microstep setting (a wrong one scales every dose).
#
# All three take ENABLE (DRV8825 nENBL, TMC2209 EN) active low: low drives
# the coils, high lets the motor coast. The pump only ever turns one way, so
# DIR is set once, before the first step, and held (its setup time is met by
# the wait in setup_pins()).
#
# The step counters (hal/step_counts.py: steps_hi/steps_lo, dropped, halts) are
# those of the simulator's motor too: steps issued and not dropped, two words of radix
# STEP_RADIX (2**29), so they equal the firmware's own count until a halt
# drops steps. On real hardware a step whose STEP edge has gone out cannot be
# taken back (the translator moves on the rising edge): a halt drops the steps
# whose edge has not gone out, and counts the one whose pulse it cuts short as
# made. The counts therefore never say less moved than did.

from firmware import const
from hal.step_counts import StepCounts

_MAX_BACKLOG = const(0x1FFFFFFF)  # 2**29 - 1: steps waiting for the hardware, a small int

# name: (article, STEP high ns, STEP low ns, DIR setup ns, {microsteps: MS1..MSn levels})
DRIVERS = {
    "A4988": ("an", 1000, 1000, 200, {1: (0, 0, 0), 2: (1, 0, 0), 4: (0, 1, 0), 8: (1, 1, 0), 16: (1, 1, 1)}),
    "DRV8825": (
        "a",
        1900,
        1900,
        650,
        {1: (0, 0, 0), 2: (1, 0, 0), 4: (0, 1, 0), 8: (1, 1, 0), 16: (0, 0, 1), 32: (1, 0, 1)},
    ),
    "TMC2209": ("a", 100, 100, 20, {8: (0, 0), 32: (1, 0), 64: (0, 1), 16: (1, 1)}),
}

# Feedback: of the three, only the TMC2209 tells the board anything. Its DIAG
# output goes high on a driver error (over-temperature, a short to GND or
# across a coil) and, with StallGuard4 set up over UART (SGTHRS above 0), on a
# stall; a driver error is cleared by taking ENN high (TMC2209 datasheet, pin
# table "DIAG" and the StallGuard4 chapter, as I know them: not re-checked here).
# The A4988 and DRV8825 (its nFAULT is an open-drain output these boards do not
# wire) give the board no feedback at all: a check cannot see such a driver.
FAULT_OUTPUT_DRIVERS = ("TMC2209",)


class StepperConfig:
    """A driver chip, its microstep setting and the step period (STEP_MOTION_US),
    checked against the chip's datasheet limits. Raises ValueError naming the chip."""

    def __init__(self, driver, microsteps, step_motion_us):
        entry = DRIVERS.get(driver)
        if entry is None:
            raise ValueError("stepper driver must be one of %s, not %r" % (", ".join(sorted(DRIVERS)), driver))
        article, high_ns, low_ns, setup_ns, table = entry
        self.driver = driver
        self.name = article + " " + driver
        if microsteps not in table:
            raise ValueError(
                "microsteps must be one of %s for %s, not %r"
                % (", ".join(str(m) for m in sorted(table)), self.name, microsteps)
            )
        if not isinstance(step_motion_us, int) or step_motion_us <= 0:
            raise ValueError(
                "step_motion_us must be a whole number of microseconds above 0, not %r" % (step_motion_us,)
            )
        if step_motion_us * 1000 < high_ns + low_ns:
            raise ValueError(
                "step_motion_us %d us is too short for %s: one step needs at least %d ns high plus %d ns low"
                % (step_motion_us, self.name, high_ns, low_ns)
            )
        self.microsteps = microsteps
        self.step_motion_us = step_motion_us
        self.min_high_ns = high_ns
        self.min_low_ns = low_ns
        self.dir_setup_ns = setup_ns
        self.ms_levels = table[microsteps]  # MS1, MS2[, MS3]

    def check_pulse(self, high_ns, low_ns, by):
        """Raise ValueError if a step generator's pulse (high_ns, low_ns) breaks the chip's minimums."""
        if high_ns < self.min_high_ns:
            raise ValueError(
                "STEP high time %d ns from %s is too short for %s: it needs at least %d ns"
                % (high_ns, by, self.name, self.min_high_ns)
            )
        if low_ns < self.min_low_ns:
            raise ValueError(
                "STEP low time %d ns from %s is too short for %s: it needs at least %d ns"
                % (low_ns, by, self.name, self.min_low_ns)
            )


def setup_pins(config, dir_pin=None, enable_pin=None, ms_pins=(), forward=1, sleep_us=None):
    """Strap the microstep pins, set DIR to the dosing direction and enable the
    driver, then wait out the DIR/MSx setup time before any STEP edge. Pins are
    machine.Pin-like objects (value(v)) built by the board; None/() for a pin
    the board ties in hardware."""
    levels = config.ms_levels
    if ms_pins and len(ms_pins) != len(levels):
        raise ValueError(
            "%s takes %d microstep pins (MS1..MS%d), the board gave %d"
            % (config.name, len(levels), len(levels), len(ms_pins))
        )
    for i in range(len(ms_pins)):
        ms_pins[i].value(levels[i])
    if dir_pin is not None:
        dir_pin.value(1 if forward else 0)
    if enable_pin is not None:
        enable_pin.value(0)  # active low on all three chips
    if sleep_us is not None:
        sleep_us(1 + config.dir_setup_ns // 1000)  # >= the setup time


class StepQueue(StepCounts):
    """StepCounts and the backlog of steps issued but not yet handed to the hardware, which a
    real driver's poll() moves on (NAME says which driver in a refusal)."""

    NAME = "stepper"

    def __init__(self):
        StepCounts.__init__(self)
        self._backlog = 0  # steps issued and not yet handed to the hardware, < 2**29

    def step(self, n):
        """Issue n steps behind any still moving; returns at once. Hot path: no allocation."""
        if n <= 0:
            return
        if n > _MAX_BACKLOG - self._backlog:
            raise ValueError("%s: more than 2**29 steps waiting for the hardware" % self.NAME)
        self._issued(n)
        self._backlog += n
        self.poll()

    def poll(self):
        raise NotImplementedError

    def backlog(self):
        """Steps issued and not yet handed to the hardware: poll() moves them on, and the dosing
        task calls it each turn, coming soon while this is not 0 (nothing else would)."""
        return self._backlog
