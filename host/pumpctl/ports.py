"""The serial ports attached to this computer, and which look like a MicroPython board.

    from pumpctl.ports import port_rows, auto_port

    for row in port_rows():        # one dict per port, for a table or JSON
        print(row["device"], row["usb_id"], row["micropython"])
    port = auto_port()             # the one attached board, or an error saying why not

A board is recognised by its USB vendor and product id (VID:PID), never by
opening it: listing ports must not disturb a pump (or a balance) that another
program is talking to. Boards that speak USB themselves (a Pico, an ESP32-S2/S3
or C3 on its native USB) show their maker's id: those are "yes". Most ESP32
dev kits (the ESP32 DevKit of boards/esp32_devkit.py among them) reach USB
through a USB-UART bridge chip, which lab balances and other serial gadgets use
too: those are "maybe (USB-UART bridge)". Anything else is "no".

Where each id comes from (checked in the sources named; an id not listed here
was not checked, so it is not claimed):

- 2E8A:0005: MicroPython's RP2 port, ports/rp2/mpconfigport.h:
  MICROPY_HW_USB_VID (0x2E8A) "Raspberry Pi", MICROPY_HW_USB_PID (0x0005)
  "RP2 MicroPython" (the default every RP2 board build uses unless its
  mpconfigboard.h sets its own).
- 2E8A with another PID: the same vendor id, Raspberry Pi; board builds set
  their own PID (ports/rp2/boards/WAVESHARE_RP2040_PLUS_16MB/mpconfigboard.h:
  0x2E8A, 0x1020). Which PIDs are MicroPython is not checked: "yes" for the vendor.
- 303A: Espressif's vendor id. esptool-js documents ESPRESSIF_VID = 0x303a,
  "Espressif USB vendor ID used by native USB-Serial/JTAG and USB-OTG"
  (https://espressif.github.io/esptool-js/docs/variables/ESPRESSIF_VID.html);
  MicroPython's ESP32-S3 board files set MICROPY_HW_USB_VID 0x303A
  (ports/esp32/boards/UM_TINYS3/mpconfigboard.h). Individual PIDs are not checked.
- 10C4:EA60: Silicon Labs CP210x, Linux drivers/usb/serial/cp210x.c:
  USB_DEVICE(0x10C4, 0xEA60) /* Silicon Labs factory default */.
- 1A86:7523: WCH CH340, Linux drivers/usb/serial/ch341.c id_table:
  USB_DEVICE(0x1a86, 0x7523).
- 0403:6001: FTDI FT232 family, Linux drivers/usb/serial/ftdi_sio_ids.h:
  FTDI_VID 0x0403, FTDI_8U232AM_PID 0x6001.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import serial.tools.list_ports

from .errors import LinkError, UsageError

YES = "yes"
MAYBE = "maybe"
NO = "no"


@dataclass(frozen=True)
class UsbId:
    vid: int
    pid: int | None  # None: any product of the vendor
    micropython: str  # YES or MAYBE
    what: str
    source: str


# Most specific first: the first match wins.
USB_IDS = (
    UsbId(
        0x2E8A,
        0x0005,
        YES,
        "Raspberry Pi RP2 (Pico) running MicroPython",
        "MicroPython ports/rp2/mpconfigport.h: MICROPY_HW_USB_VID 0x2E8A, MICROPY_HW_USB_PID 0x0005",
    ),
    UsbId(
        0x2E8A,
        None,
        YES,
        "Raspberry Pi RP2 board (not MicroPython's default PID 0005: a board's own build?)",
        "vendor id 0x2E8A (Raspberry Pi) as in MicroPython ports/rp2/mpconfigport.h; PID not checked",
    ),
    UsbId(
        0x303A,
        None,
        YES,
        "Espressif native USB (ESP32-S2/S3/C3...)",
        "esptool-js ESPRESSIF_VID 0x303a (native USB-Serial/JTAG and USB-OTG); PID not checked",
    ),
    UsbId(
        0x10C4,
        0xEA60,
        MAYBE,
        "Silicon Labs CP210x",
        "Linux drivers/usb/serial/cp210x.c: 0x10C4, 0xEA60 (Silicon Labs factory default)",
    ),
    UsbId(
        0x1A86,
        0x7523,
        MAYBE,
        "WCH CH340",
        "Linux drivers/usb/serial/ch341.c: 0x1a86, 0x7523",
    ),
    UsbId(
        0x0403,
        0x6001,
        MAYBE,
        "FTDI FT232",
        "Linux drivers/usb/serial/ftdi_sio_ids.h: FTDI_VID 0x0403, FTDI_8U232AM_PID 0x6001",
    ),
)

LOOKS = {YES: "yes", MAYBE: "maybe (USB-UART bridge)", NO: "no"}


def identify(vid: int | None, pid: int | None) -> UsbId | None:
    """The known USB id a port's VID:PID matches, or None."""
    if vid is None:
        return None
    for known in USB_IDS:
        if known.vid == vid and known.pid in (None, pid):
            return known
    return None


def _usb_id(vid: int | None, pid: int | None) -> str | None:
    if vid is None or pid is None:
        return None
    return f"{vid:04X}:{pid:04X}"


def port_rows(ports: Iterable | None = None) -> list[dict]:
    """One dict per serial port, sorted by device: device, usb_id ("2E8A:0005" or None), vid, pid,
    serial_number, manufacturer, product, description, micropython (yes, maybe or no),
    looks (the same for people: "maybe (USB-UART bridge)"), board (what the id is) and source
    (where that id comes from). ports: pyserial ListPortInfo objects (default: comports())."""
    if ports is None:
        try:
            ports = serial.tools.list_ports.comports()
        except OSError as e:
            raise LinkError(f"cannot list the serial ports: {e}") from None
    rows = []
    for p in ports:
        vid, pid = getattr(p, "vid", None), getattr(p, "pid", None)
        known = identify(vid, pid)
        verdict = known.micropython if known else NO
        rows.append(
            {
                "device": p.device,
                "usb_id": _usb_id(vid, pid),
                "vid": vid,
                "pid": pid,
                "serial_number": getattr(p, "serial_number", None),
                "manufacturer": getattr(p, "manufacturer", None),
                "product": getattr(p, "product", None),
                "description": getattr(p, "description", None),
                "micropython": verdict,
                "looks": LOOKS[verdict],
                "board": known.what if known else None,
                "source": known.source if known else None,
            }
        )
    return sorted(rows, key=lambda r: r["device"])


COLUMNS = ("PORT", "USB ID", "SERIAL", "MANUFACTURER / PRODUCT", "MICROPYTHON BOARD?")


def table_cells(row: dict) -> tuple[str, ...]:
    """A row's cells under COLUMNS, as text ("-" where the port does not say)."""
    maker = " / ".join(x for x in (row["manufacturer"], row["product"]) if x) or row["description"] or "-"
    if maker == "n/a":  # pyserial's description of a port it knows nothing about
        maker = "-"
    looks = row["looks"] if row["board"] is None else f"{row['looks']}: {row['board']}"
    return (row["device"], row["usb_id"] or "-", row["serial_number"] or "-", maker, looks)


def plain_table(rows: list[dict]) -> str:
    """The rows as a plain-text table (what `pumpctl ports` prints)."""
    cells = [COLUMNS] + [table_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1] for line in cells
    )


def _listing(rows: list[dict]) -> str:
    out = []
    for r in rows:
        said = ", ".join(
            x for x in (r["usb_id"], r["board"], r["serial_number"] and f"serial {r['serial_number']}") if x
        )
        out.append(f"{r['device']} ({said})")
    return "; ".join(out)


def auto_port(ports: Iterable | None = None, note: Callable[[str], None] | None = None) -> str:
    """The device of the one attached port that looks like a MicroPython board (`--port auto`).

    A board with its maker's USB id ("yes") is taken first; with none of those,
    the one USB-UART bridge ("maybe"), and note() is told that this is a guess.
    None at all: LinkError (exit 3). Several of the same kind: UsageError
    naming them (exit 2), since only the user can say which is the pump."""
    rows = port_rows(ports)
    yes = [r for r in rows if r["micropython"] == YES]
    maybe = [r for r in rows if r["micropython"] == MAYBE]
    if len(yes) == 1:
        return yes[0]["device"]
    if len(yes) > 1:
        raise UsageError(
            f"--port auto: {len(yes)} attached ports look like a MicroPython board: {_listing(yes)}; "
            "give the pump's with --port PORT"
        )
    if len(maybe) == 1:
        if note is not None:
            note(
                f"--port auto: using {maybe[0]['device']}, a USB-UART bridge ({maybe[0]['board']}): no port has a "
                "board's own USB id, and an ESP32 dev kit shows up like this"
            )
        return maybe[0]["device"]
    if len(maybe) > 1:
        raise UsageError(
            f"--port auto: no port has a MicroPython board's own USB id and {len(maybe)} are USB-UART bridges "
            f"that may be one: {_listing(maybe)}; give the pump's with --port PORT"
        )
    others = (
        f" ({len(rows)} other serial port{'s' if len(rows) != 1 else ''}: pumpctl ports lists them)" if rows else ""
    )
    raise LinkError(
        "--port auto: no attached serial port looks like a MicroPython board (a Raspberry Pi or Espressif USB id, "
        f"or a USB-UART bridge){others}; plug the pump in, or give its port with --port PORT"
    )


def attached(port: str) -> bool:
    """Whether port is a device path that exists now (URLs and `auto` count as attached)."""
    if port == "auto" or "://" in port:
        return True
    return os.path.exists(port)
