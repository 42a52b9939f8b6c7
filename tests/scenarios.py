"""Dosing scenarios for tests/mp/scenario_runner.py, with their exact answers.

A scenario is a sequence of tick advances, rate changes and checkpoints. The
builder keeps an ExactPrescription alongside, so each checkpoint carries the
step count the exact rational model owes at that instant. Checkpoints are
placed where an off-by-one would show: one microsecond before a step is due
and exactly when it is due.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from oracle import US_PER_MDAY, ExactPrescription

TICKS_WRAP = 1 << 30
MAX_ADVANCE = (1 << 29) - 1  # the largest ticks_diff a Pico can measure
STEP_RADIX = 1 << 29
MIN_RATE, MAX_RATE = 1_000, 240_000_000
MIN_STEP, MAX_STEP = 10_000, 10_000_000
TEN_YEARS_US = 3653 * 86_400 * 1_000_000


@dataclass
class Scenario:
    step_pl: int
    start_us: int  # pump time when the scenario starts (a pump already running)
    start_ticks: int
    events: list[int] = field(default_factory=list)
    expected: list[tuple[int, int]] = field(default_factory=list)  # (steps, time_us) per check

    def __post_init__(self):
        self.oracle = ExactPrescription(self.step_pl, self.start_us)
        self.now_us = self.start_us

    def advance_to(self, t_us: int, rng: random.Random | None = None) -> None:
        """Move time to t_us in tick advances no longer than a Pico can measure."""
        assert t_us >= self.now_us
        while self.now_us < t_us:
            gap = t_us - self.now_us
            step = min(gap, MAX_ADVANCE)
            if rng is not None and 1 < gap <= 4 * MAX_ADVANCE and rng.random() < 0.5:
                step = rng.randint(1, step)  # uneven ticks near the target
            self.events += [0, step]
            self.now_us += step

    def advance_long(self, count: int) -> None:
        """count ticks of the longest a Pico can measure, in one event."""
        self.events += [3, count]
        self.now_us += count * MAX_ADVANCE

    def set_rate(self, rate: int) -> None:
        self.oracle.set_rate(self.now_us, rate)
        self.events += [1, rate]

    def check(self) -> None:
        self.events += [2, len(self.expected)]
        self.expected.append((self.oracle.steps_at(self.now_us), self.now_us))

    def check_around_next_steps(self, count: int, until_us: int, rng: random.Random | None = None) -> None:
        """Check 1 us before and at each of the next `count` step times before until_us."""
        for _ in range(count):
            k = self.oracle.steps_at(self.now_us) + 1
            due = self.oracle.step_time(k)
            if due is None or due > until_us:
                return
            if due - 1 > self.now_us:
                self.advance_to(due - 1, rng)
                self.check()
            self.advance_to(due, rng)
            self.check()

    def words(self) -> list[int]:
        mday, us = divmod(self.start_us, US_PER_MDAY)
        return [self.step_pl, mday, us, self.start_ticks, len(self.expected), len(self.events), *self.events]


def encode(scenarios: list[Scenario]) -> bytes:
    words = [len(scenarios)]
    for s in scenarios:
        words += s.words()
    return struct.pack(f"<{len(words)}i", *words)


def parse_output(text: str) -> tuple[bool, list[tuple[int, list[tuple[int, int]]]]]:
    """Runner output -> (heap_lock works, [(faults, [(steps, time_us) per check])])."""
    lines = text.strip().splitlines()
    assert lines[0].startswith("heap_lock "), lines[:3]
    results = []
    for line in lines[1:]:
        nums = [int(x) for x in line.split()]
        faults, rest = nums[0], nums[1:]
        checks = []
        for i in range(0, len(rest), 4):
            hi, lo, mday, us = rest[i : i + 4]
            checks.append((hi * STEP_RADIX + lo, mday * US_PER_MDAY + us))
        results.append((faults, checks))
    return lines[0] == "heap_lock 1", results


# -- the scenarios ---------------------------------------------------------


def wrap_fast(wraps: int = 3) -> Scenario:
    """The fastest rate with the smallest step, across several ticks wraps."""
    rng = random.Random(1)
    s = Scenario(MIN_STEP, start_us=0, start_ticks=TICKS_WRAP - 1000)
    s.set_rate(MAX_RATE)
    end = wraps * TICKS_WRAP + 5000
    for _ in range(400):
        if rng.random() < 0.1:
            s.check_around_next_steps(2, end, rng)
        stride = rng.choice([1, 7, 3600, 50_000, 10**6, 10**7])
        s.advance_to(min(end, s.now_us + stride), rng)
        s.check()
    while s.now_us < end:  # then on to the third wrap in the longest ticks a Pico can measure
        s.advance_to(min(end, s.now_us + MAX_ADVANCE))
        s.check()
    return s


def slow_longer_than_wrap() -> Scenario:
    """1 uL/day in 10 uL steps: ten days between steps, 805 wraps of ticks."""
    s = Scenario(MAX_STEP, start_us=0, start_ticks=TICKS_WRAP - 1)
    s.set_rate(MIN_RATE)
    end = 31 * 86_400 * 10**6
    s.check_around_next_steps(3, end)  # polls every 2**29-1 us in between
    s.advance_to(end)
    s.check()
    return s


def ten_years() -> Scenario:
    """Ten years without a restart, ticking as slowly as a Pico may: 0.1 mL/day
    in 10 uL steps, a check every year and at the last steps."""
    s = Scenario(MAX_STEP, start_us=0, start_ticks=TICKS_WRAP - 3)
    s.set_rate(100_000)
    year_ticks = 365 * 86_400 * 10**6 // MAX_ADVANCE
    for _ in range(10):
        s.advance_long(year_ticks)
        s.check()
    end = s.now_us + 10 * 86_400 * 10**6
    s.check_around_next_steps(3, end)
    return s


def rate_changes(seed: int) -> Scenario:
    """Random rates (with stops) and durations, from a random point in ten years."""
    rng = random.Random(seed)
    step = rng.choice([MIN_STEP, MAX_STEP, 52_083, rng.randint(MIN_STEP, MAX_STEP)])
    s = Scenario(step, start_us=rng.randint(0, TEN_YEARS_US), start_ticks=rng.randrange(TICKS_WRAP))
    for _ in range(rng.randint(1, 6)):
        rate = rng.choice([0, MIN_RATE, MAX_RATE, 500_000, rng.randint(MIN_RATE, MAX_RATE)])
        s.set_rate(rate)
        # keep each segment to at most a few hundred steps
        # (and at most 40 days of pump time)
        span = min(400 * step * US_PER_MDAY // rate, 40 * 86_400 * 10**6) if rate else rng.randint(1, 10**11)
        end = s.now_us + rng.randint(1, span)
        s.check_around_next_steps(rng.randint(0, 3), end, rng)
        s.advance_to(end, rng)
        s.check()
    return s


def suite(random_count: int) -> list[Scenario]:
    return [wrap_fast(), slow_longer_than_wrap(), ten_years()] + [rate_changes(seed) for seed in range(random_count)]
