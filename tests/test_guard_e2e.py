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


def test_the_guard_refuses_the_wrong_program_before_it_starts_from_its_own_limits(report):
    # 5 mg at 20 mg/mL is 250 uL: ceil(4800.02) = 4801 steps; morphine's 1 mg bolus hard limit is 961 steps.
    assert report["admission_with_bolus"] == (
        "bolus: the bolus of 4801 steps is above the bolus hard limit of 961 steps; the dose guard refuses it"
    )
    assert report["admission_basal_only"].startswith("program: with what was delivered in the last 24 h, this")
    assert "would pass the daily hard limit" in report["admission_basal_only"]


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


def test_a_delayed_bolus_is_checked_again_when_it_is_due_and_does_not_start_past_the_limit():
    out = run_unix(MP_DIR / "wrong_delayed_bolus.py", heap="8M")
    report = dict(line.split(" ", 1) for line in out.splitlines())
    assert report["waiting"] == "1 0"  # a single bolus waits, no alarm
    assert report["at_start"] == "0 1"  # at 30 h: no bolus, the dose-limit alarm
    # Minutes 1799 to 1860 hold the basal only: 14.5 mg/day at 20 mg/mL is 0.725 mL/day, in 52.083 nL steps.
    def basal_steps(minute):
        return 725_000 * 1_000 * minute // (1440 * 52_083)

    assert int(report["hour_steps"]) == basal_steps(1860) - basal_steps(1799)
    # Logged at the instant it was due: why it did not start (EV_THERAPY) and the alarm (EV_ALARM).
    when_us, text = report["logged_3"].split(" ", 1)
    assert int(when_us) == 30 * 3600 * 10**6
    assert text.startswith("delayed bolus not started: with what was delivered in the last 24 h, this would pass")
    when_us, text = report["logged_6"].split(" ", 1)
    assert int(when_us) == 30 * 3600 * 10**6
    assert text == "dose limit: a delayed bolus would pass a limit"
