"""What pumpctl says when the link fails, on real ptys and real TCP: one line that says what went
wrong and what to do, exit 3, never a traceback. And the pyserial URLs working end to end:
socket:// and rfc2217:// bridged over TCP to a simulator's pty, as ser2net or a pyserial
rfc2217_server would bridge a bench computer's board to the network."""

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
import zlib
from contextlib import contextmanager
from pathlib import Path

import pytest
import serial
import serial.rfc2217
from pumpctl import LinkError, NoReply, Pump, cli
from pumpctl.errors import GarbledReply

from firmware import codec, framing

PUMPCTL = str(Path(sys.executable).with_name("pumpctl"))


def pumpctl(*args, timeout=60):
    return subprocess.run([PUMPCTL, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def one_line_error(out, code=3):
    """The run failed with exit `code` and said so in one line of stderr, with no traceback; that line."""
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("pumpctl: ")
    return lines[0][len("pumpctl: ") :]


# --- fake devices on real ptys ---------------------------------------------------------------


@contextmanager
def pty_device(behaviour=None):
    """A real pty: yields the path of its tty side (what pumpctl opens). behaviour(master_fd, stop)
    runs on a thread as the device on the other end; None: nobody is there (a silent device)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    stop = threading.Event()
    thread = None
    if behaviour is not None:
        thread = threading.Thread(target=behaviour, args=(master, stop), daemon=True)
        thread.start()
    try:
        yield os.ttyname(slave)
    finally:
        stop.set()
        if thread is not None:
            thread.join(2)
        os.close(master)
        os.close(slave)


def _write(fd, data, stop):
    while data and not stop.is_set():
        try:
            data = data[os.write(fd, data) :]
        except BlockingIOError:
            time.sleep(0.005)
        except OSError:
            return


def random_bytes(master, stop):
    """A device that writes random bytes (a wrong baud rate, line noise, another protocol)."""
    while not stop.is_set():
        _write(master, os.urandom(64), stop)
        time.sleep(0.01)
        _drain(master)


def _drain(fd):
    try:
        return os.read(fd, 4096)
    except (BlockingIOError, OSError):
        return b""


def echo(master, stop):
    """A device that sends back whatever it gets (a loopback plug, a terminal with local echo)."""
    while not stop.is_set():
        if select.select([master], [], [], 0.02)[0]:
            _write(master, _drain(master), stop)


def repl_banner(master, stop):
    """A board at a MicroPython REPL: Ctrl-B (0x02, as every frame's protocol version byte is)
    makes the friendly REPL print its banner; text, never a 0x00 delimiter."""
    while not stop.is_set():
        if select.select([master], [], [], 0.02)[0] and b"\x02" in _drain(master):
            banner = b"MicroPython v1.24.1 on 2024-11-29; Raspberry Pi Pico with RP2040\r\n"
            _write(master, banner + b'Type "help()" for more information.\r\n>>> ', stop)


def old_protocol_pump(master, stop, version=1):
    """A pump that answers every request, well formed and checksummed, in protocol version 1."""
    decoder = framing.FrameDecoder()
    while not stop.is_set():
        if not select.select([master], [], [], 0.02)[0]:
            continue
        for b in _drain(master):
            if decoder.feed(b):
                try:
                    kind, seq, _payload, _mac, _signed = decoder.frame()
                except framing.FrameError:
                    continue
                raw = bytearray([version, kind | codec.REPLY, 0, *seq.to_bytes(4, "little"), 0])
                raw += zlib.crc32(raw).to_bytes(4, "little")
                _write(master, framing.cobs_encode(raw) + b"\x00", stop)


# --- the port cannot be opened -----------------------------------------------------------------


def test_an_absent_port_says_to_plug_the_pump_in():
    message = one_line_error(pumpctl("--port", "/dev/ttyACM9", "status"))
    assert message == (
        "cannot open /dev/ttyACM9: there is no such port; is the pump plugged in and powered? "
        "(pumpctl ports lists the serial ports attached)"
    )


def test_a_port_another_program_holds_is_busy():
    with pty_device() as port:
        holder = serial.Serial(port, exclusive=True)  # as pumpctl, mpremote and miniterm all lock a port
        try:
            message = one_line_error(pumpctl("--port", port, "status"))
        finally:
            holder.close()
    assert message == (
        f"cannot open {port}: the port is busy, another program holds it (another pumpctl, mpremote or a "
        "serial terminal?); close that program, then retry"
    )


@pytest.mark.micropython
def test_a_second_pump_on_the_same_port_is_refused_as_busy(sim):
    with sim.pump() as first:
        with pytest.raises(LinkError, match=r"the port is busy, another program holds it") as e:
            Pump(sim.port)
        assert str(e.value).startswith(f"cannot open {sim.port}: ")
        assert first.status().mode == "stopped"  # the first connection is undisturbed
    with Pump(sim.port) as again:  # and the port is free once it closes
        assert again.status().mode == "stopped"


@pytest.mark.parametrize("port", ["/dev/null", "/tmp"])
def test_what_is_not_a_serial_port_is_named(port):
    message = one_line_error(pumpctl("--port", port, "status"))
    assert message == f"cannot open {port}: it is not a serial port; give the pump's port (pumpctl ports lists them)"


def test_an_unknown_url_scheme_names_the_ones_pyserial_knows():
    message = one_line_error(pumpctl("--port", "tcp://127.0.0.1:4000", "status"))
    assert message == (
        "cannot open tcp://127.0.0.1:4000: pyserial knows no tcp:// ports; give a device path (/dev/ttyACM0), "
        "socket://HOST:PORT or rfc2217://HOST:PORT"
    )


@pytest.mark.parametrize("scheme", ["socket", "rfc2217"])
def test_a_url_where_nothing_listens_is_connection_refused(scheme):
    with socket.socket() as s:  # a free port, closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    message = one_line_error(pumpctl("--port", f"{scheme}://127.0.0.1:{free}", "status"))
    assert message == (
        f"cannot open {scheme}://127.0.0.1:{free}: nothing accepts connections there (connection refused); "
        "start the serial server at that address, or check the host and port"
    )


# --- the port opens, but no pump answers -------------------------------------------------------


def test_a_silent_port_says_nothing_answers_as_a_pump():
    with pty_device() as port:
        message = one_line_error(pumpctl("--port", port, "--timeout", "0.3", "status"))
    assert message == (
        f"no reply from the pump on {port} within 0.3 s: nothing on this port answers as a pump; check that it is "
        "the pump's port and that the pump firmware runs on it (pumpctl ports lists the ports; --timeout waits longer)"
    )


def test_a_port_sending_random_bytes_is_not_a_pump():
    with pty_device(random_bytes) as port:
        message = one_line_error(pumpctl("--port", port, "--timeout", "0.5", "status"))
    assert message.startswith(f"the device on {port} does not answer as a pump: no reply within 0.5 s, only ")
    assert "bytes that are not pump frames (" in message
    assert message.endswith(
        "is it the pump's port, running the pump firmware (not a balance, a REPL or another board), at 115200 baud? "
        "(pumpctl ports lists the ports)"
    )


def test_a_board_at_its_repl_is_not_a_pump_and_its_text_is_quoted():
    with pty_device(repl_banner) as port:
        message = one_line_error(pumpctl("--port", port, "--timeout", "0.5", "status"))
    assert message.startswith(f"the device on {port} does not answer as a pump: no reply within 0.5 s, only ")
    assert "bytes but no whole pump frame, starting b'MicroPython v1.2'" in message


@pytest.mark.parametrize("port", ["echo", "loop://"])
def test_a_port_that_echoes_is_not_a_pump(port):
    if port == "echo":
        with pty_device(echo) as path:
            message = one_line_error(pumpctl("--port", path, "--timeout", "0.5", "status"))
        port = path
    else:
        message = one_line_error(pumpctl("--port", port, "--timeout", "0.5", "status"))
    assert message == (
        f"{port} sends back what pumpctl sends (a loopback, an echoing terminal or bridge), so no pump is answering "
        "there: give the pump's port (pumpctl ports lists the ports)"
    )


def test_a_pump_of_an_older_protocol_version_says_to_flash_the_pump():
    with pty_device(old_protocol_pump) as port:
        message = one_line_error(pumpctl("--port", port, "--timeout", "0.5", "status"))
    assert message == (
        f"the pump on {port} speaks protocol 1, older than this pumpctl's {codec.PROTOCOL_VERSION}: flash the pump's "
        "firmware (pumpctl flash) to match, or use the pumpctl of its firmware"
    )


def newer_protocol_pump(master, stop):
    old_protocol_pump(master, stop, version=codec.PROTOCOL_VERSION + 1)


def test_a_pump_of_a_newer_protocol_version_says_to_update_pumpctl():
    with pty_device(newer_protocol_pump) as port:
        message = one_line_error(pumpctl("--port", port, "--timeout", "0.5", "status"))
    assert message == (
        f"the pump on {port} speaks protocol {codec.PROTOCOL_VERSION + 1}, newer than this pumpctl's "
        f"{codec.PROTOCOL_VERSION}: update pumpctl"
    )


def test_the_api_raises_garbled_reply_a_no_reply_and_a_link_error():
    with pty_device(random_bytes) as port:
        with Pump(port, timeout=0.3) as pump:
            with pytest.raises(GarbledReply) as e:
                pump.status()
    assert isinstance(e.value, NoReply) and isinstance(e.value, LinkError)


@pytest.mark.micropython
def test_a_pump_that_stops_answering_mid_session_is_told_apart_from_a_wrong_port(sim):
    with sim.pump(timeout=0.3) as pump:
        assert pump.status().mode == "stopped"
        os.kill(sim.proc.pid, signal.SIGSTOP)  # the firmware hangs (the process is ours, by its id)
        try:
            with pytest.raises(NoReply) as e:
                pump.status()
        finally:
            os.kill(sim.proc.pid, signal.SIGCONT)
        assert str(e.value) == (
            f"no reply from the pump on {sim.port} within 0.3 s: it answered before, so the pump or the link "
            "stopped; check its cable and power, then retry"
        )
        assert pump.status().mode == "stopped"  # it resumed: the link recovers


@pytest.mark.micropython
def test_a_board_that_goes_away_mid_session_says_the_line_dropped():
    from pumpctl import Simulator

    with Simulator() as sim, sim.pump(timeout=0.5) as pump:
        assert pump.status().mode == "stopped"
        sim.proc.kill()  # our own child, by its handle: as if the board were unplugged
        sim.proc.wait(5)
        with pytest.raises(LinkError) as e:
            pump.status()
    assert str(e.value).startswith(f"cannot write to {sim.port}: ")
    assert str(e.value).endswith("; the board was unplugged or reset, or the connection dropped: check it, then retry")


# --- a simulator over TCP: socket:// and rfc2217:// ---------------------------------------------


class _PtySerial(serial.Serial):
    """The tty side of a pty as a serial port: a pty has no modem lines (DTR, RTS, CTS...), whose
    ioctls fail on it, so an RFC 2217 client's line controls are accepted and do nothing."""

    reconfigured = 0  # line settings applied: an RFC 2217 client's renegotiation lands here

    def _reconfigure_port(self, *args, **kwargs):
        self.reconfigured += 1
        super()._reconfigure_port(*args, **kwargs)

    def _update_dtr_state(self):
        pass

    def _update_rts_state(self):
        pass

    cts = dsr = ri = cd = property(lambda self: False)


class TcpBridge:
    """A TCP server on 127.0.0.1 bridging each connection to a serial device (a simulator's pty),
    one connection at a time: raw bytes (for socket://), or RFC 2217 through pyserial's own
    PortManager (for rfc2217://, as pyserial's examples/rfc2217_server.py does). noise: bytes
    sent to the client before each chunk from the device (damaged frames on the line)."""

    def __init__(self, device: str, rfc2217: bool = False, noise: bytes = b"", greet_after: float = 0.0):
        self.device = device
        self.rfc2217 = rfc2217
        self.noise = noise
        self.greet_after = greet_after  # seconds before the RFC 2217 server starts (and sends its telnet options)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.url = f"{'rfc2217' if rfc2217 else 'socket'}://127.0.0.1:{self.port}"
        self.connections = 0
        self.device_port: _PtySerial | None = None  # the device side of the connection being bridged
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self.server.close()
        assert not self.failures, self.failures

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _addr = self.server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            try:
                self._bridge(conn)
            except Exception as e:  # noqa: BLE001 - reported by __exit__ in the test
                self.failures.append(e)
            finally:
                conn.close()

    def _bridge(self, conn: socket.socket):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ser = self.device_port = _PtySerial(self.device, baudrate=115200, timeout=0.05, exclusive=True)
        lock = threading.Lock()

        class Connection:  # what PortManager writes its telnet replies to
            @staticmethod
            def write(data):
                with lock:
                    conn.sendall(data)

        time.sleep(self.greet_after)
        manager = serial.rfc2217.PortManager(ser, Connection()) if self.rfc2217 else None
        alive = threading.Event()
        alive.set()

        def device_to_client():
            at_boundary = True  # noise goes only between frames, never into one
            while alive.is_set():
                data = ser.read(ser.in_waiting or 1)
                if data:
                    noise = self.noise if at_boundary else b""
                    at_boundary = data.endswith(b"\x00")
                    if manager is not None:
                        data = b"".join(manager.escape(data))  # yields one-byte bytes
                    Connection.write(noise + data)

        reader = threading.Thread(target=device_to_client, daemon=True)
        reader.start()
        try:
            conn.settimeout(0.1)
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                ser.write(b"".join(manager.filter(data)) if manager is not None else data)
        finally:
            alive.clear()
            reader.join(2)
            ser.close()


@pytest.mark.micropython
def test_a_session_over_socket_url_to_a_simulator(sim):
    with TcpBridge(sim.port) as bridge:
        out = pumpctl("--port", bridge.url, "program", "--rate", "0.5 mL/day", "--yes")
        assert out.returncode == 0, out.stderr
        out = pumpctl("--port", bridge.url, "advance", "24h")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "pump time now 24 h 00 min 00 s; delivered 499.9968 uL"
        out = pumpctl("--port", bridge.url, "status")
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[:4] == [
            "pump time   24 h 00 min 00 s",
            "mode        continuous",
            "rate        0.5 mL/day (500000 nL/day)",
            "delivered   499.9968 uL (9600 steps of 52.083 nL)",
        ]
        assert bridge.connections == 3


@pytest.mark.micropython
@pytest.mark.filterwarnings("ignore:set(Daemon|Name)\\(\\) is deprecated:DeprecationWarning")  # pyserial 3.5's own
def test_status_over_rfc2217_url_through_pyserials_port_manager(sim):
    with TcpBridge(sim.port, rfc2217=True) as bridge:
        out = pumpctl("--port", bridge.url, "--json", "status")
        assert out.returncode == 0, out.stderr
        assert '"mode": "stopped"' in out.stdout
        with Pump(bridge.url) as pump:  # a session too (keys from the config file)
            pump.set_rate("1 mL/h")
            # pumpctl sets an RFC 2217 port's timeout once: setting it renegotiates the line settings, a
            # round trip of 50 ms or more to the server, which a timeout set per read would cost each time.
            before = bridge.device_port.reconfigured
            for _ in range(10):
                assert pump.status().rate_nl_per_day == 24_000_000
            assert bridge.device_port.reconfigured == before, "the line settings were negotiated again"


@pytest.mark.micropython
def test_socket_url_to_an_rfc2217_server_says_to_use_rfc2217(sim):
    # The server's telnet options reach pumpctl after it opened the port (over a network, they may),
    # ahead of the pump's reply: not a pump frame.
    with TcpBridge(sim.port, rfc2217=True, greet_after=0.3) as bridge:
        raw = f"socket://127.0.0.1:{bridge.port}"
        message = one_line_error(pumpctl("--port", raw, "--timeout", "0.5", "status"))
    assert message.startswith(f"the device on {raw} does not answer as a pump: ")
    assert message.endswith(
        "that is telnet negotiation: the server speaks RFC 2217, so use rfc2217:// instead of socket://"
    )


@pytest.mark.micropython
def test_damaged_frames_before_each_reply_are_skipped_not_fatal(sim):
    # Before every chunk the pump sends, the line delivers a frame with a bad checksum and a run of
    # bytes that is not COBS: the host skips them, as the pump does, and reads the reply after.
    with TcpBridge(sim.port, noise=b"\x05\x01\x02\x03\x04\x00\x02\x00\x00") as bridge:
        with Pump(bridge.url) as pump:
            assert pump.status().mode == "stopped"
            pump.set_rate("0.5 mL/day")
            assert pump.status().rate_nl_per_day == 500_000


def test_ctrl_c_during_log_or_flash_says_what_it_left(monkeypatch, capsys):
    """Issue 22: interrupted means stopped, and said. A Ctrl-C cannot be timed into the middle of a real
    read or flash here, so the pump's and the board's calls raise it (the one fault mocked)."""
    from pumpctl import client
    from pumpctl import flash as flashing

    def interrupted_events(self, since=0, progress=None):
        progress(3, 10)
        raise KeyboardInterrupt

    monkeypatch.setattr(client.Pump, "__enter__", lambda self: self)
    monkeypatch.setattr(client.Pump, "__exit__", lambda self, *exc: None)
    monkeypatch.setattr(client.Pump, "__init__", lambda self, *a, **k: None)
    monkeypatch.setattr(client.Pump, "events", interrupted_events)
    assert cli.main(["--port", "/dev/null", "log"]) == 130
    assert capsys.readouterr().err == "pumpctl: interrupted after 3 events read; nothing on the pump changed\n"

    def interrupted_flash(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(flashing, "flash", interrupted_flash)
    assert cli.main(["--port", "/dev/null", "flash", "--board", "rp2_pico"]) == 130
    err = capsys.readouterr().err
    assert "interrupted: the board on /dev/null may hold part of the firmware but not its main.py" in err
    assert err.rstrip().endswith("so it will not start the pump; flash it again")


@pytest.mark.micropython
@pytest.mark.parametrize(
    "argv, whole",
    [
        (
            ["program", "drug foo 1 mg/mL", "fill 20 mL", "basal 1 mg/day", "--yes"],
            "drug 'foo' is not in library default-2026.11 (it has: morphine, hydromorphone, fentanyl, sufentanil, "
            "bupivacaine, clonidine, ziconotide, baclofen); nothing was changed",
        ),
        (
            ["program", "drug hydromorphone 15 mg/mL", "fill 20 mL", "basal 20 mg/day", "--yes"],
            "is above the hard limit of 10 mg/day (library default-2026.11); nothing was changed",
        ),
    ],
)
def test_a_pump_refusal_the_wire_cut_is_said_whole(sim, capsys, argv, whole):
    """Issue 22: the pump's texts were cut at the wire's 100 bytes ("...in a 2004 pump reca; nothing was
    changed"). ERROR carries a reason's next 100 bytes too (`more`), and pumpctl says it whole."""
    assert cli.main(["--port", sim.port, "fault", "fill", "--value", "20 mL"]) == 0
    assert (
        cli.main(["--port", sim.port, "program", "drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day", "--yes"])
        == 0
    )
    capsys.readouterr()
    code = cli.main(["--port", sim.port, *argv])
    err = capsys.readouterr().err
    assert code == cli.EXIT_REFUSED and err.strip().endswith(whole), err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.micropython
def test_a_program_line_that_does_not_read_is_refused_whole_before_anything_is_sent(sim, capsys):
    """pumpctl reads a program's lines itself (programs travel as numbers): a line that does not read is
    refused as a command line that is wrong (exit 2), the reason whole, and the pump is sent nothing."""
    code = cli.main(["--port", sim.port, "bolus", "0.5 mg", "--over", "30", "--yes"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE, err
    assert err.strip().endswith(
        "bolus over '30' has no unit (a unit is required: minutes and hours were confused in a 2004 pump "
        "recall); give s, min, h or day (for example 90 min); nothing was sent to the pump"
    )
    assert len(err.strip().splitlines()) == 1


def test_a_command_the_pumps_firmware_does_not_know_says_to_update_it():
    """A pumpctl newer than the pump's firmware, same protocol: the command is refused as unknown."""
    from pumpctl.errors import PumpRefused

    refused = PumpRefused(codec.ERR_UNKNOWN_COMMAND, "", "unknown command 0x18")
    assert str(refused) == (
        "pump refused: unknown command 0x18; the pump's firmware is older than this pumpctl (pumpctl flash updates it)"
    )
    assert "flash" not in str(PumpRefused(codec.ERR_BAD_VALUE, "rate", "too high"))
