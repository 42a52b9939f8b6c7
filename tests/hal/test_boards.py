"""The real boards' files (boards/): pins used once, sane constants, and make() building the
hardware from injected parts (tests/hal_fakes.py FakeParts); their drivers' hot paths under a heap
lock on the unix port (tests/mp/drivers_heaplock.py)."""

import importlib
import sys
from pathlib import Path

import pytest
from hal_fakes import FakeParts, total
from vms import MP_DIR, run_unix

from hal.stepper import StepperConfig

ROOT = Path(__file__).resolve().parents[2]


# -- boards ---------------------------------------------------------------------

BOARDS = ["rp2_pico", "esp32_devkit"]


@pytest.mark.parametrize("name", BOARDS)
def test_board_pins_are_each_used_once_and_constants_are_sane(name):
    board = importlib.import_module("boards." + name)
    pins = list(board.PINS.values())
    assert len(pins) == len(set(pins)), board.PINS
    assert {"step", "dir", "enable", "hx711_dout", "hx711_sck", "i2c_sda", "i2c_scl", "battery_adc", "buzzer"} <= set(
        board.PINS
    )
    assert board.MPY_ARCH == {"rp2_pico": "armv6m", "esp32_devkit": "xtensawin"}[name]
    assert board.STEP_VOLUME_PL == 52_083 and 0 < board.MAX_SLEEP_US <= 2**29 - 1
    StepperConfig(board.DRIVER, board.MICROSTEPS, board.STEP_MOTION_US)


@pytest.mark.parametrize("name", BOARDS)
@pytest.mark.parametrize("with_gauge", [True, False])
def test_board_make_builds_the_hardware_from_injected_parts(monkeypatch, tmp_path, name, with_gauge):
    import types

    import hal

    fake_mp = types.ModuleType("micropython")  # stdio_serial imports it (kbd_intr) at its top
    fake_mp.const = lambda x: x
    fake_mp.kbd_intr = lambda c: None
    monkeypatch.setitem(sys.modules, "micropython", fake_mp)
    import hal.stdio_serial

    board = importlib.import_module("boards." + name)
    parts = FakeParts(with_gauge)
    for module in ("parts", "parts_rp2", "parts_esp32"):  # the fake serves all three
        monkeypatch.setattr(hal, module, parts, raising=False)
        monkeypatch.setitem(sys.modules, "hal." + module, parts)
    monkeypatch.setattr(hal.stdio_serial, "StdioSerial", lambda: "serial")
    import hal.board_clock

    monkeypatch.setattr(hal.board_clock, "_ticks_us", lambda: 0)  # CPython's time has no ticks
    monkeypatch.setattr(hal.board_clock, "_ticks_diff", lambda a, b: a - b)
    hw = board.make({"storage": str(tmp_path / "pump")})
    assert hw.serial == "serial" and hw.sim is False
    assert hw.storage is hw.key_storage and (tmp_path / "pump").is_dir()
    assert hw.clock.idle == hw.motor.poll
    assert not hw.watchdog.started
    vref = getattr(board, "BATTERY_ADC_VREF_MV", 3300)
    assert hw.battery.voltage_mv() == (4160 if with_gauge else 40_000 * vref * 2 // 65535)
    assert len(hw.random_bytes(16)) == 16
    hw.motor.step(1)
    assert total(hw.motor) == 1
    used = [b[1] for b in parts.built if b[0] in ("out", "in", "adc", "pwm")]
    used += [b[2] for b in parts.built if b[0] in ("pio", "rmt")]
    assert len(used) == len(set(used))


# -- the hot paths on MicroPython, heap locked ------------------------------------


@pytest.mark.micropython
def test_driver_hot_paths_allocate_nothing_on_the_unix_port():
    out = run_unix(MP_DIR / "drivers_heaplock.py")
    assert out.strip().splitlines()[-1] == "ok", out
