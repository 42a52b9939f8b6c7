"""The units parsers and formatters give the same answers, and the same
refusal messages, on CPython (the host) and on both MicroPython VMs (the
firmware), including values past 2**30 that are long ints on a 32-bit port."""

import os
import subprocess
import sys

import pytest
from vms import MP_DIR, ROOT, run_unix, run_wasm32

SCRIPT = MP_DIR / "units_vectors.py"


@pytest.fixture(scope="module")
def cpython_output():
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, check=True)
    out = proc.stdout.decode("utf-8")
    lines = out.splitlines()
    assert len(lines) >= 70
    assert sum(" refused " in line for line in lines) >= 25
    # Answers that need more than 31 bits, and every round trip held.
    assert "parse_dose_rate '2000 mg/day' (1, 2000000000, False)" in lines
    assert "parse_duration '400 day' 34560000000000" in lines
    assert "parse_dose_rate '999999999999 mg/s' (1, 86399999999913600000000, False)" in lines
    round_trips = [line for line in lines if line.split()[0] in ("concentration", "duration", "time")]
    assert round_trips and all(line.endswith(" True") for line in round_trips)
    return out


@pytest.mark.micropython
def test_unix_port_reads_quantities_as_the_host_does(cpython_output):
    assert run_unix(SCRIPT) == cpython_output


@pytest.mark.micropython32
def test_32bit_micropython_reads_quantities_as_the_host_does(cpython_output, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import sys\nprint(sys.maxsize, sys.platform)\n")
    assert run_wasm32(probe) == "2147483647 webassembly\n"  # really the 32-bit VM
    assert run_wasm32(SCRIPT) == cpython_output
