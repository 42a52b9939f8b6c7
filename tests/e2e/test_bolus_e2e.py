"""Boluses are explicit doses (issue 18, item 2): committing the bolus, prime or bridge line that is running or
waiting leaves it untouched; another one while it runs is refused; a program without its line cancels it, and says
so; once it has ended its line leaves the running program, so the same line again is a new dose, shown as new.
Measured from the simulator's motor (SIM_STATE: steps x its true step volume), on the real firmware."""

import json
from fractions import Fraction

import pytest
from pumpctl import PumpRefused, cli

pytestmark = pytest.mark.micropython

S = 1_000_000
MIN = 60 * S
HOUR = 60 * MIN
STEP_PL = 52_083  # boards/sim.py: the pump's volume per step
BASAL = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 3 mg/day"]  # 0.15 mL/day
BASAL_NL_DAY = 150_000
BOLUS = "bolus 500 mcg over 30 min"  # 25 uL: 1.2 mL/day for 30 min


def run(sim, capsys, *argv):
    code = cli.main(["--port", sim.port, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def steps_owed(segments, until_us):
    """Steps the exact prescription owes by until_us: segments [(from_us, nL/day)], r nL/day = r pL per 86.4 s."""
    pl = Fraction(0)
    for i, (start, rate) in enumerate(segments):
        end = min(segments[i + 1][0] if i + 1 < len(segments) else until_us, until_us)
        if end > start:
            pl += Fraction(rate * (end - start), 86_400_000)
    return pl // STEP_PL


def commit(pump, lines):
    staged = pump.stage(lines)
    return staged, pump.commit(staged, confirm_soft=True)


def detail(rows, word):
    """The review detail of the row whose line starts with word."""
    return next(d for line, d in rows if line.split(" ", 1)[0] == word)


def test_the_issues_resent_bolus_goes_on_unchanged_and_the_motor_moves_one_bolus(sim, capsys):
    assert run(sim, capsys, "program", *BASAL, "--yes")[0] == 0
    assert run(sim, capsys, "advance", "1h")[0] == 0
    with sim.pump() as pump:
        start = pump.sim_state()
        crc0 = pump.therapy().program_crc
    code, out, err = run(sim, capsys, "bolus", "0.5 mg", "--over", "30 min", "--yes", "--confirm-soft")
    assert code == 0, err
    assert "new dose: 25 uL = morphine 500 mcg" in out
    with sim.pump() as pump:
        crc1 = pump.therapy().program_crc
    assert crc1 != crc0
    assert run(sim, capsys, "advance", "15min")[0] == 0
    code, out, err = run(sim, capsys, "bolus", "0.5 mg", "--over", "30 min", "--yes", "--confirm-soft")
    assert code == 0, err
    assert "running: 12.5 uL of 25 uL left, unchanged" in out  # the review of the second commit
    assert "the bolus already running or waiting goes on unchanged: no new dose was given" in out
    assert run(sim, capsys, "advance", "2h")[0] == 0
    with sim.pump() as pump:
        end = pump.sim_state()
        th = pump.therapy()
        log = [e.text for e in pump.events()]
        running = [line for line, _d in pump.review() if line]
    # Over those 2 h 15 min: the basal and ONE 25 uL bolus (the issue saw 37.5 uL of bolus).
    t0 = HOUR
    owed = steps_owed(
        [(0, BASAL_NL_DAY), (t0, BASAL_NL_DAY + 1_200_000), (t0 + 30 * MIN, BASAL_NL_DAY)], t0 + 135 * MIN
    )
    owed_before = steps_owed([(0, BASAL_NL_DAY)], t0)
    moved = end.motor_steps - start.motor_steps
    assert (start.motor_steps, end.motor_steps) == (owed_before, owed)
    moved_nl = moved * end.true_step_volume_pl / 1000
    assert abs(moved_nl - (14.0625 + 25) * 1000) < end.true_step_volume_pl / 1000  # within a step of 39.06 uL
    # The bolus has ended: its line left the running program (its CRC changed), and the log says so.
    assert th.bolus == "none" and th.program_crc not in (crc0, crc1)
    assert running == ["drug morphine 20 mg/mL", "basal 3 mg/day"]
    assert "bolus: running: 12.5 uL of 25 uL left, unchanged" in log
    assert "bolus done" in log


def test_a_different_bolus_while_one_runs_is_refused_and_the_motor_moves_only_the_first(pump):
    t0 = commit(pump, BASAL)[1]
    commit(pump, [*pump.running_lines(), BOLUS])
    pump.sim_advance(15 * MIN)
    lines = [ln for ln in pump.running_lines() if not ln.startswith("bolus")]
    with pytest.raises(
        PumpRefused, match=r"a bolus is running: 12.5 uL of 25 uL left; one at a time: wait, or drop its line"
    ):
        pump.stage([*lines, "bolus 200 mcg over 10 min"])
    with pytest.raises(PumpRefused, match=r"a bolus is running"):
        pump.stage([*lines, "prime 1 uL over 10 min"])
    st = pump.sim_advance(HOUR)
    assert st.time_us == t0 + 75 * MIN
    assert st.steps == steps_owed(
        [(t0, BASAL_NL_DAY), (t0, BASAL_NL_DAY + 1_200_000), (t0 + 30 * MIN, BASAL_NL_DAY)], st.time_us
    )
    assert pump.sim_state().motor_steps == st.steps


def test_a_program_without_the_bolus_line_cancels_it_and_says_so(pump):
    t0 = commit(pump, BASAL)[1]
    commit(pump, [*pump.running_lines(), BOLUS])
    pump.sim_advance(15 * MIN)
    staged = pump.stage(["drug morphine 20 mg/mL", "basal 3 mg/day"])
    assert ("", "bolus cancelled: 12.5 uL of 25 uL not given") in staged.rows
    assert staged.lines == ["drug morphine 20 mg/mL", "basal 3 mg/day"]
    pump.commit(staged)
    assert pump.therapy().bolus == "none"
    st = pump.sim_advance(2 * HOUR)
    # the bolus ran 15 min (12.5 uL), then stopped
    segments = [(t0, BASAL_NL_DAY + 1_200_000), (t0 + 15 * MIN, BASAL_NL_DAY)]
    assert pump.sim_state().motor_steps == st.steps == steps_owed(segments, st.time_us)
    assert "bolus cancelled: 12.5 uL of 25 uL not given" in [e.text for e in pump.events()]


def test_the_same_line_after_the_bolus_ended_is_a_second_full_dose_shown_as_new(pump):
    t0 = commit(pump, BASAL)[1]
    staged, _ = commit(pump, [*pump.running_lines(), BOLUS])
    assert detail(staged.rows, "bolus") == "new dose: 25 uL = morphine 500 mcg"
    pump.sim_advance(HOUR)
    assert pump.running_lines() == ["drug morphine 20 mg/mL", "basal 3 mg/day"]  # it ended: its line left
    assert BOLUS not in [line for line, _d in pump.review()]
    staged, t1 = commit(pump, [*pump.running_lines(), BOLUS])
    assert detail(staged.rows, "bolus") == "new dose: 25 uL = morphine 500 mcg"
    assert t1 == t0 + HOUR
    st = pump.sim_advance(HOUR)
    segments = [
        (t0, BASAL_NL_DAY + 1_200_000),
        (t0 + 30 * MIN, BASAL_NL_DAY),
        (t1, BASAL_NL_DAY + 1_200_000),
        (t1 + 30 * MIN, BASAL_NL_DAY),
    ]
    assert pump.sim_state().motor_steps == st.steps == steps_owed(segments, st.time_us)
    assert [e.text for e in pump.events()].count("bolus: new dose: 25 uL = morphine 500 mcg") == 2


def test_a_delayed_bolus_committed_again_keeps_its_start(pump):
    t0 = commit(pump, [*BASAL, "bolus 200 mcg over 1 h after 3 h"])[1]  # 10 uL: 0.24 mL/day from 3 h to 4 h
    pump.sim_advance(HOUR)
    staged, _ = commit(pump, pump.running_lines())
    assert detail(staged.rows, "bolus") == "waiting: starts in 120 min, unchanged"
    assert pump.therapy().bolus_rate_nl_per_day == 0
    st = pump.sim_advance(5 * HOUR)
    segments = [(t0, BASAL_NL_DAY), (t0 + 3 * HOUR, BASAL_NL_DAY + 240_000), (t0 + 4 * HOUR, BASAL_NL_DAY)]
    assert pump.sim_state().motor_steps == st.steps == steps_owed(segments, st.time_us)
    assert pump.running_lines() == ["drug morphine 20 mg/mL", "basal 3 mg/day"]


def test_a_prime_committed_again_is_not_restarted(pump):
    t0 = commit(pump, ["drug morphine 1 mg/mL", "fill 20 mL", "basal 1 mg/day", "prime 0.2 mL over 20 min"])[1]
    pump.sim_advance(10 * MIN)
    staged, _ = commit(pump, pump.running_lines())
    assert detail(staged.rows, "prime") == "running: 100 uL of 200 uL left, unchanged"
    assert pump.therapy().bolus == "prime"
    st = pump.sim_advance(2 * HOUR)
    segments = [(t0, 14_400_000), (t0 + 20 * MIN, 1_000_000)]  # the basal pauses while the catheter fills
    assert pump.sim_state().motor_steps == st.steps == steps_owed(segments, st.time_us)
    assert pump.therapy().bolus == "none" and pump.running_lines() == ["drug morphine 1 mg/mL", "basal 1 mg/day"]


def test_a_bridge_committed_again_goes_on_and_dropping_it_is_refused(pump):
    t0 = commit(pump, ["drug morphine 10 mg/mL", "fill 20 mL", "basal 2 mg/day"])[1]
    pump.sim_advance(5 * HOUR)
    t1 = commit(pump, ["drug morphine 20 mg/mL", "fill 18 mL", "basal 2 mg/day", "bridge 50 uL"])[1]
    pump.sim_advance(2 * HOUR)
    base = pump.running_lines()
    assert base == ["drug morphine 20 mg/mL", "basal 2 mg/day", "bridge 50 uL"]
    with pytest.raises(PumpRefused, match="a bridge is running: 33.3.* uL of 50 uL left; keep its line unchanged"):
        pump.stage(base[:-1])
    staged, _ = commit(pump, base)
    assert detail(staged.rows, "bridge").endswith("of 50 uL left, unchanged")
    assert pump.therapy().bridge
    st = pump.sim_advance(20 * HOUR)
    # 50 uL of the old 10 mg/mL at 0.2 mL/day (6 h), then 0.1 mL/day of the new
    segments = [(t0, 200_000), (t1 + 6 * HOUR, 100_000)]
    assert pump.sim_state().motor_steps == st.steps == steps_owed(segments, st.time_us)
    assert not pump.therapy().bridge and pump.running_lines() == ["drug morphine 20 mg/mL", "basal 2 mg/day"]


def test_a_refill_from_the_cli_keeps_the_running_bolus_and_says_no_new_dose_was_given(sim, capsys):
    assert run(sim, capsys, "program", *BASAL, "--yes")[0] == 0
    assert run(sim, capsys, "bolus", "0.5 mg", "--over", "30 min", "--yes", "--confirm-soft")[0] == 0
    assert run(sim, capsys, "advance", "15min")[0] == 0
    code, out, err = run(sim, capsys, "refill", "--removed", "20 mL", "--fill", "20 mL", "--yes", "--confirm-soft")
    assert code == 0, err
    assert "no new dose was given" in out
    code, out, _ = run(sim, capsys, "--json", "therapy")
    th = json.loads(out)
    assert th["bolus"] == "bolus" and th["bolus_left_s"] == 15 * 60


def test_a_clinician_bolus_meeting_a_running_patient_bolus_is_refused_and_dropping_it_says_what_was_not_given(pump):
    """Issue 23: a clinician bolus once cancelled a running patient bolus silently (no review row, no log)."""
    commit(pump, [*BASAL, "patient-bolus 0.1 mg over 10 min lockout 1 h max 4 per day"])
    assert pump.patient_bolus() == (5_000, 600)
    pump.sim_advance(5 * MIN)
    lines = pump.running_lines()
    with pytest.raises(PumpRefused, match=r"a patient-bolus is running: 2.5 uL of 5 uL left; one at a time: wait"):
        pump.stage([*lines, "bolus 100 mcg over 10 min"])
    staged = pump.stage([ln for ln in lines if not ln.startswith("patient-bolus")])  # dropping its line cancels it
    assert ("", "patient-bolus cancelled: 2.5 uL of 5 uL not given") in staged.rows
    pump.commit(staged)
    assert pump.therapy().bolus == "none"
    assert "patient-bolus cancelled: 2.5 uL of 5 uL not given" in [e.text for e in pump.events()]
