"""Frames over a serial port: pyserial underneath, the shared codec on top."""

from __future__ import annotations

import time
from collections import deque

import serial

from firmware import auth, codec

from .errors import LinkError, NoReply, PumpRefused

try:
    from termios import error as TtyError  # what pyserial's tcdrain and tcflush raise on a dead tty (not an OSError)
except ImportError:  # no termios (Windows): pyserial raises SerialException there

    class TtyError(Exception):
        pass


class SerialTransport:
    """One open serial port and the request/reply exchange over it.

    `port` is a device path (/dev/ttyACM0, a pty) or any pyserial URL
    (socket://host:port, rfc2217://host:port).
    """

    def __init__(self, port: str, timeout: float = 2.0, baudrate: int = 115200):
        self.port = port
        self.timeout = timeout
        try:
            self._serial = serial.serial_for_url(port, baudrate=baudrate, timeout=timeout, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkError(f"cannot open {port}: {e}") from None
        self._decoder = codec.FrameDecoder()
        self._rx = bytearray()  # bytes read but not yet fed to the decoder
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
            raise LinkError(f"cannot read from {port}: {e}") from None

    def close(self) -> None:
        self._serial.close()

    def _write(self, data: bytes) -> None:
        try:
            self._serial.write(data)
            self._serial.flush()
        except (serial.SerialException, OSError, TtyError) as e:
            raise LinkError(f"cannot write to {self.port}: {e}") from None

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests use it to send damaged frames)."""
        self._write(data)

    def next_seq(self) -> int:
        # 0 is never used: the pump answers corrupt frames with sequence 0.
        # It only rises, so within a session the pump sees each seq once.
        self._seq = self._seq % codec.MAX_SEQ + 1
        return self._seq

    def read_frame(self, deadline: float) -> tuple:
        """Return the next whole frame (type, seq, payload, mac, signed) before deadline."""
        while True:
            while self._rx:
                b = self._rx.pop(0)
                if self._decoder.feed(b):
                    try:
                        return self._decoder.frame()
                    except codec.FrameError as e:
                        raise LinkError(f"the pump sent a damaged frame: {e.message}") from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoReply(f"no reply from the pump on {self.port} within {self.timeout:g} s")
            try:
                self._serial.timeout = remaining  # reconfigures the tty: fails too if the line died
                self._rx += self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError, TtyError) as e:
                raise LinkError(f"cannot read from {self.port}: {e}") from None

    def request(self, msg_type: int, values=(), payload: bytes | None = None) -> list:
        """Send one command and return its reply's field values.

        Raises PumpRefused if the pump refuses, NoReply on timeout, LinkError
        if the line is broken. Replies to earlier, abandoned requests are
        skipped by their sequence number.
        """
        seq = self.next_seq()
        if payload is None:
            payload = codec.encode_fields(codec.request_fields(msg_type), values)
        session = self.session_mac
        self._write(codec.encode_frame(msg_type, seq, payload, session))
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
            if session is not None and got_seq == seq and not _signed_by(session, mac, signed):
                if kind == codec.ERROR and mac is None:
                    # A pump that could not check our MAC (its session ended,
                    # or the frame was damaged) cannot MAC its refusal either.
                    code, field, reason = codec.decode_fields(codec.reply_fields(codec.ERROR), payload)
                    if code in (codec.ERR_NO_SESSION, codec.ERR_AUTH, codec.ERR_BAD_FRAME):
                        raise PumpRefused(code, field, reason)
                raise LinkError(f"the reply to command 0x{msg_type:02x} does not carry this session's MAC")
            if kind == codec.ERROR:
                code, field, reason = codec.decode_fields(codec.reply_fields(codec.ERROR), payload)
                refusal = PumpRefused(code, field, reason)
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
                return codec.decode_fields(codec.reply_fields(msg_type), payload)
            except codec.FrameError as e:
                raise LinkError(f"the pump's reply does not match this pumpctl: {e.message}") from None

    def _keep_telemetry(self, seq: int, payload: bytes) -> None:
        try:
            values = codec.decode_fields(codec.reply_fields(codec.TELEMETRY_DATA), payload)
        except codec.FrameError as e:
            raise LinkError(f"the pump sent a telemetry sample this pumpctl cannot read: {e.message}") from None
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


def _signed_by(session: auth.Hmac, mac: bytes | None, signed: bytes | None) -> bool:
    return mac is not None and auth.same_bytes(mac, session.digest(signed)[: auth.MAC_BYTES])
