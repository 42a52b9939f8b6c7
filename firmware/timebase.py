# Monotonic pump time that never wraps, built from a wrapping tick counter.
#
# A Pico's ticks_us() wraps every 2**30 us (about 17.9 min) and ticks_diff()
# is only valid within half of that, but a slow program can wait ten days
# between two motor steps and a pump must run for ten years. So the firmware
# never keeps or compares raw ticks: every tick it adds the elapsed
# microseconds (a ticks_diff, always below 2**29) into a two-word clock:
#
#   mday  whole millidays since boot, 0 <= mday < 2**30 (2.9 million years)
#   us    microseconds into the current milliday, 0 <= us < US_PER_MDAY
#
# A milliday is 86.4 s, a thousandth of a day. It is the pump's natural time
# unit: a rate of r nL/day delivers exactly r pL every milliday, so volume and
# time stay exact integers together (see scheduler.py).
#
# Pure integer code with no I/O; every value stays below 2**30, so it runs
# allocation-free on a 32-bit port.

from firmware import const

US_PER_MDAY = const(86_400_000)  # microseconds in a milliday (86.4 s)
_MDAY_PER_DAY = const(1000)
# The largest step one advance() accepts: ticks_diff() is valid below 2**29.
MAX_ADVANCE_US = const(536_870_911)  # 2**29 - 1


class Timebase:
    """Two-word monotonic clock: `mday` millidays plus `us` microseconds."""

    def __init__(self, max_advance_us=MAX_ADVANCE_US):
        """max_advance_us: the largest step one advance() takes (at most MAX_ADVANCE_US); the
        pump gives its board's CLOCK_JUMP_US, more than it ever sleeps between two ticks."""
        if not 0 < max_advance_us <= MAX_ADVANCE_US:
            raise ValueError("max_advance_us must be 1..%d us" % MAX_ADVANCE_US)
        self.max_advance_us = max_advance_us
        self.mday = 0  # 0 <= mday < 2**30
        self.us = 0  # 0 <= us < US_PER_MDAY
        # Elapsed values refused because they were negative or too large:
        # a clock fault for the monitoring layer to report, never a time jump.
        self.faults = 0

    def advance(self, elapsed_us):
        """Move time forward by elapsed_us (0 <= elapsed_us <= max_advance_us); return
        False if it was refused.

        Hot path: called every tick with ticks_diff(now, last). A negative
        or oversized value means the tick source misbehaved (a clock jump); it
        is counted in `faults` and ignored rather than allowed to move dosing
        time, and the caller raises the alarm.
        """
        if elapsed_us < 0 or elapsed_us > self.max_advance_us:
            self.faults += 1
            return False
        us = self.us + elapsed_us  # < 86.4e6 + 2**29 < 2**30
        mday = self.mday
        while us >= US_PER_MDAY:  # at most 7 rounds: 2**29 / 86.4e6 < 7
            us -= US_PER_MDAY
            mday += 1
        self.us = us
        self.mday = mday
        return True

    def reached(self, mday, us):
        """Pump time (mday, us) has come. Hot path: no allocation."""
        return self.mday > mday or (self.mday == mday and self.us >= us)

    def wait_until(self, mday, us, wait):
        """wait, or the microseconds until (mday, us) if that comes sooner (0 if it has
        come). Only times within the next milliday can be sooner than a wait below
        US_PER_MDAY. Hot path: no allocation."""
        dm = mday - self.mday
        if dm <= 1:
            w = us - self.us + (US_PER_MDAY if dm == 1 else 0)
            if w < wait:
                wait = w if w > 0 else 0
        return wait

    def total_us(self):
        """Elapsed time as one integer (allocates a long int past 2**30; not for the hot path)."""
        return self.mday * US_PER_MDAY + self.us
