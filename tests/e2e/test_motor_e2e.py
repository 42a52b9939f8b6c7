"""A fault stops the motor at once, a normal suspend finishes the current step:
end to end, the real firmware on the MicroPython unix port, the host over a
pty. The motor model gives each step the board's motion time, so the pump can
be caught with a step in motion; the instants are computed exactly from the
rate and the step volume, and SIM_STATE shows what the motor did."""

import pytest

import boards.sim as board

pytestmark = pytest.mark.micropython

STEP_PL = 52_083
US_PER_MDAY = 86_400_000  # a rate of r nL/day is r pL per 86.4 s
MOTION_US = board.STEP_MOTION_US
# A priming bolus of saline at the pump's fastest rate: 0.5 mL in 3 min is
# exactly 240 mL/day (10 mL/h), a step every 18.75 ms.
PRIME = ["drug none", "fill 20 mL", "basal 1 mL/day", "prime 0.5 mL over 3 min"]
PRIME_RATE = 240_000_000
K = 10  # the step to catch in motion


def step_at(k, rate=PRIME_RATE):
    """Pump time after the commit when step k is issued: the first whole
    microsecond by which k steps' volume has been programmed (the pump never
    runs ahead of the prescription), ceil(k * step * 86.4e6 / rate)."""
    return -(-k * STEP_PL * US_PER_MDAY // rate)


def advance_to(pump, t_us):
    st = pump.sim_advance(t_us - pump.status().time_us)
    assert st.time_us == t_us
    return st


def motor(pump):
    s = pump.sim_state()
    return s.motor_steps, s.in_motion, s.dropped_steps, s.halts


def catch_step_in_motion(pump):
    """Commit the prime and stop time half way through step K's motion."""
    t0 = pump.commit(pump.stage(PRIME))
    th = pump.therapy()
    assert (th.bolus, th.rate_nl_per_day) == ("prime", PRIME_RATE)
    tk = t0 + step_at(K)  # 187_499 us: the step crosses at 187_498.8 us
    assert step_at(K - 1) + MOTION_US < step_at(K)  # the step before has finished by then
    advance_to(pump, tk - 1)
    assert motor(pump) == (K - 1, 0, 0, 0)  # step K not issued yet, nothing moving
    st = advance_to(pump, tk + MOTION_US // 2)
    assert st.steps == K
    assert motor(pump) == (K, 1, 0, 0)  # issued at tk, moving until tk + MOTION_US
    return t0, tk


def test_a_motor_fault_drops_the_step_in_motion_at_once_and_nothing_moves_after(pump):
    t0, tk = catch_step_in_motion(pump)
    pump.sim_fault()
    # At the same pump time: the step half way through is cut and not made.
    assert pump.status().time_us == tk + MOTION_US // 2
    assert motor(pump) == (K - 1, 0, 1, 1)
    assert pump.status().steps == K  # the firmware had issued it; the motor never finished it
    assert pump.therapy().alarm == "motor fault"
    # When it would have finished, and past when the next steps were due.
    advance_to(pump, tk + MOTION_US)
    assert motor(pump) == (K - 1, 0, 1, 1)
    advance_to(pump, t0 + step_at(K + 1) + MOTION_US)
    advance_to(pump, t0 + 10 * 60 * 1_000_000)
    assert motor(pump) == (K - 1, 0, 1, 1)
    assert pump.status().steps == K


def test_a_normal_stop_lets_the_step_in_motion_finish_and_nothing_moves_after(pump):
    t0, tk = catch_step_in_motion(pump)
    assert pump.stop() == tk + MOTION_US // 2
    assert motor(pump) == (K, 1, 0, 0)  # still moving: a stop does not cut it
    advance_to(pump, tk + MOTION_US - 1)
    assert motor(pump) == (K, 1, 0, 0)
    advance_to(pump, tk + MOTION_US)  # finished, and counted
    assert motor(pump) == (K, 0, 0, 0)
    assert pump.sim_state().finished_steps == K
    advance_to(pump, t0 + step_at(K + 1) + MOTION_US)
    advance_to(pump, t0 + 10 * 60 * 1_000_000)
    assert motor(pump) == (K, 0, 0, 0)
    st = pump.status()
    assert (st.steps, st.mode) == (K, "stopped")
    assert pump.therapy().alarm == "none"
