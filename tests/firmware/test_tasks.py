"""The pump's task loop (firmware/tasks.py), which runs its dosing, link, monitoring, tones and
telemetry tasks in place of asyncio, on the MicroPython unix port and the 32-bit webassembly VM
(tests/mp/tasks_loop.py): tasks take turns, sleeps and events wake the right task at the right time,
a task that fails ends alone (the pump's monitors notice a silent one) but the main one's failure
ends the loop, tasks do not outlive the loop, and a wait
allocates nothing."""

import pytest
from vms import MP_DIR, run_unix, run_wasm32

SCRIPT = MP_DIR / "tasks_loop.py"
EXPECTED = [
    # m, a and b each once a round, in the order they were added (main first)
    "turns main done m0 a0 b0 m1 a1 b1 m2 a2 b2",
    # fast wakes at 10 and 20 ms, slow at 200; main sleeps its 250 ms in full
    "sleeps True fast0 fast1 slow0",
    "events setting woke:True limit:False set:True True",
    "set and end True",
    "failing main ran on with 1 tasks on0",  # bad ended alone; "on" ran, and ended too
    "main failing raised: the dosing task failed queued 0",
    # 2 tasks while main ran; none at the start of the next run; the left one never ran its end
    "left 2 1 -",
]


@pytest.mark.micropython
def test_the_task_loop_on_the_unix_port():
    lines = run_unix(SCRIPT, timeout=60).splitlines()
    assert lines == [*EXPECTED, "locked 200"]


@pytest.mark.micropython32
def test_the_task_loop_on_the_32_bit_vm():
    lines = run_wasm32(SCRIPT, timeout=120).splitlines()
    assert lines == [*EXPECTED, "locked 200"]
