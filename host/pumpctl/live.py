"""The live telemetry view: `pumpctl telemetry --live`.

One screen, redrawn in place as the pump's samples come (on the terminal's
alternate screen, without flicker; the last frame stays on the normal
screen when it ends), for a bench or
clinic engineer watching a pump: pump time, mode, rate, the volume delivered
(steps times the calibrated step volume, exact), the reservoir (the count
and the sensor, and when the low-reservoir level comes at this program), the
battery, the latched alarms by priority (high red, medium yellow, low cyan)
and whether their tones sound, the session open on the pump, and how many
samples came and how many were lost.

Each sample (Pump.telemetry()) updates the fast fields; the therapy and the
alarm list (Pump.therapy(), Pump.alarms()) are read again every few seconds,
at once when a sample's set of latched alarms changes, and after each key.
The stream is kept alive (Pump.keep_alive() every 2 s: the pump stops
talking to a host silent for 10 s).

Keys, read from the terminal in cbreak mode without blocking: q quits, s
silences the alarm tones (Pump.silence(), the patient key), a acknowledges
every latched alarm (Pump.ack_alarm(), the clinician key). The terminal's
mode is put back however the view ends: q, Ctrl-C, SIGTERM, an error. A link
that fails ends the view with LinkError (pumpctl: one line, exit 3).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from . import quantities, words
from .client import Pump
from .errors import AuthError, LinkError, PumpRefused
from .replies import Alarm, PumpInfo, Telemetry, Therapy
from .schema import ALARM_PRIORITY
from .telemetry_csv import TelemetryCsv

try:
    import termios
    import tty
except ImportError:  # no termios (Windows): the view runs, without keys
    termios = tty = None  # type: ignore[assignment]

KEEP_ALIVE_S = 2.0  # the pump stops streaming to a host silent for 10 s (wall time)
SLOW_REFRESH_S = 3.0  # therapy and alarm list, read again this often
FRAME_S = 0.1  # at most 10 frames a second, however fast the samples come
POLL_S = 0.05  # longest wait for a sample before looking at the keyboard again

PRIORITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan"}
_PRIORITY_ORDER = {"high": 0, "medium": 1, "low": 2}


# -- keyboard ---------------------------------------------------------------------


class KeyReader:
    """Single keys from a terminal in cbreak mode (no Enter needed, no echo; Ctrl-C
    still interrupts), read without blocking. The terminal's mode is saved on
    entry and restored on exit, whatever ends the block. Not a terminal (or no
    termios): no keys, and nothing is changed."""

    def __init__(self, stream=None):
        stream = sys.stdin if stream is None else stream
        self.fd: int | None = None
        try:
            if termios is not None and stream is not None and stream.isatty():
                self.fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None
        self._saved = None

    @property
    def available(self) -> bool:
        return self.fd is not None

    def __enter__(self) -> KeyReader:
        if self.fd is not None:
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd, termios.TCSANOW)
        return self

    def __exit__(self, *exc) -> None:
        self.restore()

    def restore(self) -> None:
        if self.fd is not None and self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def read(self) -> str:
        """The keys pressed since the last call ("" if none); never waits."""
        if self.fd is None:
            return ""
        got = b""
        while select.select([self.fd], [], [], 0)[0]:
            chunk = os.read(self.fd, 64)
            if not chunk:  # end of input: no more keys
                self.fd = None
                break
            got += chunk
        return got.decode(errors="ignore")


@contextmanager
def _sigterm_unwinds():
    """SIGTERM ends the view as Ctrl-C would not: exit 143, after every finally (terminal, stream)."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# -- what the view shows ------------------------------------------------------------


@dataclass
class ViewState:
    port: str
    info: PumpInfo
    step_volume_pl: int
    interval_ms: int
    now_us: int = 0  # pump time: of the last sample, or of the status read before the first
    keys: bool = True  # keys can be read (stdin is a terminal)
    sample: Telemetry | None = None
    therapy: Therapy | None = None
    therapy_at_us: int = 0  # pump time of the last sample when the therapy was read
    alarms: list[Alarm] = field(default_factory=list)
    known_alarms: list[str] | None = None  # the latched set the alarm list was read for
    received: int = 0
    lost: int = 0  # gaps in the samples' sequence numbers
    last_seq: int | None = None
    message: Text = field(default_factory=Text)

    def add(self, sample: Telemetry) -> None:
        if self.last_seq is not None and sample.seq > self.last_seq + 1:
            self.lost += sample.seq - self.last_seq - 1
        self.last_seq = sample.seq
        self.received += 1
        self.sample = sample
        self.now_us = sample.time_us

    def say(self, text: str, style: str = "") -> None:
        self.message = Text.assemble((f"{quantities.duration(self.now_us)}  ", "dim"), (text, style))


def _priority(name: str) -> str:
    code = next((c for c, n in words.ALARM_NAMES.items() if c and n == name), None)
    return words.PRIORITY_NAMES.get(ALARM_PRIORITY.get(code, 0), "?")


def _alarm_rows(state: ViewState) -> list[tuple[str, str, str, str, str]]:
    """(priority, name, state, acknowledged, raised) of every latched alarm, highest first.
    From the alarm list; an alarm a sample shows before the list is read again comes from the sample."""
    rows = []
    listed = {a.name for a in state.alarms}
    for a in state.alarms:
        ack = "acknowledged" if a.acknowledged else "not acknowledged"
        raised = f"raised at {quantities.duration(a.raised_us)}"
        rows.append((a.priority, a.name, "active" if a.active else "cleared", ack, raised))
    if state.sample is not None:
        for name in state.sample.alarms:
            if name not in listed:
                rows.append((_priority(name), name, "", "", ""))
        now = set(state.sample.alarms)
        rows = [r for r in rows if r[1] in now]  # gone since the list was read
    return sorted(rows, key=lambda r: _PRIORITY_ORDER.get(r[0], 3))


def _tones(th: Therapy | None, alarms: bool) -> Text:
    if th is None:
        return Text("-")
    if th.silenced_s and alarms:
        return Text(f"silenced for {th.silenced_s} s more (the alarms stay latched)", style="bold")
    if th.sounding != "none":
        return Text(f"sounding at {th.sounding} priority", style=PRIORITY_STYLE.get(th.sounding, ""))
    return Text("quiet", style="green")


def render(state: ViewState) -> Panel:
    """The whole view, from what the pump last said."""
    s, th = state.sample, state.therapy
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    if s is None:
        grid.add_row("", Text(f"waiting for the first sample (one every {state.interval_ms} ms)...", style="dim"))
    else:
        grid.add_row("pump time", quantities.duration(s.time_us))
        mode = Text(s.mode)
        if th is not None and th.held:
            mode.append("   delivery HELD by a motor fault until it clears", style="bold red")
        grid.add_row("mode", mode)
        if th is not None and th.bolus != "none":
            from .commands.status import bolus_parts

            dose, pace = bolus_parts(th)
            grid.add_row("bolus", f"{dose}, {pace}")
        rate = f"{quantities.rate(s.rate_nl_per_day)} ({s.rate_nl_per_day} nL/day)" if s.rate_nl_per_day else "-"
        grid.add_row("rate", rate)
        delivered = quantities.volume(s.steps * state.step_volume_pl)
        grid.add_row(
            "delivered", f"{delivered}  ({s.steps} steps of {quantities.volume(state.step_volume_pl)}, since boot)"
        )
        guard_day, guard_hour = quantities.volume_nl(s.day_nl), quantities.volume_nl(s.hour_nl)
        grid.add_row("dose guard", f"{guard_day} in the last 24 h, {guard_hour} in the last hour")
        sensor = f"sensor {quantities.volume_nl(s.sensor_nl)}" if s.sensor_nl is not None else "no sensor reading"
        if s.reservoir_nl is None:
            grid.add_row("reservoir", f"not counted (no fill programmed); {sensor}")
        else:
            grid.add_row("reservoir", f"{quantities.volume_nl(s.reservoir_nl)} counted, {sensor}")
        if th is not None and th.reservoir_nl is not None:
            low = f"low level {quantities.volume_nl(th.low_nl)}"
            if th.low_in_s is None:
                grid.add_row("", f"{low}: not within 400 days at this program")
            elif th.low_in_s == 0:
                grid.add_row("", Text(f"{low}: reached, refill", style="yellow"))
            else:
                at = quantities.duration(state.therapy_at_us + th.low_in_s * 10**6)
                grid.add_row("", f"{low} in {quantities.time_until(th.low_in_s)}, at pump time {at}")
        if s.battery_permille is None:
            grid.add_row("battery", "no reading yet")
        else:
            pct = quantities.as_decimal(Fraction(s.battery_permille, 10), 1)
            days = th.battery_days if th is not None else None
            left = f"about {days} days left" if days is not None else "life left not known yet"
            style = "red" if s.battery_permille <= 30 else "yellow" if s.battery_permille <= 100 else ""
            grid.add_row("battery", Text(f"{pct} % ({s.battery_permille} permille), {left}", style=style))
        rows = _alarm_rows(state)
        if not rows:
            grid.add_row("alarms", Text("none", style="green"))
        else:
            table = Table.grid(padding=(0, 2))
            for _ in range(5):
                table.add_column(no_wrap=True)
            for prio, name, active, ack, raised in rows:
                style = PRIORITY_STYLE.get(prio, "")
                table.add_row(Text(prio.upper(), style=style), Text(name, style=style), active, ack, raised)
            grid.add_row("alarms", table)
        grid.add_row("tones", _tones(th, bool(rows)))
        grid.add_row("session", s.session)
        grid.add_row(
            "samples",
            f"{state.received} received, {state.lost} lost on the way, "
            f"{s.dropped} not sent by the pump (line busy); one every {state.interval_ms} ms",
        )
    if state.keys:
        keys = Text.assemble(
            (" q ", "reverse"),
            " quit   ",
            (" s ", "reverse"),
            " silence the alarm tones (patient key)   ",
            (" a ", "reverse"),
            " acknowledge all alarms (clinician key)",
        )
    else:
        keys = Text("no keyboard (stdin is not a terminal): Ctrl-C quits", style="dim")
    info = state.info
    title = f"pump {info.device_id or '(no id)'} on {state.port}"
    subtitle = f"board {info.board}, firmware {info.firmware}, protocol {info.protocol}"
    # The keys first and the message on one line at the end: a long message or a tall alarm table can
    # push the panel's last lines off a short terminal, never the keys.
    message = state.message.copy()
    message.no_wrap = True
    message.overflow = "ellipsis"
    return Panel(Group(keys, Text(""), grid, Text(""), message), title=title, subtitle=subtitle, title_align="left")


# -- the loop -----------------------------------------------------------------------


def _refresh_slow(pump: Pump, state: ViewState) -> None:
    state.therapy = pump.therapy()
    state.therapy_at_us = state.now_us
    state.alarms = pump.alarms()
    state.known_alarms = state.therapy.alarms if state.sample is None else state.sample.alarms


def _key(pump: Pump, state: ViewState, key: str) -> None:
    """s: silence the tones; a: acknowledge every alarm. A refusal or a missing key is shown, not fatal."""
    try:
        if key == "s":
            seconds = pump.silence()
            state.say(f"tones silenced for {seconds} s; the alarms stay latched, a new one sounds at once", "green")
        elif key == "a":
            done = pump.ack_alarm(0)
            _refresh_slow(pump, state)
            still = [a for a in state.alarms if a.acknowledged]
            text = f"acknowledged {done} alarm{'s' if done != 1 else ''}"
            if still:
                text += "; latched until their condition clears: " + ", ".join(a.name for a in still)
            state.say(text, "green")
    except PumpRefused as e:
        state.say(str(e), "bold yellow")
    except AuthError as e:
        state.say(str(e), "bold red")


def run(
    pump: Pump,
    interval_ms: int,
    *,
    count: int | None = None,
    record: TelemetryCsv | None = None,
    console: Console | None = None,
    screen: bool = True,
    stdin=None,
) -> int:
    """Show the live view until q, Ctrl-C or `count` samples; returns the exit code: 0, or 130
    after Ctrl-C (as every pumpctl command).
    record: every sample is also written there. screen: draw on the terminal's
    alternate screen (redrawn without flicker, the shell's screen back after);
    the last frame is then printed once on the normal screen, to stay in its
    scrollback. screen=False: redraw in place on the normal screen.
    Raises LinkError if the link fails or the samples stop coming."""
    info = pump.hello()
    status = pump.status()
    keys = KeyReader(stdin)
    state = ViewState(pump.port, info, status.step_volume_pl, interval_ms, status.time_us, keys=keys.available)
    _refresh_slow(pump, state)
    console = console or Console()
    with keys, _sigterm_unwinds():
        try:
            with Live(render(state), console=console, screen=screen, auto_refresh=False, redirect_stderr=False) as live:
                interrupted = _loop(pump, state, live, keys, count, record)
        finally:
            if screen and console.is_terminal:
                console.print(render(state))  # the alternate screen is gone: the last frame stays on record
    return 130 if interrupted else 0


def _loop(pump: Pump, state: ViewState, live: Live, keys: KeyReader, count: int | None, record) -> bool:
    """Run the view; True if Ctrl-C ended it."""
    silent_limit_s = max(2.0, 3 * state.interval_ms / 1000)
    failing = True
    interrupted = False
    pump.start_telemetry(state.interval_ms)
    try:
        now = time.monotonic()
        last_sample = alive_at = slow_at = now
        frame_at = 0.0
        dirty = True
        while count is None or state.received < count:
            pressed = keys.read().lower()
            for key in pressed.partition("q")[0]:  # in order, up to a q
                if key in "sa":
                    _key(pump, state, key)
                    if key == "s":
                        _refresh_slow(pump, state)
                    slow_at = time.monotonic()
                    dirty = True
            if "q" in pressed:
                break
            sample = pump.telemetry(timeout=POLL_S)
            now = time.monotonic()
            if now - alive_at >= KEEP_ALIVE_S:
                pump.keep_alive()
                alive_at = now
            if sample is None:
                if now - last_sample > silent_limit_s:
                    raise LinkError(f"the pump stopped sending telemetry (none for {silent_limit_s:g} s)")
            else:
                last_sample = now
                state.add(sample)
                if record is not None:
                    record.write(sample)
                dirty = True
                if sample.alarms != state.known_alarms:
                    _refresh_slow(pump, state)
                    slow_at = now
            if now - slow_at >= SLOW_REFRESH_S:
                _refresh_slow(pump, state)
                slow_at = now
                dirty = True
            if dirty and now - frame_at >= FRAME_S:
                live.update(render(state), refresh=True)
                frame_at = now
                dirty = False
        failing = False
    except KeyboardInterrupt:
        failing = False  # Ctrl-C: the engineer is done
        interrupted = True
    finally:
        try:
            pump.stop_telemetry()
        except (LinkError, PumpRefused):
            if not failing:
                raise
        live.update(render(state), refresh=True)  # the last frame counts every sample received
    return interrupted
