"""The Mettler-Toledo MT-SICS balance driver. What is verified and what is assumed:

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
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import NoReturn

from ..errors import BalanceError
from .base import Balance, Reading, parse_decimal, to_grams

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
