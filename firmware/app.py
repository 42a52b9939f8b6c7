# The pump application: wires the board's hardware to the dose scheduler and
# the command link, as two asyncio tasks.
#
#   dosing  every tick: bring pump time up to date, issue the steps that are
#           due, then sleep until the next one (at most the board's
#           MAX_SLEEP_US, so ticks are never further apart than ticks_diff
#           can measure). Allocation-free.
#   link    decodes frames from the host and runs one command at a time.
#           A command that changes the program wakes the dosing task.
#
# Only the board file and hal/ know what hardware this is.

import asyncio
import sys

from firmware import codec
from firmware.errors import Refusal
from firmware.link import Link
from firmware.scheduler import MAX_RATE_NL_PER_DAY, MIN_RATE_NL_PER_DAY, DoseScheduler
from firmware.timebase import MAX_ADVANCE_US, US_PER_MDAY, Timebase
from firmware.units import parse_rate

FIRMWARE_VERSION = "0.1.0"

# The longest pump time one SIM_ADVANCE may ask for: 100 years.
_MAX_SIM_ADVANCE_S = 100 * 366 * 86_400


class PumpApp:
    def __init__(self, board, hw):
        if not 0 < board.MAX_SLEEP_US <= MAX_ADVANCE_US:
            raise ValueError("board MAX_SLEEP_US must be in 1..2**29-1 us")
        self.board = board
        self.hw = hw
        self.clock = hw.clock
        self.motor = hw.motor
        self.timebase = Timebase()
        self.sched = DoseScheduler(board.STEP_VOLUME_PL)
        self._max_sleep_us = min(board.MAX_SLEEP_US, US_PER_MDAY)
        self._last_ticks = self.clock.ticks_us()
        handlers = {
            codec.HELLO: self._hello,
            codec.STATUS: self._status,
            codec.SET_RATE: self._set_rate,
            codec.STOP: self._stop,
        }
        if getattr(hw, "sim", False):
            handlers[codec.SIM_ADVANCE] = self._sim_advance
            handlers[codec.SIM_STATE] = self._sim_state
        self.link = Link(hw.serial, handlers)

    # -- dosing ---------------------------------------------------------------

    def tick(self):
        """Bring pump time up to date and issue due steps. Hot path: no allocation."""
        clock = self.clock
        now = clock.ticks_us()
        self.timebase.advance(clock.ticks_diff(now, self._last_ticks))
        self._last_ticks = now
        n = self.sched.poll(self.timebase.mday, self.timebase.us)
        if n:
            self.motor.step(n)
        return n

    async def dosing(self):
        tb = self.timebase
        sched = self.sched
        clock = self.clock
        cap = self._max_sleep_us
        while True:
            self.tick()
            await clock.sleep_us(sched.us_until_due(tb.mday, tb.us, cap))

    def set_rate(self, rate_nl_per_day):
        """Change the programmed rate now; 0 stops. Carries the partial step over."""
        self.tick()
        n = self.sched.set_rate(self.timebase.mday, self.timebase.us, rate_nl_per_day)
        if n:
            self.motor.step(n)
        self.clock.wake()

    def run(self):
        asyncio.run(self._main())

    async def _main(self):
        asyncio.create_task(self.link.run())
        await self.dosing()

    # -- commands ---------------------------------------------------------------

    def _hello(self, values):
        impl = sys.implementation
        platform = "%s %s %s" % (impl.name, ".".join(str(v) for v in impl.version[:3]), sys.platform)
        return (
            codec.PROTOCOL_VERSION,
            FIRMWARE_VERSION,
            self.board.NAME,
            platform,
            self.sched.step_pl,
            MIN_RATE_NL_PER_DAY,
            MAX_RATE_NL_PER_DAY,
        )

    def _status(self, values):
        self.tick()
        s = self.sched
        mode = codec.MODE_CONTINUOUS if s.rate else codec.MODE_STOPPED
        return (self.timebase.mday, self.timebase.us, mode, s.rate, s.steps_hi, s.steps_lo, s.step_pl)

    def _set_rate(self, values):
        rate, rounded = parse_rate("rate", values[0])  # refuses before any change
        self.set_rate(rate)
        return (rate, 1 if rounded else 0, self.timebase.mday, self.timebase.us)

    def _stop(self, values):
        self.set_rate(0)
        return (self.timebase.mday, self.timebase.us)

    def _sim_advance(self, values):
        seconds, micros = values
        if micros >= 1_000_000:
            raise Refusal("microseconds", "microseconds %d must be below 1000000" % micros)
        if seconds > _MAX_SIM_ADVANCE_S:
            raise Refusal("seconds", "seconds %d is more than 100 years" % seconds)
        self.tick()
        clock = self.clock
        clock.grant(seconds * 1_000_000 + micros)
        target = self.timebase.total_us() + clock.granted_us
        return (target // US_PER_MDAY, target % US_PER_MDAY)

    def _sim_state(self, values):
        m = self.motor
        return (m.steps_hi, m.steps_lo, m.true_step_pl, self.clock.speed)
