"""The shared codec gives the same bytes and answers on
CPython (the host) and on both MicroPython VMs (the firmware)."""

import os
import subprocess
import sys

import pytest
from pumpctl import schema
from vms import HOST_SCHEMA, MP_DIR, ROOT, run_unix, run_wasm32

SCRIPT = MP_DIR / "wire_vectors.py"


@pytest.fixture(scope="module")
def cpython_output():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(ROOT), str(HOST_SCHEMA.parent))))
    out = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, check=True).stdout
    assert out.count(" ok\n") == 4 * len(schema.FIELDS)  # every message: request and reply, plain and with a MAC
    assert "MISMATCH" not in out
    assert "accepted" not in out  # no damaged frame got through
    return out


@pytest.mark.micropython
def test_unix_port_speaks_the_same_wire_as_the_host(cpython_output):
    assert run_unix(SCRIPT) == cpython_output


@pytest.mark.micropython32
def test_32bit_micropython_speaks_the_same_wire_as_the_host(cpython_output):
    assert run_wasm32(SCRIPT) == cpython_output
