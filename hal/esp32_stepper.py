# Step pulses from the ESP32's RMT peripheral (esp32.RMT), so their timing
# depends on neither the interpreter nor the GC.
#
# Resolution. The RMT channel counts the 80 MHz APB clock divided by
# clock_div (ESP32 Technical Reference Manual, "Remote Control Peripheral":
# RMT_DIV_CNT, 8 bits, 1..255): one tick is 12.5 ns * clock_div. The board
# uses clock_div = 80: 1 tick = 1 us exactly, and a duration's 15-bit field
# (1..32767 ticks) allows up to 32.767 ms per level. Every duration here is a
# whole number of ticks, computed exactly in integers.
#
# A step is (high HIGH_NS rounded up to a tick, low = the rest of
# STEP_MOTION_US), written as one duration tuple in write_pulses' mode 1
# (durations, starting level 1; the level toggles after each, and the channel
# returns to its idle level, low, at the end). The tuples for 1..MAX_BURST
# steps are built once in __init__, so step() builds nothing.
#
# Not blocking. MicroPython's write_pulses() first waits for the previous
# transmission to end (ports/esp32/esp32_rmt.c), so step() writes only when
# wait_done(timeout=0) says the channel is idle; otherwise the steps wait in a
# backlog that the next step() or poll() (called by the board's BoardClock at
# every sleep_us() of the dosing loop) sends. The Python side allocates
# nothing; the C side copies the tuple into RMT items (it may reallocate its
# item buffer when a longer burst than before is sent).
#
# Halt and its count. The RMT reports no progress, so halt() computes the
# pulses made from the time since the burst was written: pulse k (from 0)
# starts k * STEP_MOTION_US after the transmission starts, which is after the
# tick taken just before write_pulses(), so counting every pulse whose start
# is at or before now counts as made every pulse that may have gone out (and
# at worst one that had not): the counts never say less moved than did.
# MicroPython's RMT has no stop call: halt() deinit()s the channel, which
# stops the transmitter, and asks the board's factory for a new one. (Not
# measured on a board here: that the output stops within microseconds of
# deinit() is what the IDF's channel disable promises.)

from firmware import const
from hal.stepper import StepQueue, setup_pins

APB_HZ = const(80_000_000)
HIGH_NS = const(2_000)  # STEP high: above every supported chip's minimum (1.9 us for the DRV8825)
MAX_TICKS = const(32_767)  # an RMT item's 15-bit duration
MAX_BURST = const(8)  # steps per write_pulses()


def pulse_ticks(step_motion_us, clock_div):
    """(high, low) ticks of one step, exactly: high = HIGH_NS rounded up, low = the rest of the period."""
    if not 1 <= clock_div <= 255:
        raise ValueError("clock_div must be 1..255 for the ESP32 RMT, not %r" % (clock_div,))
    period = step_motion_us * (APB_HZ // 1_000_000)  # APB cycles in one step
    if period % clock_div:
        raise ValueError(
            "step_motion_us %d us is not a whole number of RMT ticks of %d x 12.5 ns" % (step_motion_us, clock_div)
        )
    period //= clock_div
    high = (HIGH_NS * (APB_HZ // 1_000_000) + 1000 * clock_div - 1) // (1000 * clock_div)
    low = period - high
    if low < 1 or high > MAX_TICKS or low > MAX_TICKS:
        raise ValueError(
            "step_motion_us %d us does not fit the ESP32 RMT at clock_div %d: each level must be 1..%d ticks"
            % (step_motion_us, clock_div, MAX_TICKS)
        )
    return high, low


def ticks_ns(ticks, clock_div):
    """Nanoseconds in ticks (12.5 ns * clock_div each), rounded down."""
    return ticks * clock_div * 25 // 2


def burst(high, low, n):
    """The write_pulses() durations of n steps: high, low, high, low, ..."""
    return (high, low) * n


class RmtStepper(StepQueue):
    """The motor interface of hal/__init__.py on an ESP32 RMT channel.

    make_rmt: a callable the board gives that returns a fresh esp32.RMT on the
    STEP pin (idle level low, this clock_div); clock: the board's clock
    (ticks_us, ticks_diff); config: a hal.stepper.StepperConfig; the pins as
    for hal/rp2_stepper.py."""

    NAME = "ESP32 RMT stepper"

    def __init__(self, make_rmt, config, clock, clock_div=80, dir_pin=None, enable_pin=None, ms_pins=(), sleep_us=None):
        StepQueue.__init__(self)
        high, low = pulse_ticks(config.step_motion_us, clock_div)
        config.check_pulse(ticks_ns(high, clock_div), ticks_ns(low, clock_div), "the ESP32 RMT stepper")
        self.config = config
        self.high_ticks = high
        self.low_ticks = low
        self._period_us = config.step_motion_us
        self._bursts = tuple(burst(high, low, k) for k in range(1, MAX_BURST + 1))
        self._make_rmt = make_rmt
        self._clock = clock
        self._burst = 0  # steps in the burst last written
        self._t0 = 0  # ticks_us() just before it was written
        setup_pins(config, dir_pin, enable_pin, ms_pins, 1, sleep_us)
        self._rmt = make_rmt()

    def poll(self):
        """Send the next burst if the channel is idle; never waits."""
        b = self._backlog
        if not b or not self._rmt.wait_done(timeout=0):
            return
        k = b if b < MAX_BURST else MAX_BURST
        self._t0 = self._clock.ticks_us()
        self._rmt.write_pulses(self._bursts[k - 1], 1)
        self._burst = k
        self._backlog = b - k

    def pending(self):
        """Steps issued and not yet written to the RMT."""
        return self._backlog

    def halt(self):
        """Stop at once (a fault): the unsent steps and those of the burst not yet begun are dropped and counted."""
        k = self._backlog
        n = self._burst
        if n and not self._rmt.wait_done(timeout=0):
            elapsed = self._clock.ticks_diff(self._clock.ticks_us(), self._t0)
            made = elapsed // self._period_us + 1 if elapsed >= 0 else n
            if made < n:
                k += n - made
        self._rmt.deinit()
        self._rmt = self._make_rmt()
        self._backlog = 0
        self._burst = 0
        self._drop(k)
        self.halts += 1
