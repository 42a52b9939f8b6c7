"""The screening-trial record: pain scores before and during a trial, the report, and `pumpctl trial`."""

import argparse
import json
import os
import stat
from datetime import datetime, timedelta
from fractions import Fraction

import pytest
from pumpctl import trial
from pumpctl.commands import trial as trial_command
from pumpctl.commands.trial import TRIAL
from pumpctl.errors import UsageError
from pumpctl.trial import (
    PainScore,
    TrialError,
    TrialRecord,
    load,
    parse_score,
    parse_time,
    save,
)
from pumpctl.trial_report import fixed, percent_text, report

T0 = datetime(2024, 5, 1, 8, 0)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def record_of(baseline, trial_scores, step_h=6):
    """Baseline scores every step_h hours from T0; trial scores every step_h hours from 24 h after T0
    or, if the baseline runs longer, one step after the last baseline score."""
    start_trial_h = max(24, len(baseline) * step_h)
    scores = [PainScore(at(i * step_h), s, "baseline") for i, s in enumerate(baseline)]
    scores += [PainScore(at(start_trial_h + i * step_h), s, "trial") for i, s in enumerate(trial_scores)]
    return TrialRecord(patient="P-017", scores=scores)


# --- a score and its time --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, message",
    [
        (11, "score 11 is outside the range 0 to 10"),
        (-1, "score -1 is outside the range 0 to 10"),
        (7.5, "score 7.5 is not a whole number; the numeric rating scale has whole numbers 0 to 10"),
        ("seven", "score 'seven' is not a whole number; the numeric rating scale has whole numbers 0 to 10"),
        (True, "score True is not a whole number"),
        (7.0, "score 7.0 is not a whole number"),
    ],
)
def test_a_score_outside_0_to_10_or_not_an_integer_is_refused(value, message):
    with pytest.raises(TrialError, match="^" + message.replace(".", r"\.").replace("(", r"\(")):
        PainScore(T0, value, "baseline")


@pytest.mark.parametrize(
    "text, message",
    [
        ("11", "score 11 is outside the range 0 to 10"),
        ("-1", "score -1 is outside the range 0 to 10"),
        ("7.5", "score '7.5' is not a whole number"),
        ("seven", "score 'seven' is not a whole number"),
        ("1_0", "score '1_0' is not a whole number"),
        ("", "score '' is not a whole number"),
    ],
)
def test_a_typed_score_is_refused_with_field_value_and_range(text, message):
    with pytest.raises(TrialError) as e:
        parse_score(text)
    assert str(e.value).startswith(message)
    assert "0 to 10" in str(e.value)


@pytest.mark.parametrize("text, value", [("0", 0), ("7", 7), (" 10 ", 10), ("07", 7)])
def test_a_typed_score_0_to_10_is_accepted(text, value):
    assert parse_score(text) == value


def test_a_phase_other_than_baseline_or_trial_is_refused():
    with pytest.raises(TrialError, match="phase 'during' is not one of: baseline, trial"):
        PainScore(T0, 5, "during")


@pytest.mark.parametrize(
    "text, message",
    [
        ("2024-05-01", "time '2024-05-01' has no time of day; write it to the minute, such as 2024-05-01T08:30"),
        ("01/05/2024 08:00", "time '01/05/2024 08:00' is not an ISO 8601 local time to the minute"),
        ("yesterday", "time 'yesterday' is not an ISO 8601 local time to the minute"),
        ("2024-05-01T08", "time '2024-05-01T08' is not an ISO 8601 local time to the minute"),
        ("2024-05-01T08:30+02:00", "time '2024-05-01T08:30+02:00' has a UTC offset; write the local time"),
        ("2024-05-01T08:30Z", "time '2024-05-01T08:30Z' has a UTC offset"),
        ("2024-05-01T08:30:15", "time '2024-05-01T08:30:15' has seconds; pain scores are timed to the minute"),
        ("2024-02-30T08:00", "time '2024-02-30T08:00' is not a valid date and time: day is out of range"),
        ("2024-05-01T25:00", "time '2024-05-01T25:00' is not a valid date and time"),
    ],
)
def test_a_time_that_is_not_local_iso_8601_to_the_minute_is_refused(text, message):
    with pytest.raises(TrialError) as e:
        parse_time(text)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize("text", ["2024-05-01T08:30", "2024-05-01 08:30", "2024-05-01T08:30:00", " 2024-05-01T08:30 "])
def test_a_local_iso_time_to_the_minute_is_accepted(text):
    assert parse_time(text) == datetime(2024, 5, 1, 8, 30)


def test_a_datetime_with_seconds_or_an_offset_is_refused():
    with pytest.raises(TrialError, match="has seconds"):
        PainScore(datetime(2024, 5, 1, 8, 30, 15), 5, "baseline")
    with pytest.raises(TrialError, match="has a UTC offset"):
        PainScore(datetime(2024, 5, 1, 8, 30).astimezone(), 5, "baseline")


# --- the record: order of the scores -------------------------------------------------------------------------------


def test_scores_are_kept_sorted_by_time_whatever_order_they_come_in():
    r = TrialRecord()
    r.add_score(PainScore("2024-05-01T20:00", 7, "baseline"))
    r.add_score(PainScore("2024-05-01T08:00", 8, "baseline"))
    r.add_score(PainScore("2024-05-02T20:00", 3, "trial"))
    r.add_score(PainScore("2024-05-02T08:00", 4, "trial"))
    r.add_score(PainScore("2024-05-01T14:00", 9, "baseline"))
    assert [s.score for s in r.scores] == [8, 9, 7, 4, 3]


def test_a_baseline_score_after_the_first_trial_score_is_refused_and_nothing_changes():
    r = record_of([8], [4])  # baseline at T0, trial at T0 + 24 h
    before = list(r.scores)
    with pytest.raises(TrialError) as e:
        r.add_score(PainScore(at(30), 7, "baseline"))
    assert str(e.value) == (
        "a baseline score at 2024-05-02T14:00 is not before the first trial score at 2024-05-02T08:00; "
        "baseline scores must all come before the trial"
    )
    assert r.scores == before


def test_a_baseline_score_at_the_same_minute_as_the_first_trial_score_is_refused():
    r = record_of([8], [4, 3])
    with pytest.raises(TrialError, match="already a trial score"):
        r.add_score(PainScore(at(24), 7, "baseline"))
    with pytest.raises(TrialError, match="baseline score at 2024-05-02T08:01 is not before the first trial score"):
        r.add_score(PainScore(at(24) + timedelta(minutes=1), 7, "baseline"))


def test_a_trial_score_before_the_last_baseline_score_is_refused():
    r = record_of([8, 8], [])  # baseline at T0 and T0 + 6 h
    with pytest.raises(TrialError) as e:
        r.add_score(PainScore(at(3), 4, "trial"))
    assert str(e.value) == (
        "a trial score at 2024-05-01T11:00 is not after the last baseline score at 2024-05-01T14:00; "
        "trial scores must all come after the baseline"
    )
    assert len(r.scores) == 2


def test_two_scores_in_the_same_minute_are_refused():
    r = record_of([8], [])
    with pytest.raises(TrialError, match="there is already a baseline score \\(8\\) at 2024-05-01T08:00"):
        r.add_score(PainScore(T0, 6, "baseline"))


def test_a_record_built_with_scores_checks_them_like_add_score():
    with pytest.raises(TrialError, match="baseline score at .* is not before the first trial score"):
        TrialRecord(scores=[PainScore(at(24), 4, "trial"), PainScore(at(48), 8, "baseline")])
    r = TrialRecord(scores=[PainScore(at(30), 4, "trial"), PainScore(at(0), 8, "baseline")])
    assert [s.phase for s in r.scores] == ["baseline", "trial"]


# --- the file ------------------------------------------------------------------------------------------------------


def test_a_record_survives_a_json_round_trip(tmp_path):
    r = record_of([8, 7, 9], [4, 3], step_h=1)
    r.note = "morphine 0.5 mg/day, Schmerz ≥ 7 nachts"
    r.add_score(PainScore("2024-05-02T20:00", 2, "trial", note="after a walk"))
    path = tmp_path / "trial.json"
    save(r, path)
    assert load(path) == r
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "pumpctl-trial" and data["version"] == 1
    assert data["patient"] == "P-017" and data["note"] == "morphine 0.5 mg/day, Schmerz ≥ 7 nachts"
    assert data["scores"][0] == {"time": "2024-05-01T08:00", "score": 8, "phase": "baseline", "note": None}
    assert data["scores"][-1] == {"time": "2024-05-02T20:00", "score": 2, "phase": "trial", "note": "after a walk"}


def test_a_saved_record_is_mode_0600_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "trial.json"
    path.write_text("old")
    path.chmod(0o644)
    save(record_of([8], [4]), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["trial.json"]


def test_a_failed_save_leaves_the_old_record_whole(tmp_path, monkeypatch):
    path = tmp_path / "trial.json"
    save(record_of([8], [4]), path)
    old = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(TrialError, match="cannot write .*trial.json: No space left on device"):
        save(record_of([8, 8], [4]), path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["trial.json"]


def test_saving_a_new_record_never_overwrites(tmp_path):
    path = tmp_path / "trial.json"
    path.write_text("someone else's data")
    with pytest.raises(TrialError, match="trial.json already exists; a trial record is never overwritten"):
        save(TrialRecord(), path, new=True)
    assert path.read_text() == "someone else's data"
    assert os.listdir(tmp_path) == ["trial.json"]


def test_loading_a_missing_file_says_how_to_start_one(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(TrialError, match=f"no trial record {path} \\(start one with: pumpctl trial start {path}\\)"):
        load(path)


def test_loading_a_directory_is_refused(tmp_path):
    with pytest.raises(TrialError, match="is a directory, not a trial record"):
        load(tmp_path)


def test_loading_an_unreadable_file_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "trial.json"
    save(TrialRecord(), path)

    def denied(*args, **kwargs):  # chmod 0 would not stop root, who runs some CI
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(trial, "open", denied, raising=False)
    with pytest.raises(TrialError, match=f"cannot read {path}: Permission denied"):
        load(path)


def entry(time, score, phase):
    return {"time": time, "score": score, "phase": phase}


def file_of(*entries):
    return json.dumps({"format": "pumpctl-trial", "version": 1, "scores": list(entries)}).encode()


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"format": "pumpctl-trial", ', "is not valid JSON (line 1 column 29: "),
        (b"\xff\xfe not text", "is not a trial record: not UTF-8 text"),
        (b"[1, 2]", "not a trial record: the top level is a JSON list, not an object"),
        (b'{"scores": []}', "not a trial record: format is None, expected 'pumpctl-trial'"),
        (b'{"format": "pumpctl-trial", "version": 2, "scores": []}', "trial record version 2 is not supported"),
        (b'{"format": "pumpctl-trial", "version": 1}', "missing scores"),
        (b'{"format": "pumpctl-trial", "version": 1, "scores": {}}', "scores must be a JSON list"),
        (file_of(entry("2024-05-01T08:00", 7.5, "baseline")), "scores[0]: score 7.5 is not a whole number"),
        (file_of(entry("2024-05-01", 7, "baseline")), "scores[0]: time '2024-05-01' has no time of day"),
        (file_of(entry(202405010800, 7, "baseline")), "scores[0]: time 202405010800 is not text"),
        (file_of(entry("2024-05-01T08:00", 7, "before")), "scores[0]: phase 'before' is not one of"),
        (
            file_of(entry("2024-05-01T08:00", 8, "baseline"), entry("2024-05-01T09:00", 11, "baseline")),
            "scores[1]: score 11 is outside the range 0 to 10",
        ),
        (
            file_of({"time": "2024-05-01T08:00", "scroe": 8, "phase": "baseline"}),
            "scores[0]: missing score",
        ),
        (
            file_of(dict(entry("2024-05-01T08:00", 8, "baseline"), pain=3)),
            "scores[0]: unknown field 'pain'",
        ),
        (
            file_of(entry("2024-05-02T08:00", 4, "trial"), entry("2024-05-03T08:00", 8, "baseline")),
            "scores[1]: a baseline score at 2024-05-03T08:00 is not before the first trial score",
        ),
    ],
)
def test_a_malformed_file_is_refused_with_the_file_and_the_fault(tmp_path, content, message):
    path = tmp_path / "trial.json"
    path.write_bytes(content)
    with pytest.raises(TrialError) as e:
        load(path)
    assert str(e.value).startswith(str(path))
    assert message in str(e.value)


# --- the report ----------------------------------------------------------------------------------------------------


def test_exact_rounding_is_half_to_even_on_the_exact_value():
    assert fixed(Fraction(825, 100)) == "8.2"
    assert fixed(Fraction(875, 100)) == "8.8"
    assert fixed(Fraction(8)) == "8.0"
    assert fixed(Fraction(8, 3)) == "2.7"
    assert fixed(Fraction(-1, 20)) == "0.0"
    assert fixed(Fraction(-125, 10)) == "-12.5"


def test_the_report_of_a_successful_trial():
    r = record_of([8, 8, 8], [5, 4, 4, 3, 2, 3], step_h=12)  # trial: 05-02 20:00 .. 05-05 08:00
    result = report(r)
    assert (result.baseline.count, result.baseline.mean) == (3, 8)
    assert (result.trial.count, result.trial.mean) == (6, Fraction(7, 2))
    assert result.reduction_percent == Fraction(225, 4)  # 56.25 %
    assert percent_text(result.reduction_percent) == "56.2"  # half to even
    assert result.best_trial_score == 2 and result.best_reduction_percent == 75
    assert result.success is True
    # last 24 h: after 05-04 08:00 -> the scores at 05-04 20:00 and 05-05 08:00 (2 and 3)
    assert result.last_24h.count == 2 and result.last_24h.mean == Fraction(5, 2)
    assert result.last_24h_after == datetime(2024, 5, 4, 8, 0)
    assert result.last_24h_reduction_percent == Fraction(275, 4)


def test_the_last_24_h_leave_out_a_score_exactly_24_h_before_the_last():
    result = report(record_of([8], [6, 2], step_h=24))  # trial at 05-02 08:00 and 05-03 08:00
    assert (result.last_24h.count, result.last_24h.mean) == (1, 2)
    assert result.trial.mean == 4


def test_exactly_50_percent_is_success():
    result = report(record_of([7, 8], [3, 4, 4, 4]))  # means 15/2 and 15/4
    assert result.reduction_percent == 50
    assert result.success is True
    assert "reduction 50.0% of baseline (mean)   success: yes (criterion >= 50%)" in result.text("t.json")


def test_49_9_percent_is_not_success():
    result = report(record_of([10], [5] * 99 + [6], step_h=1))  # trial mean 5.01
    assert result.reduction_percent == Fraction(499, 10)
    assert result.success is False
    assert "reduction 49.9% of baseline (mean)   success: no (criterion >= 50%)" in result.text("t.json")


def test_just_under_50_percent_never_shows_as_50():
    result = report(record_of([10], [5] * 249 + [6], step_h=1))  # trial mean 5.004 -> 49.96 %
    assert result.reduction_percent == Fraction(4996, 100)
    assert result.success is False
    assert "reduction 49.96% of baseline (mean)   success: no" in result.text("t.json")
    assert report(record_of([10], [5] * 249 + [6], step_h=1)).to_json()["reduction_percent"] == "49.96"


def test_pain_that_rises_is_a_negative_reduction():
    result = report(record_of([4], [6]))
    assert result.reduction_percent == -50 and result.success is False
    assert "reduction -50.0% of baseline" in result.text("t.json")


def test_the_report_text():
    r = record_of([8, 8, 8], [5, 4, 4, 3, 2, 3], step_h=12)
    r.note = "morphine 0.5 mg/day"
    assert report(r).text("trial.json").splitlines() == [
        "trial report: trial.json (patient P-017)",
        "  note      morphine 0.5 mg/day",
        "  baseline  3 scores  mean 8.0   from 2024-05-01T08:00 to 2024-05-02T08:00",
        "  trial     6 scores  mean 3.5   best 2   from 2024-05-02T20:00 to 2024-05-05T08:00",
        "  last 24 h 2 scores  mean 2.5   reduction 68.8%",
        "  reduction 56.2% of baseline (mean)   success: yes (criterion >= 50%)",
        "  best      75.0% of baseline (lowest trial score 2)",
    ]


@pytest.mark.parametrize(
    "baseline, trial_scores, message",
    [
        ([], [4], "no baseline score yet"),
        ([8], [], "no trial score yet"),
        ([0, 0], [0], "the baseline mean is 0: there is no pain to reduce, so a 50% reduction means nothing"),
    ],
)
def test_a_report_without_both_phases_or_with_no_baseline_pain_is_refused(baseline, trial_scores, message):
    with pytest.raises(TrialError, match=message):
        report(record_of(baseline, trial_scores))


# --- the command line ----------------------------------------------------------------------------------------------


def parser(top_level_json=True):
    """Like cli.build_parser: a --json before the command, then the subcommands."""
    p = argparse.ArgumentParser(prog="pumpctl")
    if top_level_json:
        p.add_argument("--json", action="store_true")
    TRIAL.add_to(p.add_subparsers(dest="command", required=True))
    return p


def run(*argv, top_level_json=True):
    args = parser(top_level_json).parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(trial_command, "_now", lambda: datetime(2024, 5, 4, 21, 7))
    return tmp_path


def test_trial_errors_are_usage_errors_so_pumpctl_exits_2():
    assert issubclass(TrialError, UsageError)


def test_cli_start_creates_a_private_record_and_never_overwrites(cwd, capsys):
    assert run("trial", "start", "trial.json", "--patient", "P-017", "--note", "morphine") == 0
    assert capsys.readouterr().out.splitlines() == [
        "started trial record trial.json (patient P-017)",
        "next: pumpctl trial score trial.json SCORE --phase baseline",
    ]
    assert stat.S_IMODE((cwd / "trial.json").stat().st_mode) == 0o600
    assert load("trial.json") == TrialRecord(patient="P-017", note="morphine")
    run("trial", "score", "trial.json", "8", "--phase", "baseline", "--at", "2024-05-01T08:00")
    before = (cwd / "trial.json").read_bytes()
    with pytest.raises(TrialError, match="trial.json already exists"):
        run("trial", "start", "trial.json")
    assert (cwd / "trial.json").read_bytes() == before


def test_cli_a_whole_trial(cwd, capsys):
    run("trial", "start", "trial.json", "--patient", "P-017")
    for when, score, phase in [
        ("2024-05-01T08:00", "8", "baseline"),
        ("2024-05-01 20:00", "8", "baseline"),
        ("2024-05-01T14:00", "8", "baseline"),
        ("2024-05-02T08:00", "5", "trial"),
        ("2024-05-02T20:00", "4", "trial"),
        ("2024-05-03T08:00", "4", "trial"),
        ("2024-05-03T20:00", "3", "trial"),
        ("2024-05-04T08:00", "2", "trial"),
    ]:
        assert run("trial", "score", "trial.json", score, "--phase", phase, "--at", when) == 0
    assert run("trial", "score", "trial.json", "3", "--phase", "trial", "--note", "evening") == 0  # now: 21:07
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "recorded baseline score 8 at 2024-05-01T08:00 in trial.json (1 baseline, 0 trial scores)"
    assert out[-1] == "recorded trial score 3 at 2024-05-04T21:07 in trial.json (3 baseline, 6 trial scores)"
    assert load("trial.json").scores[-1] == PainScore(datetime(2024, 5, 4, 21, 7), 3, "trial", "evening")

    assert run("trial", "report", "trial.json") == 0
    assert capsys.readouterr().out.splitlines() == [
        "trial report: trial.json (patient P-017)",
        "  baseline  3 scores  mean 8.0   from 2024-05-01T08:00 to 2024-05-01T20:00",
        "  trial     6 scores  mean 3.5   best 2   from 2024-05-02T08:00 to 2024-05-04T21:07",
        "  last 24 h 2 scores  mean 2.5   reduction 68.8%",
        "  reduction 56.2% of baseline (mean)   success: yes (criterion >= 50%)",
        "  best      75.0% of baseline (lowest trial score 2)",
    ]


def test_cli_report_json_after_the_command_or_before_it(cwd, capsys):
    save(record_of([8, 8, 8], [5, 4, 4, 3, 2, 3], step_h=12), cwd / "trial.json")
    for argv, top in [
        (("trial", "report", "trial.json", "--json"), True),
        (("--json", "trial", "report", "trial.json"), True),
        (("trial", "report", "trial.json", "--json"), False),
    ]:
        assert run(*argv, top_level_json=top) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["file"] == "trial.json" and data["patient"] == "P-017"
        assert data["baseline"]["count"] == 3 and data["baseline"]["mean"] == "8.0"
        assert data["trial"]["count"] == 6 and data["trial"]["mean_exact"] == "7/2"
        assert data["reduction_percent"] == "56.2" and data["reduction_percent_exact"] == "225/4"
        assert data["best_trial_score"] == 2 and data["best_reduction_percent"] == "75.0"
        assert data["last_24h"]["count"] == 2 and data["last_24h"]["after"] == "2024-05-04T08:00"
        assert data["success"] is True and data["criterion_percent"] == 50
    run("trial", "report", "trial.json", top_level_json=False)
    assert capsys.readouterr().out.startswith("trial report: trial.json")


@pytest.mark.parametrize(
    "argv, message",
    [
        (("11", "--phase", "baseline"), "score 11 is outside the range 0 to 10"),
        (("-1", "--phase", "baseline"), "score -1 is outside the range 0 to 10"),
        (("7.5", "--phase", "baseline"), "score '7.5' is not a whole number"),
        (("seven", "--phase", "baseline"), "score 'seven' is not a whole number"),
        (("5", "--phase", "baseline", "--at", "2024-05-01"), "time '2024-05-01' has no time of day"),
        (("5", "--phase", "baseline", "--at", "2024-05-04T21:08"), "is in the future (now is 2024-05-04T21:07)"),
        (("5", "--phase", "baseline", "--at", "2024-05-02T09:00"), "is not before the first trial score"),
        (("5", "--phase", "trial", "--at", "2024-05-02T08:00"), "there is already a trial score (4)"),
    ],
)
def test_cli_score_refusals_change_nothing(cwd, argv, message):
    save(record_of([8], [4]), cwd / "trial.json")
    before = (cwd / "trial.json").read_bytes()
    with pytest.raises(TrialError) as e:
        run("trial", "score", "trial.json", *argv)
    assert message in str(e.value)
    assert (cwd / "trial.json").read_bytes() == before


def test_cli_score_needs_a_phase(cwd, capsys):
    save(TrialRecord(), cwd / "trial.json")
    with pytest.raises(SystemExit) as e:
        run("trial", "score", "trial.json", "5")
    assert e.value.code == 2
    assert "the following arguments are required: --phase" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("trial", "score", "trial.json", "5", "--phase", "during")
    assert "invalid choice: 'during'" in capsys.readouterr().err


def test_cli_on_a_missing_file(cwd):
    with pytest.raises(TrialError, match="no trial record gone.json"):
        run("trial", "score", "gone.json", "5", "--phase", "baseline")
    with pytest.raises(TrialError, match="no trial record gone.json"):
        run("trial", "report", "gone.json")
    assert not (cwd / "gone.json").exists()


def test_cli_report_refuses_a_trial_without_trial_scores(cwd):
    save(record_of([8], []), cwd / "trial.json")
    with pytest.raises(TrialError, match="no trial score yet: record some with --phase trial"):
        run("trial", "report", "trial.json")


def test_cli_trial_needs_a_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        run("trial")
    assert e.value.code == 2
