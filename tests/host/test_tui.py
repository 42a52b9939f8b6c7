"""`pumpctl telemetry --live` in a real terminal (tmux), and `--csv`.

The live view holds the pump's port (pumpctl opens a port exclusively), so a
test cannot also drive the pump while the view runs: the pump is set up
through the Pump API first (program, advance, fault) and the view then shows
it; for a view that changes under the engineer's eyes, the simulator runs at
N times real time, with a fault planned at a later pump time.
"""

import csv
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pumpctl import Pump, Simulator, expected_steps, quantities
from pumpctl.live import KeyReader, ViewState, render
from pumpctl.replies import Alarm, PumpInfo, Telemetry, Therapy
from pumpctl.telemetry_csv import COLUMNS
from rich.console import Console

PUMPCTL = str(Path(sys.executable).with_name("pumpctl"))
TMUX = shutil.which("tmux") or "/usr/bin/tmux"
PROGRAM = ["drug none", "fill 20 mL", "basal 2 mL/day"]
US_PER_S = 10**6

needs_tmux = pytest.mark.skipif(not os.path.exists(TMUX), reason="tmux is not installed")


def pumpctl(*args, timeout=60):
    return subprocess.run([PUMPCTL, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


class Terminal:
    """A 120 x 40 terminal: one tmux session on a private server (its own socket)."""

    def __init__(self, folder: Path, name: str):
        self.folder = folder
        self.socket = f"pumpctl-test-{os.getpid()}-{name}"
        self.env = dict(os.environ, TERM=os.environ.get("TERM") or "xterm")

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(
            [TMUX, "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=self.env,
        )
        assert proc.returncode == 0, f"tmux {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def run_pumpctl(self, *args: str) -> None:
        """pumpctl in the terminal; its exit code, its stderr and the terminal's mode before and after go to files."""
        f = self.folder
        line = " ".join(shlex.quote(a) for a in (PUMPCTL, *args))
        script = (
            f"stty -g > {f}/stty-before; env -u NO_COLOR {line} 2> {f}/stderr; rc=$?; "
            f"stty -g > {f}/stty-after; echo $rc > {f}/rc; exec sleep 600"
        )
        config = os.environ["PUMPCTL_CONFIG"]  # the test run's config file, where the simulator's keys are
        self.tmux("new-session", "-d", "-x", "120", "-y", "40", "-e", f"PUMPCTL_CONFIG={config}", script)

    def screen(self, colours: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if colours else []))

    def wait_for(self, *needles: str | re.Pattern, timeout: float = 20.0, colours: bool = False) -> str:
        """The screen once it shows every needle (text, or a compiled pattern). A frame is drawn
        over the last one, so a capture may catch it half drawn: look until all are there."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen(colours)
            if all((n.search(screen) if isinstance(n, re.Pattern) else n in screen) for n in needles):
                return screen
            assert time.monotonic() < deadline, f"the screen never showed {needles}:\n{screen}\n{self.stderr()}"
            time.sleep(0.1)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def flag(self, name: str) -> str:
        return self.tmux("display-message", "-p", f"#{{{name}}}").strip()

    def stderr(self) -> str:
        path = self.folder / "stderr"
        return path.read_text() if path.exists() else ""

    def exit_code(self, timeout: float = 20.0) -> int:
        path = self.folder / "rc"
        deadline = time.monotonic() + timeout
        while not (path.exists() and path.read_text().strip()):
            assert time.monotonic() < deadline, f"pumpctl did not exit:\n{self.screen()}\n{self.stderr()}"
            time.sleep(0.1)
        return int(path.read_text())

    def assert_restored(self) -> None:
        """After pumpctl: the terminal's mode as before, the cursor shown, the normal screen."""
        assert (self.folder / "stty-after").read_text() == (self.folder / "stty-before").read_text()
        assert self.flag("cursor_flag") == "1" and self.flag("alternate_on") == "0"

    def tty_mode(self) -> str:
        return subprocess.run(["stty", "-a", "-F", self.flag("pane_tty")], capture_output=True, text=True).stdout

    def kill(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def terminal(tmp_path, request):
    term = Terminal(tmp_path, request.node.name[-20:].strip("_"))
    try:
        yield term
    finally:
        term.kill()


def frames(screen: str) -> int:
    """Panels on the screen: one if the view redraws in place, more if it scrolled."""
    return screen.count("╭─ pump ")


def received(screen: str) -> int:
    return int(re.search(r"samples\s+(\d+) received", screen).group(1))


@needs_tmux
@pytest.mark.micropython
def test_the_live_view_shows_the_pump_and_its_keys_act(terminal, tmp_path):
    with Simulator(register=True, board_args=["--reservoir-nl", "20000000"]) as sim:
        with sim.pump() as pump:
            pump.program(PROGRAM)
            pump.sim_advance(3600 * US_PER_S)
            pump.sim_fault("motor")
            pump.sim_advance(60 * US_PER_S)
            st = pump.status()
            th = pump.therapy()
        assert st.steps == expected_steps(2_000_000, 3600 * US_PER_S, st.step_volume_pl)  # stopped at the fault
        record = tmp_path / "live.csv"
        terminal.run_pumpctl("--port", sim.port, "telemetry", "--live", "--interval", "100ms", "--csv", str(record))

        delivered = f"{quantities.volume(st.delivered_pl)}  ({st.steps} steps of 52.083 nL, since boot)"
        pct = quantities.as_decimal(quantities.Fraction(th.battery_permille, 10), 1)
        screen = terminal.wait_for(
            "pump time   01 h 01 min 00 s",
            "mode        stopped",  # a motor fault stops the pump
            "rate        -",
            f"delivered   {delivered}",
            f"reservoir   {quantities.volume(th.reservoir_nl * 1000)} counted, sensor ",
            f"battery     {pct} % ({th.battery_permille} permille)",
            re.compile(r"alarms      HIGH\s+motor fault\s+active\s+not acknowledged\s+raised at 01 h 00 min 00 s"),
            "tones       sounding at high priority",
            "session     none",
            " q  quit    s  silence the alarm tones (patient key)    a  acknowledge all alarms (clinician key)",
            "0 lost on the way",
        )
        assert "83.3328 uL  (1600 steps" in screen
        assert terminal.flag("alternate_on") == "1" and frames(screen) == 1
        first = received(screen)
        terminal.wait_for(re.compile(rf"samples     (?!{first} )\d+ received"))  # the same frame, its counts moving on
        terminal.wait_for(re.compile(r"\x1b\[[0-9;]*31m[^\n]*HIGH[^\n]*motor fault"), colours=True)  # high: red
        mode = terminal.tty_mode()
        assert "-icanon" in mode and "-echo " in mode  # cbreak while the view runs

        terminal.keys("s")
        terminal.wait_for(
            "tones       silenced for 120 s more",
            "session     patient",
            "tones silenced for 120 s; the alarms stay latched",
        )
        terminal.keys("a")
        terminal.wait_for(
            re.compile(r"HIGH\s+motor fault\s+active\s+acknowledged"),  # still latched: the motor is still dead
            "acknowledged 1 alarm; latched until their condition clears: motor fault",
            "session     clinician",
        )

        terminal.keys("q")
        assert terminal.exit_code() == 0, terminal.stderr()
        terminal.assert_restored()
        screen = terminal.screen()
        assert frames(screen) == 1  # the last frame stays on the normal screen, once
        shown = received(screen)
        rows = list(csv.reader(record.open()))
        assert tuple(rows[0]) == COLUMNS and len(rows) == 1 + shown
        assert terminal.stderr() == f"{shown} samples written to {record}\n"
        assert [int(r[0]) for r in rows[1:]] == list(range(shown))
        assert {r[5] for r in rows[1:]} == {str(st.delivered_pl)} and {r[12] for r in rows[1:]} == {"motor fault"}


@needs_tmux
@pytest.mark.micropython
def test_the_live_view_follows_a_running_pump_and_ends_with_exit_3_when_the_link_dies(terminal):
    speed = 30  # pump time at 30 x the wall clock: a step every 75 ms of wall time at 2 mL/day
    with Simulator(speed=speed, register=True) as sim:
        with sim.pump() as pump:
            pump.set_rate("2 mL/day")
            now_s = pump.status().time_us // US_PER_S
            pump.sim_fault("battery", at_s=now_s + 120, value=80)  # 4 s of wall time on; the next check sees it
        terminal.run_pumpctl("--port", sim.port, "telemetry", "--live", "--interval", "100ms")

        screen = terminal.wait_for(
            "mode        continuous", "rate        2 mL/day (2000000 nL/day)", "alarms      none"
        )
        first = int(re.search(r"\((\d+) steps of", screen).group(1))
        screen = terminal.wait_for(re.compile(rf"delivered   .*\((?!{first} )\d+ steps of"))  # delivery goes on
        for line in screen.splitlines():  # what is delivered is what the steps are, exactly
            if "delivered   " in line and " steps of 52.083 nL" in line:
                n = int(re.search(r"\((\d+) steps of", line).group(1))
                assert f"delivered   {quantities.volume(n * 52_083)}  (" in line

        terminal.wait_for(
            re.compile(r"alarms      MEDIUM\s+battery ERI\s+active\s+not acknowledged"),
            "tones       sounding at medium priority",
            re.compile(r"battery     [0-9.]+ % \([0-9]{1,2} permille\)"),  # 80 permille, draining
            timeout=30,
        )
        terminal.wait_for(re.compile(r"\x1b\[[0-9;]*33m[^\n]*MEDIUM[^\n]*battery ERI"), colours=True)  # yellow

        sim.stop()  # the pump goes away under the view
        assert terminal.exit_code() == 3
        err = terminal.stderr()
        assert err.startswith("pumpctl: ") and err.count("\n") == 1 and "Traceback" not in err, err
        terminal.assert_restored()


@needs_tmux
@pytest.mark.micropython
def test_ctrl_c_ends_the_live_view_and_restores_the_terminal(terminal, sim):
    terminal.run_pumpctl("--port", sim.port, "telemetry", "--live", "--interval", "50ms")
    terminal.wait_for("mode        stopped", "alarms      none", "tones       quiet")
    terminal.keys("C-c")
    assert terminal.exit_code() == 130, terminal.stderr()  # as every pumpctl command on Ctrl-C (q exits 0)
    terminal.assert_restored()
    with Pump(sim.port) as pump:  # the stream was stopped and the port let go
        assert pump.telemetry(timeout=0.3) is None


@pytest.mark.micropython
def test_csv_records_every_sample_in_the_plain_mode(sim, tmp_path):
    with sim.pump() as pump:
        pump.set_rate("2 mL/day")
        pump.sim_advance(3600 * US_PER_S)
        st = pump.status()
    path = tmp_path / "samples.csv"
    out = pumpctl("--port", sim.port, "telemetry", "--interval", "20ms", "--count", "5", "--csv", str(path))
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 6  # the lines as before: a header, then a line a sample
    assert f"5 samples written to {path}" in out.stderr
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 5 and tuple(rows[0]) == COLUMNS
    assert [r["seq"] for r in rows] == ["0", "1", "2", "3", "4"]
    first = rows[0]
    assert first["time_s"] == "3600.000000" and first["mode"] == "continuous"
    assert first["rate_nl_per_day"] == "2000000" and first["steps"] == str(st.steps)
    assert first["delivered_pl"] == str(st.delivered_pl) and first["reservoir_nl"] == ""  # no fill programmed
    assert first["alarm"] == "none" and first["alarms"] == "" and first["session"] == "none"

    out = pumpctl("--port", sim.port, "--json", "telemetry", "--interval", "20ms", "--count", "3", "--csv", str(path))
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 3  # JSON lines as before
    assert len(path.read_text().splitlines()) == 4

    out = pumpctl("--port", sim.port, "telemetry", "--interval", "20ms", "--count", "4", "--csv", "-")
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and lines[0] == ",".join(COLUMNS) and len(lines) == 5


def test_live_with_json_or_a_csv_on_stdout_is_a_usage_error():
    out = pumpctl("--port", "/dev/null", "--json", "telemetry", "--live")
    assert out.returncode == 2 and "--live and --json" in out.stderr
    out = pumpctl("--port", "/dev/null", "telemetry", "--live", "--csv", "-")
    assert out.returncode == 2 and "--csv -" in out.stderr


# -- without a pump -------------------------------------------------------------------


def _sample(**kw) -> Telemetry:
    values = dict(
        seq=7,
        time_us=90_061_500_000,
        mode="continuous",
        rate_nl_per_day=500_000,
        steps=9600,
        reservoir_nl=15_000_000,
        day_nl=500_000,
        hour_nl=20_833,
        alarm="motor stall",
        session="none",
        dropped=0,
        alarms=["restart", "low reservoir", "motor stall"],
        sensor_nl=14_990_000,
        battery_permille=655,
    )
    values.update(kw)
    return Telemetry(**values)


def _therapy(**kw) -> Therapy:
    values = dict(
        mode="continuous",
        basal_nl_per_day=500_000,
        rate_nl_per_day=500_000,
        bolus="none",
        bolus_rate_nl_per_day=0,
        bolus_left_s=0,
        bridge=False,
        reservoir_nl=15_000_000,
        empty_in_s=None,
        day_nl=500_000,
        hour_nl=20_833,
        refused_steps=0,
        alarm="motor stall",
        clock_s=None,
        program_crc=0,
        library="1",
        library_hash=0x1234ABCD,
        alarms=["restart", "low reservoir", "motor stall"],
        sounding="high",
        silenced_s=0,
        held=True,
        sensor_nl=14_990_000,
        low_in_s=86_400 * 26,
        low_nl=2_000_000,
        empty_nl=1_000_000,
        battery_permille=655,
        battery_days=1200,
    )
    values.update(kw)
    return Therapy(**values)


def _text(state: ViewState, styles: bool = False) -> str:
    console = Console(width=120, record=True, force_terminal=True, color_system="standard", file=io.StringIO())
    console.print(render(state))
    return console.export_text(styles=styles)


def test_the_view_shows_each_field_and_colours_alarms_by_priority():
    info = PumpInfo(3, "0.2.0", "sim", "unix", "sim-0001", 52_083, 1, 10**9)
    state = ViewState("/dev/pts/9", info, 52_083, 100, 0)
    assert "waiting for the first sample" in _text(state)
    alarms = [
        Alarm(9, "restart", "low", False, False, 0, "power was cut"),
        Alarm(4, "low reservoir", "medium", True, False, 50 * US_PER_S, "2 mL left"),
        Alarm(11, "motor stall", "high", True, True, 60 * US_PER_S, "stall line"),
    ]
    state.add(_sample())
    state.therapy, state.therapy_at_us, state.alarms = _therapy(), 90_061_500_000, alarms
    text = _text(state)
    assert "pump time   25 h 01 min 01.5 s" in text
    assert "delivery HELD by a motor fault" in text
    assert "rate        0.5 mL/day (500000 nL/day)" in text
    assert "delivered   499.9968 uL  (9600 steps of 52.083 nL, since boot)" in text
    assert "reservoir   15 mL counted, sensor 14.99 mL" in text
    assert "low level 2 mL in 26 days, at pump time 27 d 01 h 01 min 01.5 s" in text
    assert "battery     65.5 % (655 permille), about 1200 days left" in text
    lines = text.splitlines()
    order = [
        next(i for i, line in enumerate(lines) if name in line) for name in ("motor stall", "low reservoir", "restart")
    ]
    assert order == sorted(order)  # highest priority first
    assert re.search(r"HIGH\s+motor stall\s+active\s+acknowledged", text)
    assert re.search(r"LOW\s+restart\s+cleared\s+not acknowledged", text)
    assert "tones       sounding at high priority" in text
    coloured = _text(state, styles=True).splitlines()
    for name, sgr in (("motor stall", "31"), ("low reservoir", "33"), ("restart", "36")):
        line = next(line for line in coloured if name in line and "raised at" in line)
        assert re.search(rf"\x1b\[[0-9;]*{sgr}m[A-Z]+", line), (name, repr(line))

    state.therapy = _therapy(silenced_s=95)
    assert "tones       silenced for 95 s more" in _text(state)
    state.add(_sample(seq=10, alarms=[], alarm="none"))  # gone since the list was read: not shown
    text = _text(state)
    assert "alarms      none" in text and "2 received, 2 lost on the way" in text


def test_keys_come_in_cbreak_mode_and_the_terminal_is_restored_even_on_an_error():
    import termios

    master, slave = os.openpty()
    try:
        stream = os.fdopen(slave, "r", closefd=False)
        before = termios.tcgetattr(slave)
        with pytest.raises(RuntimeError):
            with KeyReader(stream) as keys:
                assert keys.available and keys.read() == ""
                mode = termios.tcgetattr(slave)
                assert not mode[3] & (termios.ICANON | termios.ECHO) and mode[3] & termios.ISIG  # Ctrl-C still works
                os.write(master, b"sa")
                time.sleep(0.05)
                assert keys.read() == "sa"
                raise RuntimeError("the link died")
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)
    with open(os.devnull) as not_a_tty:
        assert not KeyReader(not_a_tty).available  # not a terminal: no keys, nothing changed


def test_the_key_help_stays_on_the_panel_however_long_the_message():
    """Issue 22: in the live view, the acknowledge message pushed the key help off the panel."""
    info = PumpInfo(3, "0.2.0", "sim", "unix", "sim-0001", 52_083, 1, 10**9)
    state = ViewState("/dev/pts/9", info, 52_083, 100, 0, keys=True)
    state.add(_sample())
    state.therapy, state.therapy_at_us = _therapy(), 90_061_500_000
    state.say("acknowledged 3 alarms; " + "still latched until their condition clears: motor stall (high) " * 4)
    lines = _text(state).splitlines()
    assert " q  quit " in lines[1] and " a  acknowledge all alarms (clinician key)" in lines[1]  # first, always
    [message] = [ln for ln in lines if "acknowledged 3 alarms" in ln]
    assert message.rstrip(" │").endswith("…")  # one line, cut with an ellipsis, not wrapped
