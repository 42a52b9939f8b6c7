"""The shared codec and units parser give the same bytes and answers on
CPython (the host) and on both MicroPython VMs (the firmware)."""

import os
import subprocess
import sys

import pytest
from vms import MP_DIR, ROOT, run_unix, run_wasm32

from firmware import codec

SCRIPT = MP_DIR / "wire_vectors.py"


@pytest.fixture(scope="module")
def cpython_output():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, check=True).stdout
    assert out.count(" ok\n") == 4 * len(codec.FIELDS)  # every message: request and reply, plain and with a MAC
    assert "MISMATCH" not in out
    assert "accepted" not in out  # no damaged frame got through
    return out


@pytest.mark.micropython
def test_unix_port_speaks_the_same_wire_as_the_host(cpython_output):
    assert run_unix(SCRIPT) == cpython_output


@pytest.mark.micropython32
def test_32bit_micropython_speaks_the_same_wire_as_the_host(cpython_output):
    assert run_wasm32(SCRIPT) == cpython_output
