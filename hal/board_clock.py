# The clock interface of hal/__init__.py on a real board, and the
# battery-backed real-time clock.
#
# ticks_us()/ticks_diff() are MicroPython's time.ticks_us/ticks_diff
# themselves (stored on the instance, so a call makes no bound method): they
# wrap at 2**30 on rp2 and ESP32, and ticks_diff is valid within 2**29.
#
# sleep_us(us) waits on a tasks.Event that wake() sets, for at most us
# rounded UP to a whole millisecond (the loop's resolution): a step is late by
# less than 1 ms and never early (the scheduler counts steps by pump time, so
# lateness never changes how many). Before it sleeps it calls the board's
# idle hook (the motor's poll(): hal/rp2_stepper.py), once per turn of the
# dosing loop. A wait allocates nothing (tasks.py; sleep_us is a plain function
# that returns the wait), nor does the dosing tick itself.
#
# running() is the power-on self-test of the tick counter: does ticks_us move at all.
#
# The RTC. machine.RTC().datetime() is (year, month, day, weekday, hours,
# minutes, seconds, subseconds), weekday 0 = Monday, in local time (whatever
# the clinician set). rtc_seconds() turns it into seconds since 1970-01-01
# 00:00 of that same local time, with the civil-from-days algorithm (Howard
# Hinnant's "chrono-compatible low-level date algorithms"), so it depends on
# no port's epoch. The result passes 2**30 in 2004: it is a long int on a
# 32-bit port, fine outside the hot path.

from firmware import const, tasks

try:
    import time

    _ticks_us = time.ticks_us
    _ticks_diff = time.ticks_diff
except AttributeError:  # CPython: no ticks; tests give their own
    _ticks_us = _ticks_diff = None


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of the proleptic Gregorian date y-m-d."""
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z):
    """(year, month, day) of z days since 1970-01-01."""
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    y = yoe + era * 400
    return (y + 1 if m <= 2 else y), m, d


_RUNNING_READS = const(10_000)  # ticks_us() reads before running() gives up on the counter


class BoardClock:
    def __init__(self, rtc=None, idle=None, ticks_us=None, ticks_diff=None):
        """rtc: a machine.RTC (None: the board has none); idle: called at every sleep_us()."""
        self.ticks_us = ticks_us or _ticks_us
        self.ticks_diff = ticks_diff or _ticks_diff
        self._rtc = rtc
        self.idle = idle
        self._wake = tasks.Event()

    def running(self):
        """True if ticks_us advances (the power-on check). A running 1 MHz counter moves within a
        read or two (1 us on the unix port); a stopped one is given _RUNNING_READS reads, a busy wait
        bounded by count because the clock under test cannot time itself. That costs 0.7 ms on the
        unix port (x86-64, measured) and, scaled to a 125 MHz Cortex-M0+, some tens of ms on a Pico
        (estimated, not measured), in that failure only; the margin keeps a slow port from reading a
        running counter as stopped. Advancing is ticks_diff(now, start) > 0, so a counter running
        backwards fails too. Boot path only."""
        ticks_us = self.ticks_us
        ticks_diff = self.ticks_diff
        start = ticks_us()
        for _ in range(_RUNNING_READS):
            if ticks_diff(ticks_us(), start) > 0:
                return True
        return False

    def wake(self):
        """End the current sleep_us early: the program changed."""
        self._wake.set()

    def sleep_us(self, us):
        """Awaitable: up to us microseconds (hal/__init__.py). Not an async def: that made a coroutine
        object (about 60 bytes of garbage on a Pico) at every turn of the dosing loop."""
        idle = self.idle
        if idle is not None:
            idle()
        if us <= 0:
            return tasks.sleep_ms(0)
        self._wake.clear()
        return self._wake.wait((us + 999) // 1000)

    def rtc_seconds(self):
        """Local seconds since 1970 from the RTC (None without one)."""
        rtc = self._rtc
        if rtc is None:
            return None
        y, mo, d, _wd, h, mi, s, _sub = rtc.datetime()
        return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s

    def set_rtc_seconds(self, seconds):
        """Set the RTC to local seconds since 1970."""
        rtc = self._rtc
        if rtc is None:
            raise OSError("this board has no RTC")
        if not 0 <= seconds < 4_102_444_800:  # 2100-01-01
            raise ValueError("RTC time must be 1970..2099 (0..4102444799 s since 1970), not %r" % (seconds,))
        days = seconds // 86400
        rest = seconds - days * 86400
        y, mo, d = civil_from_days(days)
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
        rtc.datetime((y, mo, d, weekday, rest // 3600, rest // 60 % 60, rest % 60, 0))
