"""The programming session from the command line, against the simulator."""

import json

import pytest
from pumpctl import cli
from pumpctl.client import NO_DRUG_LIMITS

from firmware import framing
from firmware.druglib import DEFAULT_NAMES, DEFAULT_NUMBERS

pytestmark = pytest.mark.micropython

PROGRAM = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"]


def run(sim, capsys, *argv):
    code = cli.main(["--port", sim.port, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_session_shows_old_and_new_side_by_side_and_commits_with_yes(sim, capsys):
    code, out, _ = run(sim, capsys, "program", *PROGRAM, "--yes")
    assert code == 0
    assert "* stop  [no program]  drug morphine 20 mg/mL" in out
    assert "basal 2 mg/day  [0.1 mL/day = morphine 2 mg/day]" in out
    assert "read back and identical" in out
    code, out, _ = run(sim, capsys, "--json", "therapy")
    data = json.loads(out)
    assert (data["mode"], data["basal_nl_per_day"], data["reservoir_nl"]) == ("continuous", 100_000, 20_000_000)


def test_a_program_naming_no_drug_says_no_drug_limit_applies_and_one_naming_a_drug_does_not(sim, capsys):
    code, out, _ = run(sim, capsys, "program", "basal 1 mL/h", "--yes")  # a bare volume, as program lines
    assert code == 0 and NO_DRUG_LIMITS in out.splitlines()
    code, out, _ = run(sim, capsys, "--json", "program", "drug none", "fill 20 mL", "basal 1 mL/h", "--yes")
    assert code == 0 and json.loads(out)["drug_limits"] is False
    code, out, _ = run(sim, capsys, "program", *PROGRAM, "--yes")
    assert code == 0 and NO_DRUG_LIMITS not in out
    # The blend stays in the reservoir: a new basal without drug lines is still limited by the library.
    code, out, _ = run(sim, capsys, "--json", "program", "basal 3 mg/day", "--yes")
    assert code == 0 and json.loads(out)["drug_limits"] is True
    assert json.loads(out)["lines"][0] == "drug morphine 20 mg/mL"


def test_without_yes_and_without_a_terminal_nothing_is_committed(sim, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, out, err = run(sim, capsys, "program", *PROGRAM)
    assert code == 2 and "run again with --yes" in err
    assert "drug morphine 20 mg/mL" in out  # the review was shown
    code, out, _ = run(sim, capsys, "--json", "therapy")
    assert json.loads(out)["mode"] == "stopped"


def test_a_soft_limit_needs_confirm_soft_and_a_hard_limit_is_refused_with_its_reason(sim, capsys):
    code, _, err = run(sim, capsys, "program", "drug morphine 20 mg/mL", "fill 20 mL", "basal 12 mg/day", "--yes")
    assert code == 2 and "--confirm-soft" in err
    code, _, err = run(sim, capsys, "program", "drug morphine 20 mg/mL", "fill 20 mL", "basal 1 mg/h", "--yes")
    assert code == 1
    assert "daily dose of morphine 24 mg/day is above the hard limit of 15 mg/day" in err
    code, _, _ = run(
        sim, capsys, "program", "drug morphine 20 mg/mL", "fill 20 mL", "basal 12 mg/day", "--yes", "--confirm-soft"
    )
    assert code == 0


def test_a_bolus_is_added_to_the_running_program_without_repeating_the_fill(sim, capsys):
    run(sim, capsys, "program", *PROGRAM, "--yes")
    code, out, _ = run(sim, capsys, "bolus", "0.2 mg", "--over", "1 h", "--yes")
    assert code == 0
    assert "* fill 20 mL" in out  # the fill was a one-off: not staged again
    code, out, _ = run(sim, capsys, "--json", "therapy")
    data = json.loads(out)
    assert (data["bolus"], data["bolus_rate_nl_per_day"]) == ("bolus", 240_000)


def test_the_log_records_each_program_with_the_library_version(sim, capsys):
    run(sim, capsys, "program", *PROGRAM, "--yes")
    code, out, _ = run(sim, capsys, "--json", "log")
    texts = [e["text"] for e in json.loads(out)["events"]]
    h = "%08x" % framing.library_hash(list(zip(DEFAULT_NAMES, DEFAULT_NUMBERS, strict=True)))
    # The commit's lines go on in entries of their own once one is full: every line is there, whole.
    first = next(i for i, t in enumerate(texts) if f"library default-2026.11 hash {h}: drug morphine 20 mg/mL" in t)
    crc = texts[first].split()[1]
    lines = "; ".join(t.split(": ", 1)[1] for t in texts[first:] if t.startswith(f"crc {crc} ")).split("; ")
    assert lines == ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"]


def test_a_site_library_replaces_the_default_and_its_limits_apply(sim, capsys, tmp_path):
    site = {
        "version": "site-7",
        "drugs": [
            {
                "name": "morphine",
                "max_concentration": "20 mg/mL",
                "daily_soft": "3 mg/day",
                "daily_hard": "5 mg/day",
                "rate_soft": "0.5 mg/h",
                "rate_hard": "1 mg/h",
                "bolus_soft": "0.5 mg",
                "bolus_hard": "1 mg",
                "patient_dose_hard": "0 mg",
                "patient_lockout_min": "0 min",
                "patient_max_per_day": "0",
                "source": "test site",
            }
        ],
    }
    path = tmp_path / "site.json"
    path.write_text(json.dumps(site))
    code, out, _ = run(sim, capsys, "library", "load", str(path), "--yes")
    assert code == 0 and "library site-7 committed" in out
    code, _, err = run(sim, capsys, "program", "drug morphine 20 mg/mL", "fill 20 mL", "basal 6 mg/day", "--yes")
    assert code == 1 and "hard limit of 5 mg/day (library site-7)" in err
    code, _, err = run(sim, capsys, "program", "drug baclofen 2000 mcg/mL", "fill 20 mL", "basal 100 mcg/day", "--yes")
    assert code == 1 and "not in library site-7" in err


@pytest.fixture
def sensed_sim():
    """A simulated pump with its reservoir sensor fitted, the reservoir holding 20 mL at boot."""
    from pumpctl.sim import Simulator

    simulator = Simulator(register=True, board_args=["--reservoir-nl", "20000000"]).start()
    yield simulator
    alive = simulator.running()
    simulator.stop()
    assert alive, "the firmware died during the test:\n" + simulator.stderr_text()


def test_therapy_shows_the_reservoir_counted_and_sensed_the_low_forecast_the_battery_and_alarms(sensed_sim, capsys):
    sim = sensed_sim
    assert run(sim, capsys, "program", *PROGRAM, "--yes")[0] == 0
    assert run(sim, capsys, "advance", "2min")[0] == 0  # the monitors have looked
    code, out, _ = run(sim, capsys, "--json", "therapy")
    th = json.loads(out)
    assert th["sensor_nl"] is not None and abs(th["sensor_nl"] - th["reservoir_nl"]) < 1_000_000
    # 18 mL to the low level at 0.1 mL/day: 180 days less the 2 min run, within a step (45 s at this rate:
    # the count moves a whole step at a time)
    assert abs(th["low_in_s"] - (180 * 86_400 - 120)) <= 45
    assert (th["low_nl"], th["empty_nl"]) == (2_000_000, 1_000_000)
    assert th["low_at_us"] == 120 * 10**6 + th["low_in_s"] * 10**6
    assert 0 < th["battery_permille"] <= 1000
    code, out, _ = run(sim, capsys, "therapy")
    lines = out.splitlines()
    reservoir = lines.index(next(line for line in lines if line.startswith("reservoir ")))
    assert "mL counted, sensor " in lines[reservoir]
    low = lines[reservoir + 1].strip()
    assert low.startswith("low level 2 mL in 179.9 days (pump time 180 d 00 h 00 min")  # rounded down
    assert lines[reservoir + 2].strip().startswith("delivery stops at 1 mL (empty volume)")
    assert any(line.startswith("battery     ") and "permille (" in line for line in lines)
    assert "alarms      none" in lines


def test_the_dose_guard_row_says_it_counts_the_fluid_now_in_the_pump(sim, capsys):
    # An hour of a plain volume, then a drug: the guard's windows hold the doses of the new fluid's drugs,
    # none yet; the row says so instead of reading as the volume the pump delivered.
    assert run(sim, capsys, "program", "basal 1 mL/h", "--yes")[0] == 0
    assert run(sim, capsys, "advance", "1h")[0] == 0
    th = json.loads(run(sim, capsys, "--json", "therapy")[1])
    assert 990_000 <= th["day_nl"] <= 1_000_000  # an hour at 1 mL/h, in whole steps
    lines = run(sim, capsys, "therapy")[1].splitlines()
    guard = lines.index(next(line for line in lines if line.startswith("dose guard  last 24 h ")))
    assert lines[guard].endswith(" uL, refused 0 steps") and ", last hour " in lines[guard], lines[guard]
    assert lines[guard + 1] == "            in this fluid; earlier fluids count only for the drugs it holds"
    assert run(sim, capsys, "program", *PROGRAM, "--yes")[0] == 0
    th = json.loads(run(sim, capsys, "--json", "therapy")[1])
    assert (th["day_nl"], th["hour_nl"]) == (0, 0)
    assert all(len(line) <= 80 for line in lines[guard : guard + 2])


def test_therapy_lists_the_latched_alarms_with_their_priority(sim, capsys):
    assert run(sim, capsys, "fault", "motor")[0] == 0
    code, out, _ = run(sim, capsys, "therapy")
    assert "alarms      motor fault (high); tones sounding at high priority (pumpctl alarms)" in out


@pytest.mark.micropython
def test_a_drug_name_is_taken_in_any_case_and_a_near_miss_gets_a_did_you_mean(sim, capsys):
    """Issue 22: "drug Morphine" was refused, and a misspelt name got no suggestion."""
    code, out, err = run(sim, capsys, "program", "drug Morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day", "--yes")
    assert code == 0, err
    code, out, _ = run(sim, capsys, "--json", "therapy")
    assert [line for line, _d in json.loads(out)["program"]][0] == "drug morphine 20 mg/mL"  # the library's spelling
    code, out, err = run(sim, capsys, "program", "drug morfine 20 mg/mL", "fill 20 mL", "basal 2 mg/day", "--yes")
    assert code == 1
    assert "pump refused (drug): drug 'morfine' is not in library " in err
    assert err.rstrip().endswith(" - did you mean morphine; nothing was changed")
    code, out, err = run(sim, capsys, "program", "drug xyzzy 20 mg/mL", "fill 20 mL", "basal 2 mg/day", "--yes")
    assert code == 1 and "did you mean" not in err


@pytest.mark.micropython
def test_a_long_program_line_keeps_its_detail_apart_and_the_library_says_soft_and_hard(sim, capsys):
    """Issue 22: "... max 4 per day10 uL = morphine 200 mcg", and a library table whose pairs of
    limits said neither which is soft nor anything of the patient bolus."""
    line = "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day"
    code, out, err = run(sim, capsys, "program", *PROGRAM[:3], line, "--yes", "--confirm-soft")
    assert code == 0, err
    code, out, _ = run(sim, capsys, "therapy")
    # Within 80 columns: a line too long to have its meaning beside it has it under it.
    assert "  patient-bolus 200 mcg over 10 min lockout 1 h max 4 per day\n      10 uL = morphine 200 mcg\n" in out
    assert all(len(ln) <= 80 for ln in out.splitlines())
    code, out, _ = run(sim, capsys, "library")
    lines = out.splitlines()
    assert all(len(ln) <= 80 for ln in lines)  # a table within 80 columns, each number named
    assert lines[1].split() == ["soft", "hard"]
    at = lines.index("morphine              concentration at most 20 mg/mL")
    assert lines[at + 1 : at + 5] == [
        "  daily dose          10 mg/day       15 mg/day",
        "  rate                916 mcg/h       1.625 mg/h",
        "  bolus               500 mcg         1 mg",
        "  patient bolus       200 mcg at most, lockout 1 h, at most 4 a day",
    ]
    at = lines.index("fentanyl              concentration at most 10 mg/mL")
    assert lines[at + 4] == "  patient bolus       none allowed"
    # The factory library's sources, which the pump (numbers only) does not hold: the host's words.
    at = lines.index("morphine              concentration at most 20 mg/mL")
    assert lines[at + 5].startswith("  source              PACC 2017 Deer et al")
    code, out, _ = run(sim, capsys, "--json", "library")
    assert code == 0 and json.loads(out)["drugs"][0]["source"].startswith("PACC 2017 Deer et al")


@pytest.mark.micropython
def test_the_bolus_row_says_the_dose_what_was_given_and_what_is_left(sim, capsys):
    """Issue 22: the bolus row said "bolus at 1.2 mL/day, 00 h 15 min 00 s left": no dose, nothing given or left."""
    line = "patient-bolus 0.1 mg over 10 min lockout 1 h max 4 per day"
    assert run(sim, capsys, "program", *PROGRAM, line, "--yes")[0] == 0
    assert run(sim, capsys, "patient-bolus")[0] == 0
    assert run(sim, capsys, "advance", "5min")[0] == 0
    code, out, _ = run(sim, capsys, "therapy")
    lines = out.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("bolus "))
    assert lines[at] == "bolus       patient-bolus of 5 uL: 2.5 uL given, 2.5 uL left,"
    assert lines[at + 1].startswith("            at ") and lines[at + 1].endswith(" for 00 h 05 min 00 s")
    code, out, _ = run(sim, capsys, "--json", "therapy")
    data = json.loads(out)
    assert (data["bolus_nl"], data["bolus_left_nl"], data["bolus_left_s"]) == (5_000, 2_500, 300)
