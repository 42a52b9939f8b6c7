"""pumpctl's output for people (render.py): tables and colour on a terminal, the plain text
elsewhere, --json untouched, progress bars on stderr, examples in every --help, and one line with
the documented exit code for every mistake, never a traceback."""

import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from pumpctl import cli, render

PUMPCTL = str(Path(sys.executable).with_name("pumpctl"))
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROGRAM = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day"]
# Commands whose help others write (see the brief of each): not checked here.
OTHERS = {"ports", "telemetry", "calibrate"}


def plain(text: str) -> str:
    return ESCAPE.sub("", text)


def _env(**extra) -> dict:
    """The test run's environment without anything that changes how rich draws."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS")}
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def _pty(rows: int = 40, columns: int = 120) -> tuple[int, int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return master, slave


def run_tty(*argv, stderr_tty=False, timeout=60, **env):
    """pumpctl with its stdout (and with stderr_tty its stderr) on a pseudo-terminal of 120 columns.
    Returns (exit code, stdout, stderr), line ends as written (the tty's \\r\\n made \\n)."""
    out_master, out_slave = _pty()
    err_master, err_slave = _pty() if stderr_tty else (None, None)
    proc = subprocess.Popen(
        [PUMPCTL, *argv],
        stdin=subprocess.DEVNULL,
        stdout=out_slave,
        stderr=err_slave if stderr_tty else subprocess.PIPE,
        env=_env(**env),
    )
    os.close(out_slave)
    if stderr_tty:
        os.close(err_slave)
    err_fd = err_master if stderr_tty else proc.stderr.fileno()
    got = {out_master: bytearray(), err_fd: bytearray()}
    pending = set(got)
    deadline = time.monotonic() + timeout
    try:
        while pending:
            ready, _, _ = select.select(list(pending), [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                proc.kill()
                raise TimeoutError(f"pumpctl {' '.join(argv)} did not finish in {timeout} s")
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: every slave end closed
                    data = b""
                if data:
                    got[fd] += data
                else:
                    pending.discard(fd)
        code = proc.wait(10)
    finally:
        os.close(out_master)
        if stderr_tty:
            os.close(err_master)
        else:
            proc.stderr.close()
    out, err = (got[fd].decode().replace("\r\n", "\n") for fd in (out_master, err_fd))
    return code, out, err


def run(sim, capsys, *argv):
    """pumpctl in this process, its output captured (not a terminal: the plain text)."""
    code = cli.main(["--port", sim.port, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def pumpctl(*argv, **env):
    """pumpctl with stdout and stderr piped (not a terminal)."""
    return subprocess.run(
        [PUMPCTL, *argv], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=_env(**env)
    )


# -- on a terminal: tables, colour; the same values -------------------------------------------


@pytest.mark.micropython
def test_status_on_a_terminal_is_a_table_in_colour_with_every_value_of_the_plain_text(sim, capsys):
    assert run(sim, capsys, "program", *PROGRAM, "--yes")[0] == 0
    assert run(sim, capsys, "advance", "1h")[0] == 0
    code, text, _ = run(sim, capsys, "status")
    assert code == 0 and "\x1b" not in text and "│" not in text  # captured: the plain text, as before

    code, out, err = run_tty("--port", sim.port, "status")
    assert code == 0, err
    assert "╭" in out and "│" in out and "╰" in out  # a table's borders
    assert "\x1b[32mcontinuous" in out  # the mode in green
    shown = plain(out)
    for line in text.splitlines():  # each value of the plain text, in the table's row of its key
        key, value = line[:12].strip(), line[12:].strip()
        row = next(r for r in shown.splitlines() if value in r)
        assert row.startswith("│") and (not key or key in row), (line, row)
    assert "0.1 mL/day (100000 nL/day)" in shown and "4.16664 uL (80 steps of 52.083 nL)" in shown


@pytest.mark.micropython
def test_alarms_on_a_terminal_show_each_priority_in_its_colour(sim, capsys):
    assert run(sim, capsys, "program", *PROGRAM, "--yes")[0] == 0
    assert run(sim, capsys, "fault", "stall")[0] == 0
    assert run(sim, capsys, "advance", "1h")[0] == 0  # a step falls due: the stall latches, high
    code, out, err = run_tty("--port", sim.port, "alarms")
    assert code == cli.EXIT_REFUSED, err  # alarms latched
    assert re.search(r"\x1b\[1;31mhigh\s*\x1b\[0m", out), out  # high: bold red
    assert re.search(r"\x1b\[1;31mmotor stall", out)
    rows = [r for r in plain(out).splitlines() if "motor stall" in r]
    assert rows and all(cell in rows[0] for cell in ("high", "active", "no")), rows
    assert "tones: sounding at high priority" in plain(out)
    # medium in yellow: a low battery (ERI) at the next battery check
    assert run(sim, capsys, "fault", "battery", "--value", "50")[0] == 0
    assert run(sim, capsys, "advance", "2min")[0] == 0
    code, out, _ = run_tty("--port", sim.port, "alarms")
    assert re.search(r"\x1b\[33mmedium", out), out


@pytest.mark.micropython
def test_the_review_is_a_table_and_the_commit_is_green(sim):
    code, out, err = run_tty("--port", sim.port, "program", *PROGRAM, "--yes")
    assert code == 0, err
    shown = plain(out)
    assert re.search(r"│\s+│\s*running\s*│\s*staged\s*│", shown), shown
    assert re.search(r"│ \* │ stop\s.*│ drug morphine 20 mg/mL\s*│", shown), shown
    assert "basal 2 mg/day  [0.1 mL/day = morphine 2 mg/day]" in shown  # brackets kept: not read as markup
    assert "\x1b[32mcommitted at pump time" in out


@pytest.mark.micropython
def test_log_library_keys_and_therapy_are_tables_on_a_terminal(sim, capsys):
    assert run(sim, capsys, "program", *PROGRAM, "--yes")[0] == 0
    _, text, _ = run(sim, capsys, "log")
    code, out, _ = run_tty("--port", sim.port, "log")
    assert code == 0 and "╭" in out
    shown = plain(out)
    assert re.search(r"│\s*index\s*│\s*pump time\s*│\s*event\s*│\s*text", shown)
    assert text.splitlines()[1].split()[:7] == ["0", "00", "h", "00", "min", "00", "s"]  # after the plain header
    assert re.search(r"│\s+0 │\s+00 h 00 min 00 s │ boot\s+│ firmware", shown), shown

    code, out, _ = run_tty("--port", sim.port, "library")
    shown = plain(out)
    assert code == 0 and shown.startswith("drug library ")
    assert re.search(r"│ morphine\s+│ 20 mg/mL\s+│ 10 mg/day / 15 mg/day\s+│", shown), shown

    code, out, _ = run_tty("keys")
    assert code == 0 and os.environ["PUMPCTL_CONFIG"] in plain(out) and "clinician, patient" in plain(out)

    code, out, _ = run_tty("--port", sim.port, "therapy")
    shown = plain(out)
    assert code == 0 and re.search(r"│ reservoir\s+│ 20 mL counted", shown), shown
    assert re.search(r"│ basal 2 mg/day\s+│ 0.1 mL/day = morphine 2 mg/day\s+│", shown), shown


@pytest.mark.micropython
def test_no_color_keeps_the_table_and_drops_every_escape(sim, capsys):
    assert run(sim, capsys, "program", *PROGRAM, "--yes")[0] == 0
    code, out, _ = run_tty("--port", sim.port, "status", NO_COLOR="1")
    assert code == 0 and "│" in out and "continuous" in out
    assert "\x1b" not in out


@pytest.mark.micropython
def test_piped_output_stays_the_plain_text_even_with_force_color_and_json_never_changes(sim, capsys):
    assert run(sim, capsys, "program", *PROGRAM, "--yes")[0] == 0
    _, text, _ = run(sim, capsys, "status")
    piped = pumpctl("--port", sim.port, "status", FORCE_COLOR="1")
    assert piped.returncode == 0 and piped.stdout == text  # byte for byte what scripts read
    _, data, _ = run(sim, capsys, "--json", "status")
    code, out, _ = run_tty("--port", sim.port, "--json", "status")
    assert code == 0 and "\x1b" not in out and json.loads(out) == json.loads(data)


@pytest.mark.micropython
def test_an_error_on_a_terminal_is_one_red_line(sim):
    code, out, err = run_tty("--port", sim.port, "alarms", "ack", stderr_tty=True)
    assert code == cli.EXIT_REFUSED and out == ""
    assert err.startswith("\x1b[1;31mpumpctl: pump refused (alarm): no alarm to acknowledge") and err.count("\n") == 1
    assert plain(err).rstrip().endswith("; nothing was changed")


# -- progress bars -----------------------------------------------------------------------------


class PtyStderr:
    """sys.stderr on a pseudo-terminal, drained by a thread (rich must never block on it)."""

    def __init__(self):
        self.master, slave = _pty()
        self.file = open(slave, "w", buffering=1, encoding="utf-8")
        self.data = bytearray()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self):
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.data += chunk

    def text(self) -> str:
        self.file.close()
        self.thread.join(5)
        os.close(self.master)
        return self.data.decode()


@pytest.mark.micropython
@pytest.mark.parametrize(
    "argv, label",
    [(["advance", "2day"], "advancing pump time"), (["log"], "reading the event log"), (["library"], "drug library")],
)
def test_a_long_command_draws_a_bar_on_a_terminal_stderr_and_leaves_stdout_plain(sim, capsys, monkeypatch, argv, label):
    assert run(sim, capsys, "program", *PROGRAM, "--yes")[0] == 0
    monkeypatch.setattr(render, "PROGRESS_DELAY_S", 0)  # draw at once, however fast the simulator is
    stderr = PtyStderr()
    monkeypatch.setattr(sys, "stderr", stderr.file)
    code = cli.main(["--port", sim.port, *argv])
    monkeypatch.undo()
    bar = stderr.text()
    out = capsys.readouterr().out
    assert code == 0
    assert label in plain(bar) and "100%" in plain(bar), bar
    assert "\x1b" not in out  # stdout is not a terminal here: the plain text


@pytest.mark.micropython
def test_no_bar_when_stderr_is_not_a_terminal(sim, capsys, monkeypatch):
    monkeypatch.setattr(render, "PROGRESS_DELAY_S", 0)
    code, out, err = run(sim, capsys, "advance", "2day")
    assert code == 0 and err == "" and out.startswith("pump time now 48 h 00 min 00 s")


# -- help --------------------------------------------------------------------------------------


def _subcommands(parser, path=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subcommands(sub, (*path, name))


def test_every_subcommand_help_shows_examples():
    commands = [(path, sub) for path, sub in _subcommands(cli.build_parser()) if path[0] not in OTHERS]
    assert len(commands) > 20
    for path, sub in commands:
        text = sub.format_help()
        assert re.search(r"^examples?:$", text, re.M), path
        examples = [ln for ln in text.split("examples:", 1)[1].splitlines() if ln.startswith("  pumpctl ")]
        assert 1 <= len(examples) and all(path[-1] in ln for ln in examples[:1]), (path, examples)


def test_help_keeps_the_example_lines_as_written():
    out = pumpctl("bolus", "--help")
    assert out.returncode == 0
    assert '  pumpctl bolus "0.5 mg" --over "30 min" --after "2 h" --yes\n' in out.stdout


# -- mistakes: one line, the documented exit code, no traceback ---------------------------------


def _one_line(err: str) -> str:
    assert "Traceback" not in err and "Exception ignored" not in err, err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--timeout", "-1", "status"], "argument --timeout: '-1': give the seconds"),
        (["--timeout", "soon", "status"], "argument --timeout"),
        (["log", "--since", "x"], "invalid int value: 'x' (see pumpctl log --help)"),
        (["advance"], "the following arguments are required: duration"),
        (["sim", "--speed", "-1"], "--speed -1: give 0"),
        (["bench", "--sim", "-1", "--rate", "1 mL/h"], "--sim -1: give how many"),
        (["program", "--file", sys.executable], "is not a text file of program lines"),
        (["program", "--file", "/no/such/program.txt"], "cannot read /no/such/program.txt"),
        (["fault", "clock-jump", "--value", "²"], "'²' is not a duration"),
    ],
)
def test_a_wrong_command_line_says_so_in_one_line_and_exits_2(argv, message):
    out = pumpctl("--port", "/dev/null", *argv)
    assert out.returncode == cli.EXIT_USAGE, out.stderr
    assert message in _one_line(out.stderr), out.stderr


@pytest.mark.micropython
@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["log", "--csv", "/no/such/folder/events.csv"], 2, "give a file in a folder that exists"),
        (["advance", "100000000day"], 2, "the duration in seconds: 8,640,000,000,000 is beyond what the pump takes"),
        (
            ["clock", "--set", "1969-12-31T23:59"],
            2,
            "--set 1969-12-31T23:59: the device clock runs from 1970-01-01 00:00:00 to 2106-02-07 06:28:14",
        ),
        (["fault", "stall", "--at", "99999999999"], 2, "--at, in seconds"),
        (["log", "--since", "99999999999"], 2, "--since: 99,999,999,999 is beyond"),
        (["program", "--rate", "12 mL/h"], 2, "rate: rate 12 mL/h is above the pump maximum of 10 mL/h"),
        (["alarms", "ack"], 1, "no alarm to acknowledge; nothing was changed"),
    ],
)
def test_a_mistake_the_pump_or_the_wire_finds_is_one_line_with_its_exit_code(sim, argv, code, message):
    out = pumpctl("--port", sim.port, *argv)
    assert out.returncode == code, out.stderr
    assert out.stderr.count("\n") == 1 and message in _one_line(out.stderr), out.stderr


def test_a_link_failure_is_one_line_and_exits_3():
    out = pumpctl("--port", "/dev/ttyNOSUCHPORT", "status")
    assert out.returncode == cli.EXIT_LINK and out.stderr.count("\n") == 1
    assert _one_line(out.stderr).startswith("pumpctl: cannot open /dev/ttyNOSUCHPORT")


@pytest.mark.micropython
def test_a_missing_key_is_one_line_and_exits_5(sim, tmp_path):
    out = pumpctl("--port", sim.port, "stop", PUMPCTL_CONFIG=str(tmp_path / "config.toml"))
    assert out.returncode == cli.EXIT_AUTH and out.stderr.count("\n") == 1
    assert "no keys for simulator sim-" in _one_line(out.stderr)


@pytest.mark.micropython
def test_ctrl_c_exits_130_with_one_line_of_where_it_stopped(sim):
    proc = subprocess.Popen(
        [PUMPCTL, "--port", sim.port, "advance", "400day"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    time.sleep(1.5)  # started, and waiting for the simulator's clock
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and out == ""
    assert err.startswith("pumpctl: interrupted: pump time stopped at ") and err.count("\n") == 1, err


@pytest.mark.micropython
def test_a_reader_that_went_away_exits_141_quietly(sim):
    proc = subprocess.Popen(
        [PUMPCTL, "--port", sim.port, "log"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    )
    proc.stdout.close()  # as `| head` does once it has its lines
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 141 and err == "", err


def test_a_failure_inside_the_pump_says_that_what_it_changed_is_not_known():
    # Seen on the emulated Pico: a library commit that ran out of heap while it saved was in force, and
    # pumpctl said "pump refused: MemoryError ...; nothing was changed".
    from pumpctl.errors import PumpRefused

    from firmware import codec

    failed = PumpRefused(codec.ERR_INTERNAL, "", "MemoryError in firmware/persist.py line 88: memory allocation failed")
    assert str(failed) == "pump failed: MemoryError in firmware/persist.py line 88: memory allocation failed"
    assert cli._hint(failed) == "; what it changed is not known: read pumpctl therapy and pumpctl log before going on"
    refused = PumpRefused(codec.ERR_BAD_VALUE, "rate", "rate 12 mL/h is above the pump maximum")
    assert str(refused).startswith("pump refused (rate): ") and cli._hint(refused) == "; nothing was changed"
