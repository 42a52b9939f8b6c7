"""Simulator figure for `make bench`: how much faster than real time the simulated pump runs.

    .venv/bin/python bench/sim_bench.py [--quick]

sim_speedup  simulated seconds per wall second for a 7-day flex program with boluses (a clinician
             bolus and two patient boluses a day), on the real firmware under the MicroPython unix
             port, driven by pumpctl over the pty. Only the pump time running counts, not programming.
"""

from __future__ import annotations

import json
import sys
import time

from pumpctl.sim import Simulator

DAY_S = 86_400
MIDNIGHT_S = 1_790_000_000 // DAY_S * DAY_S  # a local midnight in 2026, for the device clock
PROGRAM = [
    "drug morphine 20 mg/mL",
    "fill 20 mL",
    "flex 00:00 2 mg/day",
    "flex 07:00 4 mg/day",
    "flex 22:00 1 mg/day",
    "bolus 0.5 mg over 30 min after 2 h",
    "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day",
]


def sim_speedup(quick: bool = False) -> dict[str, dict]:
    days = 1 if quick else 7
    with Simulator() as sim, sim.pump() as pump:
        pump.set_clock(MIDNIGHT_S + 6 * 3600)
        pump.program(PROGRAM, confirm_soft=True)  # the basal plus patient-bolus rate passes a soft limit
        run_s = 0.0
        patient_boluses = 0
        for _ in range(days):
            for hours in (4, 8, 12):  # a patient bolus after the first two stretches of each day
                t0 = time.perf_counter()
                pump.sim_advance(hours * 3600 * 10**6)
                run_s += time.perf_counter() - t0
                if hours != 12:
                    pump.patient_bolus()
                    patient_boluses += 1
        status = pump.status()
        therapy = pump.therapy()
        alarm = therapy.alarm
    simulated_s = days * DAY_S
    speedup = simulated_s / run_s
    return {
        "sim_speedup": {
            "value": round(speedup),
            "unit": "simulated s per wall s",
            "baseline": "real time (1 simulated second per wall second)",
            "goal": ">= 20000",
            "met": speedup >= 20_000 and alarm == "none",
            "detail": {
                "days": days,
                "wall_s": round(run_s, 3),
                "steps": status.steps,
                "delivered_ul": status.delivered_pl / 1e6,
                "patient_boluses": patient_boluses,
                "alarm_at_end": alarm,
                "program": PROGRAM,
            },
        }
    }


def measure(quick: bool = False) -> dict[str, dict]:
    return sim_speedup(quick)


if __name__ == "__main__":
    print(json.dumps(measure(quick="--quick" in sys.argv), indent=2))
