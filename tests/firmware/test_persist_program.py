"""The running program across a restart (issue 19): the record keeps what this firmware made of the program's
lines (its numbers, review rows and warnings), and a restart by the same firmware takes them without loading
the program parser (its bytecode and a re-read of every line were 40 KB of a restart's garbage on a 32-bit
board). A record from another firmware version, or values that are not the lines', is read from the lines
again. Either way the pump runs the very program it ran before the cut."""

import pytest
from test_boot_memory import Board, storage_of
from test_persist_library import refuse_to_load

from firmware import persist, program
from firmware.errors import Refusal
from firmware.library import DrugLimits, Library, default_library
from firmware.program import _FIELDS, parse_program, recheck_program
from firmware.store import Store

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


def no_parser(monkeypatch):
    refuse_to_load(monkeypatch, program, "firmware.program_text")


def restored_from_lines(files, monkeypatch):
    """The program a restart from files runs when the record holds no values: read from its lines."""
    real_load = Store.load

    def load(store, *args):
        seq, record = real_load(store, *args)
        del record[persist.TAG_PROGRAM_VALUES]
        return seq, record

    with monkeypatch.context() as m:
        m.setattr(Store, "load", load)
        return Board(storage_of(files)).app.therapy.program


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_restart_by_the_same_firmware_runs_the_saved_program_without_the_parser(name, monkeypatch):
    files, before = saved_pump(PROGRAMS[name])
    real_restore = persist.restore

    def restore(app, record):
        assert persist.TAG_PROGRAM_VALUES in record
        with monkeypatch.context() as m:
            no_parser(m)
            return real_restore(app, record)

    with monkeypatch.context() as m:
        m.setattr(persist, "restore", restore)
        app = Board(storage_of(files)).app
    assert app.alarm  # the restart alarm: the record was restored, not refused
    # The very program a restart that reads the lines runs (a restart cancels a bolus or prime).
    assert values(app.therapy.program) == values(restored_from_lines(files, monkeypatch))
    if before.delivery_line() is None:
        assert values(app.therapy.program) == values(before)
    if name == "soft-limit warning":
        assert before.warnings  # the case has one to keep


def test_the_values_are_made_once_for_a_program_in_force():
    storage = storage_of({})
    app = Board(storage).app
    app.put_in_force(parse_program(PROGRAMS["prime"], app.library, [], None), app.timebase.total_us())
    app.save()
    first = app.therapy.program.saved
    app.save()
    assert first is not None and app.therapy.program.saved is first


@pytest.mark.parametrize("how", ["another firmware", "no values", "other lines", "another library"])
def test_values_this_firmware_did_not_make_for_these_lines_are_not_taken(monkeypatch, how):
    files, before = saved_pump(PROGRAMS["flex and patient bolus"])
    real_load = Store.load
    parsed = []

    def load(store, *args):
        seq, record = real_load(store, *args)
        text = bytes(record[persist.TAG_PROGRAM_VALUES])
        if how == "no values":
            del record[persist.TAG_PROGRAM_VALUES]
            return seq, record
        if how == "another firmware":
            # values another firmware made: never taken, even where they differ from this one's reading
            text = text.replace(persist._firmware_version().encode(), b"0.0.1")
        elif how == "other lines":
            text = text.replace(b"flex 07:00 4 mg/day", b"flex 07:00 9 mg/day")
        else:
            text = text.replace(before.library_version.encode(), b"site-9")
        record[persist.TAG_PROGRAM_VALUES] = text.replace(b"0,1,4000000", b"0,1,9000000")
        return seq, record

    real_call = program.call

    def call(module, name, *args):
        parsed.append(module)
        return real_call(module, name, *args)

    monkeypatch.setattr(Store, "load", load)
    monkeypatch.setattr(program, "call", call)
    app = Board(storage_of(files)).app
    assert parsed == ["firmware.program_text"]  # read from its lines again
    assert values(app.therapy.program) == values(before)


@pytest.mark.parametrize(
    "row",
    [b"x what", b"dno tab"],
)
def test_values_of_the_wrong_shape_are_a_bad_record(row):
    lib = default_library()
    p = parse_program(PROGRAMS["prime"], lib, [], None)
    data = persist._program_values(p) + b"\n" + row
    with pytest.raises(ValueError):
        persist._program_from_values(bytearray(data), p.lines, lib.version)
    assert persist._program_from_values(bytearray(persist._program_values(p)), p.lines, lib.version) is not None


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
    assert (app.library.version, running.library_version, running.lines) == ("site-1", "site-1", lines)
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

    read = outcome(lambda: parse_program(before.lines, site, before.drugs, None))
    rechecked = outcome(lambda: recheck_program(before, site, before.drugs, None))
    assert rechecked == read
    assert before.library_version == default_library().version  # the running one is left as it was
