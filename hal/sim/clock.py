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

import asyncio
import time

from micropython import const

_TICKS_MASK = const(0x3FFFFFFF)  # ticks_us() wraps at 2**30, as on a Pico
_TICKS_HALF = const(0x20000000)
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
        self._real_last = time.ticks_us()  # wall clock already folded in (speed N)
        self._wake = asyncio.Event()  # set by grant() and wake()

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

    def advance(self, us):
        """Move virtual time forward now by us (0 <= us <= MAX_JUMP_US).

        Every value stays below 2**30 (small ints on a 32-bit port)."""
        room = _TICKS_MASK - self._ticks  # microseconds left before the wrap
        if us > room:
            self._ticks = us - room - 1
            self.wraps += 1
        else:
            self._ticks += us

    def _follow_wall_clock(self):
        now = time.ticks_us()
        jump = time.ticks_diff(now, self._real_last) * self.speed
        self._real_last = now
        # The firmware reads the clock at least every MAX_SLEEP_US of pump
        # time; a longer gap (a stopped process) is dropped, not misread.
        self.advance(jump if jump < MAX_JUMP_US else MAX_JUMP_US)

    async def sleep_us(self, us):
        """Let up to us microseconds of virtual time pass (us <= MAX_JUMP_US).

        With time granted, jump straight to the wake-up time. Otherwise, at
        speed 0 wait for a grant or wake(); at speed N wait us / N of wall
        clock time (pump time follows the wall clock by itself) or wake().
        """
        if self.granted_us:
            step = us if us < self.granted_us else self.granted_us
            self.advance(step)
            self.granted_us -= step
            await asyncio.sleep_ms(0)  # let the link run between jumps
            return
        if not us:
            await asyncio.sleep_ms(0)
            return
        self._wake.clear()
        if not self.speed:
            await self._wake.wait()
            return
        real_ms = us // (1000 * self.speed)
        try:
            await asyncio.wait_for_ms(self._wake.wait(), real_ms if real_ms > 0 else 1)
        except asyncio.TimeoutError:
            pass
