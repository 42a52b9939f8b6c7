"""What every lab balance driver shares: a serial port with deadlines, a Reading in grams, and a
BalanceError that says what happened and what to do. The protocols: mtsics.py and sbi.py.
"""

from __future__ import annotations

import errno
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import serial

from ..errors import BalanceError
from ..transport import TtyError  # what pyserial raises on a dead tty, besides OSError and SerialException

PROTOCOLS = ("mt-sics", "sbi")

# Grams per printed unit. Anything else (ct, lb, pcs, %) is not converted: a
# wrong factor would silently falsify a delivered volume.
GRAMS_PER_UNIT = {
    "g": Decimal(1),
    "mg": Decimal("0.001"),
    "ug": Decimal("0.000001"),
    "\u00b5g": Decimal("0.000001"),  # micro sign, as balances print it in ANSI/latin-1
    "kg": Decimal(1000),
}


@dataclass(frozen=True)
class Reading:
    """One weight value: mass_g in grams (converted from mg or kg), whether the
    balance called it stable, the unit as printed and the reply line itself."""

    mass_g: Decimal
    stable: bool
    unit: str
    raw: str


def to_grams(value: Decimal, unit: str, raw: str) -> Decimal:
    """value in unit, as grams; a unit that is not a mass raises BalanceError."""
    try:
        return value * GRAMS_PER_UNIT[unit]
    except KeyError:
        raise BalanceError(
            f"the balance printed the unit {unit!r}, which is not g, mg or kg ({raw!r}): set it to weigh in grams"
        ) from None


def parse_decimal(text: str, raw: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise BalanceError(f"the balance sent a value that is not a number: {raw!r}") from None


class Balance(ABC):
    """A lab balance on a serial port. A context manager; close() frees the port.

    `port` is a device path (/dev/ttyUSB0, a pty) or any pyserial URL
    (socket://host:port for a balance on a serial-to-Ethernet adapter).
    """

    # Said after "no reply ... within N s: " when the balance stays silent.
    silence_hint = "check the cable and the baud rate"
    # pyserial's read timeout, set once: the deadlines are kept here, so the
    # tty is never reconfigured after opening (a pty refuses that at 7O1).
    read_poll_s = 0.05

    def __init__(self, port: str, timeout: float, **serial_settings):
        self.port = port
        self.timeout = timeout
        self._rx = bytearray()  # bytes read but not yet returned as a line
        self._serial = open_port(port, self.read_poll_s, **serial_settings)

    def __enter__(self) -> Balance:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._serial.close()

    @abstractmethod
    def read(self, stable: bool = False) -> Reading:
        """The reading now (stable or not), or with stable=True the next stable one."""

    @abstractmethod
    def zero(self) -> None:
        """Set the balance's zero point to the load now on the pan."""

    @abstractmethod
    def tare(self) -> None:
        """Take the load now on the pan as the tare: readings are net of it."""

    @abstractmethod
    def serial_number(self) -> str:
        """The balance's serial number as it reports it."""

    # The line underneath both protocols.

    def _flush_input(self) -> None:
        """Drop whatever the balance sent unasked (a stream, an auto-print, a late reply)."""
        self._rx.clear()
        try:
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError, TtyError) as e:
            raise BalanceError(f"cannot read from the balance on {self.port}: {e}") from None

    def _write(self, data: bytes) -> None:
        try:
            self._serial.write(data)
            self._serial.flush()
        except (serial.SerialException, OSError, TtyError) as e:
            raise BalanceError(f"cannot write to the balance on {self.port}: {e}") from None

    def _read_line(self, deadline: float) -> str:
        """The next line the balance sends, with its line end, before deadline (time.monotonic())."""
        while True:
            end = self._rx.find(b"\n")
            if end >= 0:
                line = bytes(self._rx[: end + 1])
                del self._rx[: end + 1]
                return line.decode("latin-1")  # MT-SICS and SBI print ANSI text (a micro sign in ug)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if self._rx:
                    partial = self._rx.decode("latin-1")
                    raise BalanceError(
                        f"the balance on {self.port} sent an incomplete reply (no line end within "
                        f"{self.timeout:g} s): {partial!r}: check the cable and the baud rate"
                    )
                raise BalanceError(
                    f"no reply from the balance on {self.port} within {self.timeout:g} s: {self.silence_hint}"
                )
            try:
                self._rx += self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError, TtyError) as e:
                raise BalanceError(f"cannot read from the balance on {self.port}: {e}") from None

    def _drain(self, quiet_s: float) -> None:
        """Read and drop input until the balance has been silent for quiet_s (at most timeout)."""
        deadline = time.monotonic() + self.timeout
        quiet_until = time.monotonic() + quiet_s
        try:
            while time.monotonic() < min(quiet_until, deadline):
                if self._serial.read(max(1, self._serial.in_waiting)):
                    quiet_until = time.monotonic() + quiet_s
        except (serial.SerialException, OSError, TtyError) as e:
            raise BalanceError(f"cannot read from the balance on {self.port}: {e}") from None
        self._rx.clear()


def open_port(port: str, read_timeout_s: float, **settings) -> serial.SerialBase:
    """The port opened for this process alone, or a BalanceError saying why not."""
    try:
        return serial.serial_for_url(port, timeout=read_timeout_s, exclusive=True, **settings)
    except (serial.SerialException, OSError, ValueError) as e:
        code = getattr(e, "errno", None)
        if code == errno.ENOENT:
            why = "there is no such port: check that the balance is plugged in and the port's name"
        elif code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
            why = "the port is busy: another program (or another pumpctl) holds it; close that first"
        elif code == errno.EACCES:
            why = "permission denied: add yourself to the group that owns the port (dialout on most Linux systems)"
        else:
            why = "check the port's name and that no other program holds it"
        raise BalanceError(f"cannot open the balance on {port} ({e}): {why}") from None
