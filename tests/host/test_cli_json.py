"""--json from the subcommands that change the pump, end to end against the simulator: what a script
reads back is what the pump did. (status, therapy, alarms, log, ports, calibrate, telemetry, bench
and flash have their own tests.)"""

from __future__ import annotations

import json

import pytest
from pumpctl import cli

MORPHINE = [
    "drug morphine 10 mg/mL",
    "fill 20 mL",
    "basal 2 mg/day",
    "patient-bolus 0.1 mg over 10 min lockout 1 h max 4 per day",
]


def run_json(sim, capsys, *argv):
    code = cli.main(["--port", sim.port, "--json", *argv])
    out = capsys.readouterr()
    data = json.loads(out.out)
    latched = argv == ("alarms",) and data["alarms"]  # `alarms` exits 1 while any is latched
    assert code == (cli.EXIT_REFUSED if latched else cli.EXIT_OK), out.err
    return data


@pytest.mark.micropython
def test_each_command_that_changes_the_pump_answers_json_a_script_can_trust(sim, capsys):
    got = run_json(sim, capsys, "program", *MORPHINE, "--yes")
    assert got["committed_us"] == 0 and got["warnings"] == []
    assert got["lines"][-1] == "patient-bolus 100 mcg over 10 min lockout 1 h max 4 per day"  # as the pump wrote it
    got = run_json(sim, capsys, "advance", "1h")
    assert (got["time_us"], got["mode"], got["rate_nl_per_day"], got["steps"]) == (
        3600 * 10**6,
        "continuous",
        200_000,
        160,
    )
    assert got["delivered_pl"] == 160 * 52_083
    got = run_json(sim, capsys, "patient-bolus")
    assert got == {"volume_nl": 10_000, "duration_s": 600}
    got = run_json(sim, capsys, "advance", "2h")
    got = run_json(sim, capsys, "bolus", "0.1 mg", "--over", "10 min", "--yes")
    assert "bolus 100 mcg over 10 min" in got["lines"] and got["committed_us"] == 3 * 3600 * 10**6
    got = run_json(sim, capsys, "clock", "--set", "2026-12-01T08:00")
    assert got == {"clock_s": 1_796_112_000, "was_clock_s": None}
    assert run_json(sim, capsys, "clock") == {"clock_s": 1_796_112_000}
    got = run_json(sim, capsys, "library")
    assert got["version"].startswith("default-") and got["drugs"][0]["name"] == "morphine"
    got = run_json(sim, capsys, "refill", "--removed", "19.8 mL", "--fill", "20 mL", "--yes")
    assert "removed 19.8 mL" in got["lines"] and got["warnings"] == []
    got = run_json(sim, capsys, "fault", "battery", "--value", "80")
    assert (got["kind"], got["code"], got["value"]) == ("battery", 6, 80) and got["at_us"] == got["now_us"]
    got = run_json(sim, capsys, "stop")
    assert got == {"stopped_us": 3 * 3600 * 10**6}
    got = run_json(sim, capsys, "alarms")
    assert [a["name"] for a in got["alarms"]] == []  # the battery is read at the next minute: nothing yet
    run_json(sim, capsys, "advance", "2min")
    got = run_json(sim, capsys, "alarms")
    assert [(a["name"], a["priority"]) for a in got["alarms"]] == [("battery ERI", "medium")]
