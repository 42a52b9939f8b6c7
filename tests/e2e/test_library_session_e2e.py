"""Loading a site library is a programming session (issue 18, item 3), on the simulator:
staged, reviewed field by field beside the library in force, committed only with the
clinician's confirmation (and --confirm-raise for a raised hard limit), under a new version;
the library's content hash is logged and reported with every program admitted under it."""

import json

import pytest
from pumpctl import cli, library_file
from pumpctl.errors import PumpRefused

from firmware import codec, framing

pytestmark = pytest.mark.micropython

PROGRAM = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"]
STEP_PL = 52_083


def run(sim, capsys, *argv):
    code = cli.main(["--port", sim.port, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def hash_of(entries):
    """The content hash of a library file's entries, as the pump computes it over their numbers."""
    return framing.library_hash([library_file.parse_entry(e) for e in entries])


def exported(sim, capsys, tmp_path, version=None, **morphine):
    """`pumpctl --json library > lib.json`, with morphine's fields edited."""
    code, out, _ = run(sim, capsys, "--json", "library")
    assert code == 0
    doc = json.loads(out)
    if version:
        doc["version"] = version
    doc["drugs"][0].update(morphine)
    path = tmp_path / "lib.json"
    path.write_text(json.dumps(doc))
    entries = [[d[f] for f in codec.LIBRARY_FIELDS] for d in doc["drugs"]]
    return path, hash_of(entries)


def in_force(sim):
    with sim.pump() as pump:
        th = pump.therapy()
        return th.library, th.library_hash


def test_the_issues_sequence_is_refused_reviewed_confirmed_and_then_traced(sim, capsys, tmp_path):
    assert run(sim, capsys, "program", *PROGRAM, "--yes")[0] == 0
    factory = in_force(sim)
    assert factory[0] == "default-2026.11"
    raised = {"daily_hard": "30 mg/day", "rate_hard": "2 mg/h"}

    # the same version: refused, nothing changed
    path, _ = exported(sim, capsys, tmp_path, **raised)
    code, _, err = run(sim, capsys, "library", "load", str(path), "--yes", "--confirm-raise")
    assert code == 1 and "library default-2026.11 is the version in force: give the new library a new version" in err
    assert in_force(sim) == factory

    path, new_hash = exported(sim, capsys, tmp_path, version="site-2027.01", **raised)
    # without --yes (no terminal): reviewed, not committed
    code, out, err = run(sim, capsys, "library", "load", str(path), "--confirm-raise")
    assert code == 2 and "not committed: review the library above" in err, (out, err)
    rows = {line.split()[1]: line for line in out.splitlines() if line.strip().startswith("morphine ")}
    assert set(rows) == {"daily_hard", "rate_hard"}  # the two limits changed, nothing else
    assert rows["daily_hard"].split()[2:8] == ["15", "mg/day", "30", "mg/day", "HARD", "LIMIT"]
    assert rows["rate_hard"].split()[2:6] == ["1.625", "mg/h", "2", "mg/h"]
    assert all("affects the running program" in r for r in rows.values())
    assert f"library site-2027.01 (hash {new_hash:08x})" in out and "2 field(s) changed, 2 hard limit(s) raised" in out
    assert in_force(sim) == factory

    # --yes but without the raise confirmed: refused
    code, out, err = run(sim, capsys, "library", "load", str(path), "--yes")
    assert code == 2 and "hard limits raised: not committed (add --confirm-raise" in err
    assert in_force(sim) == factory
    # the program the new limits would allow is still refused
    code, _, err = run(sim, capsys, "program", "drug morphine 20 mg/mL", "basal 20 mg/day", "--yes", "--confirm-soft")
    assert code == 1 and "hard limit of 15 mg/day (library default-2026.11)" in err

    # with both: committed, and the --json review says the same
    code, out, err = run(sim, capsys, "--json", "library", "load", str(path), "--yes", "--confirm-raise")
    assert code == 0, err
    data = json.loads(out)
    assert (data["committed"], data["library_hash"], data["changed"], data["raised"]) == (True, new_hash, 2, 2)
    assert data["in_force"] == {"version": "default-2026.11", "library_hash": factory[1]}
    assert {
        (r["field"], r["in_force"], r["new"], r["hard_limit_raised"], r["running_program"]) for r in data["changes"]
    } == {
        ("daily_hard", "15 mg/day", "30 mg/day", True, True),
        ("rate_hard", "1.625 mg/h", "2 mg/h", True, True),
    }
    assert in_force(sim) == ("site-2027.01", new_hash)

    # a program admitted under it carries its hash: the log, THERAPY, pumpctl therapy
    code, _, err = run(sim, capsys, "program", "drug morphine 20 mg/mL", "basal 20 mg/day", "--yes", "--confirm-soft")
    assert code == 0, err
    texts = [e["text"] for e in json.loads(run(sim, capsys, "--json", "log")[1])["events"]]
    assert f"library site-2027.01 hash {new_hash:08x}: 2 fields changed, 2 hard limits raised" in texts
    assert any(t.startswith("crc ") and f"library site-2027.01 hash {new_hash:08x}: drug morphine" in t for t in texts)
    th = json.loads(run(sim, capsys, "--json", "therapy")[1])
    assert (th["library"], th["library_hash"]) == ("site-2027.01", new_hash)
    assert f"library site-2027.01 (hash {new_hash:08x})" in run(sim, capsys, "therapy")[1]

    # and the motor gives the new dose: 20 mg/day of 20 mg/mL is 1 mL/day
    with sim.pump() as pump:
        before = pump.sim_state().motor_steps
        pump.sim_advance(3_600_000_000)
        moved = pump.sim_state().motor_steps - before
    expected = 1_000_000_000 // 24 // STEP_PL  # pL in 1 h at 1 mL/day, in steps
    assert abs(moved - expected) <= 1


def test_a_library_that_refuses_the_running_program_is_refused_at_staging_naming_its_line(sim, capsys, tmp_path):
    lines = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 12 mg/day"]
    assert run(sim, capsys, "program", *lines, "--yes", "--confirm-soft")[0] == 0
    path, _ = exported(sim, capsys, tmp_path, version="site-low", daily_soft="5 mg/day", daily_hard="10 mg/day")
    code, out, err = run(sim, capsys, "library", "load", str(path), "--yes", "--confirm-raise")
    assert code == 1  # a refusal of the pump's (README's exit codes), nothing changed
    assert "the running program would not be valid under it (daily dose)" in err
    assert "the running program's line: drug morphine 20 mg/mL; basal 12 mg/day" in err
    assert in_force(sim)[0] == "default-2026.11"
    # once the program is changed, the same library goes in
    assert run(sim, capsys, "program", "drug morphine 20 mg/mL", "basal 4 mg/day", "--yes")[0] == 0
    assert run(sim, capsys, "library", "load", str(path), "--yes")[0] == 0
    assert in_force(sim)[0] == "site-low"


def test_the_commit_needs_the_staged_hash_and_confirm_raise_and_a_live_stage(sim, tmp_path):
    from firmware.druglib import DEFAULT_LIBRARY

    entries = [list(e) for e in DEFAULT_LIBRARY]
    entries[0][7] = "2 mg"  # morphine bolus_hard raised
    with sim.pump() as pump:
        staged = pump.stage_library("site-b", entries)
        assert (staged.changed, staged.raised, staged.expires_in_s) == (1, 1, 600)
        with pytest.raises(PumpRefused, match="library_hash 00000000 is not the staged library's"):
            pump._request(codec.LIB_COMMIT, (0, 1))
        with pytest.raises(PumpRefused, match="1 hard limit\\(s\\) raised need confirm_raise=1"):
            pump.commit_library(staged)
        # the staged library is read field by field, with what the pump says of each
        version, fields = pump.library_fields(staged=True)
        flagged = [(f.drug, f.field, f.text) for f in fields if f.changed]
        assert version == "site-b" and flagged == [("morphine", "bolus_hard", "2 mg")]
        assert [f.raised for f in fields if f.changed] == [True]
        # a drug sent after staging drops the stage
        name, numbers = library_file.parse_entry(entries[0])
        pump._request(codec.LIB_DRUG, (0, name, *numbers))
        with pytest.raises(PumpRefused, match="no library is staged"):
            pump.commit_library(staged, confirm_raise=True)
        # it expires after 10 min (the session kept alive meanwhile)
        staged = pump.stage_library("site-b", entries)
        for _ in range(13):
            pump.sim_advance(50_000_000)
        with pytest.raises(PumpRefused, match="expired after 10 min"):
            pump.commit_library(staged, confirm_raise=True)
        staged = pump.stage_library("site-b", entries)
    with sim.pump() as pump:  # a new session: the old one's stage went with it
        with pytest.raises(PumpRefused, match="no library is staged"):
            pump.commit_library(staged, confirm_raise=True)
        assert pump.therapy().library == "default-2026.11"
        pump.load_library("site-b", entries, confirm_raise=True)
        assert pump.therapy().library_hash == hash_of(entries)
        # the factory library's version on other content is refused; on its own content it goes back
        with pytest.raises(PumpRefused, match="is the factory library's version"):
            pump.stage_library("default-2026.11", entries)
        pump.load_library("default-2026.11", [list(e) for e in DEFAULT_LIBRARY])
        assert pump.therapy().library_hash == hash_of(DEFAULT_LIBRARY)


def test_a_library_commit_drops_a_program_staged_under_the_old_one(sim):
    from firmware.druglib import DEFAULT_LIBRARY

    entries = [list(e) for e in DEFAULT_LIBRARY]
    entries[0][3] = "12 mg/day"
    with sim.pump() as pump:
        staged = pump.stage(PROGRAM)
        pump.load_library("site-c", entries)
        with pytest.raises(PumpRefused, match="the library changed; stage it again"):
            pump.commit(staged)
        assert pump.sim_state().motor_steps == 0


def test_a_library_whose_limit_the_last_24_h_already_fill_is_refused_at_staging(sim, capsys, tmp_path):
    # 12 mg/day for 20 h delivers 10 mg; a 4 mg/day program is then within the factory's 15 mg/day, but a
    # library of 10 mg/day would be passed by the next hours' delivery on top of the last 24 h's.
    assert (
        run(
            sim, capsys, "program", "drug morphine 20 mg/mL", "fill 20 mL", "basal 12 mg/day", "--yes", "--confirm-soft"
        )[0]
        == 0
    )
    assert run(sim, capsys, "advance", "20h")[0] == 0
    assert run(sim, capsys, "program", "drug morphine 20 mg/mL", "basal 4 mg/day", "--yes")[0] == 0
    path, _ = exported(sim, capsys, tmp_path, version="site-low", daily_soft="5 mg/day", daily_hard="10 mg/day")
    code, out, err = run(sim, capsys, "library", "load", str(path), "--yes")
    assert code == 1, out + err  # the pump refused: exit 1, nothing changed
    assert "daily hard limit" in err and "last 24 h" in err
    assert in_force(sim)[0] == "default-2026.11"
    # a day later the history has left the window, and the same library goes in
    assert run(sim, capsys, "advance", "24h")[0] == 0
    assert run(sim, capsys, "library", "load", str(path), "--yes")[0] == 0
    assert in_force(sim)[0] == "site-low"
