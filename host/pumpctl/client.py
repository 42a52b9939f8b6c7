"""The Python API: one `Pump` per serial port, typed results with units.

    from pumpctl import Pump

    with Pump("/dev/ttyACM0") as pump:
        print(pump.status())
        pump.set_rate("0.5 mL/day")

Every method sends one command and waits for its reply. A refusal raises
PumpRefused (and the pump changed nothing), a dead line LinkError.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from firmware import codec

from .transport import SerialTransport

US_PER_MDAY = codec.US_PER_MDAY


def _pump_time_us(mday: int, us: int) -> int:
    return mday * US_PER_MDAY + us


@dataclass(frozen=True)
class PumpInfo:
    protocol: int
    firmware: str
    board: str
    platform: str
    step_volume_pl: int
    min_rate_nl_per_day: int
    max_rate_nl_per_day: int


@dataclass(frozen=True)
class Status:
    time_us: int  # pump time since boot
    mode: str  # "stopped" or "continuous"
    rate_nl_per_day: int  # programmed rate, 0 when stopped
    steps: int  # motor steps issued since boot
    step_volume_pl: int  # calibrated volume of one step

    @property
    def delivered_pl(self) -> int:
        """Volume delivered since boot by the pump's own count of steps."""
        return self.steps * self.step_volume_pl


@dataclass(frozen=True)
class RateSet:
    rate_nl_per_day: int  # what the pump now runs, converted by the pump
    rounded: bool  # True if the requested rate was finer than 1 nL/day
    effective_us: int  # pump time at which the new rate took effect


@dataclass(frozen=True)
class SimState:
    motor_steps: int  # steps the simulated motor made
    true_step_volume_pl: int  # what one step really moves in the model
    speed: int  # 0: time moves only by advance(); N: N times the wall clock

    @property
    def delivered_pl(self) -> int:
        return self.motor_steps * self.true_step_volume_pl


def expected_steps(rate_nl_per_day: int, duration_us: int, step_volume_pl: int) -> int:
    """Steps a pump owes after running a rate for a duration from a step boundary.

    Exact: floor(volume / step), with volume = rate * duration in pL
    (a rate of r nL/day is r pL per 86.4 s).
    """
    volume_pl = Fraction(rate_nl_per_day * duration_us, US_PER_MDAY)
    return volume_pl.numerator // (volume_pl.denominator * step_volume_pl)


class Pump:
    """A pump on one serial port (a device path or a pyserial URL)."""

    def __init__(self, port: str, timeout: float = 2.0):
        self.port = port
        self._link = SerialTransport(port, timeout=timeout)

    def __enter__(self) -> Pump:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._link.close()

    @property
    def link(self) -> SerialTransport:
        """The frame transport, for tools and tests that speak raw frames."""
        return self._link

    def hello(self) -> PumpInfo:
        return PumpInfo(*self._link.request(codec.HELLO))

    def status(self) -> Status:
        mday, us, mode, rate, hi, lo, step_pl = self._link.request(codec.STATUS)
        return Status(
            time_us=_pump_time_us(mday, us),
            mode="continuous" if mode == codec.MODE_CONTINUOUS else "stopped",
            rate_nl_per_day=rate,
            steps=hi * codec.STEP_RADIX + lo,
            step_volume_pl=step_pl,
        )

    def set_rate(self, rate: str) -> RateSet:
        """Program a continuous rate given with its unit, e.g. "0.5 mL/day".

        The pump converts the text itself and refuses anything unclear.
        """
        if not isinstance(rate, str):
            raise TypeError('give the rate as text with its unit, for example "0.5 mL/day"')
        nl_per_day, rounded, mday, us = self._link.request(codec.SET_RATE, (rate,))
        return RateSet(nl_per_day, bool(rounded), _pump_time_us(mday, us))

    def stop(self) -> int:
        """Stop delivery; return the pump time at which it stopped."""
        mday, us = self._link.request(codec.STOP)
        return _pump_time_us(mday, us)

    # -- simulator only --------------------------------------------------------

    def sim_advance(
        self,
        duration_us: int,
        progress: Callable[[int, int], None] | None = None,
        max_poll_s: float = 0.05,
    ) -> Status:
        """Run a simulated pump forward by duration_us of pump time and wait.

        progress(done_us, total_us) is called while it runs. Returns the
        status once the pump's clock has reached the target.
        """
        seconds, micros = divmod(duration_us, 1_000_000)
        start = self.status().time_us
        mday, us = self._link.request(codec.SIM_ADVANCE, (seconds, micros))
        target = _pump_time_us(mday, us)
        poll_s = 0.001  # short runs finish in a few ms: look soon, then less often
        while True:
            status = self.status()
            if progress:
                progress(min(status.time_us, target) - start, target - start)
            if status.time_us >= target:
                return status
            time.sleep(poll_s)
            poll_s = min(2 * poll_s, max_poll_s)

    def sim_state(self) -> SimState:
        hi, lo, true_step_pl, speed = self._link.request(codec.SIM_STATE)
        return SimState(hi * codec.STEP_RADIX + lo, true_step_pl, speed)
