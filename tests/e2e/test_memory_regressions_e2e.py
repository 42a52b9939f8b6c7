"""Issue 19's two out-of-memory sequences, replayed with pumpctl's CLI against `pumpctl sim`.

On a fresh simulator (the unix port in its own 448 KB heap) each of these once left the
pump refusing every program that names a drug with "MemoryError: memory allocation
failed", while a bare rate still worked. Each step must now be answered as it would be on
a fresh pump: the refusals refused for their reason, the programs accepted and in force,
and the therapy the motor then delivers the one committed.
"""

import json

import pytest
from pumpctl import PumpRefused, cli
from pumpctl.library_file import FILE_FIELDS

from firmware import codec
from firmware.druglib import DEFAULT_LIBRARY

pytestmark = pytest.mark.micropython

OVER_HARD = [
    "drug morphine 20 mg/mL",
    "fill 20 mL",
    "basal 3 mg/day",
    "patient-bolus 0.5 mg over 10 min lockout 1 h max 4 per day",  # 0.5 mg is over the 0.2 mg hard limit
]
WITHIN = [*OVER_HARD[:3], "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day"]


def run(sim, capsys, *argv):
    code = cli.main(["--port", sim.port, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def no_memory_error(out, err):
    assert "MemoryError" not in out + err and "memory allocation" not in out + err, out + err


def assert_runs(sim, capsys, basal_nl_per_day):
    """The committed program is in force and the motor doses it: an hour of pump time moves
    the motor by exactly the steps the pump reports (and some steps at all)."""
    code, out, _ = run(sim, capsys, "--json", "therapy")
    assert code == 0
    data = json.loads(out)
    assert (data["mode"], data["basal_nl_per_day"]) == ("continuous", basal_nl_per_day)
    with sim.pump() as pump:
        steps_before = pump.status().steps
        status = pump.sim_advance(3600 * 1_000_000)
        motor_steps = pump.sim_state().motor_steps
    assert status.steps > steps_before  # it doses
    assert motor_steps == status.steps  # and the motor moved every step the pump counts


def test_three_programs_refused_over_a_hard_limit_then_one_within_is_accepted(sim, capsys):
    for _ in range(3):
        code, out, err = run(sim, capsys, "program", *OVER_HARD, "--yes")
        no_memory_error(out, err)
        assert code == 1 and "patient-bolus rate of morphine 3.125 mg/h is above the hard limit" in err, err
    code, out, err = run(sim, capsys, "program", *WITHIN, "--yes", "--confirm-soft")
    no_memory_error(out, err)
    assert code == 0, err
    assert "read back and identical" in out
    assert_runs(sim, capsys, 150_000)  # 3 mg/day of 20 mg/mL = 0.15 mL/day


def _library_file(tmp_path, version):
    doc = {"version": version, "drugs": [dict(zip(FILE_FIELDS, drug, strict=True)) for drug in DEFAULT_LIBRARY]}
    path = tmp_path / f"{version}.json"
    path.write_text(json.dumps(doc))
    return path


def test_seventy_refused_rates_and_two_library_loads_leave_a_morphine_program_accepted(sim, capsys, tmp_path):
    # A dose per time is no volume rate: pumpctl refuses it before sending (since protocol 7); the pump
    # then refuses seventy rates past its range itself.
    code, out, err = run(sim, capsys, "program", "--rate", "5 mg/h", "--yes")
    assert code == 2 and "rate: unknown unit 'mg/h'" in err and "nothing was sent to the pump" in err, out + err
    with sim.pump() as pump:
        for i in range(70):
            with pytest.raises(PumpRefused, match="outside the pump's range") as refused:
                pump._request(codec.SET_RATE, (240_000_001 + i,))
            no_memory_error("", str(refused.value))
    for version in ("site-a", "site-b"):  # the whole default library, each time as a new version
        code, out, err = run(sim, capsys, "library", "load", str(_library_file(tmp_path, version)), "--yes")
        no_memory_error(out, err)
        assert code == 0 and f"library {version} committed" in out, out + err
    code, out, err = run(sim, capsys, "program", "drug morphine 20 mg/mL", "fill 20 mL", "basal 3 mg/day", "--yes")
    no_memory_error(out, err)
    assert code == 0, err
    assert_runs(sim, capsys, 150_000)
