"""The issue's property, end to end: any program the pump accepts keeps the rolling 24 h delivery of every drug in
the blend within the library's daily hard limit, and never trips the independent dose guard.

Random programs near the daily limits (single drugs and blends; continuous or flex basal; a clinician bolus now
or later; patient boluses asked for at random times) are sent to the real firmware on the MicroPython unix port,
which then runs 2-3 simulated days. The steps it delivered are read on a fixed grid of pump time and at every
event, and every window of up to 24 h between two readings is compared with each drug's limit."""

import bisect
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from pumpctl import PumpRefused, Simulator
from pumpctl.units import DOSE_MASS, DOSE_VOLUME
from test_program import mcg_text, mg_text, ul_text, worst_case_ng

from firmware.library import default_library

pytestmark = pytest.mark.micropython

LIB = default_library()
S = 1_000_000
MIN = 60 * S
DAY = 24 * 60 * MIN
GRID_US = 15 * MIN  # divides 24 h, so grid readings 24 h apart are exact 24 h windows
MIDNIGHT = 1_699_920_000  # a local midnight, seconds since 1970
NL_PER_ML = 1_000_000
PL_PER_ML = 1_000_000_000
MIN_PER_DAY = 1440
MIN_RATE_NL_PER_DAY = 1_000

PATIENT_DRUGS = tuple(name for name in LIB.order if LIB.get("drug", name).patient_allowed)
# Each simulated example costs about a second; the default profile's 300 examples give 20, the long profile more.
EXAMPLES = max(10, settings().max_examples // 15)


@dataclass(frozen=True)
class Case:
    lines: list[str]
    drugs: list[tuple[str, int]]  # (name, ng/mL), primary first
    basal: tuple[int, int] | None  # (kind, per_day) as typed
    flex: list[tuple[int, int, int]]  # (start_min, kind, per_day)
    bolus: tuple[int, int, int, int] | None  # (kind, amount, duration_us, delay_us)
    patient: tuple[int, int, int, int, int] | None  # (kind, amount, duration_us, lockout_us, max_per_day)
    clock_s: int | None  # device clock to set before staging (flex only)
    requests_us: list[int]  # patient-bolus requests, pump time after the commit
    horizon_us: int


def as_dose(draw, conc0, nl, per_day=False):
    """(kind, amount, text) for nl of fluid, typed as a volume or as a mass of the primary drug. A mass converts
    back to at most nl (the pump rounds toward the smaller dose)."""
    suffix = "/day" if per_day else ""
    if draw(st.booleans()):
        ng = nl * conc0 // NL_PER_ML
        return DOSE_MASS, ng, mg_text(ng) + suffix
    return DOSE_VOLUME, nl, ul_text(nl) + suffix


@st.composite
def cases(draw):
    with_patient = draw(st.booleans())
    pool = PATIENT_DRUGS if with_patient else tuple(LIB.order)
    names = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=min(3, len(pool)), unique=True))
    # High concentrations: a dilute blend needs so many steps a day that a simulated day would take seconds.
    drugs = []
    for name in names:
        top = LIB.get("drug", name).max_conc_ng_per_ml
        drugs.append((name, draw(st.sampled_from([top, top * 3 // 4, top // 2]) | st.integers(top // 2, top))))
    conc0 = drugs[0][1]
    limits = [LIB.get("drug", name) for name, _conc in drugs]

    # The fluid one day may carry: the tightest drug's daily hard limit times a fraction: exactly 1 in 4 cases in
    # 10, 0.9-1 in 2, 0.5-0.9 in 2, and up to 5 % above 1 in 2 (those the pump must refuse; they cost little).
    budget_nl = min(d.daily_hard_ng * NL_PER_ML // conc for d, (_n, conc) in zip(limits, drugs, strict=True))
    low, high = draw(st.sampled_from([(1000, 1000)] * 4 + [(900, 999)] * 2 + [(500, 899)] * 2 + [(1001, 1050)] * 2))
    permille = draw(st.integers(low, high))
    day_nl = budget_nl * permille // 1000

    tail = []
    bolus = None
    bolus_nl = 0
    if all(d.bolus_hard_ng for d in limits) and draw(st.booleans()):
        cap_nl = min(d.bolus_hard_ng * NL_PER_ML // conc for d, (_n, conc) in zip(limits, drugs, strict=True))
        bolus_nl = min(draw(st.integers(cap_nl // 4, cap_nl)), day_nl // 3)
        kind, amount, text = as_dose(draw, conc0, bolus_nl)
        bolus_nl = amount * NL_PER_ML // conc0 if kind == DOSE_MASS else amount
        minutes = draw(st.sampled_from([60, 90, 120]) | st.integers(60, 600))
        delay_min = draw(st.just(0) | st.integers(1, 36 * 60))
        bolus = (kind, amount, minutes * MIN, delay_min * MIN)
        tail.append(f"bolus {text} over {minutes} min" + (f" after {delay_min} min" if delay_min else ""))

    patient = None
    patient_nl = 0
    requests_us = []
    horizon_us = draw(st.sampled_from([2, 3])) * DAY
    if with_patient:
        cap_nl = min(d.patient_dose_hard_ng * NL_PER_ML // conc for d, (_n, conc) in zip(limits, drugs, strict=True))
        count = draw(st.integers(1, min(d.patient_max_per_day for d in limits)))
        patient_nl = min(draw(st.integers(cap_nl // 4, cap_nl)), day_nl // 2 // count)
        kind, amount, text = as_dose(draw, conc0, patient_nl)
        patient_nl = amount * NL_PER_ML // conc0 if kind == DOSE_MASS else amount
        minutes = draw(st.sampled_from([20, 30, 45, 60, 10]))
        lockout_min = draw(st.sampled_from([60, 61, 90, 120, 240]))
        patient = (kind, amount, minutes * MIN, lockout_min * MIN, count)
        tail.append(f"patient-bolus {text} over {minutes} min lockout {lockout_min} min max {count} per day")
        # Requests often exactly one lockout apart, so the daily count is what stops them.
        gaps_min = draw(
            st.lists(st.sampled_from([lockout_min, lockout_min + 1, 5]) | st.integers(1, 10 * 60), max_size=12)
        )
        at = draw(st.integers(0, 120)) * MIN
        for gap in gaps_min:
            if at >= horizon_us:
                break
            requests_us.append(at)
            at += gap * MIN

    lines = [f"drug {name} {mcg_text(conc)}/mL" for name, conc in drugs] + ["fill 40 mL"]
    basal_day_nl = max(MIN_RATE_NL_PER_DAY, day_nl - bolus_nl - patient_nl * (patient[4] if patient else 0))
    basal = None
    flex = []
    clock_s = None
    if draw(st.booleans()):
        kind, amount, text = as_dose(draw, conc0, basal_day_nl, per_day=True)
        basal = (kind, amount)
        lines.append(f"basal {text}")
    else:
        # Step rates in proportion to weights, scaled (rounding down) so that the day holds basal_day_nl.
        starts = [0, *sorted(draw(st.lists(st.integers(1, MIN_PER_DAY - 1), min_size=1, max_size=5, unique=True)))]
        weights = [draw(st.integers(4, 6)) for _ in starts]
        lengths = [end - start for start, end in zip(starts, [*starts[1:], MIN_PER_DAY], strict=True)]
        weighted_min = sum(w * n for w, n in zip(weights, lengths, strict=True))
        for start, weight in zip(starts, weights, strict=True):
            rate_nl = basal_day_nl * weight * MIN_PER_DAY // weighted_min
            kind, amount, text = as_dose(draw, conc0, rate_nl, per_day=True)
            flex.append((start, kind, amount))
            lines.append(f"flex {start // 60:02d}:{start % 60:02d} {text}")
        clock_s = MIDNIGHT + draw(st.integers(0, 24 * 3600 - 1))
    return Case(lines + tail, drugs, basal, flex, bolus, patient, clock_s, requests_us, horizon_us)


def reading_times(case):
    """Pump times after the commit at which to read the steps: the grid, every event (the commit, the bolus start,
    each patient-bolus request) and 24 h after each event, so the windows that start at an event are read too."""
    events = {0, *case.requests_us}
    if case.bolus is not None:
        events.add(case.bolus[3])
    times = set(range(0, case.horizon_us + 1, GRID_US)) | events | {t + DAY for t in events}
    return sorted(t for t in times if t <= case.horizon_us)


@settings(max_examples=EXAMPLES, deadline=None)
@given(cases())
def test_an_accepted_program_keeps_every_24h_window_within_each_drugs_daily_limit(case):
    note("\n".join(case.lines))
    note(f"patient-bolus requests at min {[t // MIN for t in case.requests_us]}, clock {case.clock_s}")
    # The library's worst day (a full day of basal, the bolus and every allowed patient bolus), exactly.
    worst_ng = worst_case_ng(case.drugs, case.basal, case.flex, case.bolus, None, case.patient)
    over = [name for name, _conc in case.drugs if worst_ng[name] > LIB.get("drug", name).daily_hard_ng]
    with Simulator() as sim, sim.pump() as pump:
        if case.clock_s is not None:
            pump.set_clock(case.clock_s)
        try:
            t0 = pump.commit(pump.stage(case.lines), confirm_soft=True)
        except PumpRefused as refusal:
            event(f"refused: {refusal.field}")
            # Each layer holds on its own: a program above a daily limit is refused by the library check, not only
            # by the dose guard behind it (which would otherwise hide a broken library check from this test).
            assert not over or "dose guard" not in refusal.reason, (over, refusal.reason)
            return
        event("accepted" + (" with a bolus" if case.bolus else "") + (" with patient boluses" if case.patient else ""))
        assert not over, f"accepted although the worst day of {over} is above the daily hard limit"

        step_pl = pump.status().step_volume_pl
        times = reading_times(case)
        requests = set(case.requests_us)
        steps = []  # delivered since boot, at each of times
        for at in times:
            reading = pump.sim_advance(t0 + at - pump.status().time_us)
            assert reading.time_us == t0 + at
            steps.append(reading.steps)
            if at in requests:
                try:
                    pump.patient_bolus()
                    event("patient bolus given")
                except PumpRefused as refusal:
                    event("patient bolus refused" + (" by the dose guard" if "dose guard" in refusal.reason else ""))
        therapy = pump.therapy()
        log = pump.events()
        motor_steps = pump.sim_state().motor_steps
        assert sim.running(), "the firmware died:\n" + sim.stderr_text()

    # Bound. An accepted program's exact volume in any 24 h is within the limit: a daily schedule repeats, so any
    # 24 h of basal is one day's; there is one clinician bolus; and at most max_per_day patient boluses start in any
    # 24 h, so the parts of those that straddle a window's two ends add up to at most one dose. Over an interval
    # the scheduler issues floor(V(b) / s) - floor(V(a) / s) <= ceil((V(b) - V(a)) / s) steps (V the exact
    # programmed volume, s the step volume), so a 24 h window holds less than the limit plus one step's dose.
    # Reading pairs at most 24 h apart (exactly 24 h on the grid and from each event) lie inside some 24 h window:
    # each is a lower bound of a real window's delivery, so the check can miss an overdose but never invent one.
    peak = Fraction(0)  # the fullest window, as a fraction of its drug's limit
    for i, start in enumerate(times):
        j = bisect.bisect_right(times, start + DAY) - 1
        window_steps = steps[j] - steps[i]
        for name, conc in case.drugs:
            hard_ng = LIB.get("drug", name).daily_hard_ng
            step_dose = conc * step_pl  # ng/mL x pL: in units of 1e-9 ng, as hard_ng * PL_PER_ML
            assert window_steps * step_dose <= hard_ng * PL_PER_ML + step_dose, (
                f"{name}: {window_steps} steps from +{start / MIN} min to +{times[j] / MIN} min carry "
                f"{window_steps * step_dose / PL_PER_ML} ng, limit {hard_ng} ng + one step {step_dose / PL_PER_ML} ng"
            )
            peak = max(peak, Fraction(window_steps * step_dose, hard_ng * PL_PER_ML))
    if peak > 1:
        event("fullest window: above the limit by less than one step")
    elif peak >= Fraction(9, 10):
        event("fullest window: 90-100% of the limit")
    else:
        event("fullest window: below 90% of the limit")

    # The guard never had to step in, and everything it let through is what the motor moved.
    assert (therapy.alarm, therapy.refused_steps) == ("none", 0)
    assert log[0].index == 0, "the event log wrapped; a dose-limit alarm could have been missed"
    assert not [ev.text for ev in log if "dose limit" in ev.text]
    assert motor_steps == steps[-1]
