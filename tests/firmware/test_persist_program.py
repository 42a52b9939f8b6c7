"""The running program across a restart (issue 19): the record keeps the program as its items' numbers, and a
restart reads them back without any parser (the firmware has none: pumpctl reads a program's text). A record of
the firmware before (0.3.0, protocol 8: the program's lines and what that firmware made of them) restores from
its values; one whose program cannot be read so comes up stopped with an alarm that says to send the program
again, never running a program it could not read, and keeping the dose guard's history."""

import base64
import json
import pathlib
import zlib

import pytest
from programs import lines_of, parse_program, recheck_program
from test_boot_memory import Board, storage_of
from test_persist_library import refuse_to_load

from firmware import codec, persist, program, restore
from firmware.errors import Refusal
from firmware.library import DrugLimits, Library, default_library
from firmware.program import _FIELDS
from firmware.store import Store

HOUR = 3_600_000_000
# Records the firmware before this one saved (tests/firmware/data: made by its own code from the programs below,
# each after an hour of dosing; "stopped": then stopped, an hour more): its storage files, and what it held.
RECORDS_0_3_0 = json.loads((pathlib.Path(__file__).parent / "data" / "records_0.3.0.json").read_text())["records"]

# Programs that use every kind of value a Program holds: flex steps, a patient bolus, a delayed bolus, a
# prime, a blend of three, soft-limit warnings, "drug none", the reservoir levels and a trial.
PROGRAMS = {
    "flex and patient bolus": [
        "drug morphine 20 mg/mL",
        "fill 20 mL",
        "flex 00:00 2 mg/day",
        "flex 07:00 4 mg/day",
        "flex 22:00 1 mg/day",
        "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day",
    ],
    "delayed bolus, levels, trial": [
        "drug baclofen 2 mg/mL",
        "fill 20 mL",
        "low-reservoir 3 mL",
        "empty-reservoir 0.5 mL",
        "basal 300 mcg/day",
        "bolus 50 mcg over 30 min after 2 h",
        "trial 3 day",
    ],
    "prime": ["drug morphine 1 mg/mL", "fill 20 mL", "basal 1 mg/day", "prime 0.2 mL over 20 min"],
    "blend of three": [
        "drug morphine 20 mg/mL",
        "drug bupivacaine 10 mg/mL",
        "drug clonidine 0.5 mg/mL",
        "fill 20 mL",
        "basal 3 mg/day",
    ],
    "soft-limit warning": ["drug morphine 20 mg/mL", "fill 20 mL", "basal 12 mg/day"],
    "no drug": ["drug none", "fill 20 mL", "basal 0.5 mL/day"],
}


def saved_pump(lines):
    """A pump running lines, saved: its storage files and its program."""
    storage = storage_of({})
    app = Board(storage).app
    app.tick()
    now = app.timebase.total_us()
    app.therapy.set_clock(now, 1_717_223_400_000_000)  # a flex schedule runs on the device clock
    p = parse_program(lines, app.library, [], None)
    app.put_in_force(p, now)
    app.save()
    return {k: bytes(v) for k, v in storage.files.items()}, app.therapy.program


def values(p):
    return {name: getattr(p, name) for name in _FIELDS}


def values_without_delivery(p):
    """What runs on once a bolus, prime or bridge is done (a restart may have cancelled it)."""
    v = values(p.without_delivery())
    del v["warnings"]
    return v


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_restart_runs_the_saved_program_from_its_items_without_checking_it_again(name, monkeypatch):
    files, before = saved_pump(PROGRAMS[name])
    refuse_to_load(monkeypatch, restore, "firmware.program_check")
    refuse_to_load(monkeypatch, program, "firmware.program_check")
    app = Board(storage_of(files)).app
    assert app.alarm == codec.ALARM_RESTART  # the record was restored, not refused
    after = app.therapy.program
    assert values_without_delivery(after) == values_without_delivery(before)
    if before.delivery() is None:
        assert values(after) == values(before)
        assert after.program_crc() == before.program_crc()  # THERAPY names the same program
    if name == "soft-limit warning":
        assert after.warnings == before.warnings != []  # the case has one to keep


def test_the_items_are_made_once_for_a_program_in_force():
    storage = storage_of({})
    app = Board(storage).app
    app.put_in_force(parse_program(PROGRAMS["prime"], app.library, [], None), app.timebase.total_us())
    app.save()
    first = app.therapy.program.saved
    app.save()
    assert first is not None and app.therapy.program.saved is first


def booted(record, how=None, monkeypatch=None):
    """A pump booted from one of RECORDS_0_3_0, its record changed by how first (PROGRAM_VALUES: none, of
    another firmware, of other lines, under another library)."""
    files = {k: zlib.decompress(base64.b64decode(v)) for k, v in record["files"].items()}
    if how is not None:
        real_load = Store.load

        def load(store, *args):
            seq, rec = real_load(store, *args)
            text = bytes(rec[persist.TAG_PROGRAM_VALUES])
            if how == "no values":
                del rec[persist.TAG_PROGRAM_VALUES]
                return seq, rec
            if how == "another firmware":
                text = text.replace(b"0.3.0", b"0.0.1", 1)
            elif how == "other lines":
                text = text.replace(b"flex 07:00 4 mg/day", b"flex 07:00 9 mg/day")
            else:
                text = text.replace(b"default-2026.11", b"site-9")
            rec[persist.TAG_PROGRAM_VALUES] = text
            return seq, rec

        monkeypatch.setattr(Store, "load", load)
    board = Board(storage_of(files))
    return board


@pytest.mark.parametrize("name", sorted(RECORDS_0_3_0))
def test_a_record_of_the_firmware_before_restores_its_program_from_its_values(name):
    record = RECORDS_0_3_0[name]
    app = booted(record).app  # (its first save writes what a check would have: program_write.saved, once)
    assert codec.ALARM_PROGRAM_UNREAD not in [a[0] for a in app.alarms._entries]
    assert app.guard.delivered() == record["delivered"]
    t = app.therapy
    if record["program"] is None:  # stopped: nothing runs; the lines kept for a resume are not read
        assert t.program is None and t.last_program is None and record["last_lines"]
        return
    new = parse_program(record["lines"], default_library(), [], None)  # the same lines sent as numbers today
    assert t.program.warnings == record["program"]["warnings"]  # the texts that firmware wrote, shown as they are
    old = {k: tuple(v) if isinstance(v, list) and k in ("basal", "bolus", "prime", "patient") else v
           for k, v in record["program"].items()}  # fmt: skip
    for k in ("drugs", "flex"):
        old[k] = [tuple(x) for x in old[k]]
    restored = values(t.program)
    once = ("bolus", "prime", "bridge_nl", "warnings")  # a restart may have ended what acts once (not warnings)
    assert {k: restored[k] for k in old if k not in once} == {k: v for k, v in old.items() if k not in once}
    assert all(restored[k] in (None, old[k]) for k in once[:3])
    assert values_without_delivery(t.program) == values_without_delivery(new)
    shown = [ln for ln in record["canonical"] if t.program.bolus is not None or not ln.startswith("bolus ")]
    assert lines_of(t.program) == shown  # what a review shows: the lines that firmware showed


@pytest.mark.parametrize("how", ["no values", "another firmware", "other lines", "another library"])
def test_a_program_the_record_cannot_give_is_not_run_and_the_guard_keeps_its_history(how, monkeypatch):
    record = RECORDS_0_3_0["flex and patient bolus"]
    board = booted(record, how, monkeypatch)
    app = board.app
    t = app.therapy
    assert t.program is None  # never a program it could not read
    alarm = [a for a in app.alarms._entries if a[0] == codec.ALARM_PROGRAM_UNREAD]
    assert alarm and "send it again" in alarm[0][2]
    assert app.alarms.mask & (1 << codec.ALARM_PROGRAM_UNREAD)
    assert app.guard.delivered() == record["delivered"]  # the dose guard's history is kept
    assert list(app.guard.saved_state()[0]) == record["guard"]
    assert t.drugs == [tuple(d) for d in record["program"]["drugs"]]  # the reservoir still holds its blend
    steps = board.motor.steps
    board.advance(2 * HOUR)
    assert board.motor.steps == steps  # stopped: no step


@pytest.mark.parametrize("how", ["values of the wrong shape", "items of the wrong shape", "an item's value refused"])
def test_a_program_section_of_the_wrong_shape_is_not_run_and_the_rest_is_restored(how, monkeypatch):
    """A CRC-checked record whose program section does not read (a bug wrote it) is no reason to lose the dose
    guard's history: the pump comes up stopped, saying to send the program again."""
    if how == "values of the wrong shape":
        record, tag, extra = RECORDS_0_3_0["prime"], persist.TAG_PROGRAM_VALUES, b"\nx what"
        files = {k: zlib.decompress(base64.b64decode(v)) for k, v in record["files"].items()}
        delivered = record["delivered"]
    else:
        files, _before = saved_pump(PROGRAMS["prime"])
        tag = persist.TAG_PROGRAM_ITEMS
        extra = b"\ni1,2,3" if how == "items of the wrong shape" else b"\ni3,0,0,0,0,0,0,0,0,"  # a fill of 0 nL
        delivered = 0
    real_load = Store.load

    def load(store, *args):
        seq, rec = real_load(store, *args)
        rec[tag] = bytes(rec[tag]) + extra
        return seq, rec

    monkeypatch.setattr(Store, "load", load)
    app = Board(storage_of(files)).app
    assert app.therapy.program is None
    assert app.alarms.mask & (1 << codec.ALARM_PROGRAM_UNREAD) and app.alarms.mask & (1 << codec.ALARM_RESTART)
    assert app.guard.delivered() == delivered


@pytest.mark.parametrize("row", [b"x what", b"dno tab"])
def test_values_of_the_wrong_shape_are_a_bad_record(row):
    record = RECORDS_0_3_0["prime"]
    files = {k: zlib.decompress(base64.b64decode(v)) for k, v in record["files"].items()}
    _seq, rec = Store(storage_of(files)).load({})
    data = bytes(rec[persist.TAG_PROGRAM_VALUES])
    lines = record["canonical"]
    assert restore._program_from_values(bytearray(data), lines, "default-2026.11") is not None
    with pytest.raises(ValueError):
        restore._program_from_values(bytearray(data + b"\n" + row), lines, "default-2026.11")


def _stage_site_library(app, version):
    """The factory library's numbers staged as a new version (LIB_DRUG, LIB_STAGE): its hash."""
    from firmware import codec
    from firmware.druglib import DEFAULT_NAMES, DEFAULT_NUMBERS

    for d, name in enumerate(DEFAULT_NAMES):
        app.commands.get(codec.LIB_DRUG)((d, name, *DEFAULT_NUMBERS[d]))
    return app.commands.get(codec.LIB_STAGE)((version, len(DEFAULT_NAMES)))[0]


@pytest.mark.parametrize("changed_since_stage", [False, True])
def test_a_library_commit_reads_the_running_program_again_only_if_it_changed_since_the_stage(
    monkeypatch, changed_since_stage
):
    # On the emulated Pico the commit's second reading of the running program found no room for the
    # parser's code after a long session; the stage's reading holds for the same program and blend.
    from firmware import codec

    app = Board(storage_of({})).app
    app.tick()
    lines = PROGRAMS["soft-limit warning"]
    app.put_in_force(parse_program(lines, app.library, [], None), app.timebase.total_us())
    lib_hash = _stage_site_library(app, "site-1")
    if changed_since_stage:  # another program went in force between the stage and the commit
        lines = [*lines[:2], "basal 3 mg/day"]
        app.put_in_force(parse_program(lines, app.library, app.therapy.drugs, None), app.timebase.total_us())
    loads = []
    real = program.call
    monkeypatch.setattr(program, "call", lambda module, *a: loads.append(module) or real(module, *a))
    app.commands.get(codec.LIB_COMMIT)((lib_hash, 0))
    assert loads == (["firmware.program_check"] if changed_since_stage else [])  # its values, not its lines
    running = app.therapy.program
    assert (app.library.version, running.library_version, lines_of(running)) == ("site-1", "site-1", lines)
    assert bool(running.warnings) == (not changed_since_stage)  # 12 mg/day passes morphine's soft limit; 3 does not


def _library_scaled(percent):
    """The factory library with every mass limit at percent of its value (a site's own, stricter or looser)."""
    lib = default_library()
    drugs = []
    for name in lib.order:
        numbers = list(lib.drugs[name].numbers)
        for i in range(1, 8):  # the masses and mass rates (codec.LIBRARY_FIELDS 2-8)
            numbers[i] = numbers[i] * percent // 100
        drugs.append(DrugLimits(name, numbers))
    return Library("site-%d" % percent, drugs)


@pytest.mark.parametrize("percent", [100, 60, 30, 10, 200])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_running_program_checked_again_under_another_library_is_judged_as_its_lines_would_be(name, percent):
    # A library change checks the running program's values again (program_check.recheck) instead of reading
    # its lines: it must accept, warn and refuse exactly as reading the lines under that library does.
    before = parse_program(PROGRAMS[name], default_library(), [], None)
    site = _library_scaled(percent)

    def outcome(judge):
        try:
            p = judge()
        except Refusal as e:
            return ("refused", e.field, e.message)
        return ("accepted", p.library_version, p.warnings, values(p))

    read = outcome(lambda: parse_program(lines_of(before), site, before.drugs, None))
    rechecked = outcome(lambda: recheck_program(before, site, before.drugs, None))
    assert rechecked == read
    assert before.library_version == default_library().version  # the running one is left as it was
