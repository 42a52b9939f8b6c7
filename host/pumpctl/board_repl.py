"""The board's raw REPL, through mpremote's Python API: one connection that runs code, writes files
in chunks and reads their SHA-256 back; and, before it, asking a board that runs the pump firmware
(which ignores Ctrl-C) to leave for its REPL. What is written and in which order is flash.py's."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import time
from collections.abc import Callable

from .errors import FlashError, LinkError

CHUNK = 1024  # bytes per write on the device; its source text (a bytes repr) is up to 4 times that

# Run on the device: the SHA-256 of each file, read in chunks (a board has little RAM).
_HASH_SCRIPT = """\
import hashlib, binascii
b = bytearray(512)
m = memoryview(b)
for p in %r:
    try:
        f = open(p, 'rb')
    except OSError:
        print('-', p)
        continue
    h = hashlib.sha256()
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    print(binascii.hexlify(h.digest()).decode(), p)
"""


class Device:
    """One raw-REPL connection to a MicroPython board through mpremote."""

    def __init__(self, port: str, timeout: float):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        self.port = port
        self.errors = (TransportError, OSError)
        try:
            # A read timeout: on a pty mpremote reads byte by byte, and without one a silent line blocks forever.
            self.t = SerialTransport(port, baudrate=115200, timeout=min(timeout, 1.0), exclusive=True)
        except TransportError:
            raise _why_unopenable(port) from None
        heard = io.StringIO()  # mpremote prints what it got instead of a REPL
        try:
            with contextlib.redirect_stdout(heard):
                self.t.enter_raw_repl(soft_reset=False, timeout_overall=timeout)  # as `mpremote resume`
        except self.errors as e:
            self.close()
            text = heard.getvalue().strip()
            said = f"it answered {text[-80:]}" if text not in ("", "b''") else "it answered nothing"
            if not text and not isinstance(e, TransportError):
                said = f"the line failed: {e}"
            raise FlashError(
                f"no MicroPython REPL on {port} within {timeout:g} s ({said}): is it a MicroPython board, "
                "and at its REPL (not running a program that ignores Ctrl-C)?"
            ) from None

    def exec(self, code: str, what: str) -> str:
        from mpremote.transport import TransportExecError

        try:
            return self.t.exec(code).decode(errors="replace")
        except TransportExecError as e:
            raise FlashError(f"{what} failed on the board on {self.port}: {e.error_output.strip()}") from None
        except self.errors as e:
            raise FlashError(f"lost the board on {self.port} while {what}: {e}") from None

    def write_file(self, target: str, data: bytes, progress: Callable[[int, int], None]) -> None:
        from mpremote.transport import TransportExecError

        try:
            self.t.fs_writefile(target, data, chunk_size=CHUNK, progress_callback=progress)
        except TransportExecError as e:
            raise FlashError(
                f"could not write {target} on the board on {self.port}: {e.error_output.strip()}"
            ) from None
        except self.errors as e:
            raise FlashError(f"lost the board on {self.port} while writing {target}: {e}") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.t.in_raw_repl:
                self.t.exit_raw_repl()
        with contextlib.suppress(Exception):
            self.t.close()


def _why_unopenable(port: str) -> FlashError:
    """Open the port again, only to say why mpremote could not (it says only 'failed to access')."""
    import serial

    if "://" not in port and not os.path.exists(port):
        return FlashError(f"no such port {port}: is the board plugged in? (boards show up as /dev/ttyACM0 or so)")
    try:
        serial.serial_for_url(port, baudrate=115200, exclusive=True).close()
    except (serial.SerialException, OSError, ValueError) as e:
        code = getattr(e, "errno", None)
        if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY) or "exclusively lock" in str(e):
            return FlashError(f"port {port} is busy: another program holds it (a pumpctl, mpremote or terminal?)")
        if code == errno.ENOENT:
            return FlashError(f"no such port {port}: is the board plugged in?")
        if code == errno.EACCES:
            return FlashError(f"no permission to open {port}: add yourself to its group (often dialout)")
        return FlashError(f"cannot open {port}: {e}")
    return FlashError(f"cannot open {port} (it opened on a second try: flash again)")


def device_hashes(device: Device, paths: list[str]) -> dict[str, str | None]:
    """The SHA-256 (hex) of each file as the board reads it back; None for a file it cannot open."""
    out: dict[str, str | None] = {}
    for line in device.exec(_HASH_SCRIPT % (paths,), "hashing the copied files").splitlines():
        digest, _, path = line.strip().partition(" ")
        if path:
            out[path] = None if digest == "-" else digest
    return out


def leave_pump_firmware(port: str, probe_s: float = 0.5, repl_s: float = 10.0) -> str | None:
    """A board running the pump firmware ignores Ctrl-C (frames may hold 0x03), so mpremote cannot
    reach its REPL: if a pump answers HELLO on port, ask it to leave for the REPL (SERVICE, with its
    clinician key from the config file), and wait up to repl_s for the REPL to answer. Returns its
    device id, or None where no pump answered (a board at its REPL, or no board: Device says which).
    A dosing pump refuses: FlashError."""
    from .client import Pump
    from .errors import NotStarted

    try:
        pump = Pump(port, timeout=probe_s)
    except LinkError:
        return None  # absent or busy: Device says which
    try:
        try:
            info = pump.hello()
        except NotStarted:  # a board whose firmware failed to start obeys SERVICE without a key
            info = None
            try:
                pump.service_not_started()
            except LinkError:
                pass  # it left before its reply was read
        except LinkError:  # silence or what is not a frame (a REPL's echo): not the pump firmware
            return None
        else:
            _ask_to_leave(pump, port, info.device_id)
    finally:
        pump.close(end_session=False)  # the firmware has gone: nothing to end
    wait_for_repl(port, repl_s)
    return None if info is None else info.device_id


def _ask_to_leave(pump, port: str, device_id: str) -> None:
    """SERVICE, with the clinician key; FlashError if the pump refuses (it doses) or the key is wrong."""
    from .errors import AuthError, PumpRefused

    try:
        pump.service()
    except PumpRefused as e:
        raise FlashError(f"the pump on {port} ({device_id}) cannot be flashed now: {e.reason}") from None
    except AuthError as e:
        raise FlashError(
            f"the pump on {port} runs the pump firmware; leaving it for its REPL needs its clinician key: {e}"
        ) from None
    except LinkError:
        pass  # it left before its reply was read (or the line dropped as it did): the REPL answers next


def wait_for_repl(port: str, timeout: float) -> bool:
    """After the pump firmware was asked to leave (SERVICE): wait until the board's REPL answers.
    The pump replies first, then saves its state (on a Pico's flash that takes a while) and ends
    its tasks, and until then it reads the line itself: a Ctrl-A sent now would be eaten as frame
    bytes, and mpremote would wait for a raw REPL that never comes. So a carriage return every
    half second until a REPL prompt answers one (the pump drops the stray bytes: a frame ends
    only at 0x00). True once a prompt was seen; False at the timeout or if the port fails (then
    Device says why)."""
    import serial

    deadline = time.monotonic() + timeout
    try:
        with serial.Serial(port, 115200, timeout=0.5, exclusive=True) as line:
            heard = b""
            while time.monotonic() < deadline:
                heard = (heard + line.read(256))[-256:]
                if b">>> " in heard:
                    return True
                line.write(b"\r")
    except (serial.SerialException, OSError):
        return False
    return False
