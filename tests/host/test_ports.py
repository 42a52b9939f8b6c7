"""`pumpctl ports`, `--port auto` and the default port in the config file.

No USB device exists here, so serial.tools.list_ports.comports() is replaced by fakes (pyserial's
own ListPortInfo, filled in as its Linux backend fills it from sysfs). Everything else is real:
the ports `auto` picks are real simulator ptys, and the pump answers on them."""

import json
import os
import stat

import pytest
from pumpctl import cli, config, ports
from pumpctl.config import new_keys, save_keys
from serial.tools.list_ports_common import ListPortInfo


def usb_port(device, vid, pid, serial_number=None, manufacturer=None, product=None):
    p = ListPortInfo(device, skip_link_detection=True)
    p.vid, p.pid, p.serial_number, p.manufacturer, p.product = vid, pid, serial_number, manufacturer, product
    p.apply_usb_info()
    return p


def pico(device, serial_number="E6614C311B6A8B2A"):
    return usb_port(device, 0x2E8A, 0x0005, serial_number, "MicroPython", "Board in FS mode")


def cp2102(device, serial_number="0001"):
    return usb_port(device, 0x10C4, 0xEA60, serial_number, "Silicon Labs", "CP2102 USB to UART Bridge Controller")


def ch340(device):
    return usb_port(device, 0x1A86, 0x7523, None, None, "USB Serial")


def ftdi(device):
    return usb_port(device, 0x0403, 0x6001, "A10KZP45", "FTDI", "FT232R USB UART")


def esp32s3(device):
    return usb_port(device, 0x303A, 0x1001, "F4:12:FA:4C:2B:90", "Espressif", "USB JTAG/serial debug unit")


def uart(device="/dev/ttyS0"):
    return ListPortInfo(device, skip_link_detection=True)  # a PC's own UART: no USB id


@pytest.fixture
def attached(mocker):
    """Set what comports() reports: attached(port, ...)."""
    fake = mocker.patch("serial.tools.list_ports.comports", return_value=[])
    return lambda *found: setattr(fake, "return_value", list(found))


@pytest.fixture
def own_config(tmp_path, monkeypatch):
    """A config file of this test alone, and no PUMPCTL_PORT."""
    path = tmp_path / "pumpctl" / "config.toml"
    monkeypatch.setenv("PUMPCTL_CONFIG", str(path))
    monkeypatch.delenv("PUMPCTL_PORT", raising=False)
    return path


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# --- which ports look like a board ------------------------------------------------------------


@pytest.mark.parametrize(
    "vid, pid, verdict",
    [
        (0x2E8A, 0x0005, "yes"),  # a Pico running MicroPython
        (0x2E8A, 0x1020, "yes"),  # an RP2040 board's own MicroPython build
        (0x303A, 0x1001, "yes"),  # an ESP32-S3 on its native USB
        (0x303A, 0x4001, "yes"),
        (0x10C4, 0xEA60, "maybe"),  # CP210x on an ESP32 DevKit
        (0x1A86, 0x7523, "maybe"),  # CH340
        (0x0403, 0x6001, "maybe"),  # FTDI FT232
        (0x0403, 0x6015, "no"),  # FTDI FT231X: not in the checked list
        (0x2341, 0x0043, "no"),  # an Arduino Uno
        (None, None, "no"),  # no USB id at all
    ],
)
def test_a_board_is_known_by_its_usb_id(vid, pid, verdict):
    known = ports.identify(vid, pid)
    assert (known.micropython if known else "no") == verdict
    if known:
        assert known.source  # every id says where it comes from


def test_rows_hold_what_the_port_says_sorted_by_device():
    rows = ports.port_rows([cp2102("/dev/ttyUSB0"), uart(), pico("/dev/ttyACM0")])
    assert [r["device"] for r in rows] == ["/dev/ttyACM0", "/dev/ttyS0", "/dev/ttyUSB0"]
    assert rows[0] == {
        "device": "/dev/ttyACM0",
        "usb_id": "2E8A:0005",
        "vid": 0x2E8A,
        "pid": 0x0005,
        "serial_number": "E6614C311B6A8B2A",
        "manufacturer": "MicroPython",
        "product": "Board in FS mode",
        "description": "Board in FS mode",
        "micropython": "yes",
        "looks": "yes",
        "board": "Raspberry Pi RP2 (Pico) running MicroPython",
        "source": "MicroPython ports/rp2/mpconfigport.h: MICROPY_HW_USB_VID 0x2E8A, MICROPY_HW_USB_PID 0x0005",
    }
    assert rows[1]["usb_id"] is None and rows[1]["micropython"] == "no" and rows[1]["board"] is None
    assert rows[2]["micropython"] == "maybe" and rows[2]["looks"] == "maybe (USB-UART bridge)"


# --- pumpctl ports ----------------------------------------------------------------------------


def test_ports_prints_a_table(attached, own_config, capsys):
    attached(pico("/dev/ttyACM0"), cp2102("/dev/ttyUSB0"), ch340("/dev/ttyUSB1"), uart())
    code, out, err = run(capsys, "ports")
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "PORT          USB ID     SERIAL            MANUFACTURER / PRODUCT                               "
        "MICROPYTHON BOARD?",
        "/dev/ttyACM0  2E8A:0005  E6614C311B6A8B2A  MicroPython / Board in FS mode                       "
        "yes: Raspberry Pi RP2 (Pico) running MicroPython",
        "/dev/ttyS0    -          -                 -                                                    no",
        "/dev/ttyUSB0  10C4:EA60  0001              Silicon Labs / CP2102 USB to UART Bridge Controller  "
        "maybe (USB-UART bridge): Silicon Labs CP210x",
        "/dev/ttyUSB1  1A86:7523  -                 USB Serial                                           "
        "maybe (USB-UART bridge): WCH CH340",
        "without --port: none set (pumpctl ports --set-default PORT saves one)",
    ]


def test_ports_json_for_scripts(attached, own_config, capsys, monkeypatch):
    attached(esp32s3("/dev/ttyACM1"), ftdi("/dev/ttyUSB2"))
    monkeypatch.setenv("PUMPCTL_PORT", "/dev/ttyACM1")
    for argv in (["--json", "ports"], ["ports", "--json"]):
        code, out, _ = run(capsys, *argv)
        assert code == 0
        data = json.loads(out)
        assert data["pumpctl_port"] == "/dev/ttyACM1" and data["default_port"] is None
        assert [(r["device"], r["usb_id"], r["micropython"]) for r in data["ports"]] == [
            ("/dev/ttyACM1", "303A:1001", "yes"),
            ("/dev/ttyUSB2", "0403:6001", "maybe"),
        ]
        assert data["ports"][1]["serial_number"] == "A10KZP45" and data["ports"][1]["manufacturer"] == "FTDI"


def test_ports_with_none_attached_says_how_to_get_one(attached, own_config, capsys):
    code, out, _ = run(capsys, "ports")
    assert code == 0
    assert out.splitlines()[0] == (
        "no serial ports found: plug the pump in (a Pico shows up as /dev/ttyACM0, an ESP32 DevKit as "
        "/dev/ttyUSB0), or start a simulated one with pumpctl sim"
    )
    code, out, _ = run(capsys, "ports", "--json")
    assert json.loads(out)["ports"] == []


def test_the_rows_render_any_way():
    # The table is built from rows and cells, so another renderer (rich) can draw the same.
    rows = ports.port_rows([pico("/dev/ttyACM0")])
    assert ports.table_cells(rows[0]) == (
        "/dev/ttyACM0",
        "2E8A:0005",
        "E6614C311B6A8B2A",
        "MicroPython / Board in FS mode",
        "yes: Raspberry Pi RP2 (Pico) running MicroPython",
    )
    assert len(ports.COLUMNS) == 5


# --- the default port -------------------------------------------------------------------------


def test_set_default_keeps_the_keys_and_the_file_private(own_config, capsys):
    keys = new_keys("pump-7")
    save_keys(keys)
    code, out, _ = run(capsys, "ports", "--set-default", "/dev/ttyACM0")
    assert code == 0
    assert out.strip() == (
        f"default port set to /dev/ttyACM0 in {own_config} (/dev/ttyACM0 is not attached now); "
        "--port and PUMPCTL_PORT still come first"
    )
    assert config.default_port() == "/dev/ttyACM0"
    assert config.load_keys("pump-7") == keys
    assert stat.S_IMODE(own_config.stat().st_mode) == 0o600
    assert '[defaults]\nport = "/dev/ttyACM0"\n' in own_config.read_text()
    save_keys(new_keys("pump-8"))  # saving keys keeps the default
    assert config.default_port() == "/dev/ttyACM0"

    code, out, _ = run(capsys, "ports", "--clear-default")
    assert code == 0 and out.strip() == f"default port removed from {own_config}"
    assert config.default_port() is None and config.load_keys("pump-7") == keys


def test_a_default_port_must_be_a_plain_string(own_config, capsys):
    code, _, err = run(capsys, "ports", "--set-default", "/dev/tty ACM0\n")
    assert code == 2
    assert err.strip() == (
        "pumpctl: port '/dev/tty ACM0\\n': give a device path or a pyserial URL, without spaces around it"
    )
    assert not own_config.exists()


@pytest.mark.micropython
def test_the_default_port_is_used_without_port_or_pumpctl_port(sim, own_config, capsys, monkeypatch):
    code, _, _ = run(capsys, "ports", "--set-default", sim.port)
    assert code == 0
    code, out, err = run(capsys, "status")
    assert code == 0, err
    assert out.splitlines()[1] == "mode        stopped"

    # PUMPCTL_PORT comes before it, and --port before both
    monkeypatch.setenv("PUMPCTL_PORT", "/dev/ttyNOTHERE")
    code, _, err = run(capsys, "status")
    assert code == 3 and err.startswith("pumpctl: cannot open /dev/ttyNOTHERE: there is no such port")
    code, out, err = run(capsys, "--port", sim.port, "status")
    assert code == 0, err
    code, out, _ = run(capsys, "ports")
    assert out.splitlines()[-1] == "without --port: PUMPCTL_PORT=/dev/ttyNOTHERE"
    monkeypatch.delenv("PUMPCTL_PORT")
    code, out, _ = run(capsys, "ports")
    assert out.splitlines()[-1] == f"without --port: {sim.port} (the default in {own_config})"


def test_no_port_anywhere_names_all_three_ways(own_config, capsys):
    code, _, err = run(capsys, "status")
    assert code == 2
    assert err.strip() == (
        "pumpctl: no port given: use --port PORT or set PUMPCTL_PORT, or save a default with "
        "pumpctl ports --set-default PORT (pumpctl ports lists the attached ones, pumpctl sim prints one)"
    )


def test_a_default_port_in_a_file_others_can_read_is_refused(own_config, capsys):
    config.set_default_port("/dev/ttyACM0")
    os.chmod(own_config, 0o644)
    code, _, err = run(capsys, "status")
    assert code == 5
    assert err.strip() == (
        f"pumpctl: {own_config} holds pump keys but others can read it (mode 644): run chmod 600 {own_config}"
    )


# --- --port auto ------------------------------------------------------------------------------


@pytest.mark.micropython
def test_port_auto_finds_the_one_board(sim, attached, own_config, capsys):
    attached(uart(), pico(sim.port), ftdi("/dev/ttyUSB3"))  # the Pico is the simulator's pty
    code, out, err = run(capsys, "--port", "auto", "status")
    assert code == 0, err
    assert err == ""
    assert out.splitlines()[1] == "mode        stopped"


@pytest.mark.micropython
def test_port_auto_takes_the_one_bridge_and_says_it_guessed(sim, attached, own_config, capsys):
    attached(uart(), cp2102(sim.port))  # an ESP32 DevKit behind its CP2102
    code, out, err = run(capsys, "--port", "auto", "status")
    assert code == 0, err
    assert err.strip() == (
        f"pumpctl: --port auto: using {sim.port}, a USB-UART bridge (Silicon Labs CP210x): no port has a board's "
        "own USB id, and an ESP32 dev kit shows up like this"
    )


@pytest.mark.micropython
def test_port_auto_as_the_default_port(sim, attached, own_config, capsys):
    attached(esp32s3(sim.port))
    config.set_default_port("auto")
    code, out, err = run(capsys, "status")
    assert code == 0, err


def test_port_auto_with_no_board_says_plug_it_in(attached, own_config, capsys):
    attached(uart(), usb_port("/dev/ttyACM5", 0x2341, 0x0043, product="Arduino Uno"))
    code, _, err = run(capsys, "--port", "auto", "status")
    assert code == 3
    assert err.strip() == (
        "pumpctl: --port auto: no attached serial port looks like a MicroPython board (a Raspberry Pi or Espressif "
        "USB id, or a USB-UART bridge) (2 other serial ports: pumpctl ports lists them); plug the pump in, or give "
        "its port with --port PORT"
    )


def test_port_auto_with_several_boards_lists_them_and_picks_none(attached, own_config, capsys):
    attached(pico("/dev/ttyACM0", "E66141"), pico("/dev/ttyACM1", "E66142"), cp2102("/dev/ttyUSB0"))
    code, _, err = run(capsys, "--port", "auto", "status")
    assert code == 2
    assert err.strip() == (
        "pumpctl: --port auto: 2 attached ports look like a MicroPython board: "
        "/dev/ttyACM0 (2E8A:0005, Raspberry Pi RP2 (Pico) running MicroPython, serial E66141); "
        "/dev/ttyACM1 (2E8A:0005, Raspberry Pi RP2 (Pico) running MicroPython, serial E66142); "
        "give the pump's with --port PORT"
    )


def test_port_auto_with_several_bridges_and_no_board_picks_none(attached, own_config, capsys):
    attached(cp2102("/dev/ttyUSB0"), ftdi("/dev/ttyUSB1"))  # an ESP32 DevKit and a balance's cable?
    code, _, err = run(capsys, "--port", "auto", "status")
    assert code == 2
    assert err.strip() == (
        "pumpctl: --port auto: no port has a MicroPython board's own USB id and 2 are USB-UART bridges that may be "
        "one: /dev/ttyUSB0 (10C4:EA60, Silicon Labs CP210x, serial 0001); "
        "/dev/ttyUSB1 (0403:6001, FTDI FT232, serial A10KZP45); give the pump's with --port PORT"
    )
