"""The text parsers are on the pump's heap only while they read text (firmware/lazy.py,
issue 19): reading a program or a plain rate, or checking a program again, leaves none loaded, on
CPython and on both MicroPython VMs, and a call inside another leaves its modules to it."""

import os
import subprocess
import sys

import pytest
from vms import MP_DIR, ROOT, run_unix, run_wasm32

SCRIPT = MP_DIR / "parser_forgotten.py"


def _lines(out):
    return [line for line in out.splitlines() if not line.startswith("heap ")]


@pytest.fixture(scope="module")
def cpython_output():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, check=True, text=True).stdout
    lines = _lines(out)
    assert lines == [
        "library default-2026.11 8 []",
        "program flex 00:00 2 mg/day [(0, 100000), (420, 200000), (1320, 50000)] []",
        "refused daily dose []",
        "rate (500000, False) ['basal 0.5 mL/day'] []",
        "recheck refused daily dose []",
    ]
    return lines


def _heap(out):
    (line,) = [line for line in out.splitlines() if line.startswith("heap ")]
    return dict((k, int(v)) for k, v in (w.split("=") for w in line.split()[1:]))


@pytest.mark.micropython
def test_unix_port_forgets_the_parsers(cpython_output):
    out = run_unix(SCRIPT, heap="2M")
    assert _lines(out) == cpython_output
    heap = _heap(out)
    assert heap["parser"] > 10_000  # what keeping them would cost, compiled from source


@pytest.mark.micropython32
def test_32bit_micropython_forgets_the_parsers(cpython_output):
    out = run_wasm32(SCRIPT)
    assert _lines(out) == cpython_output


def test_a_call_forgets_only_the_text_modules_it_brought_in():
    import firmware
    from firmware import lazy

    for name in lazy.TRANSIENT:
        sys.modules.pop(name, None)
        if hasattr(firmware, name[9:]):
            delattr(firmware, name[9:])
    assert lazy.call("firmware.units", "parse_rate", "rate", "1 mL/day") == (1_000_000, False)
    assert not [m for m in lazy.TRANSIENT if m in sys.modules or hasattr(firmware, m[9:])]
    # Loaded before the call: left alone.
    import firmware.units

    assert lazy.call("firmware.units", "parse_count", "n", "3", 1, 5) == 3
    assert sys.modules["firmware.units"] is firmware.units
    # A refusal forgets them too.
    del sys.modules["firmware.units"]
    delattr(firmware, "units")
    from firmware.errors import Refusal

    with pytest.raises(Refusal):
        lazy.call("firmware.units", "parse_rate", "rate", "0 mL/day")
    assert "firmware.units" not in sys.modules


def test_the_dose_kinds_are_the_programs_in_the_parsers_and_the_formatters():
    from firmware import formats, program, units

    kinds = (program.DOSE_MASS, program.DOSE_VOLUME)
    assert (units.DOSE_MASS, units.DOSE_VOLUME) == kinds == (formats.DOSE_MASS, formats.DOSE_VOLUME)
