"""A program's checks are on the pump's heap only while they check (firmware/lazy.py, issue 19):
building a program from its items or a plain rate's, or checking a program again, leaves none loaded,
on CPython and on both MicroPython VMs, and a call inside another leaves its modules to it."""

import os
import subprocess
import sys

import pytest
from vms import MP_DIR, ROOT, run_unix, run_wasm32

from firmware import codec

SCRIPT = MP_DIR / "parser_forgotten.py"


def _lines(out):
    return [line for line in out.splitlines() if not line.startswith("heap ")]


@pytest.fixture(scope="module")
def cpython_output():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, check=True, text=True).stdout
    lines = _lines(out)
    crc = lines[1].split()[1]
    assert lines == [
        "library default-2026.11 8 []",
        "program %s [(0, 100000), (420, 200000), (1320, 50000)] []" % crc,
        "refused daily dose []",
        "rate (2, 500000) []",
        "recheck refused daily dose []",
    ]
    return lines


def test_the_script_sends_the_items_pumpctl_sends():
    from programs import items

    script = SCRIPT.read_text()
    namespace = {}
    exec(script[script.index("PROGRAM = (") : script.index("def loaded")], namespace)  # its two constants
    assert namespace["PROGRAM"] == tuple(
        items(
            [
                "drug morphine 20 mg/mL",
                "fill 20 mL",
                "flex 00:00 2 mg/day",
                "flex 07:00 4 mg/day",
                "flex 22:00 1 mg/day",
                "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day",
            ]
        )
    )
    assert namespace["TOO_MUCH"] == tuple(items(["basal 2 mg/day", "bolus 50 mg over 1 h"]))


def _heap(out):
    (line,) = [line for line in out.splitlines() if line.startswith("heap ")]
    return dict((k, int(v)) for k, v in (w.split("=") for w in line.split()[1:]))


@pytest.mark.micropython
def test_unix_port_forgets_the_parsers(cpython_output):
    out = run_unix(SCRIPT, heap="2M")
    assert _lines(out) == cpython_output
    heap = _heap(out)
    assert (
        heap["parser"] > 5_000
    )  # what keeping the checks would cost, compiled from source (the parsers are the host's)


@pytest.mark.micropython32
def test_32bit_micropython_forgets_the_parsers(cpython_output):
    out = run_wasm32(SCRIPT)
    assert _lines(out) == cpython_output


def test_a_call_forgets_only_the_text_modules_it_brought_in(monkeypatch):
    import firmware
    from firmware import lazy

    # Put back after the test: other tests patch functions of the modules they imported (restore.py's).
    for name in lazy.TRANSIENT:
        monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.delattr(firmware, name[9:], raising=False)
    assert lazy.call("firmware.program_items", "token", 3, 7) == "{p3|7}"
    assert not [m for m in lazy.TRANSIENT if m in sys.modules or hasattr(firmware, m[9:])]
    # Loaded before the call: left alone.
    import firmware.program_items

    assert lazy.call("firmware.program_items", "token", 1) == "{p1}"
    assert sys.modules["firmware.program_items"] is firmware.program_items
    # A refusal forgets them too.
    monkeypatch.delitem(sys.modules, "firmware.program_items")
    monkeypatch.delattr(firmware, "program_items")
    from firmware.errors import Refusal

    with pytest.raises(Refusal):
        lazy.call("firmware.program_items", "build", [], None)
    assert "firmware.program_items" not in sys.modules


def test_the_dose_kinds_are_the_programs_in_the_parsers_and_the_formatters():
    from pumpctl import formats, units

    from firmware import program

    kinds = (program.DOSE_MASS, program.DOSE_VOLUME)
    assert (units.DOSE_MASS, units.DOSE_VOLUME) == kinds == (formats.DOSE_MASS, formats.DOSE_VOLUME)
    assert (codec.DOSE_MASS, codec.DOSE_VOLUME) == kinds  # as STAGE_ITEM's dose_kind carries them


def test_a_programs_checks_are_on_the_heap_only_while_its_lines_come(monkeypatch):
    # STAGE_ITEM loads what STAGE checks a program with, so that no one command both loads and checks;
    # STAGE, any other command and the end of the session forget it.
    from programs import items
    from test_boot_memory import Board, storage_of

    import firmware
    from firmware import lazy

    for name in lazy.TRANSIENT:
        monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.delattr(firmware, name[9:], raising=False)

    def loaded():
        return [m for m in lazy.TRANSIENT if m in sys.modules or hasattr(firmware, m[9:])]

    app = Board(storage_of({})).app
    get = app.commands.get
    lines = items(["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"])
    checks = ["firmware.program_check", "firmware.program_write"]

    def stage_lines():
        for i, it in enumerate(lines):
            assert get(codec.STAGE_ITEM)((i, *it)) == (i + 1,)
            assert loaded() == checks

    stage_lines()
    get(codec.STATUS)(())  # another command between the lines: they stay staged, the checks go
    assert loaded() == []
    assert app.staging.items
    stage_lines()
    rows, warnings, _crc, _expires_s = get(codec.STAGE)(())
    assert (rows, warnings) == (3, 0)
    assert loaded() == []
    assert get(codec.STAGE_ITEM)((0, *lines[0])) == (1,)
    assert loaded() == checks
    app._session_ended("timeout")
    assert loaded() == []
