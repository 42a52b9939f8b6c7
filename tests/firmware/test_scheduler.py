"""The fixed-point dose scheduler against exact rational arithmetic (CPython).

The contract: polled at integer microsecond t, the scheduler has issued
exactly floor(V(t) / s) steps, where V is the exact programmed volume, across
any sequence of rate changes. Every value it holds stays a 32-bit small int.
"""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import ExactPrescription

from firmware import intmath
from firmware.scheduler import (
    MAX_RATE_NL_PER_DAY,
    MAX_STEP_PL,
    MIN_RATE_NL_PER_DAY,
    MIN_STEP_PL,
    STEP_RADIX,
    US_PER_MDAY,
    DoseScheduler,
)
from firmware.timebase import MAX_ADVANCE_US, Timebase

SMALL_INT_MIN, SMALL_INT_MAX = -(2**30), 2**30 - 1  # a 32-bit port's small ints
TEN_YEARS_US = 3653 * 86_400 * 10**6
DAY_US = 86_400 * 10**6

rates = st.one_of(
    st.just(0),
    st.sampled_from([MIN_RATE_NL_PER_DAY, MAX_RATE_NL_PER_DAY, 500_000]),
    st.integers(MIN_RATE_NL_PER_DAY, MAX_RATE_NL_PER_DAY),
)
step_volumes = st.one_of(st.sampled_from([MIN_STEP_PL, MAX_STEP_PL, 52_083]), st.integers(MIN_STEP_PL, MAX_STEP_PL))


def at(t_us):
    return divmod(t_us, US_PER_MDAY)


def assert_small_ints(sched):
    for name, value in vars(sched).items():
        if isinstance(value, int):
            assert SMALL_INT_MIN <= value <= SMALL_INT_MAX, f"{name}={value} is not a 32-bit small int"


@given(st.data())
def test_steps_issued_equal_floor_of_exact_volume(data):
    step = data.draw(step_volumes, "step_pl")
    t = data.draw(st.integers(0, TEN_YEARS_US), "start_us")
    sched = DoseScheduler(step)
    exact = ExactPrescription(step, t)
    issued = 0
    for _ in range(data.draw(st.integers(1, 6), "segments")):
        rate = data.draw(rates, "rate")
        issued += sched.set_rate(*at(t), rate)
        exact.set_rate(t, rate)
        assert issued == exact.steps_at(t)
        assert_small_ints(sched)
        # at most ~2000 steps or 40 days per segment, to keep the run short
        span = min(2000 * step * US_PER_MDAY // rate, 40 * DAY_US) if rate else 10**11
        end = t + data.draw(st.integers(1, span), "duration_us")
        points = data.draw(st.lists(st.integers(t, end), max_size=6), "polls")
        owed = exact.steps_at(t)
        for k in range(owed + 1, owed + 4):  # the microsecond before and at each step
            due = exact.step_time(k)
            if due is not None and due <= end:
                points += [max(t, due - 1), due]
        for p in sorted(set(points)) + [end]:
            issued += sched.poll(*at(p))
            assert issued == exact.steps_at(p), f"at {p} us: issued {issued}, owed {exact.steps_at(p)}"
            assert_small_ints(sched)
        assert sched.steps() == issued
        t = end


def test_first_step_is_issued_at_the_microsecond_the_volume_reaches_one_step():
    sched = DoseScheduler(52_083)
    sched.set_rate(0, 0, 500_000)  # 0.5 mL/day
    # one step takes 52083 pL / (500000 pL per 86.4 s) = 8999.9424 s
    exact_us = 52_083 * US_PER_MDAY / 500_000
    due = -(-52_083 * US_PER_MDAY // 500_000)
    assert due - 1 < exact_us <= due
    assert sched.poll(*at(due - 1)) == 0
    assert sched.poll(*at(due)) == 1


def test_rate_change_carries_the_partial_step_over_exactly():
    step = 100_000  # 100 nL
    sched = DoseScheduler(step)
    sched.set_rate(0, 0, 1_000_000)  # 1 mL/day: 1 pL per 86.4 us
    half_us = 50_000 * 86_400 // 1000  # 50 nL in: half a step
    assert sched.set_rate(*at(half_us), 2_000_000) == 0  # double the rate
    # the other 50 nL take half as long at the new rate
    done = half_us + half_us // 2
    assert sched.poll(*at(done - 1)) == 0
    assert sched.poll(*at(done)) == 1


def test_stopping_keeps_the_partial_step_for_when_dosing_resumes():
    step = 100_000
    sched = DoseScheduler(step)
    sched.set_rate(0, 0, 1_000_000)
    third = 30_000 * 86_400 // 1000  # 30 nL delivered
    sched.set_rate(*at(third), 0)
    assert sched.poll(*at(TEN_YEARS_US // 2)) == 0  # stopped: nothing, however long
    resume = TEN_YEARS_US // 2
    sched.set_rate(*at(resume), 1_000_000)
    rest = 70_000 * 86_400 // 1000  # the remaining 70 nL
    assert sched.poll(*at(resume + rest - 1)) == 0
    assert sched.poll(*at(resume + rest)) == 1


def test_a_late_poll_issues_every_owed_step_and_no_more():
    sched = DoseScheduler(MIN_STEP_PL)
    sched.set_rate(0, 0, MAX_RATE_NL_PER_DAY)  # 10 mL/h in 10 nL steps: one per 3.6 ms
    ten_minutes = 600 * 10**6
    assert sched.poll(*at(ten_minutes)) == ten_minutes // 3600
    assert_small_ints(sched)


def test_step_total_carries_into_the_high_word():
    sched = DoseScheduler(MIN_STEP_PL)
    sched.steps_lo = STEP_RADIX - 1  # as after 5.4e8 steps
    sched.set_rate(0, 0, MAX_RATE_NL_PER_DAY)
    assert sched.poll(*at(2 * 3600)) == 2
    assert (sched.steps_hi, sched.steps_lo) == (1, 1)
    assert sched.steps() == STEP_RADIX + 1


def test_us_until_due_says_when_to_wake_capped():
    sched = DoseScheduler(52_083)
    cap = 10**6
    assert sched.us_until_due(0, 0, cap) == cap  # stopped
    sched.set_rate(0, 0, 500_000)
    due = -(-52_083 * US_PER_MDAY // 500_000)
    assert sched.us_until_due(0, 0, cap) == cap
    assert sched.us_until_due(*at(due - 10), cap) == 10
    assert sched.us_until_due(*at(due - 10), 5) == 5


@pytest.mark.parametrize("step", [MIN_STEP_PL - 1, MAX_STEP_PL + 1, 0])
def test_refuses_step_volumes_outside_the_range(step):
    with pytest.raises(ValueError):
        DoseScheduler(step)


@pytest.mark.parametrize("rate", [-1, MAX_RATE_NL_PER_DAY + 1])
def test_refuses_rates_outside_the_range_and_keeps_the_program(rate):
    sched = DoseScheduler(52_083)
    sched.set_rate(0, 0, 500_000)
    before = dict(vars(sched))
    with pytest.raises(ValueError):
        sched.set_rate(0, 1000, rate)
    assert vars(sched) == before


@given(
    st.integers(1, 2**29 - 1).flatmap(lambda d: st.tuples(st.integers(0, d - 1), st.just(d))),
    st.integers(0, 2**30 - 1),
)
def test_muldiv_is_exact_within_the_schedulers_bounds(a_d, b):
    a, d = a_d
    q, r = divmod(a * b, d)
    if q >= 2**30:
        return  # outside the documented domain: callers never ask for it
    assert intmath.muldiv(a, b, d) == q
    assert intmath.remainder == r


def test_timebase_accumulates_wrapping_ticks_into_exact_time():
    rng = random.Random(5)
    tb = Timebase()
    total = 0
    for _ in range(20_000):
        d = rng.choice([0, 1, 999, MAX_ADVANCE_US, rng.randint(0, MAX_ADVANCE_US)])
        tb.advance(d)
        total += d
        assert 0 <= tb.us < US_PER_MDAY
        assert tb.total_us() == total
    assert tb.faults == 0


def test_the_millidays_of_timebase_scheduler_and_wire_are_one_unit():
    # Each module keeps its own const() so MicroPython inlines it on the hot path.
    from firmware import codec, timebase

    assert timebase.US_PER_MDAY == US_PER_MDAY == codec.US_PER_MDAY == 86_400 * 1000
    assert codec.STEP_RADIX == STEP_RADIX


@pytest.mark.parametrize("bad", [-1, MAX_ADVANCE_US + 1])
def test_timebase_counts_a_misbehaving_tick_source_as_a_fault_and_does_not_jump(bad):
    tb = Timebase()
    tb.advance(1234)
    tb.advance(bad)
    assert tb.total_us() == 1234
    assert tb.faults == 1


# (step_pl, rate) pairs where one step's exact duration s * US_PER_MDAY / r
# lands on a whole microsecond, 1/r after one, or 1/r before one: found by
# factoring s * US_PER_MDAY - remainder; the test re-checks the remainder.
EDGE_CASES = [
    (10_007, 20_000, "whole"),
    (10_216, 1_003, "just after"),
    (10_847, 1_003, "just before"),
    (10_007, 1_921_344, "whole"),
    (2_837_690, 1_973_089, "just after"),
    (4_722_812, 1_987_439, "just before"),
    (10_007, 230_561_280, "whole"),
    (114_736, 234_027_961, "just after"),
    (1_057_297, 173_782_739, "just before"),
]


@pytest.mark.parametrize("step, rate, where", EDGE_CASES)
def test_step_times_at_the_edges_of_a_microsecond(step, rate, where):
    remainder = {"whole": 0, "just after": 1, "just before": rate - 1}[where]
    assert (step * US_PER_MDAY) % rate == remainder
    exact = ExactPrescription(step)
    exact.set_rate(0, rate)
    sched = DoseScheduler(step)
    sched.set_rate(0, 0, rate)
    for k in (1, 2, 3, 1000, 1001):
        due = exact.step_time(k)
        sched.poll(*at(due - 1))
        assert sched.steps() == k - 1, f"step {k} issued before {due} us"
        sched.poll(*at(due))
        assert sched.steps() == k, f"step {k} not issued at {due} us"
