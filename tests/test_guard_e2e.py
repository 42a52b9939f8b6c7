"""The dose guard against a deliberately wrong program, on the MicroPython
unix port with the sim board: the therapy runs a program checked against a
library with a 10x limit (a bug), the guard holds the pump's real limit."""

import pytest
from vms import MP_DIR, run_unix

pytestmark = pytest.mark.micropython

# Morphine 15 mg/day at 20 mg/mL in 52.083 nL steps: ceil(14400.1) steps.
DAILY_LIMIT_STEPS = 14_401


@pytest.fixture(scope="module")
def report():
    out = run_unix(MP_DIR / "wrong_program.py", heap="8M")
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_every_24h_window_stays_within_the_real_daily_limit(report):
    assert report["limit"].split()[0] == str(DAILY_LIMIT_STEPS)
    worst, _, motor_ok = report["worst_24h_steps"].split()
    assert int(worst) <= DAILY_LIMIT_STEPS
    assert int(worst) >= DAILY_LIMIT_STEPS - 1  # the wrong program did push against it
    assert motor_ok == "True"  # the motor moved exactly what the guard let through


def test_the_refusal_raises_the_dose_limit_alarm_and_cancels_the_bolus(report):
    assert report["alarm"] == "1 tripped 1 refused True"  # ALARM_DOSE_LIMIT, LIMIT_DAY
    bolus_kind, _, minute = report["bolus_after_alarm"].split()
    assert bolus_kind == "0"  # the 20 h bolus no longer runs
    assert 9 * 60 <= int(minute) <= 11 * 60  # 15 mg at 36 mg/day is reached at 10 h
    assert report["cancel_logged"] == "True"
