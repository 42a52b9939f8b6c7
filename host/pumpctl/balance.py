"""Lab balance drivers over pyserial: Mettler-Toledo MT-SICS and Sartorius SBI.

A gravimetric check of the pump weighs what it delivered, so the balance is
read as a Decimal in grams, whatever unit it prints, and every failure is a
BalanceError that says what happened and what to do.

    with open_balance("/dev/ttyUSB0") as balance:
        balance.tare()
        reading = balance.read(stable=True)
        print(reading.mass_g, reading.stable)

What is verified and what is assumed, protocol by protocol:

MT-SICS (Mettler-Toledo Standard Interface Command Set).
  Verified against public sources:
  - commands end CR LF and replies are CR LF lines (MT-SICS reference manual
    for XPR/XSR balances, "Basic rules"); default 9600 baud 8N1 (the mt-sics
    node.js client's README);
  - `S` replies `S S     100.00 g` and `S I` (busy, e.g. taring, or no stable
    value before the balance's own timeout), `S +` overload, `S -` underload
    (Mettler-Toledo AL operating instructions); `SI` replies `S S` or `S D`
    (dynamic) (InstrumentKit mt_sics.py and a TypeScript SICS client);
  - the general errors `ES` syntax, `ET` transmission, `EL` logical, the
    command-specific `I`, `L`, `+`, `-`, and `I4 A "serial"` (InstrumentKit
    mt_sics.py);
  - SIR repeats SI's reply until cancelled (JS-series operating instructions).
  Assumed (from the project's peers.md summary of the reference manual, not
  re-checked here): `Z A` zeroed, `Z I` not executable now, `Z +` / `Z -`
  zero range exceeded; `T S   100.00 g` (the tare taken); that S and SI also
  cancel SIR, so closing a stream sends SI rather than @ (@ would also clear
  the tare).

Sartorius SBI.
  Verified against public sources (Sartorius operating instructions: Cubis
  MSE, FB, LE, CP, ME215S, Entris II, Combics, Master series; the sartoriuslib
  SBI command page):
  - a request is ESC, the command character(s), then CR LF, which the balance
    treats as optional (format 1 `Esc P`, format 2 `Esc x1_`): we send CR LF;
  - ESC P prints the reading, ESC T is the TARE key (tare and zero), ESC U
    tare, ESC V zero (Cubis; older models such as the FB have no U/V), ESC
    x2_ the weighing cell's serial number;
  - a reading is 16 characters: sign (or space), 9 characters of value with
    its decimal point (leading zeros as spaces), a space, a 3-character unit,
    CR LF; or 22 characters with a 6-character ID (N net, G or G# gross)
    before it;
  - special codes: `Stat` with High (overload), Low (underload), Cal (being
    adjusted), `Err ###` / `ERR XYZ` error codes, and in the 16-character
    form a lone H, L or C.
  Assumed (from client code: LADS Balance, matterlab_balances, and
  peers.md): a blank unit means the reading is not stable; that the serial
  number reply is a line with the number in it, possibly after an ID such as
  `Ser.no` or in quotes; data settings 9600 baud 7 data bits odd parity 1
  stop bit (what those clients use; factory settings vary by model); that a
  `Stat` line with nothing else means busy (the MC1 manual lists blank
  status codes as taring).
"""

from __future__ import annotations

import errno
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NoReturn

import serial

from .errors import BalanceError
from .transport import TtyError  # what pyserial raises on a dead tty, besides OSError and SerialException

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


# --- Mettler-Toledo MT-SICS ------------------------------------------------

# One regex per reply type. Replies are matched after the CR LF and any
# trailing spaces are stripped.
_MT_WEIGHT = re.compile(r"(?P<cmd>S|T|TI) (?P<status>[SD]) +(?P<value>[-+]?\d+(?:\.\d*)?) +(?P<unit>\S+)")
_MT_STATUS = re.compile(r"(?P<cmd>[A-Z][A-Z0-9]*) (?P<status>[ILA+-])")
_MT_SERIAL = re.compile(r'I4 A "(?P<serial>[^"]*)"')
_MT_GENERAL_ERROR = re.compile(r"E[STL]")

# The command each reply starts with: SI and SIR answer as S does.
_MT_REPLY_TO = {"S": "S", "SI": "S", "SIR": "S", "Z": "Z", "T": "T", "I4": "I4"}
_MT_ACTION = {"S": "weigh", "Z": "zero", "T": "tare", "I4": "report its serial number"}

_MT_GENERAL_ERRORS = {
    "ES": "did not understand {cmd} (ES, syntax error): check that it speaks MT-SICS and knows this command",
    "ET": "received {cmd} garbled (ET, transmission error): check the baud rate, parity and the cable",
    "EL": "refused {cmd} (EL, logical error): it cannot run this command in its present state",
}


def _mt_status_message(reply_cmd: str, status: str) -> str:
    """What a command-specific status (I, L, + or -) means, and what to do."""
    action = _MT_ACTION.get(reply_cmd, f"run {reply_cmd}")
    code = f"{reply_cmd} {status}"
    if status == "I":
        return f"the balance cannot {action} now ({code}: busy, or not stable in time): wait and try again"
    if status == "L":
        return f"the balance refused to {action} ({code}: logical error): the command is not allowed now"
    if reply_cmd == "S":
        if status == "+":
            return f"the balance is overloaded ({code}): take weight off the pan"
        return f"the balance is underloaded ({code}): check that the pan is in place"
    if status == "+":
        return f"the balance cannot {action}: the load is above its {action} range ({code}): take weight off the pan"
    return f"the balance cannot {action}: the load is below its {action} range ({code}): check that the pan is in place"


class MtSicsBalance(Balance):
    """A Mettler-Toledo balance speaking MT-SICS (level 0 and 1 commands)."""

    silence_hint = "check the cable, the baud rate (MT-SICS default 9600 8N1) and that it speaks MT-SICS"
    # After SIR is cancelled, replies already on the wire still arrive: wait
    # for this much silence (the balance repeats several times a second).
    stream_quiet_s = 0.25

    def __init__(self, port: str, timeout: float = 2.0, baudrate: int = 9600):
        super().__init__(port, timeout, baudrate=baudrate)

    def read(self, stable: bool = False) -> Reading:
        """SI (the value now, `S S` stable or `S D` dynamic) or, with stable=True,
        S: the balance waits for a stable value (within `timeout`, and its own,
        after which it answers `S I`)."""
        command = "S" if stable else "SI"
        return self._weight(command, self._command(command))

    def zero(self) -> None:
        self._expect_ack("Z", self._command("Z"))

    def tare(self) -> None:
        """T: the balance waits for stability, then takes the load as tare (reply `T S  100.00 g`)."""
        self._weight("T", self._command("T"))

    def serial_number(self) -> str:
        line = self._command("I4")
        match = _MT_SERIAL.fullmatch(line)
        if match is None:
            self._raise_for(line, "I4")
        return match["serial"]

    def stream(self) -> Iterator[Reading]:
        """SIR: the readings the balance sends by itself, several a second, each
        stable or not, until the generator is closed.

        Close it (break out of the for loop, or call close()) before sending
        any other command: closing sends SI, which cancels the repetition, and
        drops the replies still in flight. (@ would cancel it too, but it also
        clears the tare.) Each reading must come within `timeout`.
        """
        self._flush_input()
        self._write(b"SIR\r\n")
        try:
            while True:
                yield self._weight("SIR", self._reply(time.monotonic() + self.timeout))
        finally:
            self._write(b"SI\r\n")
            self._drain(self.stream_quiet_s)

    # Internals.

    def _command(self, command: str) -> str:
        """Send one command; its reply line, without line end and trailing spaces."""
        self._flush_input()
        self._write(command.encode("ascii") + b"\r\n")
        return self._reply(time.monotonic() + self.timeout)

    def _reply(self, deadline: float) -> str:
        return self._read_line(deadline).rstrip()

    def _weight(self, command: str, line: str) -> Reading:
        match = _MT_WEIGHT.fullmatch(line)
        if match is None or match["cmd"] != _MT_REPLY_TO.get(command, command):
            self._raise_for(line, command)
        value = parse_decimal(match["value"], line)
        unit = match["unit"]
        return Reading(mass_g=to_grams(value, unit, line), stable=match["status"] == "S", unit=unit, raw=line)

    def _expect_ack(self, command: str, line: str) -> None:
        match = _MT_STATUS.fullmatch(line)
        if match is None or match["cmd"] != command or match["status"] != "A":
            self._raise_for(line, command)

    def _raise_for(self, line: str, command: str) -> NoReturn:
        """Raise the BalanceError a reply that is not the one wanted stands for."""
        if _MT_GENERAL_ERROR.fullmatch(line):
            raise BalanceError("the balance " + _MT_GENERAL_ERRORS[line].format(cmd=command))
        match = _MT_STATUS.fullmatch(line)
        if match and match["cmd"] == _MT_REPLY_TO.get(command, command) and match["status"] in "IL+-":
            raise BalanceError(_mt_status_message(match["cmd"], match["status"]))
        raise BalanceError(f"the balance's reply to {command} is not the MT-SICS reply expected: {line!r}")


# --- Sartorius SBI ---------------------------------------------------------

ESC = b"\x1b"
# A reading: the 6-character ID of the 22-character form (optional), then the
# 14 characters before CR LF: sign, 9 of value (leading zeros as spaces), a
# space, 3 of unit (blank while unstable).
_SBI_READING = re.compile(r"(?P<id>.{6})?(?P<sign>[-+ ])(?P<value>[ 0-9.]{9}) (?P<unit>[^\r\n]{3})")
_SBI_NUMBER = re.compile(r" *(?P<digits>\d+(?:\.\d*)?|\.\d+)")
# Special codes instead of a value: Stat (22-character form) and/or one of
# the codes; on the 16-character form a lone H, L or C.
_SBI_SPECIAL = re.compile(
    r"\s*(?P<stat>Stat)?\s*(?:(?P<high>High|HH|H)|(?P<low>Low|LL|L)|(?P<cal>Cal\b.*|C)"
    r"|(?:Err|ERR)\s*(?P<err>[0-9A-Z]+)|(?P<other>[A-Z]{3}\.ERR?))?\s*"
)
# IDs of the 22-character form that label a weight (N net, N1 net, G/G# gross).
_SBI_WEIGHT_IDS = {"", "N", "N1", "G", "G#"}
_SBI_SERIAL_ID = re.compile(r"(?:Ser\.?\s*no\.?|SerNo\.?|S/N|SNR)\s*", re.IGNORECASE)


def _sbi_special(body: str) -> tuple[bool, str] | None:
    """For a status line: (busy, message); None if body is not one. busy means
    the balance shows no value for now (e.g. while taring): worth asking again."""
    match = _SBI_SPECIAL.fullmatch(body)
    if match is None or not body:
        return None
    quoted = body.strip()
    if match["high"]:
        return False, f"the balance is overloaded ({quoted}): take weight off the pan"
    if match["low"]:
        return False, f"the balance is underloaded ({quoted}): check that the pan is in place"
    if match["cal"]:
        return False, f"the balance is being calibrated or adjusted ({quoted}): finish or cancel that on the balance"
    if match["err"]:
        return False, (
            f"the balance reports error {match['err']} ({quoted}): look the code up in the troubleshooting "
            "guide of its manual"
        )
    if match["other"]:
        return False, f"the balance reports an error ({quoted}): see the troubleshooting guide of its manual"
    return True, f"the balance shows no weight now ({quoted}: busy, e.g. taring): wait and try again"


class SbiBalance(Balance):
    """A Sartorius balance speaking SBI (its interface set to SBI mode).

    SBI prints no unit while a reading is unstable, so such a reading is
    converted with the last unit this connection saw printed, or `unit` (the
    unit the balance is set to) until one is.
    """

    silence_hint = (
        "check the cable, the data settings (pumpctl uses 9600 baud, 7 data bits, odd parity, 1 stop bit "
        "unless told otherwise; set the balance the same) and that its interface is in SBI mode"
    )
    poll_interval_s = 0.1  # between two ESC P while waiting for a stable reading

    def __init__(
        self,
        port: str,
        timeout: float = 2.0,
        baudrate: int = 9600,
        bytesize: int = serial.SEVENBITS,
        parity: str = serial.PARITY_ODD,
        stopbits: float = serial.STOPBITS_ONE,
        unit: str = "g",
    ):
        super().__init__(port, timeout, baudrate=baudrate, bytesize=bytesize, parity=parity, stopbits=stopbits)
        self.unit = unit

    def read(self, stable: bool = False) -> Reading:
        """ESC P: the reading now (whether it waits for stability depends on
        the balance's menu). stable=True asks again until a stable reading
        (a unit printed), while the balance is busy too, for up to `timeout`."""
        if not stable:
            return self._print()
        deadline = time.monotonic() + self.timeout
        last = "no reading"
        while True:
            try:
                reading = self._print()
                if reading.stable:
                    return reading
                last = f"the last was {reading.raw!r}, unstable"
            except _Busy as busy:
                last = f"the last was {busy.line!r}, busy"
            if time.monotonic() + self.poll_interval_s > deadline:
                raise BalanceError(
                    f"no stable reading from the balance on {self.port} within {self.timeout:g} s ({last}): "
                    "shield it from drafts and vibration, or allow a longer timeout"
                )
            time.sleep(self.poll_interval_s)

    def zero(self) -> None:
        """ESC V, then a stable reading to confirm (SBI acknowledges no command)."""
        self._send(b"V")
        self.read(stable=True)

    def tare(self) -> None:
        """ESC U, then a stable reading to confirm (SBI acknowledges no command)."""
        self._send(b"U")
        self.read(stable=True)

    def serial_number(self) -> str:
        """ESC x2_: the weighing cell's serial number."""
        self._send(b"x2_")
        raw = self._read_body()
        self._raise_if_special(raw)
        number = _SBI_SERIAL_ID.sub("", raw.replace('"', "").strip(), count=1).strip()
        if not number:
            raise BalanceError(f"the balance's reply to ESC x2_ holds no serial number: {raw!r}")
        return number

    # Internals.

    def _send(self, command: bytes) -> None:
        self._flush_input()
        self._write(ESC + command + b"\r\n")

    def _read_body(self) -> str:
        """The next reply line without its CR LF (a bare LF also ends a line)."""
        line = self._read_line(time.monotonic() + self.timeout)
        return line[:-2] if line.endswith("\r\n") else line[:-1]

    def _raise_if_special(self, body: str) -> None:
        special = _sbi_special(body)
        if special is not None:
            busy, message = special
            raise _Busy(message, body) if busy else BalanceError(message)

    def _print(self) -> Reading:
        self._send(b"P")
        body = self._read_body()
        self._raise_if_special(body)
        if len(body) not in (14, 20):
            raise BalanceError(
                f"the balance's reply to ESC P has {len(body) + 2} characters, not SBI's 16 or 22: {body!r}: "
                "check the baud rate and data bits, and that the interface is in SBI mode"
            )
        match = _SBI_READING.fullmatch(body)
        number = _SBI_NUMBER.fullmatch(match["value"]) if match else None
        if match is None or number is None:
            raise BalanceError(f"the balance's reply to ESC P is not an SBI reading: {body!r}")
        label = (match["id"] or "").strip()
        if label not in _SBI_WEIGHT_IDS:
            raise BalanceError(
                f"the balance printed a value labelled {label!r}, not a gross or net weight ({body!r}): "
                "set it to plain weighing"
            )
        printed_unit = match["unit"].strip()
        if printed_unit:
            self.unit = printed_unit
        value = parse_decimal(number["digits"], body)
        if match["sign"] == "-":
            value = -value
        mass_g = to_grams(value, printed_unit or self.unit, body)
        return Reading(mass_g=mass_g, stable=bool(printed_unit), unit=printed_unit, raw=body)


class _Busy(BalanceError):
    """The balance sent a status line with no value: it is busy (read(stable=True) asks again)."""

    def __init__(self, message: str, line: str):
        super().__init__(message)
        self.line = line


def open_balance(port: str, protocol: str = "mt-sics", timeout: float = 2.0) -> Balance:
    """A balance on port speaking protocol ("mt-sics" or "sbi"), with default serial settings."""
    if protocol == "mt-sics":
        return MtSicsBalance(port, timeout=timeout)
    if protocol == "sbi":
        return SbiBalance(port, timeout=timeout)
    raise ValueError(f"unknown balance protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
