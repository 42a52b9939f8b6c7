"""The alarm set (firmware/alarms.py): latched until the condition clears and a clinician
acknowledges, silence of at most 2 min ended by a new alarm, priorities, what refuses a bolus,
saved and restored; the same on CPython and both MicroPython VMs, the per-turn queries without
allocating."""

import os
import subprocess
import sys

import pytest
from vms import MP_DIR, ROOT, run_unix, run_wasm32

SCRIPT = MP_DIR / "alarm_vectors.py"
LOW, STALL, RESTART = 4, 11, 3


@pytest.fixture(scope="module")
def cpython_output():
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{MP_DIR}", PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, check=True)
    return proc.stdout.decode("utf-8")


def test_an_alarm_stays_until_its_condition_clears_and_it_is_acknowledged(cpython_output):
    out = cpython_output.splitlines()
    assert out[0] == "empty 0 0 0 0 0 []"
    assert out[1:3] == ["raised True", "again False"]  # latched once, not logged again
    assert out[3].startswith(f"low {1 << LOW} {LOW} 0 2 0 ")  # medium sounds; a low reservoir refuses no bolus
    assert out[4] == f"ack [{LOW}]"
    assert out[5].startswith(f"low acked, still present {1 << LOW} ")  # acknowledged, still there
    assert out[6] == "silence 120"
    assert out[7].startswith("silenced ") and " 0 1 [" in out[7]  # no tone, 1 us of silence left
    assert out[8].startswith("silence over ") and " 2 0 [" in out[8]
    assert out[10].startswith(f"a new alarm ends the silence {(1 << LOW) | (1 << STALL)} {STALL} {STALL} 3 0")
    assert out[12].startswith(f"three {(1 << LOW) | (1 << STALL) | (1 << RESTART)} {STALL} {RESTART} 3")
    assert out[13] == "clear True False"
    assert out[14].startswith(f"low gone: it was acknowledged {(1 << STALL) | (1 << RESTART)} ")
    assert out[16].startswith(f"stall stays: still present {1 << STALL} {STALL} {STALL} 3 ")
    assert out[18] == "none 0 0 0 0 0 []"
    assert out[19] == "restored True True 0"
    assert out[20] == "refused alarm code 99 is not known to this firmware"


@pytest.mark.micropython
def test_the_unix_port_keeps_alarms_as_the_host_does_without_allocating(cpython_output):
    out = run_unix(SCRIPT)
    assert out.splitlines()[-1].endswith(" True")  # the heap lock really locked
    assert out.splitlines()[:-1] == cpython_output.splitlines()[:-1]


@pytest.mark.micropython32
def test_the_32bit_vm_keeps_alarms_as_the_host_does_without_allocating(cpython_output):
    out = run_wasm32(SCRIPT)
    assert out.splitlines()[-1].endswith(" True")
    assert out.splitlines()[:-1] == cpython_output.splitlines()[:-1]
