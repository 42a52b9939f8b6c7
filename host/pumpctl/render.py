"""pumpctl's output for people, in one place: rich tables, colour and progress bars on a terminal,
the same plain text as ever everywhere else.

The plain text is the interface scripts read, so it stays the source: each command builds it as
before and passes it here with, optionally, a rich renderable built from the same values. Where
stdout is a terminal the renderable is drawn; where it is not (a pipe, a file, pytest's capsys,
TTY_COMPATIBLE=0) the plain text is printed byte for byte. NO_COLOR=1 keeps the tables and drops
every escape sequence (colour and bold). FORCE_COLOR does not turn a pipe into a table:
the layout follows isatty() alone, so `pumpctl status | grep` reads the same text in CI too.
`--json` never comes here.

Colours: alarm priorities high red, medium yellow, low cyan; errors and refusals red on stderr;
success green; warnings (soft limits, notes to check) yellow.

Progress bars go to stderr, only when stderr is a terminal, and only once an operation has run for
half a second (a fast one draws nothing).
"""

from __future__ import annotations

import difflib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

PRIORITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan"}
OK = "green"
WARN = "yellow"
ERROR = "bold red"
BOX = box.ROUNDED

# Words in status and therapy values worth a colour.
_HIGHLIGHTS = (
    (r"[A-Za-z][\w' -]*? \(high\)", PRIORITY_STYLE["high"]),
    (r"[A-Za-z][\w' -]*? \(medium\)", PRIORITY_STYLE["medium"]),
    (r"[A-Za-z][\w' -]*? \(low\)", PRIORITY_STYLE["low"]),
    (r"sounding at high priority", PRIORITY_STYLE["high"]),
    (r"sounding at medium priority", PRIORITY_STYLE["medium"]),
    (r"sounding at low priority", PRIORITY_STYLE["low"]),
    (r"\bHELD\b", ERROR),
    (r"reached, refill", WARN),
)

# Event names of `pumpctl log` worth a colour (the rest stay plain).
EVENT_STYLE = {
    "alarm": "red",
    "fault": "bold red",
    "security": "bold red",
    "patient-refused": WARN,
    "restart": WARN,
    "recovery": WARN,
    "alarm-clear": OK,
    "ack": OK,
}

_MODE_STYLE = {"continuous": OK, "flex": OK, "stopped": WARN}

# A bar appears once an operation has run this long: a fast one draws none.
PROGRESS_DELAY_S = 0.5


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr) as it is now; force_terminal=None lets rich read TERM,
    TTY_COMPATIBLE and the like. NO_COLOR: no escape sequence at all (no bold either), the tables
    stay. highlight=False: no guessing colours for numbers in our text."""
    if os.environ.get("NO_COLOR", ""):
        return Console(stderr=stderr, highlight=False, color_system=None)
    return Console(stderr=stderr, highlight=False)


def for_people(stderr: bool = False) -> bool:
    """Whether stdout (or stderr) is a terminal rich draws on: a real tty, and not one that said
    TTY_COMPATIBLE=0."""
    stream = sys.stderr if stderr else sys.stdout
    try:
        tty = stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False
    return bool(tty) and console(stderr).is_terminal


def show(plain: str, rich: Callable[[], RenderableType] | None = None, style: str | None = None) -> None:
    """Print plain as it is; on a terminal draw rich() instead, or plain in style."""
    if (rich is None and style is None) or not for_people():
        print(plain)
        return
    out = console()
    if rich is not None:
        out.print(rich())
    else:
        out.print(Text(plain, style=style or ""), soft_wrap=True)


def ok(plain: str) -> None:
    """A success: green on a terminal."""
    show(plain, style=OK)


def warn(plain: str) -> None:
    """Something to check (a soft limit, a note): yellow on a terminal."""
    show(plain, style=WARN)


def done(lines: Sequence[str]) -> Group:
    """A result of a few lines: the first green (what was done), alarm names in the rest in
    their priority's colour."""
    return Group(Text(lines[0], style=OK), *(_value(line) for line in lines[1:]))


def error(message: str, prog: str = "pumpctl") -> None:
    """The one line on stderr that ends a failed command: `pumpctl: ...`, red on a terminal."""
    line = f"{prog}: {message}"
    if for_people(stderr=True):
        console(stderr=True).print(Text(line, style=ERROR), soft_wrap=True)
    else:
        print(line, file=sys.stderr)


# -- tables -----------------------------------------------------------------------------------


def _table(*columns: str, title: str | None = None, **kwargs) -> Table:
    shown = None if title is None else Text(title)
    table = Table(*columns, box=BOX, title=shown, title_justify="left", title_style="bold", **kwargs)
    table.header_style = "bold"
    return table


def _add(table: Table, *cells) -> None:
    """A row; text cells as they are (a str cell would be read as rich markup: "[x]" in a pump's text)."""
    table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells))


def _value(text: str) -> Text:
    out = Text(text)
    for pattern, style in _HIGHLIGHTS:
        out.highlight_regex(pattern, style)
    return out


def fields(lines: Sequence[str], key_width: int = 12) -> Table:
    """The `key        value` lines of status and therapy as a two-column table: a line that
    starts with blanks goes on under the key above it."""
    table = Table(box=BOX, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for line in lines:
        key, value = line[:key_width].strip(), line[key_width:]
        if key == "mode":
            first, space, rest = value.partition(" ")
            _add(table, key, Text.assemble((first, _MODE_STYLE.get(first, "")), space + rest))
        elif key == "alarms" and value == "none":
            _add(table, key, Text(value, style=OK))
        else:
            _add(table, key, _value(value))
    return table


def therapy(head: Sequence[str], program: Iterable[tuple[str, str]]) -> Group:
    """`pumpctl therapy`: the fields, then the running program's lines and what the pump made of them."""
    rows = _table("line", "as the pump understood it", title="program")
    for line, detail in program:
        _add(rows, line, detail)
    return Group(fields(head), rows)


# -- a program's review: the running one beside the staged one (pumpctl program, review, ...) ---------


def review_rows(running: list[tuple[str, str]], staged: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(mark, running, staged) rows: the two programs aligned line by line, every field with its
    unit as the pump understood it; '*' marks a changed row, "! " starts a soft limit's."""

    def show(row):
        line, detail = row
        if line == "soft limit":
            return f"! {detail}"
        return f"{line}  [{detail}]" if line and detail else line or detail

    left = [show(r) for r in running]
    right = [show(r) for r in staged]
    out = []
    matcher = difflib.SequenceMatcher(a=[r[0] for r in running], b=[r[0] for r in staged], autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        for k in range(max(a1 - a0, b1 - b0)):
            a = left[a0 + k] if a0 + k < a1 else ""
            b = right[b0 + k] if b0 + k < b1 else ""
            out.append((" " if op == "equal" else "*", a, b))
    return out


PLAIN_WIDTH = 80  # plain text fits 80 columns (a terminal's rich view fits its own width)


def side_by_side(running: list[tuple[str, str]], staged: list[tuple[str, str]]) -> str:
    """The running and the staged program next to each other (review_rows) as plain text; one above
    the other when side by side would pass PLAIN_WIDTH columns, each row wrapped to fit."""
    rows = review_rows(running, staged)
    width = max([len("running"), *(len(a) for _, a, _ in rows)]) + 2
    out = [f"  {'running':<{width}}staged", f"  {'-' * (width - 2):<{width}}{'-' * 6}"]
    out += [f"{mark} {a:<{width}}{b}".rstrip() for mark, a, b in rows]
    if max(len(line) for line in out) <= PLAIN_WIDTH:
        return "\n".join(out)
    import textwrap

    def block(title: str, cells: list[tuple[str, str]]) -> list[str]:
        lines = [title]
        for mark, text in cells:
            lines += textwrap.wrap(text, PLAIN_WIDTH, initial_indent=f"{mark} ", subsequent_indent="    ") or [mark]
        return lines

    running_rows = [(mark, a) for mark, a, _ in rows if a]
    staged_rows = [(mark, b) for mark, _, b in rows if b]
    return "\n".join(block("  running", running_rows) + block("  staged (* a row that changes)", staged_rows))


def review(rows: Iterable[tuple[str, str, str]]) -> Table:
    """The running and the staged program side by side; changed rows marked * in yellow,
    soft limits (lines starting "! ") in yellow bold."""
    table = _table("", "running", "staged")
    for mark, running, staged in rows:
        style = WARN if mark == "*" else ""
        cells = [Text(c, style="bold " + WARN if c.startswith("! ") else style) for c in (running, staged)]
        _add(table, Text(mark, style=style), *cells)
    return table


def alarms(head: Sequence[str], rows: Iterable[Sequence[str]], tones: str) -> Group:
    """The latched alarms (rows as `_alarm_table` makes them, priority first), then the tones."""
    table = _table(*head)
    for column in table.columns[:5]:  # a pump time is never cut; the cause wraps
        column.no_wrap = True
    for row in rows:
        priority, name, state, acked = row[:4]
        _add(
            table,
            Text(priority, style=PRIORITY_STYLE.get(priority, "")),
            Text(name, style=PRIORITY_STYLE.get(priority, "")),
            Text(state, style="bold" if state == "active" else "dim"),
            Text(acked, style=OK if acked == "yes" else WARN),
            *row[4:],
        )
    return Group(table, _value(f"tones: {tones}"))


def events(rows: Iterable[tuple[int, str, str, str, str] | str]) -> Table:
    """`pumpctl log`: (index, pump time, event name, text, device clock), and where entries have
    left the log, the line that says so (a str) in the text column. The clock comes last, so the
    columns the log always had keep their places."""
    table = _table("index", "pump time", "event", "text", "clock")
    table.columns[0].justify = "right"
    table.columns[1].justify = "right"
    for column in (*table.columns[:3], table.columns[4]):  # a pump time or a clock is never cut; the text wraps
        column.no_wrap = True
    for row in rows:
        if isinstance(row, str):
            _add(table, "", "", "", Text(row, style="italic " + WARN), "")
            continue
        index, when, name, text, clock = row
        _add(table, str(index), when, Text(name, style=EVENT_STYLE.get(name, "")), text, clock)
    return table


def library(version: str, entries: Iterable[Sequence[str]]) -> Table:
    """The drug library: each limit as soft / hard, as the plain text has them."""
    table = _table(
        "drug", "conc <=", "daily soft / hard", "rate soft / hard", "bolus soft / hard", title=f"drug library {version}"
    )
    table.columns[0].no_wrap = True  # a drug's name is never cut
    for e in entries:
        _add(table, Text(e[0], style="bold"), e[1], f"{e[2]} / {e[3]}", f"{e[4]} / {e[5]}", f"{e[6]} / {e[7]}")
    return table


def keys(path: str, pumps: dict[str, list[str]]) -> Group:
    """The pumps whose keys this host holds, under the config file's path (on a line of its own:
    a title would wrap it to the table's width)."""
    table = _table("pump", "keys held")
    for device_id, roles in pumps.items():
        _add(table, device_id, ", ".join(roles) or Text("none", style=WARN))
    return Group(Text(path, style="bold"), table)


def bench(reports: Sequence) -> Group:
    """Bench tests' summaries (benchtest.BenchReport): the same values as their summary() text."""
    return Group(*(_bench_one(r) for r in reports))


def _bench_one(report) -> Group:
    r = report.results
    c = report.config
    from . import quantities

    head = Text(
        f"bench test: {c.rate} for {quantities.duration(c.duration_s * 10**6)}, weighed every {c.sample_s} s; "
        f"pump {report.pump['device_id'] or '(no id)'} ({report.pump['board']}, firmware {report.pump['firmware']}), "
        f"balance {report.balance['serial_number']} ({report.balance['protocol']})"
    )
    pump_view = "-" if r.pump_delivered_ml is None else f"{r.pump_delivered_ml:.6f} mL"
    checks = _table("", "", "")
    checks.show_header = False
    _add(checks, "samples", f"{len(r.flows) + 1} ({r.unstable_samples} unstable)", "")
    from .client import NO_DRUG_LIMITS

    _add(checks, "drug limits", NO_DRUG_LIMITS, "")
    _add(
        checks,
        "delivered",
        f"balance {r.delivered_ml:.6f} mL   pump's steps {pump_view}   programmed {r.programmed_ml:.6f} mL",
        "",
    )
    for what, passed, detail in report.checks:
        _add(checks, what, detail, Text("pass", style=OK) if passed else Text("FAIL", style=ERROR))
    trumpet = _table("window", "Ep(max)", "Ep(min)", title=f"trumpet curve, from {r.analysis_start_s / 60:g} min")
    for column in trumpet.columns:
        column.justify = "right"
    for window, ep in r.trumpet.items():
        _add(trumpet, f"{window} min", f"{ep['ep_max_pct']:+.3f} %", f"{ep['ep_min_pct']:+.3f} %")
    parts: list[RenderableType] = [head, checks, trumpet]
    if report.folder is not None:
        from .benchtest import PLOT_FILE, RESULTS_FILE, SAMPLES_FILE

        parts.append(
            Text("files   " + "  ".join(str(report.folder / n) for n in (SAMPLES_FILE, RESULTS_FILE, PLOT_FILE)))
        )
    parts.append(Text.assemble("result: ", ("PASS", "bold " + OK) if report.passed else ("FAIL", ERROR), "\n"))
    return Group(*parts)


# -- progress ---------------------------------------------------------------------------------


class _Bars:
    """Progress bars on stderr, drawn only once delay_s has passed; thread-safe (bench runs
    several pumps in threads)."""

    def __init__(self, labels: Sequence[str], detail: Callable[[int, int], str] | None, delay_s: float):
        self.labels = labels
        self.detail = detail
        self.delay_s = delay_s
        self.started_at = time.monotonic()
        self.progress: Progress | None = None
        self.tasks: list = []
        self.lock = threading.Lock()

    def update(self, i: int, done: int, total: int) -> None:
        with self.lock:
            if self.progress is None:
                if time.monotonic() - self.started_at < self.delay_s:
                    return
                self.progress = Progress(
                    TextColumn("{task.description}", markup=False),
                    BarColumn(),
                    TaskProgressColumn(),
                    TextColumn("{task.fields[detail]}", markup=False),
                    TimeRemainingColumn(),
                    console=console(stderr=True),
                    transient=True,
                )
                self.tasks = [self.progress.add_task(label, total=None, detail="") for label in self.labels]
            shown = self.detail(done, total) if self.detail else f"{done}/{total}"
            self.progress.update(self.tasks[i], completed=done, total=max(total, 1), detail=shown)
            if not self.progress.live.is_started:
                self.progress.start()

    def close(self) -> None:
        with self.lock:
            if self.progress is not None:
                self.progress.stop()


@contextmanager
def progress_many(
    labels: Sequence[str],
    detail: Callable[[int, int], str] | None = None,
    enabled: bool = True,
    delay_s: float | None = None,
) -> Iterator[Callable[[int, int, int], None] | None]:
    """One bar per label; yields update(i, done, total), or None where no bar is drawn (stderr not
    a terminal, or not enabled: --json). The bars vanish when done; what follows is the result."""
    if not enabled or not for_people(stderr=True):
        yield None
        return
    bars = _Bars(labels, detail, PROGRESS_DELAY_S if delay_s is None else delay_s)
    try:
        yield bars.update
    finally:
        bars.close()


@contextmanager
def progress(
    label: str,
    detail: Callable[[int, int], str] | None = None,
    enabled: bool = True,
    delay_s: float | None = None,
) -> Iterator[Callable[[int, int], None] | None]:
    """One bar: yields update(done, total), or None where no bar is drawn. detail(done, total)
    says the amounts as a person reads them ("12 h 00 min of 24 h")."""
    with progress_many([label], detail, enabled, delay_s) as update:
        yield None if update is None else (lambda done, total: update(0, done, total))
