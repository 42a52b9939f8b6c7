"""The Sartorius SBI balance driver. What is verified and what is assumed:

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

import re
import time

import serial

from ..errors import BalanceError
from .base import Balance, Reading, parse_decimal, to_grams

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
