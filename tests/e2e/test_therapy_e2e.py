"""Every dosing mode end to end: the real firmware on the MicroPython unix
port, the host over a pty. The steps delivered at chosen instants are
compared with the exact integral of the rates each mode should run."""

import time
from fractions import Fraction

import pytest
from programs import items
from pumpctl import PumpRefused
from pumpctl.errors import LineRefused
from pumpctl.replies import Staged

from firmware import codec

pytestmark = pytest.mark.micropython

S = 1_000_000
MIN = 60 * S
HOUR = 60 * MIN
DAY = 24 * HOUR
MIDNIGHT = 1_699_920_000  # a local midnight, seconds since 1970
STEP_PL = 52_083
# 2 mg/day overnight, 4 mg/day from 07:00, 1 mg/day from 22:00: 0.1, 0.2 and 0.05 mL/day.
FLEX_DAY = ["drug morphine 20 mg/mL", "fill 20 mL", "flex 00:00 2 mg/day", "flex 07:00 4 mg/day", "flex 22:00 1 mg/day"]


class Expect:
    """The exact prescription as rate segments from the commit on: a rate of
    r nL/day delivers r pL per 86.4 s, steps owed = floor(volume / step)."""

    def __init__(self, pump, t0_us, steps0=0):
        self.pump = pump
        self.t0 = t0_us
        self.steps0 = steps0
        self.segments = []  # (from_us, rate_nl_per_day), in time order

    def rate(self, after_us, rate_nl_per_day):
        assert not self.segments or after_us >= self.segments[-1][0]
        self.segments.append((after_us, rate_nl_per_day))

    def owed(self, at_us):
        volume_pl = Fraction(0)
        for i, (start, rate) in enumerate(self.segments):
            end = self.segments[i + 1][0] if i + 1 < len(self.segments) else at_us
            end = min(end, at_us)
            if end > start:
                volume_pl += Fraction(rate * (end - start), 86_400_000)
        return volume_pl // STEP_PL

    def check(self, at_us):
        """Advance the pump to t0 + at_us and compare its steps with the owed."""
        now = self.pump.status().time_us
        st = self.pump.sim_advance(self.t0 + at_us - now)
        assert st.time_us == self.t0 + at_us
        owed = self.owed(at_us)
        assert st.steps - self.steps0 == owed, f"at +{at_us / HOUR} h: {st.steps - self.steps0} steps, owed {owed}"
        return st


def commit(pump, lines, confirm_soft=False):
    staged = pump.stage(lines)
    return pump.commit(staged, confirm_soft=confirm_soft)


def test_a_continuous_dose_is_converted_through_the_concentration_exactly(pump):
    t0 = commit(pump, ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"])
    e = Expect(pump, t0)
    e.rate(0, 100_000)  # 2 mg/day / 20 mg/mL = 0.1 mL/day
    e.check(7 * HOUR)
    st = e.check(DAY)
    assert st.steps == 1920  # floor(100 uL / 52.083 nL)
    th = pump.therapy()
    assert (th.mode, th.basal_nl_per_day, th.reservoir_nl) == (
        "continuous",
        100_000,
        20_000_000 - 1920 * 52_083 // 1000,
    )
    # Until delivery stops: at the empty volume, not at 0 mL.
    assert th.empty_in_s is not None and abs(th.empty_in_s - (th.reservoir_nl - th.empty_nl) * 86_400 // 100_000) <= 1


def test_a_single_bolus_runs_on_top_of_the_basal_and_leaves_it_unchanged(pump):
    t0 = commit(pump, ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"])
    e = Expect(pump, t0)
    e.rate(0, 100_000)
    e.check(2 * HOUR)
    t1 = commit(pump, pump.running_lines() + ["bolus 0.5 mg over 30 min"], confirm_soft=True)
    assert t1 == t0 + 2 * HOUR
    # 0.5 mg = 25 uL over 30 min is exactly 1.2 mL/day on top of 0.1 mL/day.
    e.rate(2 * HOUR, 1_300_000)
    e.rate(2 * HOUR + 30 * MIN, 100_000)
    th = pump.therapy()
    assert (th.bolus, th.bolus_rate_nl_per_day, th.basal_nl_per_day) == ("bolus", 1_200_000, 100_000)
    e.check(2 * HOUR + 17 * MIN)
    e.check(2 * HOUR + 30 * MIN)
    e.check(DAY)
    assert pump.therapy().bolus == "none"
    assert pump.running_lines() == ["drug morphine 20 mg/mL", "basal 2 mg/day"]


def test_a_delayed_bolus_starts_after_its_delay(pump):
    t0 = commit(pump, ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day", "bolus 0.2 mg over 1 h after 3 h"])
    e = Expect(pump, t0)
    e.rate(0, 100_000)
    e.rate(3 * HOUR, 100_000 + 240_000)  # 10 uL over 1 h = 0.24 mL/day
    e.rate(4 * HOUR, 100_000)
    e.check(3 * HOUR - 1)
    assert pump.therapy().bolus_rate_nl_per_day == 0  # waiting
    e.check(3 * HOUR)
    assert pump.therapy().bolus_rate_nl_per_day == 240_000
    e.check(3 * HOUR + 30 * MIN)
    e.check(6 * HOUR)


def test_a_flex_schedule_repeats_daily_from_the_device_clock(pump):
    pump.set_clock(MIDNIGHT + 6 * 3600)  # 06:00
    t0 = commit(pump, FLEX_DAY)
    e = Expect(pump, t0)
    e.rate(0, 100_000)  # 06:00 is in the 00:00 step
    for day in (0, DAY):
        e.rate(day + 1 * HOUR, 200_000)  # 07:00
        e.rate(day + 16 * HOUR, 50_000)  # 22:00
        e.rate(day + 18 * HOUR, 100_000)  # 00:00 next day
    e.check(1 * HOUR)
    e.check(16 * HOUR + 1 * MIN)
    e.check(18 * HOUR + 1 * S)
    e.check(DAY + 17 * HOUR)
    e.check(2 * DAY)
    assert pump.therapy().mode == "flex"


def test_setting_the_clock_back_lengthens_the_last_step_and_repeats_nothing(pump):
    pump.set_clock(MIDNIGHT + 20 * 3600)  # 20:00
    t0 = commit(pump, FLEX_DAY)
    e = Expect(pump, t0)
    e.rate(0, 200_000)
    e.rate(2 * HOUR, 50_000)  # 22:00
    e.check(3 * HOUR)  # 23:00
    # Daylight saving ends: 23:00 becomes 22:00. The night step runs one
    # hour longer (22:00-24:00 is 2 h long, so up to 1 h is absorbed), and
    # the 07:00 step is not started again.
    pump.set_clock(MIDNIGHT + 22 * 3600)
    e.rate(5 * HOUR, 100_000)  # the new midnight, 5 h after the commit
    e.rate(5 * HOUR + 7 * HOUR, 200_000)
    e.check(4 * HOUR + 59 * MIN)
    e.check(5 * HOUR + 1 * MIN)
    e.check(13 * HOUR)


def test_setting_the_clock_forward_far_shortens_the_last_step_at_most_by_half(pump):
    pump.set_clock(MIDNIGHT + 22 * 3600 + 30 * 60)  # 22:30
    t0 = commit(pump, FLEX_DAY)
    e = Expect(pump, t0)
    e.rate(0, 50_000)
    # 3 h forward at 22:30: the day may end at most 1 h early (half of the
    # 2 h night step), i.e. at 23:00 by the old clock, 30 min from now.
    pump.set_clock(MIDNIGHT + 25 * 3600 + 30 * 60)
    e.rate(30 * MIN, 100_000)
    e.check(29 * MIN)
    e.check(31 * MIN)
    # The next day's 07:00 step comes 7 h after that day start.
    e.rate(30 * MIN + 7 * HOUR, 200_000)
    e.check(8 * HOUR)


def test_a_flex_schedule_needs_the_clock(pump):
    with pytest.raises(PumpRefused, match="set the clock first"):
        pump.stage(["drug morphine 20 mg/mL", "fill 20 mL", "flex 00:00 2 mg/day"])


def test_a_priming_bolus_fills_the_catheter_then_returns_to_the_program(pump):
    t0 = commit(pump, ["drug morphine 1 mg/mL", "fill 20 mL", "basal 1 mg/day", "prime 0.2 mL over 20 min"])
    e = Expect(pump, t0)
    e.rate(0, 14_400_000)  # 0.2 mL in 20 min = 14.4 mL/day; the basal pauses
    e.rate(20 * MIN, 1_000_000)
    assert pump.therapy().bolus == "prime"
    e.check(10 * MIN)
    e.check(20 * MIN)
    e.check(5 * HOUR)
    assert pump.therapy().bolus == "none"


def test_a_bridge_bolus_keeps_the_dose_steady_across_a_concentration_change(pump):
    t0 = commit(pump, ["drug morphine 10 mg/mL", "fill 20 mL", "basal 2 mg/day"])
    e = Expect(pump, t0)
    e.rate(0, 200_000)
    e.check(5 * HOUR)
    # Refill at 20 mg/mL: 50 uL of the old 10 mg/mL still fill the path. It is
    # pushed out at the old volume rate (6 h), then the new rate halves it.
    t1 = commit(pump, ["drug morphine 20 mg/mL", "fill 18 mL", "basal 2 mg/day", "bridge 50 uL"])
    assert t1 == t0 + 5 * HOUR
    assert pump.therapy().bridge
    e.rate(5 * HOUR + 6 * HOUR, 100_000)
    e.check(8 * HOUR)
    e.check(11 * HOUR + 1 * MIN)
    e.check(DAY)
    assert not pump.therapy().bridge


def test_a_bridge_to_a_weaker_concentration_at_a_steady_high_dose_is_admitted_and_runs_without_an_alarm(pump):
    # 12 mg/day for 20 h at 20 mg/mL, then a refill at 10 mg/mL keeping 12 mg/day. The dose guard must count the
    # new fluid's steps as the half-strength steps they are: as old-strength steps the next day would look like
    # 8 + 6 + 12 = 26 mg of the old fluid's steps, and the refill would be refused.
    t0 = commit(pump, ["drug morphine 20 mg/mL", "fill 20 mL", "basal 12 mg/day"], confirm_soft=True)
    e = Expect(pump, t0)
    e.rate(0, 600_000)
    e.check(20 * HOUR)
    t1 = commit(pump, ["drug morphine 10 mg/mL", "fill 20 mL", "basal 12 mg/day", "bridge 0.25 mL"], confirm_soft=True)
    assert t1 == t0 + 20 * HOUR
    # 0.25 mL of the old fluid at 0.6 mL/day takes 10 h; then 1.2 mL/day of the new.
    e.rate(30 * HOUR, 1_200_000)
    e.check(29 * HOUR)
    e.check(2 * DAY)
    assert pump.therapy().alarm == "none" and not pump.therapy().bridge


def test_patient_boluses_respect_lockout_and_daily_count_and_refusals_are_logged(pump):
    lines = [
        "drug morphine 20 mg/mL",
        "fill 20 mL",
        "basal 2 mg/day",
        "patient-bolus 0.2 mg over 10 min lockout 2 h max 2 per day",
    ]
    commit(pump, lines, confirm_soft=True)
    assert pump.patient_bolus() == (10_000, 600)  # 0.2 mg = 10 uL over 600 s
    with pytest.raises(PumpRefused, match="running"):
        pump.patient_bolus()
    pump.sim_advance(1 * HOUR)
    with pytest.raises(PumpRefused, match="locked out for another 60 min"):
        pump.patient_bolus()
    pump.sim_advance(1 * HOUR)
    pump.patient_bolus()
    pump.sim_advance(3 * HOUR)
    with pytest.raises(PumpRefused, match="2 of 2 patient boluses already taken"):
        pump.patient_bolus()
    pump.sim_advance(DAY)
    pump.patient_bolus()  # the first two have left the 24 h window
    refused = [ev.text for ev in pump.events() if ev.code == 5]
    assert len(refused) == 3 and "locked out" in refused[1]


def test_an_admixture_shows_each_drugs_dose_and_checks_each_drugs_limit(pump):
    lines = ["drug morphine 20 mg/mL", "drug bupivacaine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"]
    staged = pump.stage(lines)
    assert ("basal 2 mg/day", "0.1 mL/day = morphine 2 mg/day, bupivacaine 2 mg/day") in staged.rows
    pump.discard()
    # Morphine 12 mg/day is within its hard limit (15), bupivacaine 30 mg/day is not.
    with pytest.raises(PumpRefused, match="bupivacaine 30 mg/day is above the hard limit of 15 mg/day"):
        pump.stage(["drug morphine 8 mg/mL", "drug bupivacaine 20 mg/mL", "fill 20 mL", "basal 12 mg/day"])


def test_a_refused_program_leaves_the_running_one_untouched(pump):
    commit(pump, ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"])
    before = pump.review()
    for bad, field in (
        (["drug morphine 20 mg/mL", "basal 1 mg/h"], "daily dose"),  # per hour, not per day: 24 mg/day
        (["drug ziconotide 100 mcg/mL", "fill 20 mL", "basal 2 mg/day"], "daily dose"),  # mg, not mcg
        (["drug morphine 20 mg/mL", "basal 2 ug/day"], "basal"),
        (
            [
                "drug morphine 20 mg/mL",
                "basal 2 mg/day",
                "patient-bolus 0.1 mg over 10 min lockout 4 min max 4 per day",
            ],
            "patient-bolus lockout",
        ),
        (["fill 20 mL", "basal 2 mL/day"], "daily dose"),  # no drug line: still morphine, so 40 mg/day
        (["drug none", "basal 2 mL/day"], "fill"),  # an emptied reservoir needs its fill volume
    ):
        with pytest.raises((PumpRefused, LineRefused)) as err:  # by the pump, or a line pumpctl cannot read
            pump.stage(bad)
        assert err.value.field == field
    assert pump.review() == before
    assert pump.therapy().basal_nl_per_day == 100_000


def test_a_soft_limit_needs_confirmation_and_a_staged_program_expires(pump):
    staged = pump.stage(["drug morphine 20 mg/mL", "fill 20 mL", "basal 12 mg/day"])
    assert staged.warnings == ["daily dose of morphine 12 mg/day is above the soft limit of 10 mg/day"]
    with pytest.raises(PumpRefused, match="soft-limit"):
        pump.commit(staged)
    for _ in range(11 * 60 // 50):  # 11 min, the session kept alive by a frame every 50 s
        pump.sim_advance(50 * S)
    with pytest.raises(PumpRefused, match="expired"):
        pump.commit(staged, confirm_soft=True)
    assert pump.therapy().mode == "stopped"


def test_lines_staged_without_a_check_go_with_their_session_and_a_checked_program_stays_for_another(pump):
    """A host that goes silent mid-session leaves nothing half done: lines it sent without STAGE go
    with the session; a program the pump checked (STAGE) stays staged, for another session to review
    and commit (a second clinician's check), and the running one doses on meanwhile."""
    pump.program(["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"])
    pump.link.request(codec.STAGE_ITEM, (0, *items(["basal 5 mg/day"])[0]))  # a draft: never checked
    pump.link.session_mac, session = None, pump.link.session_mac  # the host falls silent
    pump.link.request(codec.SIM_ADVANCE, (61, 0))
    time.sleep(0.2)
    pump.link.session_mac = session
    with pytest.raises(
        PumpRefused,
        match="no program is staged: its session ended "
        r"\(no authenticated frame for 60 s\); stage it again",
    ):
        pump.commit(Staged([], [], 0, 0))  # (it opens a new session first, as pumpctl does)
    staged = pump.stage(["drug morphine 20 mg/mL", "basal 4 mg/day"])
    pump.link.session_mac, session = None, pump.link.session_mac  # falls silent again, after STAGE
    pump.link.request(codec.SIM_ADVANCE, (61, 0))
    time.sleep(0.2)
    pump.link.session_mac = session
    assert pump.therapy().basal_nl_per_day == 100_000  # the running program doses on
    read_back = pump.staged()  # any host reads it back, and commits what it read (its CRC)
    assert read_back.lines == staged.lines and read_back.program_crc == staged.program_crc
    pump.commit(read_back)
    assert pump.therapy().basal_nl_per_day == 200_000
    assert any(ev.text == "session ended: no authenticated frame for 60 s" for ev in pump.events())


def test_a_trial_program_stops_when_the_trial_ends(pump):
    t0 = commit(pump, ["drug morphine 20 mg/mL", "fill 20 mL", "basal 1 mg/day", "trial 2 day"])
    e = Expect(pump, t0)
    e.rate(0, 50_000)
    e.rate(2 * DAY, 0)
    e.check(2 * DAY)
    e.check(3 * DAY)
    assert pump.therapy().mode == "stopped"
    assert any("trial ended" in ev.text for ev in pump.events())


def test_a_motor_fault_stops_at_once_and_for_good_and_an_acknowledgement_does_not_clear_it(pump):
    commit(pump, ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"])
    pump.sim_advance(HOUR)
    pump.sim_fault("motor")
    th = pump.therapy()
    assert (th.mode, th.rate_nl_per_day, th.alarm) == ("stopped", 0, "motor fault")
    steps = pump.status().steps
    pump.sim_advance(HOUR)
    assert pump.status().steps == steps
    with pytest.raises(PumpRefused, match="no bolus while an alarm is active"):
        pump.stage(["drug morphine 20 mg/mL", "basal 2 mg/day", "bolus 0.1 mg over 10 min"])
    assert pump.ack_alarm("motor fault") == 1
    [alarm] = pump.alarms()  # still latched: the driver still does not respond
    assert (alarm.name, alarm.priority, alarm.active, alarm.acknowledged) == ("motor fault", "high", True, True)
    with pytest.raises(PumpRefused, match="motor driver does not respond"):
        pump.stage(["drug morphine 20 mg/mL", "basal 2 mg/day"])
    pump.stage(["drug morphine 20 mg/mL", "stop"])  # a stopped program is still accepted
