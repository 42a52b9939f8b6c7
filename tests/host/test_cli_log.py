"""`pumpctl log` as a user reads it, against the real firmware on the MicroPython unix port: which
entries have left the log (the pump keeps its newest entries in RAM and archives only the therapy's
record to flash, never sessions), the device clock of each entry, and --export's two files."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from pumpctl import cli
from pumpctl.sim import Simulator

pytestmark = pytest.mark.micropython

CLOCK = "2024-06-01T07:00"  # what `clock --set` is given: local wall time
CLOCK_SHOWN = "2024-06-01 07:00:00"
CLOCK_ISO = "2024-06-01T07:00:00"
SESSIONS = 80  # each one 2 entries: well past the RAM ring's 32
# The table within 80 columns: a header, then an entry's line (index, pump time (ends in " s"), device clock or -,
# event) and its text under it, indented 7 (wrapped); a run of entries that left is a line of its own, "..".
HEADER = re.compile(r"^index  +pump time  +device clock  +event, then what happened$")
ROW = re.compile(r"^ *(\d+)  +(\S.*? s)  +(-|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) +(\S+)$")
TEXT = re.compile(r"^ {7}(\S.*)$")
LEFT = re.compile(r"^ +\.\.  (?:entry (\d+) has|entries (\d+)-(\d+) have) left the log$")


def run(sim, capsys, *argv):
    code = cli.main(["--port", sim.port, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def ok(sim, capsys, *argv) -> str:
    code, out, err = run(sim, capsys, *argv)
    assert code == cli.EXIT_OK, err
    return out


def log_json(sim, capsys, *argv) -> dict:
    return json.loads(ok(sim, capsys, "--json", "log", *argv))


def sessions(sim, n: int = SESSIONS) -> None:
    """n sessions opened and ended, as n pumpctl commands that change something would: 2 entries each."""
    with sim.pump() as pump:
        for _ in range(n):
            pump.authenticate()
            pump.end_session()


def table(out: str) -> list[tuple]:
    """The lines of `pumpctl log`: ("event", index, pump time, clock, name, text) or ("left", first, last)."""
    got = []
    lines = out.splitlines()
    assert HEADER.match(lines[0]), lines[0]
    assert all(len(line) <= 80 for line in lines)
    for line in lines[1:]:
        row, left, text = ROW.match(line), LEFT.match(line), TEXT.match(line)
        assert row or left or text, f"a line that is neither an event, its text nor a gap: {line!r}"
        if row:
            got.append(["event", int(row[1]), row[2], row[3], row[4], ""])
        elif text:
            assert got and got[-1][0] == "event", f"a text under no event: {line!r}"
            got[-1][5] = (got[-1][5] + " " + text[1]).strip()  # wrapped at spaces: joined by one again
        elif left[1] is not None:
            got.append(("left", int(left[1]), int(left[1])))
        else:
            got.append(("left", int(left[2]), int(left[3])))
    return [tuple(row) for row in got]


def expected_gaps(since: int, indices: list[int]) -> list[tuple]:
    """What the table must show: each event, and before it the entries that left since the one before."""
    out = []
    expected = since
    for i in indices:
        if i > expected:
            out.append(("left", expected, i - 1))
        out.append(("event", i))
        expected = i + 1
    return out


@pytest.fixture
def sim_with_storage(tmp_path):
    """A simulated pump with its flash (a folder): the therapy log archives what leaves the RAM ring."""
    simulator = Simulator(register=True, storage=tmp_path / "pump").start()
    yield simulator
    alive = simulator.running()
    simulator.stop()
    assert alive, "the firmware died during the test:\n" + simulator.stderr_text()


def test_log_says_which_entries_left_and_still_shows_the_first_programs(sim_with_storage, capsys, tmp_path):
    sim = sim_with_storage
    ok(sim, capsys, "program", "--rate", "0.5 mL/day", "--yes")
    ok(sim, capsys, "advance", "1h")
    sessions(sim)
    ok(sim, capsys, "program", "--rate", "0.6 mL/day", "--yes")

    data = log_json(sim, capsys)
    events = data["events"]
    indices = [e["index"] for e in events]
    assert len(indices) < 2 * SESSIONS  # most sessions have left
    shown = table(ok(sim, capsys, "log"))
    assert [s[:3] if s[0] == "left" else s[:2] for s in shown] == expected_gaps(0, indices)
    gaps = [s[1:] for s in shown if s[0] == "left"]
    assert [list(g) for g in gaps] == data["left"]
    assert any(last - first > 1 for first, last in gaps), gaps  # a run: "entries X-Y have left the log"
    assert sum(last - first + 1 for first, last in gaps) + len(events) == indices[-1] + 1  # every index accounted

    # The therapy's record stays: the boot and both programs, in order, with their true indices.
    rows = [s for s in shown if s[0] == "event"]
    assert rows[0][1:5] == (0, "00 h 00 min 00 s", "-", "boot")
    programs = [(r[1], r[5]) for r in rows if r[4] == "program"]
    # program --rate is a program like any other (issue 23): its commit names its crc, library and line
    assert [text.split(": ", 1)[1] for _, text in programs] == ["basal 0.5 mL/day", "basal 0.6 mL/day"]
    assert [e["index"] for e in events if e["event"] == "program"] == [i for i, _ in programs]
    # The first program's session started in an entry of its own, which has left alone: "entry N has left".
    first_program = programs[0][0]
    assert ("left", first_program - 1, first_program - 1) in shown
    assert f"   ..  entry {first_program - 1} has left the log\n" in ok(sim, capsys, "log")

    # From an index that has left: the line says so first, then the entries that are still there.
    since = first_program - 1
    out = ok(sim, capsys, "log", "--since", str(since))
    assert out.splitlines()[1] == f"   ..  entry {since} has left the log"
    assert table(out)[1][1] == first_program
    assert log_json(sim, capsys, "--since", str(since))["left"][0] == [since, since]

    # The CSV keeps the real rows only, each with its true index.
    path = tmp_path / "events.csv"
    ok(sim, capsys, "log", "--csv", str(path))
    rows = list(csv.reader(path.open(newline="")))
    assert rows[0] == ["index", "time_s", "clock", "code", "event", "text"]
    assert [int(r[0]) for r in rows[1:]] == indices
    assert not any("left the log" in r[5] for r in rows[1:])


def test_a_pump_without_flash_says_the_oldest_entries_left(sim, capsys):
    sessions(sim, 40)
    data = log_json(sim, capsys)
    first = data["events"][0]["index"]
    assert first > 0 and data["left"][0] == [0, first - 1]
    lines = ok(sim, capsys, "log").splitlines()
    assert lines[1] == f"   ..  entries 0-{first - 1} have left the log"
    assert lines[2].split()[0] == str(first)


def test_the_clock_column_is_a_dash_before_the_clock_is_set_and_the_date_after(sim, capsys, tmp_path):
    ok(sim, capsys, "program", "--rate", "0.5 mL/day", "--yes")
    before = [s for s in table(ok(sim, capsys, "log")) if s[0] == "event"]
    assert before and {s[3] for s in before} == {"-"}

    ok(sim, capsys, "clock", "--set", CLOCK)
    ok(sim, capsys, "program", "--rate", "0.6 mL/day", "--yes")
    shown = [s for s in table(ok(sim, capsys, "log")) if s[0] == "event"]
    clocks = {s[5].split(": ", 1)[-1]: s[3] for s in shown if s[4] in ("program", "clock")}
    assert clocks == {
        "basal 0.5 mL/day": "-",
        f"clock set to {CLOCK_SHOWN}, was not set": CLOCK_SHOWN,
        "basal 0.6 mL/day": CLOCK_SHOWN,
    }
    assert [s[3] for s in shown[: len(before)]] == ["-"] * len(before)  # the entries before keep theirs

    events = log_json(sim, capsys)["events"]
    program = [e for e in events if e["event"] == "program"]
    assert [(e["clock_s"], e["clock"]) for e in program] == [(None, None), (1_717_225_200, CLOCK_ISO)]

    rows = list(csv.reader(io.StringIO(ok(sim, capsys, "log", "--csv", "-"))))
    assert rows[0][:3] == ["index", "time_s", "clock"]
    assert [r[2] for r in rows[1:] if r[4] == "program"] == ["", CLOCK_ISO]


def test_export_writes_the_csv_and_the_json_with_the_pump_and_its_library(sim_with_storage, capsys, tmp_path):
    sim = sim_with_storage
    ok(sim, capsys, "program", "--rate", "0.5 mL/day", "--yes")
    sessions(sim, 30)
    ok(sim, capsys, "clock", "--set", CLOCK)
    ok(sim, capsys, "advance", "90s")
    expected = log_json(sim, capsys)
    with sim.pump() as pump:
        th = pump.therapy()
        pump_time_us = pump.status().time_us
    device_id = sim.keys.device_id
    library_hash = f"{th.library_hash:08x}"

    folder = tmp_path / "records" / "new"  # made, parents too
    before = datetime.now().astimezone().replace(microsecond=0)
    out = ok(sim, capsys, "log", "--export", str(folder))
    after = datetime.now().astimezone()
    [csv_path] = folder.glob("*.csv")
    json_path = csv_path.with_suffix(".json")
    assert re.fullmatch(rf"{device_id}-log-\d{{8}}-\d{{6}}\.csv", csv_path.name), csv_path.name
    stamp = datetime.strptime(csv_path.stem.rsplit("-log-", 1)[1], "%Y%m%d-%H%M%S")
    assert before.replace(tzinfo=None) <= stamp <= after.replace(tzinfo=None)  # the host's local time
    events = expected["events"]
    gone = sum(last - first + 1 for first, last in expected["left"])
    assert gone > 0
    assert out == (
        f"exported {len(events)} events (entries {events[0]['index']}-{events[-1]['index']}; {gone} left the log) "
        f"to {folder / csv_path.stem}.csv and .json\n"
    )

    record = json.loads(json_path.read_text())
    assert record["events"] == events and record["left"] == expected["left"]
    assert (record["device_id"], record["library_version"], record["library_hash"]) == (
        device_id,
        th.library,
        library_hash,
    )
    assert re.fullmatch(r"[0-9a-f]{8}", record["library_hash"])
    exported_at = datetime.fromisoformat(record["exported_at"])
    assert exported_at.utcoffset() is not None and before <= exported_at <= after
    assert record["pump_time_s"] == f"{pump_time_us // 10**6}.{pump_time_us % 10**6:06d}"
    assert record["clock"] is not None and record["clock"].startswith("2024-06-01T07:")
    assert record["first_index"] == events[0]["index"] == 0

    rows = list(csv.reader(csv_path.open(newline="")))
    plain = list(csv.reader(io.StringIO(ok(sim, capsys, "log", "--csv", "-"))))
    assert rows[0] == [*plain[0], "device_id", "library_hash"]
    assert [r[:-2] for r in rows[1:]] == plain[1:]  # the same rows as --csv (reading the log adds no entry)
    assert {tuple(r[-2:]) for r in rows[1:]} == {(device_id, library_hash)}  # every row stands alone
    assert [int(r[0]) for r in rows[1:]] == [e["index"] for e in events]

    # --json: where the files went, and the counts.
    got = json.loads(ok(sim, capsys, "--json", "log", "--export", str(tmp_path / "scripted")))
    assert Path(got["csv"]).is_file() and Path(got["json"]).is_file()
    assert Path(got["csv"]).parent == tmp_path / "scripted" and Path(got["json"]).suffix == ".json"
    assert (got["events"], got["first_index"], got["last_index"], got["left_entries"]) == (
        len(events),
        events[0]["index"],
        events[-1]["index"],
        gone,
    )
    assert json.loads(Path(got["json"]).read_text())["events"] == events


def test_export_and_csv_together_exit_2_before_the_pump_is_asked(capsys, tmp_path):
    code = cli.main(["--port", "/dev/null", "log", "--export", str(tmp_path), "--csv", "events.csv"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and "--csv and --export: give one" in err, err
    assert not list(tmp_path.iterdir())
