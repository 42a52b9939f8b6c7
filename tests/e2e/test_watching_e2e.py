"""Watching over the pump, end to end: the real firmware on the MicroPython unix port behind a pty,
on the simulated board, whose physical models (hal/sim) cause each fault at a chosen pump time
(SIM_FAULT). For each: the alarm and its priority, the motor stopped (no steps after the fault), the
log entry, and the recovery by its rule."""

from __future__ import annotations

import pytest
from pumpctl.errors import LinkError, PumpRefused
from pumpctl.sim import Simulator

MIN = 60 * 1_000_000
HOUR = 60 * MIN
DAY = 24 * HOUR
STEP_PL = 52_083
MORPHINE_2ML = ["drug none", "fill 20 mL", "basal 2 mL/day"]  # 2 mL/day: a step every 2.25 s


def commit(pump, lines, confirm_soft=False):
    return pump.commit(pump.stage(lines), confirm_soft=confirm_soft)


def alarms(pump):
    return {a.name: a for a in pump.alarms()}


def texts(pump, since=0):
    return [e.text for e in pump.events(since)]


@pytest.fixture
def launch():
    """Start simulators with board options; stop them after the test (each must still be alive)."""
    started = []

    def start(*board_args, **kwargs):
        sim = Simulator(register=True, board_args=list(board_args), **kwargs).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        alive = sim.running()
        sim.stop()
        assert alive, "the firmware died:\n" + sim.stderr_text()


@pytest.mark.parametrize(
    "kind,name,found_within_steps,probes",
    [
        ("stall", "motor stall", 1, False),  # its line is active: no probe while it stays so
        # two steps not seen beyond the one pulse the encoder tolerates, not counting the latest delivery's
        # step (it may still be moving)
        ("encoder", "step not confirmed", 5, True),
    ],
)
def test_a_stall_holds_delivery_at_once_and_it_resumes_only_when_a_probe_turns_the_motor(
    launch, kind, name, found_within_steps, probes
):
    how = "until a probe step turns the motor"
    sim = launch()
    with sim.pump() as pump:
        commit(pump, MORPHINE_2ML)
        pump.sim_advance(10 * MIN)
        at = pump.sim_fault(kind, at_s=15 * 60)  # at 15 min, between steps
        pump.sim_advance(10 * MIN)
        th = pump.therapy()
        assert th.held and th.mode == "continuous"  # the program stands; delivery is held
        alarm = alarms(pump)[name]
        assert (alarm.priority, alarm.active) == ("high", True)
        assert at <= alarm.raised_us <= at + found_within_steps * 2_250_000  # a step every 2.25 s
        turned = pump.sim_state()
        steps = pump.status().steps
        pump.sim_advance(10 * MIN)
        # Nothing moves while held but one 2-step probe a minute, which does not turn the head either.
        probed = pump.status().steps - steps
        assert 0 < probed <= 2 * 11 if probes else probed == 0
        assert pump.sim_state().true_reservoir_nl == turned.true_reservoir_nl
        assert any(t == f"{name}: motor halted, delivery held {how}" for t in texts(pump))
        pump.sim_fault(kind, value=0)  # the field goes away (the MRI scan ends)
        pump.sim_advance(3 * MIN)
        th = pump.therapy()
        assert not th.held
        [recovery] = [t for t in texts(pump) if t.startswith(name + " over after")]
        assert "delivery resumes" in recovery and recovery.endswith(" not made up")
        alarm = alarms(pump)[name]
        assert (alarm.active, alarm.acknowledged) == (False, False)  # latched until acknowledged
        before = pump.status().steps
        pump.sim_advance(HOUR)
        moved = pump.status().steps - before
        assert abs(moved - 2_000_000 * 1000 // 24 // STEP_PL) <= 2  # the programmed rate again, no catch-up
        assert pump.ack_alarm(name) == 1 and name not in alarms(pump)


def test_an_occlusion_stops_the_motor_within_eight_steps_and_releases_no_bolus_when_it_clears(launch):
    sim = launch()
    with sim.pump() as pump:
        commit(pump, MORPHINE_2ML)
        pump.sim_advance(10 * MIN)
        before = pump.status().steps
        pump.sim_fault("occlusion")
        pump.sim_advance(5 * MIN)
        alarm = alarms(pump)["occlusion"]
        assert (alarm.priority, alarm.active) == ("high", True)
        held_at = pump.status().steps
        assert held_at - before <= 9  # the pressure trips the input after 8 steps against the block
        pump.sim_advance(30 * MIN)
        assert pump.status().steps == held_at  # no step after the alarm, no probe into a block
        assert pump.therapy().held
        pump.sim_fault("occlusion", value=0)
        pump.sim_advance(1 * MIN)
        assert not pump.therapy().held
        assert any(t.startswith("occlusion over after") for t in texts(pump))
        before = pump.status().steps
        pump.sim_advance(10 * MIN)
        assert pump.status().steps - before <= 2_000_000 * 1000 // 144 // STEP_PL + 1  # the rate, nothing made up


def test_a_motor_driver_that_fails_stops_the_therapy_for_good(launch):
    sim = launch()
    with sim.pump() as pump:
        commit(pump, MORPHINE_2ML)
        pump.sim_advance(10 * MIN)
        pump.sim_fault("motor", at_s=20 * 60)
        pump.sim_advance(20 * MIN)
        steps = pump.status().steps
        th = pump.therapy()
        assert (th.mode, th.alarm) == ("stopped", "motor fault")
        pump.sim_advance(HOUR)
        assert pump.status().steps == steps
        assert any(t.startswith("motor fault: stopped at once (motor driver not responding)") for t in texts(pump))


def test_a_clock_jump_is_not_counted_as_pump_time_so_no_catch_up_burst_is_delivered(launch):
    sim = launch()
    with sim.pump() as pump:
        commit(pump, MORPHINE_2ML)
        pump.sim_advance(10 * MIN)
        t0, s0 = pump.status().time_us, pump.status().steps
        pump.sim_fault("clock-jump", value=450)  # 450 s: 200 steps' worth at this rate
        pump.sim_advance(10 * MIN)
        st = pump.status()
        assert st.time_us - t0 == 10 * MIN  # the jump is not pump time
        assert abs((st.steps - s0) - 2_000_000 * 1000 // 144 // STEP_PL) <= 1  # 10 min of steps, not 17.5
        alarm = alarms(pump)["clock jump"]
        assert (alarm.priority, alarm.active) == ("medium", False)
        assert any(t.startswith("clock jump of 450") for t in texts(pump))
        assert pump.therapy().mode == "continuous"  # dosing goes on
        assert pump.ack_alarm("clock jump") == 1 and not pump.alarms()


@pytest.mark.parametrize("stall_s", [1, 5, 60])
def test_the_catch_up_after_a_loop_stall_is_still_moving_not_unconfirmed(launch, stall_s):
    """A dosing loop held up for less than the clock-jump limit (a slow flash write, a long garbage
    collection) is pump time: the steps that fell due go to the motor as one batch, and at the
    fastest rate its motion (2 ms a step) outlasts the gap to the next step. Those steps are still
    moving, not missing: no alarm, no halt, every step made, the total exact."""
    sim = launch()
    with sim.pump() as pump:
        commit(pump, ["drug none", "fill 20 mL", "basal 10 mL/h"])  # a step every 18.75 ms
        t0 = pump.status().time_us
        pump.sim_advance(MIN)
        pump.sim_fault("clock-jump", value=stall_s)  # below the sim board's 400 s limit
        pump.sim_advance(MIN)
        st, motor = pump.status(), pump.sim_state()
        assert [a.name for a in pump.alarms()] == []
        assert (motor.halts, motor.dropped_steps) == (0, 0)
        elapsed_us = st.time_us - t0
        assert elapsed_us == 2 * MIN + stall_s * 1_000_000  # the stall counted as pump time
        rate_nl_per_day = 240_000_000
        assert motor.motor_steps == st.steps == rate_nl_per_day * elapsed_us // (86_400_000 * STEP_PL)


def dosing_at_eri(pump):
    """Dosing 2 mL/day with the battery dropped to 8 %: the ERI alarm (medium) latched."""
    commit(pump, MORPHINE_2ML)
    pump.sim_fault("battery", value=80)
    pump.sim_advance(2 * MIN)
    return pump.therapy()


def test_the_battery_raises_eri_then_critical_then_stops_dosing_at_end_of_service(launch):
    sim = launch()
    with sim.pump() as pump:
        th = dosing_at_eri(pump)
        assert 78 <= th.battery_permille <= 80  # the mean of 4 readings of a cell still draining
        assert (alarms(pump)["battery ERI"].priority, th.mode) == ("medium", "continuous")
        pump.sim_fault("battery", value=25)
        pump.sim_advance(2 * MIN)
        assert alarms(pump)["critical low battery"].priority == "high"
        pump.sim_fault("battery", value=5)
        pump.sim_advance(2 * MIN)
        steps = pump.status().steps
        th = pump.therapy()
        assert th.mode == "stopped" and alarms(pump)["battery end of service"].active
        assert any(t.startswith("end of service at ") and t.endswith(" permille: dosing stopped") for t in texts(pump))
        pump.sim_advance(HOUR)
        assert pump.status().steps == steps
        with pytest.raises(PumpRefused, match="end of service"):
            pump.set_rate("0.5 mL/day")


def test_a_monitoring_task_that_fails_starves_the_watchdog_which_resets_the_board(launch, tmp_path):
    storage = tmp_path / "pump"
    sim = Simulator(register=True, storage=storage).start()  # not launch(): this one is meant to die
    try:
        with sim.pump() as pump:
            commit(pump, MORPHINE_2ML)
            pump.sim_advance(10 * MIN)
            pump.sim_fault("task")  # the next battery read raises: the monitoring task ends
            pump.sim_advance(4 * MIN)  # its deadline is 3 min: the dosing task sees it late
            th = pump.therapy()
            assert th.mode == "stopped" and alarms(pump)["watchdog"].priority == "high"
            steps = pump.status().steps
            assert any(t.startswith("monitoring task silent for 180 s: dosing stopped") for t in texts(pump))
            with pytest.raises(LinkError):
                pump.sim_advance(15 * MIN)  # unfed, the watchdog bites within 10 min: the board resets
        sim.proc.wait(30)
        assert sim.proc.returncode == -9  # gone at once, as a reset
    finally:
        sim.stop()
    restarted = launch(storage=storage, keys=sim.keys, provision=False)
    with restarted.pump() as pump:
        assert pump.status().steps == steps  # restored from the last save: nothing moved after the fault
        log = texts(pump)
        resumed = [i for i, t in enumerate(log) if t.startswith("firmware 0.4.0 resumed at its last save")]
        assert log[resumed[-1] - 1] == "the board started after a watchdog reset"
        assert {"watchdog", "restart"} <= set(alarms(pump))
        assert pump.therapy().mode == "stopped"


def test_a_stuck_reservoir_sensor_and_a_leak_are_seen_as_a_disagreement_with_the_count(launch):
    sim = launch("--reservoir-nl", "20000000")
    with sim.pump() as pump:
        commit(pump, MORPHINE_2ML)
        pump.sim_advance(HOUR)
        assert "reservoir sensor disagrees" not in alarms(pump)
        th = pump.therapy()
        assert abs(th.sensor_nl - th.reservoir_nl) <= 20_000  # noise of +-10 uL around the truth
        pump.sim_fault("sensor-stuck")
        pump.sim_advance(13 * HOUR)  # 1.08 mL more delivered: the frozen reading is left behind
        alarm = alarms(pump)["reservoir sensor disagrees"]
        assert (alarm.priority, alarm.active) == ("medium", True)
        assert pump.therapy().mode == "continuous"  # the count still rules dosing
        pump.sim_fault("sensor-stuck", value=0)
        pump.sim_advance(2 * MIN)
        assert not alarms(pump)["reservoir sensor disagrees"].active
        assert any(
            t.startswith("reservoir sensor disagrees: the sensor and the count agree again") for t in texts(pump)
        )
        pump.ack_alarm()
        pump.sim_fault("leak", value=1_500_000)  # 1.5 mL lost, none through the pump
        pump.sim_advance(2 * MIN)
        assert alarms(pump)["reservoir sensor disagrees"].active


def test_a_whole_refill_interval_reaches_the_low_alarm_on_the_predicted_day_then_empty_then_refill(launch):
    """20 mL at 0.5 mL/day: low (2 mL) after 36 days, empty (1 mL) two days later; then a refill."""
    sim = launch("--reservoir-nl", "20000000")
    with sim.pump() as pump:
        commit(pump, ["drug morphine 10 mg/mL", "fill 20 mL", "basal 5 mg/day"])
        th = pump.therapy()
        predicted_us = th.low_in_s * 1_000_000
        assert abs(predicted_us - 36 * DAY) <= 6 * 1_000_000  # 18 mL / 0.5 mL/day, to the step
        assert any(t == "reservoir 20 mL; low level in 36 days" for t in texts(pump))
        pump.sim_advance(predicted_us - HOUR)
        assert "low reservoir" not in alarms(pump)
        pump.sim_advance(2 * HOUR)
        low = alarms(pump)["low reservoir"]
        assert low.priority == "medium" and abs(low.raised_us - predicted_us) <= 10 * 1_000_000
        th = pump.therapy()
        assert th.mode == "continuous" and abs(th.sensor_nl - th.reservoir_nl) <= 1_000_000
        assert th.battery_days is not None and 2000 <= th.battery_days <= 3000  # the sim's cell: about 7 years
        pump.sim_advance(2 * DAY + HOUR)
        th = pump.therapy()
        assert th.mode == "stopped" and 1_000_000 - STEP_PL // 1000 < th.reservoir_nl <= 1_000_000  # at empty
        assert alarms(pump)["empty reservoir"].priority == "high"
        steps = pump.status().steps
        pump.sim_advance(DAY)
        assert pump.status().steps == steps
        # The refill: draw out what is left (the clinician measures it), fill, tell the pump both.
        left_nl = pump.sim_state().true_reservoir_nl
        pump.sim_fault("fill", value=20_000_000)
        removed_ml = f"{left_nl / 1e6:.2f} mL"
        staged = pump.stage(["drug morphine 10 mg/mL", "fill 20 mL", f"removed {removed_ml}", "basal 5 mg/day"])
        assert not staged.warnings  # what came out is what the pump counted
        pump.commit(staged)
        a = alarms(pump)
        assert not a["low reservoir"].active and not a["empty reservoir"].active
        [refill] = [t for t in texts(pump) if t.startswith("refill: removed ")]
        assert "filled 20 mL" in refill and "DISCREPANCY" not in refill
        pump.ack_alarm()
        assert not pump.alarms()
        assert pump.therapy().mode == "continuous"


def test_a_refill_whose_removed_volume_is_far_from_the_count_must_be_confirmed_and_is_logged(launch):
    sim = launch()
    with sim.pump() as pump:
        commit(pump, ["drug morphine 10 mg/mL", "fill 20 mL", "basal 5 mg/day"])
        pump.sim_advance(10 * DAY)  # 15 mL left by the count
        lines = ["drug morphine 10 mg/mL", "fill 20 mL", "removed 12 mL", "basal 5 mg/day"]
        staged = pump.stage(lines)
        [warning] = staged.warnings
        assert warning.startswith("refill discrepancy 3.0000")  # 15.000032 mL counted
        assert "(over 1 mL): check for a pocket fill; removed 12 mL, counted 15.0000" in warning
        with pytest.raises(PumpRefused, match="confirm_soft"):
            pump.commit(staged)
        pump.commit(staged, confirm_soft=True)
        assert any(t.startswith("refill: removed 12 mL") and "DISCREPANCY 3.0000" in t for t in texts(pump))
        with pytest.raises(PumpRefused, match="more than this pump's 20 mL reservoir holds"):
            pump.stage(["drug morphine 10 mg/mL", "fill 25 mL", "basal 5 mg/day"])


def test_tones_sound_at_the_highest_priority_and_silence_lasts_two_minutes_at_most(launch):
    sim = launch()
    with sim.pump() as pump:
        th = dosing_at_eri(pump)
        assert th.sounding == "medium"
        assert pump.silence() == 120
        th = pump.therapy()
        assert (th.sounding, th.silenced_s) == ("none", 120)
        pump.sim_advance(119 * 1_000_000)
        assert pump.therapy().sounding == "none"
        pump.sim_advance(2 * 1_000_000)
        assert pump.therapy().sounding == "medium"  # silence ends by itself
        pump.silence()
        pump.sim_fault("occlusion")  # a new alarm ends the silence at once
        pump.sim_advance(1 * MIN)
        assert pump.therapy().sounding == "high"
        state = pump.sim_state()
        assert state.buzzer_plays >= 1 and state.buzzer_priority in (2, 3)
        assert any(t == "tones silenced for 120 s" for t in texts(pump))


def test_the_self_test_blocks_dosing_when_the_battery_is_gone_or_the_motor_does_not_answer(launch):
    for args, problem in (
        (("--battery-permille", "5"), "battery at 5 permille, at or below end of service"),
        (("--motor-dead", "1"), "motor: motor driver not responding"),
        (("--clock-dead", "1"), "the clock does not run"),
    ):
        sim = launch(*args)
        with sim.pump() as pump:
            alarm = alarms(pump)["self-test failed"]
            assert (alarm.priority, alarm.active, alarm.text) == ("high", True, "self-test failed: " + problem)
            with pytest.raises(PumpRefused, match="self-test failed"):
                pump.set_rate("0.5 mL/day")
            assert "FAILED: " + problem in texts(pump)
