"""The calibration wizard, end to end: the real firmware on the MicroPython unix port behind a pty,
its simulated head moving a TRUE volume per step that differs from the board's calibrated one
(--true-step-pl), and a simulated MT-SICS balance on its own pty weighing what really moved. Only
weighing can find the difference; the wizard finds it, the pump stores it, checks it, logs it and
keeps it across a restart, and dosing is right afterwards."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from pumpctl import cli
from pumpctl.balance import open_balance
from pumpctl.calibrate import BalanceScale, CalibrationRefused, TypedScale, calibrate
from pumpctl.client import NO_DRUG_LIMITS
from pumpctl.errors import PumpRefused
from pumpctl.sim import Simulator

from firmware.guard import DAY_BUCKETS, DoseGuard

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


def test_weighing_finds_the_true_step_volume_and_dosing_is_right_after_it_is_stored(rig):
    with rig.pump() as pump, open_balance(rig.balance_port) as balance:
        before = pump.hello().step_volume_pl
        result = calibrate(pump, BalanceScale(balance), steps=2000, rates=["1 mL/h", "5 mL/h"], repeats=2)
        assert before == NOMINAL_PL and result.previous_pl == NOMINAL_PL and result.stored
        assert [r.steps for r in result.runs] == [2000] * 4
        assert [r.rate_nl_per_day for r in result.runs] == [24_000_000, 24_000_000, 120_000_000, 120_000_000]
        # 2000 steps of 50 nL at 0.9982 g/mL = 99.82 mg, read to 0.01 mg with 0.02 mg of noise
        assert all(abs(r.mass_mg - Fraction(9982, 100)) <= Fraction(10, 100) for r in result.runs)
        assert abs(result.step_volume_pl - TRUE_PL) <= 50 and result.spread_ppm <= 2_000
        assert pump.hello().step_volume_pl == result.step_volume_pl
        [entry] = [e.text for e in pump.events() if e.text.startswith("step volume ")]
        assert entry == f"step volume {result.step_volume_pl} pL, was {NOMINAL_PL} pL (4 weighings, spread " + (
            f"{result.spread_ppm} ppm)"
        )
        # An hour at 1 mL/h, weighed: within 0.2 % of the programmed volume (it was 4 % short before).
        balance.tare()
        pump.set_rate("1 mL/h")
        pump.sim_advance(HOUR)
        pump.stop()
        delivered_ul = Fraction(balance.read(stable=True).mass_g) * 1000 / Fraction(9982, 10_000)
        assert abs(delivered_ul - 1000) <= 2
    rig.stop()
    rig.provision = False
    rig.start()
    with rig.pump() as pump:  # a restart keeps the calibration
        assert pump.hello().step_volume_pl == result.step_volume_pl


def test_the_pump_refuses_a_calibration_it_should_not_take(rig):
    with rig.pump() as pump:
        pump.set_rate("1 mL/h")
        with pytest.raises(PumpRefused, match="stop it first"):
            pump.calibrate(50_000, 2, 100)
        pump.stop()
        with pytest.raises(PumpRefused, match="more than 20 % from this board's 52083 pL"):
            pump.calibrate(40_000, 2, 100)
        with pytest.raises(PumpRefused, match="at least 2 weighings"):
            pump.calibrate(50_000, 1, 100)
        with pytest.raises(PumpRefused, match=r"spread 2.50 %, more than 2 %"):
            pump.calibrate(50_000, 4, 25_000)
        assert pump.hello().step_volume_pl == NOMINAL_PL  # nothing changed
        assert not [e for e in pump.events() if e.text.startswith("step volume ")]


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
    assert lines[2].startswith("mean        ") and "pL per step over 2 runs" in lines[2]
    assert lines[4].startswith("stored on the pump: ") and lines[4].endswith("(was 52083 pL), and logged")
    assert lines[5] == f"limits      bench water, {NO_DRUG_LIMITS}"  # bare volume rates: no drug named
    # By hand, measuring only (no tty: the masses are given), as JSON.
    code = cli.main(
        ["--port", rig.port, "--json", "calibrate", "--masses", "104.0,104.1", "--steps", "2000", "--dry-run"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["stored"] is False and [r["mass_mg"] for r in data["runs"]] == ["104", "104.1"]
    assert data["drug_limits"] is False
    assert data["step_volume_pl"] == round((104.05 / 0.9982) * 1e6 / 2000)
    # Spread too large: exit 1, one line, nothing stored.
    code = cli.main(["--port", rig.port, "calibrate", "--masses", "100,104", "--yes"])
    out = capsys.readouterr()
    assert code == cli.EXIT_REFUSED
    assert out.err.strip().splitlines()[-1].startswith("pumpctl: the weighings spread 3.9")
    assert out.out.splitlines()[-1] == f"limits      bench water, {NO_DRUG_LIMITS}"
    # Neither a balance nor masses: a usage error saying how.
    assert cli.main(["--port", rig.port, "calibrate"]) == cli.EXIT_USAGE
    assert "weigh with a balance (--balance PORT) or by hand" in capsys.readouterr().err


def test_a_new_step_volume_rescales_the_dose_guards_windows_rounding_up():
    guard = DoseGuard(NOMINAL_PL)
    guard._buckets[0] = 100
    guard._buckets[5] = 7
    guard._resum()
    guard._departed = [("morphine", 20_000_000, 107, 7, 0, 0)]
    guard.set_step_volume(TRUE_PL)  # smaller steps: more of them for the same drug
    assert guard._buckets[0] == -(-100 * NOMINAL_PL // TRUE_PL) == 105
    assert guard._buckets[5] == -(-7 * NOMINAL_PL // TRUE_PL) == 8
    assert sum(guard._buckets[i] for i in range(DAY_BUCKETS)) == guard.day_sum == 113
    # The hour's 7 and the rest of the day's 100 each round up (8 + 105): rounding the day's 107 as one (112)
    # would leave the rest at 104 steps, less than the 104.7 of the old steps it stands for.
    assert guard._departed == [("morphine", 20_000_000, 113, 8, 0, 0)]
    assert guard.step_pl == TRUE_PL
