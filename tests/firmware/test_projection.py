"""What the dose guard's admission sees of a therapy's future (firmware.admission.Projection): the steps it will
deliver, bucket by bucket, counted in steps of the fluid the guard holds now, also across a bridge to a new
concentration."""

import pytest
from programs import parse_program

from firmware.admission import Projection
from firmware.guard import BUCKET_US
from firmware.library import default_library
from firmware.therapy import Therapy

LIB = default_library()
STEP_PL = 52_083
US_PER_MDAY = 86_400_000
STEP_U = STEP_PL * US_PER_MDAY  # one step in nL/day x us
HOUR = 3_600_000_000


def therapy_after_refill(old_conc, new_conc):
    old = parse_program([f"drug morphine {old_conc} mg/mL", "fill 20 mL", "basal 2 mg/day"], LIB)
    t = Therapy()
    t.commit(old, 0)
    new = parse_program(
        [f"drug morphine {new_conc} mg/mL", "fill 18 mL", "basal 2 mg/day", "bridge 50 uL"], LIB, old.drugs
    )
    t.commit(new, 0)
    return t


def cumulative(therapy, buckets):
    proj = Projection(therapy.fork(), 0, BUCKET_US, BUCKET_US, 0, STEP_U)
    return [proj.next_bucket() for _ in range(buckets)]


@pytest.mark.parametrize("old_conc, new_conc", [(10, 20), (20, 10), (5, 20)])
def test_a_steady_dose_across_a_bridge_is_a_steady_count_of_the_old_fluids_steps(old_conc, new_conc):
    # 2 mg/day throughout: as steps of the old fluid that is old-fluid volume at 2 mg/day, whatever the new
    # concentration; the bridge's 50 uL ends after 50 uL / (2 mg/day / old) of it.
    old_rate_nl_per_day = 2_000_000 // old_conc
    got = cumulative(therapy_after_refill(old_conc, new_conc), 24 * 100)
    bridge_end_bucket = 50_000 * 86_400 // old_rate_nl_per_day // 36
    for k in (0, 99, bridge_end_bucket - 1, bridge_end_bucket + 1, 1000, 2399):
        exact = old_rate_nl_per_day * (k + 1) * BUCKET_US // STEP_U
        # Rounding each segment up may add a step at most where the count is about to reach it.
        assert exact <= got[k] <= exact + 1, (k, got[k], exact)


# -- the small-int path gives exactly the long-int sums ---------------------------------------------------------

from hypothesis import example, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from firmware.admission import _strength_ratio  # noqa: E402


class ExactProjection:
    """The projection as plain long-int sums, bucket by bucket (what Projection computed before it took
    the small-int path between events): the reference."""

    def __init__(self, therapy, now, first_end, bucket_us, carried_u, step_u):
        self._t, self._now, self._next_end, self._bucket_us = therapy, now, first_end, bucket_us
        self._vol_u, self._step_u = carried_u, step_u
        self._rate = therapy.rate_now(now)
        self._event = therapy.next_event(now)
        self._guard_fluid = self._fluid = therapy.fluid()
        self._num = self._den = 1

    def next_bucket(self):
        end, t = self._next_end, self._t
        while self._event is not None and self._event <= end:
            ev = self._event
            self._add(ev)
            t.fire(ev)
            self._rate = t.rate_now(ev)
            if t.fluid() != self._fluid:
                self._fluid = t.fluid()
                self._num, self._den = _strength_ratio(self._fluid, self._guard_fluid)
            nxt = t.next_event(ev)
            self._event = nxt if nxt is None or nxt > ev else ev + 1
        self._add(end)
        self._next_end = end + self._bucket_us
        return self._vol_u // self._step_u

    def _add(self, until):
        self._vol_u += -(-self._rate * (until - self._now) * self._num // self._den)
        self._now = until


PROGRAMS = [
    ["drug morphine 20 mg/mL", "fill 20 mL", "basal 3 mg/day"],
    ["basal 10 mL/h"],
    ["basal 1 uL/day"],
    ["drug morphine 20 mg/mL", "fill 20 mL", "basal 3 mg/day", "bolus 0.5 mg over 30 min after 2 h"],
    ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day", "bolus 0.2 mg over 17 min"],
    ["prime 0.2 mL over 20 min", "basal 0.5 mL/day"],
]
FLEX = ["drug morphine 20 mg/mL", "fill 20 mL", "flex 00:00 2 mg/day", "flex 07:13 4 mg/day", "flex 22:00 1 mg/day"]


@given(
    which=st.integers(0, len(PROGRAMS)),
    now=st.integers(0, 40 * 86_400_000_000),
    into_bucket=st.integers(0, BUCKET_US - 1),
    carried_steps=st.integers(0, 10**9),
    step_pl=st.sampled_from([10_000, 52_083, 41_667, 10_000_000, 12_345]),
    bridge=st.booleans(),
)
# Flex boundaries before now that the therapy has not fired yet (one 1 us before it; two, midnight and 07:13):
# the small-int path once put them in no bucket, never fired them, and ran the old rate on.
@example(which=len(PROGRAMS), now=75_600_000_001, into_bucket=0, carried_steps=0, step_pl=10_000, bridge=False)
@example(which=len(PROGRAMS), now=101_580_000_001, into_bucket=0, carried_steps=0, step_pl=10_000, bridge=False)
def test_the_small_int_path_counts_exactly_the_steps_of_the_long_int_sums(
    which, now, into_bucket, carried_steps, step_pl, bridge
):
    step_u = step_pl * US_PER_MDAY
    t = Therapy()
    if which == len(PROGRAMS):  # a flex schedule on the device clock
        t.set_clock(0, 3 * 3_600_000_000)
        t.commit(parse_program(FLEX, LIB), 0)
    elif bridge:
        t = therapy_after_refill(10, 20)  # a bridge: scaled buckets, then the new fluid
    else:
        t.commit(parse_program(PROGRAMS[which], LIB), now)
    start = max(now, t.day_start) if which == len(PROGRAMS) else (0 if bridge else now)
    first_end = start + BUCKET_US - into_bucket
    carried = carried_steps % step_u
    fast = Projection(t.fork(), start, first_end, BUCKET_US, carried, step_u)
    exact = ExactProjection(t.fork(), start, first_end, BUCKET_US, carried, step_u)
    assert [fast.next_bucket() for _ in range(2400)] == [exact.next_bucket() for _ in range(2400)]


# -- how long the reservoir lasts: whole flex days skipped at once, exactly ----------------------------------------

from firmware.forecast import time_to_deliver  # noqa: E402


def time_to_deliver_event_by_event(t, volume_nl, now, horizon_us):
    """The reference: every event in turn, never a day skipped."""
    left_u = volume_nl * 86_400_000_000
    at, limit = now, now + horizon_us
    while at < limit:
        rate, ev = t.rate_now(at), t.next_event(at)
        end = limit if ev is None or ev > limit else ev
        if rate and rate * (end - at) >= left_u:
            return at + -(-left_u // rate) - now
        left_u -= rate * (end - at)
        if ev is None:
            return None
        t.fire(end)
        at = end if end > at else at + 1
    return None


@given(
    volume_nl=st.integers(1, 40_000_000),
    clock_h=st.integers(0, 23),
    now_min=st.integers(0, 3 * 1440),
    extra=st.sampled_from([[], ["bolus 0.5 mg over 30 min after 20 h"], ["trial 3 days"]]),
    shift_s=st.sampled_from([0, 0, 3600, -7200, 37]),
)
def test_skipping_whole_flex_days_gives_the_same_time_as_every_event(volume_nl, clock_h, now_min, extra, shift_s):
    t = Therapy()
    t.set_clock(0, clock_h * 3_600_000_000)
    try:
        t.commit(parse_program(FLEX + extra, LIB), 0)
    except Exception:  # a line this library refuses (a trial needs its own shape): a plain schedule then
        t.commit(parse_program(FLEX, LIB), 0)
    now = now_min * 60_000_000
    if shift_s:  # a clock change: the days are not 24 h until the schedule is back on the clock
        t.set_clock(now, (clock_h * 3600 + shift_s) * 1_000_000 + now)
    horizon = 400 * 86_400_000_000
    assert time_to_deliver(t.fork(), volume_nl, now, horizon) == time_to_deliver_event_by_event(
        t.fork(), volume_nl, now, horizon
    )


from firmware.forecast import times_to_deliver  # noqa: E402


@given(
    volume_nl=st.integers(0, 20_000_000),
    more_nl=st.integers(0, 20_000_000),
    clock_h=st.integers(0, 23),
    now_min=st.integers(0, 3 * 1440),
    extra=st.sampled_from([[], ["bolus 0.5 mg over 30 min after 20 h"], ["trial 3 days"]]),
    shift_s=st.sampled_from([0, 3600, -7200]),
)
def test_the_low_and_empty_times_in_one_scan_are_each_the_time_of_its_own_scan(
    volume_nl, more_nl, clock_h, now_min, extra, shift_s
):
    """THERAPY's time to the low and to the empty volume come from one scan: each the same to the microsecond."""
    t = Therapy()
    t.set_clock(0, clock_h * 3_600_000_000)
    try:
        t.commit(parse_program(FLEX + extra, LIB), 0)
    except Exception:
        t.commit(parse_program(FLEX, LIB), 0)
    now = now_min * 60_000_000
    if shift_s:
        t.set_clock(now, (clock_h * 3600 + shift_s) * 1_000_000 + now)
    horizon = 40 * 86_400_000_000
    then_nl = volume_nl + more_nl
    assert times_to_deliver(t.fork(), volume_nl, then_nl, now, horizon) == (
        time_to_deliver_event_by_event(t.fork(), volume_nl, now, horizon),
        time_to_deliver_event_by_event(t.fork(), then_nl, now, horizon),
    )


def test_a_schedule_that_delivers_nothing_all_day_never_reaches_a_volume_and_ends_the_scan_at_once():
    """A flex day of zero rates (the parser refuses one; a rate rounded down to 0 nL/day is the way
    there) delivers nothing on every day after it: no time, as event by event, without 400 days of events."""
    from firmware.program import BASAL_FLEX, DOSE_VOLUME, Program

    t = Therapy()
    t.set_clock(0, 0)
    p = Program()  # its values as a parse would leave them, with rates the parser refuses
    p.drugs = [("morphine", 20_000_000)]
    p.basal_kind = BASAL_FLEX
    p.flex = [(0, DOSE_VOLUME, 0), (433, DOSE_VOLUME, 0)]
    t.commit(p, 0)
    horizon = 40 * 86_400_000_000
    assert time_to_deliver_event_by_event(t.fork(), 1, 0, horizon) is None
    fires = []
    scanned = t.fork()
    fire = scanned.fire
    scanned.fire = lambda now: fires.append(now) or fire(now)
    assert times_to_deliver(scanned, 1, 2, 0, horizon) == (None, None)
    assert len(fires) <= 2  # the first day's boundary and step, not 40 days of them
