# Virtual pump time for the simulated board.
#
# ticks_us() wraps at 2**30 like a Pico's, and starts just before the wrap,
# so every simulated run exercises the firmware's wrap handling.
#
# Two ways for time to pass:
#   speed 0  time moves only when the host grants it (SIM_ADVANCE); the
#            firmware then runs it as fast as the CPU allows, jumping from
#            one motor step to the next. Deterministic: what the tests use.
#   speed N  time follows the wall clock times N; grants jump ahead on top.
#
# The physical models (hal/sim) also need pump time that never wraps, to
# know whether a motion has finished however long ago it was queued: `wraps`
# counts the wraps of ticks_us(), and (wraps, ticks_us()) is such a time, two
# words below 2**30 each. Only the models read it; the firmware, as on a
# Pico, sees the wrapping ticks alone.
#
# The stop. Some models must act at an exact pump time however time passes:
# a fault the host scheduled (hal/sim/faults.py) and the watchdog's bite
# (hal/sim/watchdog.py). The clock keeps one stop, the nearest of them:
# _to_stop_us, the pump time left until it (0.._STOP_CAP us; one further away
# is kept at the cap and re-armed when the cap runs out), and the handler
# set_stop_handler() gave it. advance() never jumps past the stop: it moves
# exactly to it, calls the handler (which acts and arms the next stop with
# stop_at() or stop_never()), then moves on by the rest. sleep_us() ends at
# the stop, so the firmware's next tick comes right at a fault. Checking costs
# advance() one compare and one subtraction, and ticks_us() nothing more than
# before (at speed N it calls advance()). Time that is not granted does not
# pass, so nothing fires while the simulator waits for a grant.

import time

from firmware import const, tasks

_TICKS_MASK = const(0x3FFFFFFF)  # ticks_us() wraps at 2**30, as on a Pico
_TICKS_HALF = const(0x20000000)
_STOP_CAP = const(0x20000000)  # 2**29 us: the longest _to_stop_us (a small int with room to add)
START_TICKS = const(0x3FFF0000)  # 65 ms before the first wrap
MAX_JUMP_US = const(268_435_456)  # 2**28: below the ticks_diff limit of 2**29


class SimClock:
    def __init__(self, speed=0):
        if speed < 0:
            raise ValueError("speed must be 0 (manual) or a positive factor")
        self.speed = speed
        self.granted_us = 0  # time granted by the host and not yet run
        self._ticks = START_TICKS
        self.wraps = 0  # times ticks_us() wrapped: the high word of the models' pump time
        # Wall clock already folded in (speed N only: CPython's time has no ticks_us, and needs none at speed 0).
        self._real_last = time.ticks_us() if speed else 0
        self._wake = tasks.Event()  # set by grant() and wake()
        self.dead = False  # --clock-dead: the power-on self-test finds the clock not running
        self._to_stop_us = _STOP_CAP  # pump time until the stop (see the header)
        self._on_stop = None  # its handler: a callable made once (a stored bound method), or None

    def running(self):
        """The tick counter advances (the power-on self-test); False on a board built with --clock-dead 1."""
        return not self.dead

    def ticks_us(self):
        if self.speed:
            self._follow_wall_clock()
        return self._ticks

    def ticks_diff(self, a, b):
        return ((a - b + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF

    def grant(self, us):
        """Let us more microseconds of pump time run (SIM_ADVANCE)."""
        self.granted_us += us
        self._wake.set()

    def wake(self):
        """End the current sleep_us early: the program changed."""
        self._wake.set()

    # -- the stop ----------------------------------------------------------------

    def set_stop_handler(self, handler):
        """handler() is called when pump time reaches the stop; it must arm the next (stop_at, stop_never)."""
        self._on_stop = handler

    def reached(self, w, t):
        """Pump time (wraps, ticks) = (w, t) has come. Reads the ticks as they are (no wall clock folded in)."""
        ww = self.wraps
        return ww > w or (ww == w and self._ticks >= t)

    def until_us(self, w, t):
        """Pump time from now to (w, t): 0 if reached, at most _STOP_CAP (2**29) us. No allocation."""
        dw = w - self.wraps
        if dw == 0:
            d = t - self._ticks
            if d <= 0:
                return 0
            return d if d < _STOP_CAP else _STOP_CAP
        if dw < 0:
            return 0
        if dw > 1:
            return _STOP_CAP
        room = _TICKS_MASK - self._ticks  # us to the wrap, less one: < 2**30
        if room >= _STOP_CAP or t >= _STOP_CAP - room:
            return _STOP_CAP
        return room + 1 + t  # < _STOP_CAP

    def stop_at(self, w, t):
        """Arm the stop at pump time (w, t) (0 us away if reached: the next advance() calls the handler)."""
        self._to_stop_us = self.until_us(w, t)

    def stop_never(self):
        self._to_stop_us = _STOP_CAP

    # -- time passing ------------------------------------------------------------

    def _move(self, us):
        room = _TICKS_MASK - self._ticks  # microseconds left before the wrap
        if us > room:
            self._ticks = us - room - 1
            self.wraps += 1
        else:
            self._ticks += us

    def advance(self, us):
        """Move virtual time forward now by us (0 <= us <= MAX_JUMP_US), stopping at the
        stop on the way to call its handler (see the header). No allocation of its own.

        Every value stays below 2**30 (small ints on a 32-bit port)."""
        while us >= self._to_stop_us:  # the stop falls within this jump, or at its end
            d = self._to_stop_us
            self._move(d)
            us -= d
            self._to_stop_us = _STOP_CAP  # spent: the handler arms the next
            handler = self._on_stop
            if handler is not None:
                handler()  # may move the clock itself (a clock-jump fault)
        self._to_stop_us -= us
        self._move(us)

    def _follow_wall_clock(self):
        now = time.ticks_us()
        jump = time.ticks_diff(now, self._real_last) * self.speed
        self._real_last = now
        # The firmware reads the clock at least every MAX_SLEEP_US of pump
        # time; a longer gap (a stopped process) is dropped, not misread.
        self.advance(jump if jump < MAX_JUMP_US else MAX_JUMP_US)

    def sleep_us(self, us):
        """Awaitable: let up to us microseconds of virtual time pass (us <= MAX_JUMP_US). A plain
        function that returns one of tasks.py's waits, as BoardClock's (no coroutine made a turn).

        With time granted, jump straight to the wake-up time, or to the stop if
        that comes first (a fault: the firmware ticks right there). Otherwise,
        at speed 0 wait for a grant or wake(); at speed N wait us / N of wall
        clock time (pump time follows the wall clock by itself) or wake().
        """
        if not self._to_stop_us:  # a stop due now (armed at this very time): act on it first
            self.advance(0)
        if us > self._to_stop_us:
            us = self._to_stop_us
        if self.granted_us:
            step = us if us < self.granted_us else self.granted_us
            self.advance(step)
            self.granted_us -= step
            return tasks.sleep_ms(0)  # let the link run between jumps
        if not us:
            return tasks.sleep_ms(0)
        self._wake.clear()
        if not self.speed:
            return self._wake.wait()
        real_ms = us // (1000 * self.speed)
        return self._wake.wait(real_ms if real_ms > 0 else 1)
