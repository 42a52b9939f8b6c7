"""Frames over a serial port: pyserial underneath, the shared codec on top."""

from __future__ import annotations

import errno
import os
import time
from collections import deque

import serial

from firmware import auth, codec, framing

from .errors import GarbledReply, LinkError, NoReply, NotStarted, PumpRefused
from .schema import decode_fields, encode_fields, reply_fields, request_fields
from .words import render

try:
    from termios import error as TtyError  # what pyserial's tcdrain and tcflush raise on a dead tty (not an OSError)
except ImportError:  # no termios (Windows): pyserial raises SerialException there

    class TtyError(Exception):
        pass


class SerialTransport:
    """One open serial port and the request/reply exchange over it.

    `port` is a device path (/dev/ttyACM0, a pty) or any pyserial URL
    (socket://host:port, rfc2217://host:port).

    Every failure is a LinkError whose message says what went wrong and what
    to do: the port absent, busy, not a serial port or refused (open_error);
    silence (NoReply); bytes that are not pump frames, or our own frames
    echoed back (GarbledReply).
    """

    def __init__(self, port: str, timeout: float = 2.0, baudrate: int = 115200):
        self.port = port
        self.timeout = timeout
        # An RFC 2217 port renegotiates the line settings with its server, in a
        # round trip of 50 ms or more, each time its timeout is set: poll it
        # with a short fixed timeout instead of setting one per read.
        self._retime = not port.lower().startswith("rfc2217://")
        try:
            self._serial = serial.serial_for_url(
                port, baudrate=baudrate, timeout=timeout if self._retime else min(timeout, 0.05), exclusive=True
            )
        except (serial.SerialException, OSError, ValueError) as e:
            raise open_error(port, e) from None
        self._decoder = framing.FrameDecoder()
        self._rx = bytearray()  # bytes read but not yet fed to the decoder
        self._heard = False  # a whole pump frame has come on this port
        self._noise = bytearray()  # the first bytes (up to 32) since the last whole frame: not pump frames
        self._noise_bytes = 0  # how many of them (not counting delimiters)
        self._noise_frames = 0  # delimited frames among them that failed to decode
        self._noise_reason = ""  # why the first of those failed
        self._seq = 0
        # With a session: an auth.Hmac of the session key. Requests then carry
        # a MAC, and so must the replies, or they are not the pump's.
        self.session_mac: auth.Hmac | None = None
        self.telemetry: deque = deque(maxlen=10_000)  # (seq, values) of TELEMETRY_DATA, oldest first
        # A delimiter ends any half-frame the pump holds from an earlier
        # connection; then drop whatever it said about that.
        self._write(b"\x00")
        time.sleep(0.05)
        try:
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError, TtyError) as e:
            raise self._dropped("read from", e) from None

    def close(self) -> None:
        self._serial.close()

    def _write(self, data: bytes) -> None:
        try:
            self._serial.write(data)
            self._serial.flush()
        except (serial.SerialException, OSError, TtyError) as e:
            raise self._dropped("write to", e) from None

    def _dropped(self, doing: str, e: BaseException) -> LinkError:
        """The open line failed: pyserial's reason, and what to do."""
        return LinkError(
            f"cannot {doing} {self.port}: {' '.join(str(e).split())}; the board was unplugged or reset, "
            "or the connection dropped: check it, then retry"
        )

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests use it to send damaged frames)."""
        self._write(data)

    def next_seq(self) -> int:
        # 0 is never used: the pump answers corrupt frames with sequence 0.
        # It only rises, so within a session the pump sees each seq once.
        self._seq = self._seq % framing.MAX_SEQ + 1
        return self._seq

    def read_frame(self, deadline: float) -> tuple:
        """Return the next whole frame (type, seq, payload, mac, signed) before deadline.

        A damaged frame (noise on the line) is skipped, as the pump skips one:
        the next whole frame may still be the reply. If none comes, NoReply,
        or GarbledReply when bytes came that were not pump frames. A whole
        frame of another protocol version is a LinkError at once."""
        while True:
            while self._rx:
                b = self._rx.pop(0)
                if b and len(self._noise) < 32:
                    self._noise.append(b)
                self._noise_bytes += b != 0
                if self._decoder.feed(b):
                    try:
                        frame = self._decoder.frame()
                    except framing.FrameError as e:
                        if e.code == codec.ERR_BAD_VERSION:
                            raise LinkError(_version_told(self.port, e.version)) from None
                        if e.code not in (codec.ERR_BAD_FRAME, codec.ERR_TOO_LONG):
                            raise LinkError(
                                f"the pump on {self.port} sent a frame this pumpctl cannot read ({render(e.message)}): "
                                "update pumpctl or flash the pump's firmware to match"
                            ) from None
                        self._noise_frames += 1
                        self._noise_reason = self._noise_reason or render(e.message)
                        continue
                    self._heard = True
                    self._forget_noise()
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if self._noise_bytes:
                    raise GarbledReply(self._garbled())
                raise NoReply(self._silent())
            try:
                if self._retime:
                    self._serial.timeout = remaining  # reconfigures the tty: fails too if the line died
                self._rx += self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError, TtyError) as e:
                raise self._dropped("read from", e) from None

    def _forget_noise(self) -> None:
        self._noise.clear()
        self._noise_bytes = self._noise_frames = 0
        self._noise_reason = ""

    def _silent(self) -> str:
        said = f"no reply from the pump on {self.port} within {self.timeout:g} s"
        if self._heard:
            return f"{said}: it answered before, so the pump or the link stopped; check its cable and power, then retry"
        return (
            f"{said}: nothing on this port answers as a pump; check that it is the pump's port and that the pump "
            "firmware runs on it (pumpctl ports lists the ports; --timeout waits longer)"
        )

    def _garbled(self) -> str:
        sample = bytes(self._noise[:16])
        what = (
            f"{self._noise_bytes} bytes that are not pump frames ({self._noise_reason})"
            if self._noise_frames
            else f"{self._noise_bytes} bytes but no whole pump frame"
        )
        hint = (
            "is it the pump's port, running the pump firmware (not a balance, a REPL or another board), "
            "at 115200 baud? (pumpctl ports lists the ports)"
        )
        telnet = any(b"\xff" + bytes([verb]) in sample for verb in range(0xFB, 0xFF))  # IAC WILL/WONT/DO/DONT
        if telnet and self.port.lower().startswith("socket://"):
            hint = "that is telnet negotiation: the server speaks RFC 2217, so use rfc2217:// instead of socket://"
        return (
            f"the device on {self.port} does not answer as a pump: no reply within {self.timeout:g} s, only {what}, "
            f"starting {sample!r}; {hint}"
        )

    def request(self, msg_type: int, values=(), payload: bytes | None = None) -> list:
        """Send one command and return its reply's field values.

        Raises PumpRefused if the pump refuses, NoReply on timeout, LinkError
        if the line is broken. Replies to earlier, abandoned requests are
        skipped by their sequence number.
        """
        seq = self.next_seq()
        if payload is None:
            payload = encode_fields(request_fields(msg_type), values)
        session = self.session_mac
        self._forget_noise()  # what came before this request does not say what answers it
        self._write(framing.encode_frame(msg_type, seq, payload, session))
        return self.await_reply(msg_type, seq, session)

    def await_reply(self, msg_type: int, seq: int, session: auth.Hmac | None = None) -> list:
        deadline = time.monotonic() + self.timeout
        bad_frame: PumpRefused | None = None
        while True:
            try:
                kind, got_seq, payload, mac, signed = self.read_frame(deadline)
            except NoReply:
                if bad_frame is not None:
                    raise bad_frame from None
                raise
            if kind == codec.TELEMETRY_DATA:
                self._keep_telemetry(got_seq, payload)
                continue
            if kind == msg_type and got_seq == seq:
                raise GarbledReply(
                    f"{self.port} sends back what pumpctl sends (a loopback, an echoing terminal or bridge), "
                    "so no pump is answering there: give the pump's port (pumpctl ports lists the ports)"
                )
            if kind == codec.ERROR and mac is None and _not_started(payload) is not None:
                raise NotStarted(_not_started(payload))  # whatever was asked: it is all the board says
            if session is not None and got_seq == seq and not _signed_by(session, mac, signed):
                if kind == codec.ERROR and mac is None:
                    # A pump that could not check our MAC (its session ended,
                    # or the frame was damaged) cannot MAC its refusal either.
                    code, field, reason, more = decode_fields(reply_fields(codec.ERROR), payload)
                    reason += more
                    if code in (codec.ERR_NO_SESSION, codec.ERR_AUTH, codec.ERR_BAD_FRAME):
                        raise PumpRefused(code, field, reason)
                raise LinkError(f"the reply to command 0x{msg_type:02x} does not carry this session's MAC")
            if kind == codec.ERROR:
                code, field, reason, more = decode_fields(reply_fields(codec.ERROR), payload)
                refusal = PumpRefused(code, field, reason + more)
                if got_seq == seq:
                    raise refusal
                if got_seq == 0 and bad_frame is None:
                    # The pump could not read some frame: ours, or noise
                    # before it. Only our reply failing to come says which,
                    # so keep waiting; if none comes, this is the reason.
                    bad_frame = refusal
                continue
            if got_seq != seq:
                continue  # a late reply to an abandoned request
            if kind != msg_type | codec.REPLY:
                raise LinkError(f"the pump answered command 0x{msg_type:02x} with message 0x{kind:02x}")
            try:
                return decode_fields(reply_fields(msg_type), payload)
            except framing.FrameError as e:
                raise LinkError(f"the pump's reply does not match this pumpctl: {render(e.message)}") from None

    def _keep_telemetry(self, seq: int, payload: bytes) -> None:
        try:
            values = decode_fields(reply_fields(codec.TELEMETRY_DATA), payload)
        except framing.FrameError as e:
            raise LinkError(f"the pump sent a telemetry sample this pumpctl cannot read: {render(e.message)}") from None
        self.telemetry.append((seq, values))

    def read_telemetry(self, deadline: float) -> tuple[int, list] | None:
        """The next telemetry sample (seq, values), waiting until deadline; None if none came."""
        while not self.telemetry:
            try:
                kind, seq, payload, _mac, _signed = self.read_frame(deadline)
            except NoReply:
                return None
            if kind == codec.TELEMETRY_DATA:
                self._keep_telemetry(seq, payload)
        return self.telemetry.popleft()


def open_error(port: str, e: Exception) -> LinkError:
    """Why a port could not be opened, in one line that says what to do."""
    text = str(e)
    code = getattr(e, "errno", None)
    is_url = "://" in port
    if isinstance(e, ValueError) and "protocol" in text and "not known" in text:
        scheme = port.partition("://")[0]
        return LinkError(
            f"cannot open {port}: pyserial knows no {scheme}:// ports; give a device path (/dev/ttyACM0), "
            "socket://HOST:PORT or rfc2217://HOST:PORT"
        )
    if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY) or "exclusively lock" in text:
        return LinkError(
            f"cannot open {port}: the port is busy, another program holds it (another pumpctl, mpremote or a "
            "serial terminal?); close that program, then retry"
        )
    if not is_url and (code == errno.ENOENT or not os.path.exists(port)):
        return LinkError(
            f"cannot open {port}: there is no such port; is the pump plugged in and powered? "
            "(pumpctl ports lists the serial ports attached)"
        )
    if code in (errno.EACCES, errno.EPERM):
        return LinkError(
            f"cannot open {port}: permission denied; add yourself to the port's group "
            "(dialout on most Linux systems: sudo usermod -aG dialout $USER, then log in again)"
        )
    if not is_url and (code in (errno.ENOTTY, errno.EISDIR) or "Could not configure port" in text):
        return LinkError(
            f"cannot open {port}: it is not a serial port; give the pump's port (pumpctl ports lists them)"
        )
    if is_url:
        if "refused" in text.lower():
            return LinkError(
                f"cannot open {port}: nothing accepts connections there (connection refused); start the serial "
                "server at that address, or check the host and port"
            )
        if "timed out" in text.lower():
            return LinkError(f"cannot open {port}: the host does not answer (timed out); check the address and network")
        if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
            return LinkError(f"cannot open {port}: no such host; check the host name")
        if "RFC2217" in text or "RFC 2217" in text:
            return LinkError(
                f"cannot open {port}: the server there does not speak RFC 2217 (a raw TCP bridge? then use "
                "socket://HOST:PORT)"
            )
    return LinkError(f"cannot open {port}: {' '.join(text.split())}")


def _not_started(payload: bytes) -> str | None:
    """The reason in an ERROR payload saying the firmware failed to start, else None."""
    try:
        code, _field, reason, more = decode_fields(reply_fields(codec.ERROR), payload)
    except framing.FrameError:
        return None
    return reason + more if code == codec.ERR_NOT_STARTED else None


def _version_told(port: str, theirs: int) -> str:
    """What a frame of another protocol version from the pump says: which side to update."""
    ours = codec.PROTOCOL_VERSION
    if theirs < ours:
        return (
            f"the pump on {port} speaks protocol {theirs}, older than this pumpctl's {ours}: flash the pump's "
            "firmware (pumpctl flash) to match, or use the pumpctl of its firmware"
        )
    return f"the pump on {port} speaks protocol {theirs}, newer than this pumpctl's {ours}: update pumpctl"


def _signed_by(session: auth.Hmac, mac: bytes | None, signed: bytes | None) -> bool:
    return mac is not None and auth.same_bytes(mac, session.digest(signed)[: auth.MAC_BYTES])
