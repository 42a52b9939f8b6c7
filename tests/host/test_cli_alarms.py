"""Alarms, the event log, refills and injected faults from the command line, against the simulator.

Each test runs pumpctl's main() against the real firmware on the MicroPython
unix port behind a pty (the `sim` fixture), as a user would, and reads back
what the pump holds. The faults are the simulated board's (SIM_FAULT): the
firmware finds them out as it would on a board.
"""

import csv
import io
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pumpctl import cli, words
from pumpctl.commands.alarms import TONE_PATTERNS

from firmware import eventlog
from hal import buzzer

PUMPCTL = str(Path(sys.executable).with_name("pumpctl"))

# Fill the simulated reservoir first (a person filling it), so its sensor agrees with the program's count.
PROGRAM = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"]


def run(sim, capsys, *argv):
    code = cli.main(["--port", sim.port, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def run_json(sim, capsys, *argv):
    code, out, err = run(sim, capsys, "--json", *argv)
    data = json.loads(out)
    # `alarms` exits 1 while any alarm is latched: a script reads 0 as nothing latched
    latched = argv == ("alarms",) and data["alarms"]
    assert code == (cli.EXIT_REFUSED if latched else cli.EXIT_OK), err
    return data


def program_filled(sim, capsys):
    code, _, err = run(sim, capsys, "fault", "fill", "--value", "20 mL")
    assert code == 0, err
    code, _, err = run(sim, capsys, "program", *PROGRAM, "--yes")
    assert code == 0, err


def table_rows(out):
    """The rows of the `pumpctl alarms` table, split on runs of two or more spaces."""
    lines = out.split("\n\n")[0].splitlines()
    assert lines[0].split()[:2] == ["priority", "alarm"]
    return [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]


# -- names and usage: no pump needed --------------------------------------------------------


def test_every_event_code_has_a_name():
    codes = {getattr(eventlog, n) for n in dir(eventlog) if n.startswith("EV_")}
    assert set(cli.EVENT_NAMES) == codes
    assert len(set(cli.EVENT_NAMES.values())) == len(codes)


def test_help_shows_examples_for_the_new_commands():
    for command, example in (
        ("alarms", "pumpctl alarms ack motor-stall"),
        ("log", "pumpctl log --csv events.csv"),
        ("refill", 'pumpctl refill --removed "1.8 mL" --fill "20 mL"'),
        ("fault", "pumpctl fault battery --value 50"),
    ):
        out = subprocess.run([PUMPCTL, command, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and example in out.stdout, command


@pytest.mark.parametrize(
    "argv, message",
    [
        (["alarms", "ack", "no-such-alarm"], "no alarm is called"),
        (["alarms", "silence", "motor-stall"], "takes no alarm name"),
        (["fault", "battery"], "fault battery needs --value"),
        (["fault", "battery", "--value", "2000"], "permille (0-1000)"),
        (["fault", "leak", "--value", "2 gallons"], "--value"),
        (["fault", "stall", "--at", "soon"], "is not a duration"),
        (["log", "--since", "-1"], "--since -1"),
    ],
)
def test_a_wrong_command_line_exits_2_before_the_pump_is_asked(argv, message, capsys):
    code = cli.main(["--port", "/dev/null", *argv])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and message in err, err


# -- alarms -------------------------------------------------------------------------------------


@pytest.mark.micropython
def test_no_alarm_nothing_to_acknowledge_nothing_to_silence(sim, capsys):
    code, out, _ = run(sim, capsys, "alarms")
    assert code == 0 and out.splitlines() == ["no alarm latched", "tones: quiet"]
    code, _, err = run(sim, capsys, "alarms", "ack")
    assert code == cli.EXIT_REFUSED and "no alarm to acknowledge" in err
    code, _, err = run(sim, capsys, "alarms", "silence")
    assert code == cli.EXIT_REFUSED and "no alarm is sounding" in err


@pytest.mark.micropython
def test_a_motor_fault_latches_high_and_an_ack_leaves_it_while_the_motor_is_dead(sim, capsys):
    code, out, err = run(sim, capsys, "fault", "motor")
    assert code == 0, err
    assert out.startswith("fault motor injected now (pump time 00 h 00 min 00 s)")
    code, out, _ = run(sim, capsys, "alarms")
    assert code == cli.EXIT_REFUSED  # an alarm is latched: not 0, where a script would read it as fine
    [row] = table_rows(out)
    assert row[:5] == ["high", "motor fault", "active", "no", "00 h 00 min 00 s"]
    assert out.rstrip().endswith("tones: sounding at high priority")

    code, out, _ = run(sim, capsys, "alarms", "ack")
    assert code == 0
    assert "acknowledged 1 alarm (every latched alarm)" in out
    assert "still latched until their condition clears: motor fault (high)" in out
    data = run_json(sim, capsys, "alarms")
    [alarm] = data["alarms"]
    assert (alarm["name"], alarm["priority"], alarm["active"], alarm["acknowledged"]) == (
        "motor fault",
        "high",
        True,
        True,
    )
    assert data["sounding"] == "high"  # acknowledged, but its condition is present: it still sounds
    code, _, err = run(sim, capsys, "alarms", "ack", "motor", "fault")
    assert code == cli.EXIT_REFUSED and "already acknowledged" in err
    # a motor that does not respond accepts no program that doses
    code, _, err = run(sim, capsys, "program", "--rate", "0.5 mL/day", "--yes")
    assert code == cli.EXIT_REFUSED and "motor driver does not respond" in err


@pytest.mark.micropython
def test_a_stall_holds_delivery_once_a_step_is_due(sim, capsys):
    assert run(sim, capsys, "program", "--rate", "1 mL/h", "--yes")[0] == 0
    code, out, err = run(sim, capsys, "fault", "stall")
    assert code == 0, err
    assert "the pump notices when a step is due" in out
    assert run(sim, capsys, "advance", "30s")[0] == 0
    data = run_json(sim, capsys, "alarms")
    stall = [a for a in data["alarms"] if a["name"] == "motor stall"]
    assert stall and stall[0]["priority"] == "high" and stall[0]["active"]
    code, out, _ = run(sim, capsys, "therapy")
    assert "delivery    HELD by a motor fault" in out
    assert "motor stall (high)" in out
    th = run_json(sim, capsys, "therapy")
    assert th["held"] is True and "motor stall" in th["alarms"]
    # the rotor turns again: a probe step finds it, delivery resumes, the condition clears
    code, out, _ = run(sim, capsys, "fault", "stall", "--value", "0")
    assert code == 0 and "the condition ends" in out
    assert run(sim, capsys, "advance", "2min")[0] == 0
    [stall] = [a for a in run_json(sim, capsys, "alarms")["alarms"] if a["name"] == "motor stall"]
    assert (stall["active"], stall["acknowledged"]) == (False, False)  # latched until acknowledged
    assert run_json(sim, capsys, "therapy")["held"] is False
    assert "recovery" in [e["event"] for e in run_json(sim, capsys, "log")["events"]]
    code, out, _ = run(sim, capsys, "alarms", "ack", "motor stall")
    assert code == 0 and "acknowledged 1 alarm (motor stall)" in out
    assert "motor stall" not in run_json(sim, capsys, "therapy")["alarms"]


@pytest.mark.micropython
def test_a_low_battery_raises_eri_at_the_next_check_and_status_shows_it(sim, capsys):
    code, out, err = run(sim, capsys, "fault", "battery", "--value", "50")
    assert code == 0, err
    assert out.startswith("fault battery (value 50 permille) injected now")
    assert run(sim, capsys, "advance", "2min")[0] == 0
    code, out, _ = run(sim, capsys, "alarms")
    rows = table_rows(out)
    assert ["medium", "battery ERI", "active", "no"] in [r[:4] for r in rows]
    code, out, _ = run(sim, capsys, "status")
    battery = [line for line in out.splitlines() if line.startswith("battery ")]
    assert battery and "permille" in battery[0]
    assert "battery ERI (medium)" in out
    status = run_json(sim, capsys, "status")
    assert status["battery_permille"] <= 50 and "battery ERI" in status["alarms"]


@pytest.mark.micropython
def test_a_clock_jump_is_over_at_once_and_an_ack_by_name_removes_it(sim, capsys):
    code, _, err = run(sim, capsys, "fault", "clock-jump", "--value", "450")  # beyond the sim's 400 s
    assert code == 0, err
    assert run(sim, capsys, "advance", "1s")[0] == 0
    code, out, _ = run(sim, capsys, "alarms")
    [row] = table_rows(out)
    assert row[:4] == ["medium", "clock jump", "cleared", "no"] and row[5] == "clock jump of 450 s"
    code, out, _ = run(sim, capsys, "alarms", "ack", "clock-jump")
    assert code == 0 and "acknowledged 1 alarm (clock jump)" in out and "no alarm latched now" in out
    code, out, _ = run(sim, capsys, "alarms")
    assert out.splitlines()[0] == "no alarm latched"
    events = run_json(sim, capsys, "log")["events"]
    assert [e["event"] for e in events if e["code"] == eventlog.EV_ACK] == ["ack"]


@pytest.mark.micropython
def test_silence_lasts_two_minutes_and_a_new_alarm_ends_it(sim, capsys):
    assert run(sim, capsys, "fault", "motor")[0] == 0
    code, out, err = run(sim, capsys, "alarms", "silence")
    assert code == 0, err
    assert out.startswith("alarm tones silenced for 120 s")
    th = run_json(sim, capsys, "therapy")
    assert (th["sounding"], th["silenced_s"]) == ("none", 120)
    code, out, _ = run(sim, capsys, "alarms")
    assert out.rstrip().endswith("tones: silenced for 120 s more")
    assert run(sim, capsys, "advance", "30s")[0] == 0
    assert run_json(sim, capsys, "therapy")["silenced_s"] == 90
    # a new alarm sounds at once
    assert run(sim, capsys, "fault", "clock-jump", "--value", "450")[0] == 0
    assert run(sim, capsys, "advance", "1s")[0] == 0
    th = run_json(sim, capsys, "therapy")
    assert (th["sounding"], th["silenced_s"]) == ("high", 0)
    assert "clock jump" in th["alarms"]


def buzzer_plays(sim):
    """(patterns the simulated buzzer sounded since boot, the priority of the last one)."""
    with sim.pump() as pump:
        state = pump.sim_state()
    return state.buzzer_plays, state.buzzer_priority


def buzzer_plays_after_a_tone_test(sim, plays):
    """buzzer_plays once the simulated buzzer has sounded plays + 3 patterns, or after 10 s: a tone
    test's tones are a second apart in wall time (asyncio's), as on a board, while pump time waits."""
    deadline = time.monotonic() + 10
    while True:
        got = buzzer_plays(sim)
        if got[0] >= plays + 3 or time.monotonic() > deadline:
            time.sleep(1.5)  # and nothing more follows
            return buzzer_plays(sim)
        time.sleep(0.2)


@pytest.mark.micropython
def test_test_tones_sounds_each_priority_once_and_never_over_a_sounding_alarm(sim, capsys):
    plays, _ = buzzer_plays(sim)
    code, out, err = run(sim, capsys, "alarms", "test-tones")
    assert code == 0, err
    assert out.splitlines() == [
        "the pump sounds each alarm priority's tone once, about a second apart:",
        "  low     2 pulses",
        "  medium  3 pulses",
        "  high    two bursts of 5 pulses",
        "if one is missing or does not sound like this, the pump's speaker needs service",
    ]
    assert buzzer_plays_after_a_tone_test(sim, plays) == (plays + 3, 3)  # low, medium, then high: each once
    assert run_json(sim, capsys, "alarms")["alarms"] == []  # a test raises no alarm
    assert run_json(sim, capsys, "alarms", "test-tones") == {"tones": ["low", "medium", "high"]}
    assert buzzer_plays_after_a_tone_test(sim, plays + 3) == (plays + 6, 3)

    # An alarm that sounds is not disturbed: the test is refused while it sounds, and runs once it is silenced.
    assert run(sim, capsys, "fault", "clock-jump", "--value", "450")[0] == 0
    assert run(sim, capsys, "advance", "1s")[0] == 0
    code, _, err = run(sim, capsys, "alarms", "test-tones")
    assert code == cli.EXIT_REFUSED
    assert "an alarm is sounding: its tone is the test" in err
    assert run(sim, capsys, "alarms", "silence")[0] == 0
    plays, _ = buzzer_plays(sim)
    assert run(sim, capsys, "alarms", "test-tones")[0] == 0
    assert buzzer_plays_after_a_tone_test(sim, plays) == (plays + 3, 3)


def test_the_tones_test_describes_the_patterns_the_buzzer_plays():
    """What pumpctl tells the listener is what hal/buzzer.py plays: pulses, and bursts parted by a longer gap."""

    def bursts(pattern):
        sizes = [0]
        for _on_ms, off_ms in pattern:
            sizes[-1] += 1
            if off_ms > 200:
                sizes.append(0)
        return sizes

    played = {words.PRIORITY_NAMES[p]: bursts(pattern) for p, pattern in buzzer.PATTERNS.items()}
    assert played == {"low": [2], "medium": [3], "high": [5, 5]}
    assert TONE_PATTERNS == {"low": "2 pulses", "medium": "3 pulses", "high": "two bursts of 5 pulses"}


@pytest.mark.micropython
def test_a_fault_at_a_later_pump_time_waits_for_it(sim, capsys):
    code, out, err = run(sim, capsys, "fault", "motor", "--at", "600")
    assert code == 0, err
    assert "at pump time 00 h 10 min 00 s, in 00 h 10 min 00 s" in out
    assert run_json(sim, capsys, "alarms")["alarms"] == []
    assert run(sim, capsys, "advance", "11min")[0] == 0
    [alarm] = run_json(sim, capsys, "alarms")["alarms"]
    assert alarm["name"] == "motor fault" and alarm["raised_us"] >= 600 * 10**6
    # A time that has passed is refused, not taken as now (issue 22); nothing is injected.
    code, out, err = run(sim, capsys, "fault", "stall", "--at", "300")
    assert code == cli.EXIT_USAGE and out == ""
    assert "--at 300: pump time 00 h 05 min 00 s has passed (it is 00 h 11 min" in err
    assert "give a later time, or no --at for now" in err
    assert [a["name"] for a in run_json(sim, capsys, "alarms")["alarms"]] == ["motor fault"]


# -- the event log --------------------------------------------------------------------------------


@pytest.mark.micropython
def test_the_log_as_csv_in_a_file_and_on_stdout_with_exact_times(sim, capsys, tmp_path):
    program_filled(sim, capsys)
    assert run(sim, capsys, "fault", "clock-jump", "--value", "450")[0] == 0
    assert run(sim, capsys, "advance", "1h")[0] == 0
    events = run_json(sim, capsys, "log")["events"]
    path = tmp_path / "events.csv"
    code, out, _ = run(sim, capsys, "log", "--csv", str(path))
    assert code == 0 and out.startswith(f"wrote {len(events)} events to {path}")
    rows = list(csv.reader(path.open(newline="")))
    assert rows[0] == ["index", "time_s", "clock", "code", "event", "text"]
    assert len(rows) == len(events) + 1
    for row, e in zip(rows[1:], events, strict=True):
        seconds, micros = row[1].split(".")
        assert int(seconds) * 10**6 + int(micros) == e["time_us"] and len(micros) == 6
        assert (int(row[0]), int(row[3]), row[4], row[5]) == (e["index"], e["code"], e["event"], e["text"])
        assert row[4] == cli.EVENT_NAMES[e["code"]] and row[2] == (e["clock"] or "")
    names = {r[4] for r in rows[1:]}
    assert {"boot", "program", "fault", "alarm"} <= names
    jump = next(r for r in rows[1:] if r[4] == "alarm" and "clock jump" in r[5])

    since = int(jump[0])
    code, out, _ = run(sim, capsys, "log", "--csv", "-", "--since", str(since))
    got = list(csv.reader(io.StringIO(out)))
    assert got[0] == rows[0] and got[1] == jump and all(int(r[0]) >= since for r in got[1:])

    code, out, _ = run(sim, capsys, "log", "--since", str(since))
    lines = out.splitlines()  # a header, then each entry's line and its text under it (80 columns)
    first = lines[1].split()
    assert first[0] == str(since) and first[-1] == "alarm" and lines[2].strip().endswith("clock jump of 450 s")


# -- refills --------------------------------------------------------------------------------------


@pytest.mark.micropython
def test_a_refill_keeps_the_program_and_checks_the_volume_removed(sim, capsys):
    program_filled(sim, capsys)
    assert run(sim, capsys, "advance", "24h")[0] == 0
    left = run_json(sim, capsys, "therapy")["reservoir_nl"]
    assert 19_800_000 < left < 20_000_000
    code, out, err = run(sim, capsys, "refill", "--removed", "19.9 mL", "--fill", "20 mL", "--yes")
    assert code == 0, err
    assert "removed 19.9 mL" in out and "read back and identical" in out
    # On a simulator pumpctl also does what the clinician's hands do: its reservoir holds the fill.
    assert "simulator: its reservoir filled to 20 mL, as a clinician fills a real one" in out
    with sim.pump() as pump:
        assert pump.sim_state().true_reservoir_nl == 20_000_000
    assert "refill discrepancy" not in out
    th = run_json(sim, capsys, "therapy")
    assert th["reservoir_nl"] == 20_000_000 and th["basal_nl_per_day"] == 100_000
    assert [line for line, _d in th["program"]] == [
        "drug morphine 20 mg/mL",
        "fill 20 mL",
        "removed 19.9 mL",
        "basal 2 mg/day",
    ]
    events = run_json(sim, capsys, "log")["events"]
    refill = [e for e in events if e["event"] == "refill"]
    assert refill and refill[-1]["text"].startswith("refill: removed 19.9 mL, expected")
    # the next session builds on the program without its fill and removed lines
    code, out, err = run(sim, capsys, "bolus", "0.1 mg", "--over", "1 h", "--yes")
    assert code == 0, err


@pytest.mark.micropython
def test_a_refill_discrepancy_is_shown_and_needs_confirm_soft(sim, capsys):
    program_filled(sim, capsys)
    assert run(sim, capsys, "advance", "1h")[0] == 0
    code, out, err = run(sim, capsys, "refill", "--removed", "15 mL", "--fill", "20 mL", "--yes")
    assert code == cli.EXIT_USAGE
    said = " ".join(out.split())  # the review's rows within 80 columns: a long warning wraps
    assert "! refill discrepancy 4.99" in said and "check for a pocket fill; removed 15 mL, counted 19.99" in said
    assert "check for a refill into the pocket" in out
    assert "--confirm-soft" in err
    assert run_json(sim, capsys, "therapy")["program"][2] == ["basal 2 mg/day", "0.1 mL/day = morphine 2 mg/day"]
    code, out, err = run(sim, capsys, "refill", "--removed", "15 mL", "--fill", "20 mL", "--yes", "--confirm-soft")
    assert code == 0, err
    events = run_json(sim, capsys, "log")["events"]
    assert "DISCREPANCY" in [e for e in events if e["event"] == "refill"][-1]["text"]


@pytest.mark.micropython
def test_a_refill_without_yes_and_without_a_terminal_is_not_committed(sim, capsys, monkeypatch):
    program_filled(sim, capsys)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, out, err = run(sim, capsys, "refill", "--removed", "20 mL", "--fill", "18 mL")
    assert code == cli.EXIT_USAGE and "run again with --yes" in err
    assert "removed 20 mL" in out  # the review was shown
    assert run_json(sim, capsys, "therapy")["reservoir_nl"] == 20_000_000


@pytest.mark.micropython
def test_a_new_concentration_offers_a_bridge_and_takes_one(sim, capsys):
    program_filled(sim, capsys)
    assert run(sim, capsys, "advance", "1h")[0] == 0
    code, out, err = run(sim, capsys, "refill", "--removed", "20 mL", "--fill", "20 mL", "--drug", "morphine 10 mg/mL")
    assert code == cli.EXIT_USAGE  # no --yes, no terminal: shown, not committed
    assert "bridge bolus offered: the concentration changed (morphine 20 mg/mL -> morphine 10 mg/mL)" in out
    assert "--bridge VOLUME" in out
    assert "basal 2 mg/day  [0.2 mL/day = morphine 2 mg/day]" in out
    code, out, err = run(
        sim,
        capsys,
        "refill",
        "--removed",
        "20 mL",
        "--fill",
        "20 mL",
        "--drug",
        "morphine 10 mg/mL",
        "--bridge",
        "0.25 mL",
        "--yes",
    )
    assert code == 0, err
    assert "bridge bolus offered" not in out and "bridge 250 uL" in out
    th = run_json(sim, capsys, "therapy")
    assert th["bridge"] is True and th["program"][0][0] == "drug morphine 10 mg/mL"


@pytest.mark.micropython
def test_a_refill_of_a_pump_that_never_dosed_needs_the_basal_and_a_stopped_one_takes_its_last_program(sim, capsys):
    code, _, err = run(sim, capsys, "refill", "--removed", "0 mL", "--fill", "20 mL", "--yes")
    assert code == cli.EXIT_USAGE and "--basal" in err  # nothing ever dosed: no program to refill with
    program_filled(sim, capsys)
    assert run(sim, capsys, "stop")[0] == 0
    code, out, err = run(sim, capsys, "refill", "--removed", "20 mL", "--fill", "20 mL", "--basal", "1 mg/day", "--yes")
    assert code == 0, err
    th = run_json(sim, capsys, "therapy")
    assert (th["mode"], th["basal_nl_per_day"]) == ("continuous", 50_000)


@pytest.mark.micropython
def test_fault_is_refused_with_the_models_reason(sim, capsys):
    code, _, err = run(sim, capsys, "fault", "clock-jump", "--value", "600")
    assert code == cli.EXIT_REFUSED and "pump refused" in err


def test_fault_codes_follow_the_codec():
    assert [c for c, _n in sorted(words.FAULT_NAMES.items())] == list(range(len(words.FAULT_NAMES)))
    parser = cli.build_parser()
    for name in words.FAULT_NAMES.values():
        assert parser.parse_args(["fault", name, "--value", "1"]).kind == name


@pytest.mark.micropython
@pytest.mark.parametrize("answer, committed", [("y", True), ("", False)])
def test_a_refill_asks_on_a_terminal(sim, capsys, monkeypatch, answer, committed):
    program_filled(sim, capsys)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or answer)
    code, out, _ = run(sim, capsys, "refill", "--removed", "20 mL", "--fill", "19 mL")
    assert asked == ["commit this program? [y/N] "]
    assert code == (cli.EXIT_OK if committed else cli.EXIT_REFUSED)
    assert ("read back and identical" in out) == committed
    assert run_json(sim, capsys, "therapy")["reservoir_nl"] == (19_000_000 if committed else 20_000_000)


@pytest.mark.micropython
def test_pumpctl_refill_with_no_stdin_refuses_with_how_to_commit(sim):
    with sim.pump() as pump:
        pump.sim_fault("fill", 0, 20_000_000)
        pump.program(PROGRAM)
    out = subprocess.run(
        [PUMPCTL, "--port", sim.port, "refill", "--removed", "20 mL", "--fill", "19 mL"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == cli.EXIT_USAGE
    assert "not committed: review the program above, then run again with --yes to commit it" in out.stderr
    assert "removed 20 mL" in out.stdout and "Traceback" not in out.stderr


@pytest.mark.micropython
def test_pumpctl_sim_with_a_reservoir_fits_its_sensor_and_a_leak_shows():
    proc = subprocess.Popen(
        [PUMPCTL, "sim", "--reservoir", "20 mL"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        first = proc.stdout.readline()
        assert " on /dev/" in first, first + proc.stderr.read()
        port = first.rsplit(" on ", 1)[1].strip()

        def pumpctl(*argv):
            out = subprocess.run(
                [PUMPCTL, "--port", port, *argv], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
            )
            assert out.returncode == 0, out.stderr
            return out.stdout

        pumpctl("program", *PROGRAM, "--yes")
        pumpctl("advance", "2min")
        status = json.loads(pumpctl("--json", "status"))
        assert abs(status["sensor_nl"] - 20_000_000) < 100_000 and status["alarms"] == []
        assert "counted, sensor " in pumpctl("status")
        pumpctl("fault", "leak", "--value", "3 mL")
        pumpctl("advance", "2min")
        assert "reservoir sensor disagrees (medium)" in pumpctl("status")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


@pytest.mark.micropython
def test_the_log_writes_the_pumps_numbers_in_a_clinicians_units(sim, capsys):
    """Issue 22: the log said "fluid now morphine 10000000 ng/mL" and a clock in raw seconds."""
    assert run(sim, capsys, "program", "--rate", "0.5 mL/day", "--yes")[0] == 0
    assert run(sim, capsys, "clock", "--set", "2026-03-01T08:00:00")[0] == 0
    program_filled(sim, capsys)
    texts = [e["text"] for e in run_json(sim, capsys, "log")["events"]]
    assert any(t.endswith(": basal 0.5 mL/day") for t in texts)  # program --rate: a program commit
    assert "clock set to 2026-03-01 08:00:00, was not set" in texts
    assert any(t.startswith("fluid now morphine ") and t.endswith(" mg/mL") for t in texts), texts
    assert not [t for t in texts if "{" in t or "ng/mL" in t or "nL/day" in t]


@pytest.mark.micropython
def test_a_clock_change_is_shown_old_to_new_confirmed_and_logged_with_both_values_and_an_offset_refused(sim, capsys):
    """Issue 23: `clock --set 2026-03-01T08:00+02:00` dropped the offset silently, a change needed no
    confirmation, and the log kept only the new value."""
    code, out, err = run(sim, capsys, "clock", "--set", "2026-03-01T08:00+02:00")
    assert code == cli.EXIT_USAGE and "has a UTC offset: the device clock is local wall time with no zone" in err
    assert run_json(sim, capsys, "clock") == {"clock_s": None}  # nothing was set
    code, out, _ = run(sim, capsys, "clock", "--set", "2026-03-01T08:00")  # the first set: nothing depends on it
    assert code == 0 and out.strip() == "device clock 2026-03-01 08:00:00 (was not set)"
    run(
        sim,
        capsys,
        "program",
        "drug morphine 20 mg/mL",
        "fill 20 mL",
        "flex 00:00 2 mg/day",
        "flex 07:00 4 mg/day",
        "--yes",
    )
    code, out, err = run(sim, capsys, "clock", "--set", "2026-03-01T09:30")  # a change, with no terminal to ask on
    assert code == cli.EXIT_USAGE and "not set: add --yes" in err
    shown = out + err  # the change is said before the question
    assert "device clock 2026-03-01 08:00:00 -> 2026-03-01 09:30:00 (+01 h 30 min 00 s)" in shown
    assert (
        "the running flex schedule follows the clock: the pump shortens the day's last step, by at most half of it "
        "a day, until its steps are back at their clock times (none repeated or skipped)" in shown
    )
    code, out, _ = run(sim, capsys, "clock", "--set", "2026-03-01T09:30", "--yes")  # said, then done
    assert code == 0 and out.splitlines()[0].startswith("device clock 2026-03-01 08:00:00 -> 2026-03-01 09:30:00")
    assert out.splitlines()[-1] == "device clock 2026-03-01 09:30:00 (was 2026-03-01 08:00:00)"
    texts = [e["text"] for e in run_json(sim, capsys, "log")["events"]]
    assert "clock set to 2026-03-01 08:00:00, was not set" in texts
    assert "clock set to 2026-03-01 09:30:00, was 2026-03-01 08:00:00" in texts


@pytest.mark.micropython
def test_pending_faults_are_listed_and_one_is_cancelled_before_it_fires(sim, capsys):
    """Issue 22: faults scheduled with --at could neither be listed nor cancelled."""
    assert run(sim, capsys, "fault", "list") == (
        0,
        "no fault is pending (pumpctl fault KIND --at SECONDS schedules one)\n",
        "",
    )
    assert run(sim, capsys, "fault", "stall", "--at", "600")[0] == 0
    assert run(sim, capsys, "fault", "battery", "--at", "3600", "--value", "50")[0] == 0
    code, out, _ = run(sim, capsys, "fault", "list")
    assert code == 0 and out.splitlines() == [
        "  0  at pump time 00 h 10 min 00 s (in 00 h 10 min 00 s)  stall --value 1",
        '  1  at pump time 01 h 00 min 00 s (in 01 h 00 min 00 s)  battery --value "50 permille"',
    ]
    code, out, _ = run(sim, capsys, "fault", "cancel", "--value", "0")
    assert code == 0 and out.startswith("cancelled fault stall (value 1) due at pump time 00 h 10 min 00 s")
    code, _, err = run(sim, capsys, "fault", "cancel", "--value", "5")
    assert code == cli.EXIT_REFUSED and "no fault 5 is pending: 1 are" in err
    assert [p["kind"] for p in run_json(sim, capsys, "fault", "list")["pending"]] == ["battery"]
    assert run(sim, capsys, "advance", "2h")[0] == 0
    alarms = run_json(sim, capsys, "alarms")["alarms"]
    assert not any("stall" in a["name"] for a in alarms)  # the cancelled stall never came
    assert any("battery" in a["name"] for a in alarms)  # the other did, at its time
    assert run_json(sim, capsys, "fault", "list")["pending"] == []
