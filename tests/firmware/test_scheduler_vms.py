"""The same scheduler, unchanged, on real MicroPython VMs, under heap_lock().

tests/mp/scenario_runner.py replays the scenarios of tests/scenarios.py
through the firmware's Timebase and DoseScheduler with a tick counter that
wraps at 2**30, with the heap locked, on CPython, the unix port and the
32-bit webassembly port; each must give the exact step count at every
checkpoint. On the 32-bit VM a value past 2**30 would be a long int, which
allocates, which the lock turns into a MemoryError: so passing there also
proves the hot path stays within 31-bit small ints.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import scenarios
from oracle import ExactPrescription
from vms import MP_DIR, ROOT, run_unix, run_wasm32

RUNNER = MP_DIR / "scenario_runner.py"
RANDOM_SCENARIOS = 2000 if os.environ.get("PUMP_TEST_PROFILE") == "long" else 60


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    cases = scenarios.suite(RANDOM_SCENARIOS)
    folder = tmp_path_factory.mktemp("scenarios")
    (folder / "scenarios.bin").write_bytes(scenarios.encode(cases))
    return cases, folder


def assert_exact(cases, output, expect_heap_lock):
    heap_lock_works, results = scenarios.parse_output(output)
    assert heap_lock_works == expect_heap_lock
    assert len(results) == len(cases)
    for i, (case, (faults, checks)) in enumerate(zip(cases, results, strict=True)):
        assert faults == 0, f"scenario {i}: the timebase refused a tick"
        for (got, t_us), (owed, t_owed) in zip(checks, case.expected, strict=True):
            assert t_us == t_owed, f"scenario {i}: pump time {t_us} us, expected {t_owed}"
            assert got == owed, f"scenario {i} at {t_us} us: {got} steps issued, exact model owes {owed}"


def test_the_scenarios_cover_what_they_claim(suite):
    cases, _ = suite
    fast, slow = cases[0], cases[1]
    assert fast.now_us - fast.start_us >= 3 * scenarios.TICKS_WRAP  # several wraps of ticks_us
    assert fast.expected[-1][0] > 800_000  # at 10 mL/h in 10 nL steps
    interval_us = scenarios.MAX_STEP * scenarios.US_PER_MDAY // scenarios.MIN_RATE
    assert interval_us > scenarios.TICKS_WRAP  # steps further apart than the wrap
    assert slow.expected[-1][0] == 3
    decade = cases[2]
    assert decade.now_us >= 10 * 365 * 86_400 * 10**6
    assert decade.expected[-1][0] > 36_000  # 3.65 L at 10 uL a step


def test_core_exact_on_cpython(suite):
    cases, folder = suite
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, str(RUNNER)], cwd=folder, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert_exact(cases, out, expect_heap_lock=False)


@pytest.mark.micropython32
def test_core_exact_on_32bit_micropython_under_heap_lock(suite):
    cases, folder = suite
    assert_exact(cases, run_wasm32(RUNNER, Path(folder) / "scenarios.bin"), expect_heap_lock=True)


@pytest.mark.micropython
def test_core_exact_on_unix_port_under_heap_lock(suite):
    cases, folder = suite
    assert_exact(cases, run_unix(RUNNER, cwd=folder), expect_heap_lock=True)


@pytest.mark.micropython
def test_firmware_tick_on_the_sim_board_allocates_nothing():
    out = run_unix(MP_DIR / "app_tick_heaplock.py").split()
    steps, motor_steps, total_us, faults, waited = int(out[0]), int(out[1]), int(out[2]), int(out[3]), out[4]
    assert total_us == sum(997 + (i & 7) for i in range(300_000))  # about 300 s, past the first wrap
    exact = ExactPrescription(52_083)  # the sim board's calibrated step
    exact.set_rate(0, 240_000_000)
    assert steps == motor_steps == exact.steps_at(total_us) > 16_000
    assert faults == 0 and waited == "True"
