"""The exact prescription, in rational arithmetic, to check the firmware against.

A rate of r nL/day delivers r pL per milliday (86.4e6 us), so the volume
programmed up to time t is sum(r_i * dt_i) / 86.4e6 pL exactly, and the steps
owed are floor(volume / step volume).
"""

from __future__ import annotations

import math
from fractions import Fraction

US_PER_MDAY = 86_400_000


class ExactPrescription:
    def __init__(self, step_pl: int, start_us: int = 0):
        self.step_pl = step_pl
        self.t_us = start_us
        self.rate = 0
        self.volume_pl = Fraction(0)

    def run_to(self, t_us: int) -> None:
        assert t_us >= self.t_us
        self.volume_pl += Fraction(self.rate * (t_us - self.t_us), US_PER_MDAY)
        self.t_us = t_us

    def set_rate(self, t_us: int, rate_nl_per_day: int) -> None:
        self.run_to(t_us)
        self.rate = rate_nl_per_day

    def volume_at(self, t_us: int) -> Fraction:
        return self.volume_pl + Fraction(self.rate * (t_us - self.t_us), US_PER_MDAY)

    def steps_at(self, t_us: int) -> int:
        return math.floor(self.volume_at(t_us) / self.step_pl)

    def step_time(self, k: int) -> int | None:
        """First integer microsecond at which step number k is owed at the current rate."""
        if not self.rate:
            return None
        need = k * self.step_pl - self.volume_pl
        if need <= 0:
            return self.t_us
        return self.t_us + math.ceil(need * US_PER_MDAY / self.rate)
