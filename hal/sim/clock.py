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

import time

import asyncio
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
        self.total_us = 0  # virtual microseconds since boot (64-bit host)
        self.granted_us = 0  # time granted by the host and not yet run
        self._ticks = START_TICKS
        self._wake = asyncio.Event()  # set by grant() and wake()

    def ticks_us(self):
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
        """Move virtual time forward now by us (0 <= us <= MAX_JUMP_US)."""
        self._ticks = (self._ticks + us) & _TICKS_MASK
        self.total_us += us

    async def sleep_us(self, us):
        """Let up to us microseconds of virtual time pass (us <= MAX_JUMP_US).

        With time granted, jump straight to the wake-up time. Otherwise, at
        speed 0 wait for a grant or wake(); at speed N follow the wall clock
        until then or until wake().
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
        t0 = time.ticks_us()
        real_ms = us // (1000 * self.speed)
        try:
            await asyncio.wait_for_ms(self._wake.wait(), real_ms if real_ms > 0 else 1)
        except asyncio.TimeoutError:
            pass
        jump = time.ticks_diff(time.ticks_us(), t0) * self.speed
        self.advance(jump if jump < MAX_JUMP_US else MAX_JUMP_US)
