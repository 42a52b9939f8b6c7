"""The real boards' monitors (hal/__init__.py, "The monitors"): rp2_pico and esp32_devkit each offer
every one on their Hardware. On CPython with recording fakes of hal.parts (tests/hal_fakes.py),
and on the MicroPython unix port against the stand-ins for machine, rp2 and esp32
(tests/mp/board_standins.py, tests/mp/board_monitors.py):

  reservoir       the HX711, only with the load-cell calibration in the board's options; its volume
                  from raw counts; bad or partial calibrations refused, naming the option
  reset_cause     machine.reset_cause() through each port's constants, and a port lacking some
  firmware_check  hal/manifest.check against a manifest that `pumpctl flash` writes for real files
  motor_check     a TMC2209's DIAG at the moment of the check; blind (None) for a driver without one
  clock.running   the tick counter advances, within a bounded busy wait
"""

import importlib
import json
import re
import sys
import types
from pathlib import Path

import pytest
from hal_fakes import AutoChip, FakeParts, Pin
from vms import MP_DIR, run_unix

import hal.parts
from hal import manifest
from hal.board_clock import _RUNNING_READS, BoardClock
from hal.board_common import DIAG_FAULT, loadcell_calibration
from hal.hx711 import HX711

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ["rp2_pico", "esp32_devkit"]
CALIBRATION = {"loadcell-offset": "-1200", "loadcell-counts": "41230", "loadcell-mg": "100000"}

# machine's reset constants on each port (MicroPython ports/rp2/modmachine.c, ports/esp32/modmachine.c)
RP2_RESETS = {"PWRON_RESET": 1, "WDT_RESET": 3}
ESP32_RESETS = {"PWRON_RESET": 1, "HARD_RESET": 2, "WDT_RESET": 3, "DEEPSLEEP_RESET": 4, "SOFT_RESET": 5}


def fake_machine(constants, cause):
    machine = types.SimpleNamespace(**constants)
    machine.reset_cause = lambda: cause
    return machine


class MonitorParts(FakeParts):
    """FakeParts with an HX711 chip on the load-cell pins, a DIAG line at a level the test sets, and
    hal.parts' own reset_cause() (which reads `machine`: the test puts a fake one in sys.modules)."""

    def __init__(self, pins, words=(), diag=0):
        super().__init__(with_gauge=False)
        self.pins = pins
        self.chip = AutoChip(words)
        self.diag = Pin(diag)

    def pin_out(self, n, value=0):
        if n == self.pins["hx711_sck"]:
            self.built.append(("out", n))
            return self.chip.sck
        return super().pin_out(n, value)

    def pin_in(self, n, pull=None):
        self.built.append(("in", n))
        if n == self.pins["hx711_dout"]:
            return self.chip.dout
        if n == self.pins["diag"]:
            return self.diag
        return Pin(0)

    reset_cause = staticmethod(hal.parts.reset_cause)


@pytest.fixture
def build(monkeypatch, tmp_path):
    """build(name, options, words=(), diag=0) -> (board module, hw, parts): the board made from
    injected parts, as tests/hal/test_boards.py's test_board_make_builds_the_hardware_from_injected_parts."""
    fake_mp = types.ModuleType("micropython")  # stdio_serial imports it (kbd_intr) at its top
    fake_mp.const = lambda x: x
    fake_mp.kbd_intr = lambda c: None
    monkeypatch.setitem(sys.modules, "micropython", fake_mp)
    import hal.board_clock
    import hal.stdio_serial

    monkeypatch.setattr(hal.stdio_serial, "StdioSerial", lambda: "serial")
    monkeypatch.setattr(hal.board_clock, "_ticks_us", lambda: 0)  # CPython's time has no ticks
    monkeypatch.setattr(hal.board_clock, "_ticks_diff", lambda a, b: a - b)

    def make(name, options=None, words=(), diag=0, driver=None):
        board = importlib.import_module("boards." + name)
        if driver is not None:
            monkeypatch.setattr(board, "DRIVER", driver)
        parts = MonitorParts(board.PINS, words, diag)
        for module in ("parts", "parts_rp2", "parts_esp32"):  # the fake serves all three
            monkeypatch.setattr(hal, module, parts, raising=False)
            monkeypatch.setitem(sys.modules, "hal." + module, parts)
        hw = board.make({"storage": str(tmp_path / "pump"), **(options or {})})
        return board, hw, parts

    return make


# -- every monitor of the contract is there ---------------------------------------------------------


def contract_names():
    """The names hal/__init__.py's "The monitors" section lists (reservoir, ..., clock.running)."""
    text = (ROOT / "hal" / "__init__.py").read_text()
    section = text[text.index("# The monitors") : text.index("# sim/")]
    return re.findall(r"^#   ([a-z_]+(?:\.[a-z_]+)?)", section, re.M)


@pytest.mark.parametrize("name", BOARDS)
def test_the_board_offers_every_monitor_of_the_contract(build, name):
    names = contract_names()
    assert {"reservoir", "encoder", "occlusion", "reset_cause", "motor_check", "clock.running"} <= set(names)
    board, hw, _ = build(name)
    for attr in names:
        obj = hw
        for part in attr.split("."):
            assert hasattr(obj, part), "%s has no %s" % (name, attr)
            obj = getattr(obj, part)
    assert hw.encoder is None and hw.occlusion is None  # not wired on either board
    for attr in ("reset_cause", "firmware_check", "motor_check"):
        assert callable(getattr(hw, attr))
    assert hw.battery.voltage_mv() > 0
    # Only a driver with a fault output has a stall line to watch: an unwired DIAG input could float high.
    if board.DRIVER == "TMC2209":
        assert hw.stall.stalled() is False
    else:
        assert hw.stall is None


# -- the reservoir: the load cell, once calibrated ----------------------------------------------------


@pytest.mark.parametrize("name", BOARDS)
def test_without_a_calibration_there_is_no_reservoir_sensor_only_the_raw_load_cell(build, name):
    _, hw, _ = build(name, words=[5_000])
    assert hw.reservoir is None
    assert isinstance(hw.loadcell, HX711) and hw.loadcell.read_raw() == 5_000  # raw counts, for calibrating


@pytest.mark.parametrize("name", BOARDS)
def test_a_calibrated_load_cell_is_the_reservoir_and_reads_its_volume_from_raw_counts(build, name):
    _, hw, parts = build(name, CALIBRATION)
    assert hw.reservoir is hw.loadcell
    assert (hw.loadcell.offset, hw.loadcell.cal_counts, hw.loadcell.cal_mg) == (-1200, 41_230, 100_000)
    assert hw.reservoir.volume_nl(998) is None  # no conversion ready: none now, and it did not wait
    parts.chip.words = [(-1200 + 8_246) & 0xFFFFFF]  # 8246 counts above the tare: 20_000 mg
    assert hw.reservoir.volume_nl(998) == 20_000 * 1_000_000 // 998 == 20_040_080
    parts.chip.words = [(-1200 - 412) & 0xFFFFFF]  # below the tare (two's complement on the wire)
    assert hw.reservoir.volume_nl(1000) == -(412 * 100_000 // 41_230) * 1_000 == -999_000


@pytest.mark.parametrize("name", BOARDS)
@pytest.mark.parametrize(
    "option,value,message",
    [
        ("loadcell-offset", "abc", r"--loadcell-offset must be a whole number of HX711 counts, .*not 'abc'"),
        ("loadcell-offset", "1.5", r"--loadcell-offset must be a whole number"),
        ("loadcell-offset", "8388608", r"--loadcell-offset must be -8388608..8388607 HX711 counts, not 8388608"),
        ("loadcell-offset", "-8388609", r"--loadcell-offset must be -8388608..8388607"),
        ("loadcell-counts", "0", r"--loadcell-counts must be 1..536870911 HX711 counts, not 0"),
        ("loadcell-counts", "-41230", r"--loadcell-counts must be 1..536870911"),
        ("loadcell-counts", "536870912", r"--loadcell-counts must be 1..536870911"),
        ("loadcell-mg", "", r"--loadcell-mg must be a whole number of mg, .*not ''"),
        ("loadcell-mg", "0x10", r"--loadcell-mg must be a whole number"),
        ("loadcell-mg", "1_000", r"--loadcell-mg must be a whole number"),  # CPython's int() would take it
        ("loadcell-mg", "2638720", r"--loadcell-mg 2638720 per --loadcell-counts 41230 is 64 mg per count or more"),
    ],
)
def test_a_bad_calibration_value_is_refused_naming_the_option(build, name, option, value, message):
    with pytest.raises(ValueError, match=message):
        build(name, {**CALIBRATION, option: value})


def test_the_calibration_bounds_are_exactly_the_drivers():
    assert loadcell_calibration({}) is None and loadcell_calibration({"storage": "/pump"}) is None
    edge = {"loadcell-offset": " -8388608 ", "loadcell-counts": "41230", "loadcell-mg": str(64 * 41_230 - 1)}
    assert loadcell_calibration(edge) == (-8_388_608, 41_230, 2_638_719)  # 63.99 mg per count: kept
    assert loadcell_calibration({**CALIBRATION, "loadcell-offset": "8388607"})[0] == 8_388_607
    assert loadcell_calibration({**CALIBRATION, "loadcell-counts": "536870911"})[1] == 2**29 - 1


@pytest.mark.parametrize("name", BOARDS)
@pytest.mark.parametrize("missing", [["loadcell-offset"], ["loadcell-counts", "loadcell-mg"]])
def test_a_calibration_given_in_part_is_refused_naming_what_is_missing(build, name, missing):
    given = {k: v for k, v in CALIBRATION.items() if k not in missing}
    with pytest.raises(ValueError, match="needs --%s too" % " and --".join(missing)):
        build(name, given)


# -- reset_cause ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "constants,cause,meaning",
    [(RP2_RESETS, 1, "power"), (RP2_RESETS, 3, "watchdog")]
    + [(RP2_RESETS, c, "unknown") for c in (0, 2, 4, 5)]  # rp2 names no hard, soft or deep-sleep reset
    + [(ESP32_RESETS, 1, "power"), (ESP32_RESETS, 2, "reset"), (ESP32_RESETS, 3, "watchdog")]
    + [(ESP32_RESETS, 4, "reset"), (ESP32_RESETS, 5, "reset"), (ESP32_RESETS, 0, "unknown")],
)
def test_reset_cause_maps_each_constant_of_the_port(monkeypatch, constants, cause, meaning):
    assert hal.parts.reset_cause_name(fake_machine(constants, cause)) == meaning
    monkeypatch.setitem(sys.modules, "machine", fake_machine(constants, cause))
    assert hal.parts.reset_cause() == meaning


def test_reset_cause_on_a_port_lacking_constants_or_reset_cause_itself_is_unknown():
    assert hal.parts.reset_cause_name(fake_machine({}, 1)) == "unknown"
    assert hal.parts.reset_cause_name(fake_machine({"WDT_RESET": 3}, 1)) == "unknown"
    assert hal.parts.reset_cause_name(fake_machine({"WDT_RESET": 3}, 3)) == "watchdog"
    assert hal.parts.reset_cause_name(types.SimpleNamespace(PWRON_RESET=1)) == "unknown"  # no reset_cause()


@pytest.mark.parametrize("name,constants", [("rp2_pico", RP2_RESETS), ("esp32_devkit", ESP32_RESETS)])
def test_the_board_reads_the_reset_cause_when_asked_not_when_built(build, monkeypatch, name, constants):
    monkeypatch.delitem(sys.modules, "machine", raising=False)
    _, hw, _ = build(name)  # no machine at all yet: building does not read it
    monkeypatch.setitem(sys.modules, "machine", fake_machine(constants, constants["WDT_RESET"]))
    assert hw.reset_cause() == "watchdog"
    monkeypatch.setitem(sys.modules, "machine", fake_machine(constants, constants["PWRON_RESET"]))
    assert hw.reset_cause() == "power"


# -- firmware_check: the manifest that pumpctl flash writes --------------------------------------------

SOURCES = ["hal/manifest.py", "hal/hx711.py", "boards/rp2_pico.py"]


@pytest.fixture
def flashed(tmp_path):
    """A folder as `pumpctl flash` leaves a board's root: real modules compiled for the Pico by its
    mpy-cross step, the generated main.py, and the manifest of them that board_build.manifest() writes."""
    from pumpctl import board_build as build

    root = tmp_path / "root"
    files = [
        build.BoardFile(src[:-3] + ".mpy", build.compile_module(build.ROOT / src, "armv6m", tmp_path), build.ROOT / src)
        for src in SOURCES
    ] + [build.BoardFile(build.BOOT_FILE, build.BOOT_SOURCE.encode())]
    for f in files:
        (root / f.target).parent.mkdir(parents=True, exist_ok=True)
        (root / f.target).write_bytes(f.data)
    (root / build.MANIFEST_FILE).write_bytes(build.manifest(files))
    assert build.MANIFEST_FILE == manifest.MANIFEST_FILE  # the name the board looks for
    return root


def spoil(root, case):
    """Change the flashed folder for one case; the problems the check must then find."""
    if case == "all match":
        return []
    if case == "one byte changed":
        path = root / "hal" / "hx711.mpy"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        return ["hal/hx711.mpy differs from the manifest"]
    if case == "a file missing":
        (root / "main.py").unlink()
        return ["main.py is missing"]
    (root / "manifest.sha256").unlink()  # "no manifest": a simulator run from the source tree
    return None


CASES = ["all match", "one byte changed", "a file missing", "no manifest"]


@pytest.mark.parametrize("case", CASES)
def test_firmware_check_on_cpython(flashed, monkeypatch, case):
    expect = spoil(flashed, case)
    assert manifest.check(str(flashed)) == expect
    assert manifest.check(str(flashed) + "/") == expect
    monkeypatch.chdir(flashed)
    assert manifest.check("") == expect  # what a board asks: its working folder, the root


@pytest.mark.micropython
@pytest.mark.parametrize("case", CASES)
def test_firmware_check_on_the_unix_port(flashed, case):
    expect = spoil(flashed, case)
    out = run_unix(MP_DIR / "manifest_check.py", cwd=flashed, args=(str(flashed),), path=(MP_DIR,))
    assert json.loads(out) == [expect, expect]


@pytest.mark.parametrize("name", BOARDS)
def test_the_board_checks_the_folder_it_runs_in(build, flashed, monkeypatch, name):
    _, hw, _ = build(name)
    monkeypatch.chdir(flashed)
    assert hw.firmware_check() == []
    spoil(flashed, "one byte changed")
    assert hw.firmware_check() == ["hal/hx711.mpy differs from the manifest"]
    monkeypatch.chdir(flashed / "hal")  # no manifest here
    assert hw.firmware_check() is None


# -- motor_check --------------------------------------------------------------------------------------


def test_a_tmc2209_with_diag_active_reports_a_fault_at_the_moment_of_the_check(build):
    board, hw, parts = build("rp2_pico", diag=1)
    assert board.DRIVER == "TMC2209"
    assert hw.motor_check() == DIAG_FAULT == "stepper driver reports a fault (DIAG active)"
    parts.diag.level = 0  # the fault cleared (the datasheet: ENN high resets it)
    assert hw.motor_check() is None
    parts.diag.level = 1
    assert hw.motor_check() == DIAG_FAULT


def test_a_tmc2209_with_diag_inactive_responds(build):
    _, hw, parts = build("rp2_pico", diag=0)
    assert hw.motor_check() is None
    parts.diag.irq_handler(parts.diag)  # a stall pulse came and went: the stall monitor's, not this check's
    assert hw.stall.stalled() and hw.motor_check() is None


@pytest.mark.parametrize("name,driver", [("esp32_devkit", None), ("esp32_devkit", "DRV8825"), ("rp2_pico", "A4988")])
def test_a_driver_without_feedback_cannot_be_seen_so_the_check_says_none(build, name, driver):
    board, hw, _ = build(name, diag=1, driver=driver)
    assert board.DRIVER in ("A4988", "DRV8825")  # esp32_devkit's own is an A4988
    assert hw.motor.config.driver == board.DRIVER
    assert hw.motor_check() is None  # even with the (unconnected) DIAG pin reading high
    assert hw.stall is None  # and no stall line is watched: it would raise false stall alarms


def test_the_check_follows_the_driver_the_board_picks(build):
    _, hw, _ = build("esp32_devkit", diag=1, driver="TMC2209")
    assert hw.motor_check() == DIAG_FAULT


# -- clock.running ---------------------------------------------------------------------------------


def wrap_diff(a, b):
    """time.ticks_diff of a port whose ticks wrap at 2**30 (a Pico's)."""
    return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000


def counter(values):
    """ticks_us() giving values in turn (the last one for ever), counting its reads."""
    values = list(values)

    def ticks_us():
        ticks_us.reads += 1
        return values.pop(0) if len(values) > 1 else values[0]

    ticks_us.reads = 0
    return ticks_us


@pytest.mark.parametrize(
    "values,running,reads",
    [
        ([100, 101], True, 2),  # a running counter: the next read
        ([100] * 500 + [101], True, 501),  # a slow read of a slower counter
        ([0x3FFFFFFF, 0], True, 2),  # across the wrap
        ([100], False, 1 + _RUNNING_READS),  # stopped: gives up, bounded
        ([100, 99], False, 1 + _RUNNING_READS),  # backwards is not advancing
    ],
)
def test_clock_running_is_a_bounded_busy_wait_for_the_counter_to_advance(values, running, reads):
    ticks = counter(values)
    clock = BoardClock(None, ticks_us=ticks, ticks_diff=wrap_diff)
    assert clock.running() is running
    assert ticks.reads == reads
    assert _RUNNING_READS == 10_000


# -- all of it on MicroPython --------------------------------------------------------------------------


@pytest.mark.micropython
@pytest.mark.parametrize("name", BOARDS)
def test_the_monitors_on_the_unix_port(flashed, tmp_path, name):
    out = json.loads(run_unix(MP_DIR / "board_monitors.py", cwd=flashed, args=(name, str(tmp_path / "pump"))))
    assert out["plain"] == [True, True, None, None]  # no reservoir uncalibrated; the raw cell; no encoder, occlusion
    assert out["calibrated"] == [True, -1200, 41_230, 100_000]
    assert out["volumes"] == [None, 20_040_080, None]
    assert out["refused"] == [
        "--loadcell-offset must be -8388608..8388607 HX711 counts, not 8388608",
        "--loadcell-counts must be a whole number of HX711 counts, 1..536870911, not '12.5'",
        "--loadcell-mg must be a whole number of mg, 1..536870911, not '1_000'",
        "the load cell calibration needs --loadcell-offset and --loadcell-counts too"
        " (--loadcell-offset, --loadcell-counts and --loadcell-mg go together)",
    ]
    if name == "rp2_pico":  # machine.reset_cause() 0..6 through the port's constants
        assert out["reset_causes"] == ["unknown", "power", "unknown", "watchdog", "unknown", "unknown", "unknown"]
        assert out["motor_checks"] == [None, DIAG_FAULT, None]  # TMC2209: DIAG low, high, low again
    else:
        assert out["reset_causes"] == ["unknown", "power", "reset", "watchdog", "reset", "reset", "unknown"]
        assert out["motor_checks"] == [None, None, None]  # A4988: nothing to see
    assert out["running"] is True and out["stopped"] is False  # real time.ticks_us, then a stopped one
    assert out["firmware_check"] == []  # run in the flashed folder
    assert out["manifest_kept"] is False  # checked once a boot: its code goes after the check
