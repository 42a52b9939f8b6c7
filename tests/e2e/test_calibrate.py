"""The calibration wizard, end to end: the real firmware on the MicroPython unix port behind a pty,
its simulated head moving a TRUE volume per step that differs from the board's calibrated one
(--true-step-pl), and a simulated MT-SICS balance on its own pty weighing what really moved. Only
weighing can find the difference; the wizard finds it, the pump stores it, checks it, logs it and
keeps it across a restart, and dosing is right afterwards."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from pumpctl import cli, schema
from pumpctl.balance import open_balance
from pumpctl.calibrate import BalanceScale, CalibrationRefused, TypedScale, calibrate, store_calibration
from pumpctl.client import NO_DRUG_LIMITS
from pumpctl.errors import PumpRefused
from pumpctl.sim import Simulator

from firmware import auth, codec, eventlog
from firmware.guard import DoseGuard

NOMINAL_PL = 52_083
TRUE_PL = 50_000  # the head really moves 4 % less: worn tubing
HOUR = 3600 * 10**6


@pytest.fixture
def rig(tmp_path):
    sim = Simulator(register=True, balance=True, board_args=["--true-step-pl", str(TRUE_PL)], storage=tmp_path / "p")
    sim.start()
    yield sim
    alive = sim.running()
    sim.stop()
    assert alive, sim.stderr_text()


def calibration_log(pump):
    return [e.text for e in pump.events() if e.code == eventlog.EV_CALIBRATION]


def test_weighing_finds_the_true_step_volume_a_large_change_needs_confirming_and_dosing_is_right_after(rig):
    with rig.pump() as pump, open_balance(rig.balance_port) as balance:
        before = pump.hello().step_volume_pl
        result = calibrate(pump, BalanceScale(balance), steps=2000, rates=["1 mL/h", "5 mL/h"], repeats=2, store=False)
        assert before == NOMINAL_PL and result.previous_pl == NOMINAL_PL and not result.stored
        assert [r.steps for r in result.runs] == [2000] * 4
        assert [(r.from_steps, r.to_steps) for r in result.runs] == [
            (0, 2000),
            (2000, 4000),
            (4000, 6000),
            (6000, 8000),
        ]
        assert [r.rate_nl_per_day for r in result.runs] == [24_000_000, 24_000_000, 120_000_000, 120_000_000]
        # 2000 steps of 50 nL at 0.9982 g/mL = 99.82 mg, read to 0.01 mg with 0.02 mg of noise
        assert all(abs(r.mass_ug - 99_820) <= 100 for r in result.runs)
        # The pump computed it from the raw weighings (the host's own arithmetic agrees): about 50,000 pL, a
        # change of 4 % from the 52,083 pL in force, which it stores only when confirmed.
        assert result.pump is not None and not result.pump.stored
        assert abs(result.step_volume_pl - TRUE_PL) <= 50 and result.spread_ppm <= 2_000
        assert 39_000 <= result.change_ppm <= 41_000 and result.needs_confirming
        with pytest.raises(
            PumpRefused, match=r"pL per step, was 52083 pL: a change of (3\.9\d|4\.0\d) % needs confirming"
        ) as e:
            store_calibration(pump, result)
        assert e.value.field == "confirm"
        assert pump.hello().step_volume_pl == NOMINAL_PL and calibration_log(pump) == []  # nothing stored
        stored = store_calibration(pump, result, confirm=True)
        assert stored.stored and stored.step_volume_pl == result.step_volume_pl
        assert pump.hello().step_volume_pl == result.step_volume_pl
        # The log holds the raw data: one entry per weighing (its steps and mass), then the result.
        log = calibration_log(pump)
        assert log[:4] == [
            f"weighing {k + 1}/4: 2000 steps ({r.from_steps}..{r.to_steps}), {r.mass_ug} ug, "
            f"{r.step_volume_pl} pL per step"
            for k, r in enumerate(result.runs)
        ]
        assert log[4:] == [
            f"step volume {result.step_volume_pl} pL, was {NOMINAL_PL} pL: 4 weighings at 998200 ug/mL, "
            f"spread {result.spread_ppm} ppm, confirmed"
        ]
        # An hour at 1 mL/h, weighed and counted on the motor: within 0.2 % of the programmed volume
        # (it was 4 % short before).
        motor_before = pump.sim_state().motor_steps
        balance.tare()
        pump.set_rate("1 mL/h")
        pump.sim_advance(HOUR)
        pump.stop()
        delivered_ul = Fraction(balance.read(stable=True).mass_g) * 1000 / Fraction(9982, 10_000)
        assert abs(delivered_ul - 1000) <= 2
        moved_pl = (pump.sim_state().motor_steps - motor_before) * TRUE_PL
        assert abs(moved_pl - 10**9) <= 2 * 10**6
    rig.stop()
    rig.provision = False
    rig.start()
    with rig.pump() as pump:  # a restart keeps the calibration and its log
        assert pump.hello().step_volume_pl == result.step_volume_pl
        assert calibration_log(pump) == log


def test_the_issues_attack_there_is_no_volume_to_state_only_weighings_of_steps_the_pump_made(rig):
    with rig.pump() as pump:
        # The old request, CALIBRATE(41667 pL, runs=2, spread=0): no such message any more.
        old = schema.encode_fields((("step_volume_pl", "I"), ("runs", "B"), ("spread_ppm", "I")), (41_667, 2, 0))
        pump.authenticate(auth.ROLE_CLINICIAN)
        with pytest.raises(PumpRefused) as e:
            pump._link.request(codec.CALIBRATE, payload=old)
        assert e.value.code == codec.ERR_MALFORMED
        # A calibration without weighings: nothing to compute from.
        with pytest.raises(PumpRefused, match="0 weighings are staged, not 2"):
            pump._request(codec.CALIBRATE, (2, 998_200, codec.CAL_CONFIRM))
        # Weighings of steps the pump never made: refused (it has made none).
        with pytest.raises(PumpRefused, match="step count 2000 is beyond this pump's 0"):
            pump.calibrate([(0, 2000, 83_184), (2000, 4000, 83_184)], confirm=True)
        # After 4000 real steps, masses made up to give 41,667 pL (20 % under): the pump computes
        # 41,667 itself, and a change of 20 % is refused unless confirmed; nothing is stored.
        pump.set_rate("5 mL/h")
        pump.sim_advance(HOUR * 4000 * NOMINAL_PL // (5 * 10**9) + 10**6)
        pump.stop()
        made = pump.status().steps
        assert made >= 4000
        with pytest.raises(
            PumpRefused, match=r"41667 pL per step, was 52083 pL: a change of 19\.99 % needs confirming"
        ):
            pump.calibrate([(0, 2000, 83_184), (2000, 4000, 83_184)])
        assert pump.hello().step_volume_pl == NOMINAL_PL and calibration_log(pump) == []


def test_the_pump_refuses_a_calibration_it_should_not_take(rig):
    with rig.pump() as pump:
        pump.set_rate("5 mL/h")
        pump.sim_advance(HOUR)  # 1920 steps
        good = [(0, 900, 44_919), (900, 1800, 44_919)]  # 900 steps of 50,000 pL at 0.9982 g/mL each
        with pytest.raises(PumpRefused, match="stop it first"):
            pump.calibrate(good)
        pump.stop()
        refusals = [
            ([good[0]], {}, "at least 2 weighings"),
            ([(0, 900, 44_919), (900, 1800, 46_500)], {}, r"spread 3.45 %, more than 2 %"),
            ([(0, 900, 36_000), (900, 1800, 36_000)], {}, "more than 20 % from this board's 52083 pL"),
            (good, {"density_ug_per_ml": 1_050_000}, "1050000 ug/mL is not bench water: give 990000..1000000"),
            ([(0, 900, 44_919), (800, 1800, 44_919)], {}, "the steps from 800 were weighed already"),
            ([(0, 50, 2_500), (900, 1800, 44_919)], {}, "50 steps: weigh 100 to"),
            ([(0, 900, 0), (900, 1800, 44_919)], {}, "a mass of 0 ug"),
        ]
        for weighings, kwargs, message in refusals:
            with pytest.raises(PumpRefused, match=message):
                pump.calibrate(weighings, **kwargs)
        with pytest.raises(PumpRefused, match="weighing 3 is out of order: the next is 0"):
            pump._request(codec.CAL_WEIGHING, (3, 0, 0, 0, 900, 44_919))
        # A confirm of weighings the pump has not shown: refused, however often it is sent.
        unseen = [(0, 900, 44_921), (900, 1800, 44_921)]
        for _ in range(2):
            with pytest.raises(PumpRefused, match="needs confirming"):
                pump.calibrate(unseen, confirm=True)
        # A confirm of other weighings than those shown: refused, once they are staged.
        checked = pump.calibrate(good, check=True)
        assert checked.step_volume_pl == 50_000 and not checked.stored
        with pytest.raises(PumpRefused, match="needs confirming"):
            pump.calibrate([(0, 900, 44_920), (900, 1800, 44_919)], confirm=True)
        assert pump.hello().step_volume_pl == NOMINAL_PL  # nothing changed
        assert calibration_log(pump) == []


def test_a_small_change_is_stored_without_confirming_and_the_arithmetic_is_exact(rig):
    with rig.pump() as pump:
        # 99.82 mg and 99.83 mg over 2000 steps at 0.9982 g/mL: 50,000 and 50,005.009 pL, to the nearest
        # pL 50,000 and 50,005; their mean 50,002.5 rounds to 50,003; spread 5 / 50,003 = 99.99 ppm, up: 100.
        result = calibrate(pump, TypedScale(masses_mg=["99.82", "99.83"]), steps=2000, confirm=True)
        assert [r.mass_ug for r in result.runs] == [99_820, 99_830]
        assert (result.step_volume_pl, result.spread_ppm, result.stored) == (50_003, 100, True)
        assert result.change_ppm == -(-(NOMINAL_PL - 50_003) * 10**6 // NOMINAL_PL) == 39_937
        # Then 49,500 pL: 1 % from 50,003, stored without confirming.
        start = pump.status().steps
        again = calibrate(pump, TypedScale(masses_mg=["98.822", "98.822"]), steps=2000, store=False)
        assert [(r.from_steps, r.steps) for r in again.runs] == [(start, 2000), (start + 2000, 2000)]
        assert (again.step_volume_pl, again.needs_confirming) == (49_500, False)
        done = store_calibration(pump, again)
        assert done.stored and pump.hello().step_volume_pl == 49_500
        assert (
            calibration_log(pump)[-1] == "step volume 49500 pL, was 50003 pL: 2 weighings at 998200 ug/mL, spread 0 ppm"
        )


def test_weighings_that_spread_too_far_store_nothing(rig):
    with rig.pump() as pump:
        scale = TypedScale(masses_mg=["99.8", "99.9", "103.0", "99.8"])  # one run 3 % high: a drip, a bubble
        with pytest.raises(CalibrationRefused, match=r"spread 3\.\d\d %, more than 2 %: nothing stored"):
            calibrate(pump, scale, steps=2000, rates=["1 mL/h", "5 mL/h"], repeats=2)
        assert pump.hello().step_volume_pl == NOMINAL_PL


def test_pumpctl_calibrate_with_the_balance_then_by_hand(rig, capsys):
    code = cli.main(["--port", rig.port, "calibrate", "--balance", rig.balance_port, "--yes"])
    out = capsys.readouterr()
    assert code == 0, out.err
    lines = out.out.splitlines()
    assert lines[0].startswith("run 1") and "2000 steps" in lines[0] and "99.82" in lines[0]
    assert lines[2].startswith("mean        ") and "pL per step over 2 runs (computed by the pump)" in lines[2]
    assert lines[4].startswith(("change      3.9", "change      4.0")) and lines[4].endswith(
        "from the 52083 pL in force: more than 2 %, stored only when confirmed"
    )
    assert lines[5].startswith("stored on the pump: ") and lines[5].endswith("(was 52083 pL), and logged")
    assert lines[6] == f"limits      bench water, {NO_DRUG_LIMITS}"  # bare volume rates: no drug named
    # By hand, measuring only (no tty: the masses are given), as JSON: the pump computed it, stored nothing.
    code = cli.main(
        ["--port", rig.port, "--json", "calibrate", "--masses", "104.0,104.1", "--steps", "2000", "--dry-run"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["stored"] is False and data["computed_by_pump"] is True
    assert [r["mass_ug"] for r in data["runs"]] == [104_000, 104_100]
    per_run = [round(m * 10**9 / (998_200 * 2000)) for m in (104_000, 104_100)]
    assert [r["step_volume_pl"] for r in data["runs"]] == per_run
    assert data["step_volume_pl"] == -(-sum(per_run) // 2)
    assert data["drug_limits"] is False
    # Spread too large: exit 1, one line, nothing stored.
    code = cli.main(["--port", rig.port, "calibrate", "--masses", "100,104", "--yes"])
    out = capsys.readouterr()
    assert code == cli.EXIT_REFUSED
    assert out.err.strip().splitlines()[-1].startswith("pumpctl: the weighings spread 3.9")
    assert out.out.splitlines()[-1] == f"limits      bench water, {NO_DRUG_LIMITS}"
    # A mass finer than 1 ug, or a density that is not bench water: usage errors saying how.
    assert cli.main(["--port", rig.port, "calibrate", "--masses", "104.0001,104", "--dry-run"]) == cli.EXIT_USAGE
    assert "give the mass to at most 3 decimals" in capsys.readouterr().err
    assert cli.main(["--port", rig.port, "calibrate", "--masses", "104,104", "--density", "1.2"]) == cli.EXIT_USAGE
    assert "bench water, 0.99..1 g/mL" in capsys.readouterr().err
    # Neither a balance nor masses: a usage error saying how.
    assert cli.main(["--port", rig.port, "calibrate"]) == cli.EXIT_USAGE
    assert "weigh with a balance (--balance PORT) or by hand" in capsys.readouterr().err
    # Fewer masses than runs, or one that is not a mass: refused before the pump moves (issue 23).
    with rig.pump() as pump:
        steps = pump.status().steps
    assert cli.main(["--port", rig.port, "calibrate", "--masses", "104.0", "--yes"]) == cli.EXIT_USAGE
    assert "--masses gives 1 mass for 2 runs (2 rate(s) x 1): one per run, in order" in capsys.readouterr().err
    assert cli.main(["--port", rig.port, "calibrate", "--masses", "104.0,1O4", "--yes"]) == cli.EXIT_USAGE
    assert "run 2: '1O4' is not a mass in mg" in capsys.readouterr().err
    with rig.pump() as pump:
        assert pump.status().steps == steps  # nothing was dispensed


def test_a_mass_typed_wrong_is_asked_again_not_the_end_of_the_calibration():
    asked = []
    answers = iter(["104,17", "104.17 mg"])

    def ask(prompt):
        asked.append(prompt)
        return next(answers)

    assert TypedScale(ask).weigh_mg(0) == Fraction(10417, 100)
    assert asked == [
        "run 1: mass dispensed, in mg? ",
        "run 1: '104,17' is not a mass in mg (for example 104.17); type it again: ",
    ]


def test_a_new_step_volume_rescales_the_dose_guards_windows_rounding_up():
    guard = DoseGuard(NOMINAL_PL)
    guard._ring[0][0] = 100
    guard._ring[0][5] = 7
    guard._resum()
    guard.departed = [("morphine", 20_000_000, 107, 7, 0, 0)]
    guard.set_step_volume(TRUE_PL)  # smaller steps: more of them for the same drug
    assert guard._ring[0][0] == -(-100 * NOMINAL_PL // TRUE_PL) == 105
    assert guard._ring[0][5] == -(-7 * NOMINAL_PL // TRUE_PL) == 8
    assert sum(sum(chunk) for chunk in guard._ring) == guard.day_sum == 113
    # The hour's 7 and the rest of the day's 100 each round up (8 + 105): rounding the day's 107 as one (112)
    # would leave the rest at 104 steps, less than the 104.7 of the old steps it stands for.
    assert guard.departed == [("morphine", 20_000_000, 113, 8, 0, 0)]
    assert guard.step_pl == TRUE_PL


@pytest.mark.micropython
def test_a_pump_that_cannot_run_ends_the_calibration_with_its_reason_not_an_endless_wait(capsys):
    """Issue 23, found re-trying it: at the empty volume the pump stopped at once, and the wizard ran the
    simulator's time forward for 61 days waiting for steps that never came."""
    with Simulator(register=True) as sim:
        assert cli.main(["--port", sim.port, "fault", "fill", "--value", "1.1 mL"]) == 0
        assert cli.main(["--port", sim.port, "program", "fill 1.1 mL", "basal 1 mL/day", "--yes"]) == 0
        assert cli.main(["--port", sim.port, "advance", "6h"]) == 0  # 0.1 mL at 1 mL/day: the empty volume
        capsys.readouterr()
        with sim.pump() as pump:
            before = pump.status()
        assert before.mode == "stopped"
        code = cli.main(["--port", sim.port, "calibrate", "--masses", "104,104", "--dry-run"])
        err = capsys.readouterr().err
        assert code != 0 and "the pump stopped after 0 of the 2000 steps (alarm: empty reservoir)" in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        with sim.pump() as pump:
            after = pump.status()
        assert after.mode == "stopped" and after.time_us - before.time_us < 3600 * 10**6  # no endless advance
