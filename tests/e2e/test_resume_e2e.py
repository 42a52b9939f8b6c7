"""Resume (issue 23): a stopped or emptied pump keeps its last program, and `pumpctl resume` runs it again
through the same stage, review and checks; a refill on a stopped pump keeps the running settings. On the
firmware (the MicroPython unix port) behind a pty, through the CLI as a clinician types it."""

import json

import pytest
from pumpctl import Simulator, cli
from pumpctl.replies import program_lines

pytestmark = pytest.mark.micropython

PCA = "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day"
CANONICAL_PCA = "patient-bolus 200 mcg over 10 min lockout 1 h max 4 per day"  # as the pump writes it back
PROGRAM = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day", PCA, "bolus 0.5 mg over 30 min"]


def run(port, capsys, *argv):
    code = cli.main(["--port", port, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def review(port, capsys):
    code, out, err = run(port, capsys, "--json", "therapy")
    assert code in (0, 1), err
    return json.loads(out)


def test_a_stopped_program_resumes_with_its_patient_bolus_and_without_its_one_off_lines(sim, capsys):
    port = sim.port
    assert run(port, capsys, "fault", "fill", "--value", "20 mL")[0] == 0
    code, _, err = run(port, capsys, "program", *PROGRAM, "--yes", "--confirm-soft")
    assert code == 0, err
    before = review(port, capsys)
    assert run(port, capsys, "stop")[0] == 0
    assert review(port, capsys)["mode"] == "stopped"

    code, out, err = run(port, capsys, "resume", "--yes")
    assert code == 2 and "soft limits passed" in err  # checked as a new program: its soft limits are confirmed again
    code, out, err = run(port, capsys, "resume", "--yes", "--confirm-soft")
    assert code == 0, err
    assert "committed at pump time" in out
    with sim.pump() as pump:
        assert program_lines(pump.review()) == ["drug morphine 20 mg/mL", "basal 2 mg/day", CANONICAL_PCA]
    after = review(port, capsys)
    assert after["mode"] == "continuous" and after["rate_nl_per_day"] == before["basal_nl_per_day"]
    assert after["bolus"] == "none"  # the bolus of the stopped program is not given again

    code, _, err = run(port, capsys, "resume", "--yes", "--confirm-soft")  # it runs: nothing to resume
    assert code == 2 and "the pump runs a program: there is nothing to resume" in err


def test_resume_on_a_pump_that_never_dosed_says_to_program_it(sim, capsys):
    code, _, err = run(sim.port, capsys, "resume", "--yes")
    assert code == 2 and "keeps no stopped program" in err and "pumpctl program" in err


def test_a_refill_after_the_reservoir_ran_empty_runs_the_same_program_with_the_new_fill(sim, capsys):
    port = sim.port
    assert run(port, capsys, "fault", "fill", "--value", "1.2 mL")[0] == 0
    lines = ["drug morphine 20 mg/mL", "fill 1.2 mL", "basal 2 mg/day", PCA]
    code, _, err = run(port, capsys, "program", *lines, "--yes", "--confirm-soft")
    assert code == 0, err
    assert run(port, capsys, "advance", "3d")[0] == 0  # 0.2 mL at 0.1 mL/day: empty after 2 days
    th = review(port, capsys)
    assert th["mode"] == "stopped"
    code, out, err = run(port, capsys, "refill", "--removed", "1 mL", "--fill", "20 mL", "--yes", "--confirm-soft")
    assert code == 0, err  # no --basal needed: the pump kept the program the empty reservoir stopped
    with sim.pump() as pump:
        running = program_lines(pump.review())
    assert "basal 2 mg/day" in running and CANONICAL_PCA in running and "fill 20 mL" in running
    assert review(port, capsys)["mode"] == "continuous"


def test_a_restart_keeps_the_stopped_program_for_resume(tmp_path, capsys):
    with Simulator(storage=tmp_path / "pump", register=True) as first:
        code, _, err = run(
            first.port,
            capsys,
            "program",
            "drug morphine 20 mg/mL",
            "fill 20 mL",
            "basal 2 mg/day",
            PCA,
            "--yes",
            "--confirm-soft",
        )
        assert code == 0, err
        assert run(first.port, capsys, "stop")[0] == 0
    with Simulator(storage=tmp_path / "pump", keys=first.keys, provision=False, register=True) as again:
        with again.pump() as pump:
            assert pump.last_lines() == ["drug morphine 20 mg/mL", "basal 2 mg/day", CANONICAL_PCA]
        code, _, err = run(again.port, capsys, "resume", "--yes", "--confirm-soft")
        assert code == 0, err
        assert review(again.port, capsys)["mode"] == "continuous"


def test_a_stopped_pump_primes_its_catheter_and_stays_stopped(sim, capsys):
    port = sim.port
    code, out, err = run(port, capsys, "prime", "0.2 mL", "--over", "20 min", "--yes")
    assert code == 0, err  # before: "give exactly one of: a basal line, flex lines, or stop"
    th = review(port, capsys)
    assert th["mode"] == "stopped" and th["bolus"] == "prime"
    assert run(port, capsys, "advance", "30min")[0] == 0
    th = review(port, capsys)
    assert th["mode"] == "stopped" and th["bolus"] == "none" and th["rate_nl_per_day"] == 0
    assert 199_000 <= th["day_nl"] <= 200_000  # the prime's 200 uL, in whole steps
    with sim.pump() as pump:
        assert program_lines(pump.review()) == ["stop"]  # the prime acted once
        assert pump.last_lines() == []  # and nothing that doses was stopped: nothing to resume


def test_a_program_staged_by_one_run_is_reviewed_committed_or_discarded_by_another(sim, capsys):
    """pumpctl program --stage, then review, commit and discard as separate runs (each its own session):
    a second clinician's check before a program goes in force."""
    port = sim.port
    assert run(port, capsys, "fault", "fill", "--value", "20 mL")[0] == 0
    lines = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"]
    code, out, err = run(port, capsys, "program", *lines, "--stage")
    assert code == 0, err
    assert "staged, not committed" in out and "pumpctl review" in out
    assert review(port, capsys)["mode"] == "stopped"  # nothing in force yet

    code, out, err = run(port, capsys, "review")
    assert code == 0, err
    assert "basal 2 mg/day" in out and "stop" in out  # the staged beside the running
    code, out, err = run(port, capsys, "--json", "review")
    assert json.loads(out)["lines"] == lines

    code, out, err = run(port, capsys, "commit", "--yes")
    assert code == 0, err and "committed at pump time" in out
    assert review(port, capsys)["rate_nl_per_day"] == 100_000

    code, _, err = run(port, capsys, "review")  # committed: nothing staged any more
    assert code == 2 and "no program is staged" in err

    assert run(port, capsys, "program", "basal 4 mg/day", "--stage")[0] == 0
    code, out, err = run(port, capsys, "discard")
    assert code == 0 and "discarded the staged program" in out, err
    assert run(port, capsys, "commit", "--yes")[0] == 2  # nothing left to commit
    assert review(port, capsys)["rate_nl_per_day"] == 100_000  # the running program is unchanged


def test_resume_at_the_empty_volume_is_refused_with_a_refill_to_do(sim, capsys):
    port = sim.port
    assert run(port, capsys, "fault", "fill", "--value", "1.2 mL")[0] == 0
    code, _, err = run(port, capsys, "program", "drug morphine 20 mg/mL", "fill 1.2 mL", "basal 2 mg/day", "--yes")
    assert code == 0, err
    assert run(port, capsys, "advance", "3d")[0] == 0
    assert review(port, capsys)["mode"] == "stopped"  # the empty volume stopped it
    code, _, err = run(port, capsys, "resume", "--yes")
    assert code == 1, err
    assert "the reservoir is at its empty volume (999.95 uL left): refill it first (pumpctl refill); nothing" in err
    assert review(port, capsys)["mode"] == "stopped"
