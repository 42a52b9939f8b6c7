"""The whole firmware on each real board's drivers, on the MicroPython unix port: the board file builds
its hardware against stand-ins for `machine`, `rp2` and `esp32` (tests/mp/board_boot.py), PumpApp boots
on it and doses 24 h of pump time with a tick counter that wraps as a Pico's, and every step the
scheduler issues must reach the step driver's hardware, the PIO's FIFO or the RMT channel."""

import shutil

import pytest
from pumpctl import words
from pumpctl.board_build import board_files
from vms import MP_DIR, run_unix

pytestmark = pytest.mark.micropython


@pytest.mark.parametrize("board", ["rp2_pico", "esp32_devkit"])
def test_a_day_at_half_a_ml_reaches_the_step_hardware_step_for_step(board, tmp_path):
    # Only the files `pumpctl flash` puts on the board: a module the firmware imports by name
    # (a command family, a text parser) and the flash leaves out fails here as on the board.
    flashed = tmp_path / "flashed"
    for source, target in board_files(board):
        (flashed / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, (flashed / target).with_suffix(".py"))
    out = run_unix(MP_DIR / "board_boot.py", args=(board, str(tmp_path / "pump")), path=(MP_DIR,), root=flashed)
    steps, pulses, detail, name, mode = out.split()
    assert (name, words.MODE_NAMES[int(mode)]) == (board, "continuous")
    assert int(steps) == 9600  # 0.5 mL/day in 52.083 nL steps, as the demo: exact
    assert int(pulses) == int(steps)  # none lost between the scheduler and the hardware, none added
    if board == "rp2_pico":
        assert int(detail) == 2_000 - 4  # the PIO interval word of a 2 ms step (hal/rp2_stepper.py)
    assert (tmp_path / "pump").is_dir()  # the board keeps its state on its filesystem
