"""pumpctl log: the pump's event log as a table, CSV or JSON, or exported to a folder (--export).

Entries can have left the log: the pump keeps its newest entries in RAM and archives only the
therapy's record to flash (sessions and security refusals never), so the indices read may have
gaps. Each entry keeps its true index, and every output says which entries have left."""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from .. import quantities, render, words
from ..client import Pump
from ..errors import UsageError
from ..replies import Event
from .common import EXIT_INTERRUPTED, EXIT_OK, Command, emit, port_of

# The name `pumpctl log` shows for each event code: words.EVENT_NAMES (the host's words for the wire's codes).
EVENT_NAMES = words.EVENT_NAMES


def event_name(code: int) -> str:
    return EVENT_NAMES.get(code, f"event-{code}")


def exact_seconds(us: int) -> str:
    """Pump time in seconds, exact to the microsecond: 131.250000."""
    return f"{us // 10**6}.{us % 10**6:06d}"


LOG_COLUMNS = ("index", "time_s", "clock", "code", "event", "text")
# --export's CSV: every row names its pump and library, so a row read alone still says where it came from.
EXPORT_COLUMNS = (*LOG_COLUMNS, "device_id", "library_hash")
NO_CLOCK = "-"  # the table's clock of an entry logged before the device clock was set


def _clock(clock_s: int | None) -> datetime | None:
    """The device clock as a naive datetime: clock_s is local wall time in seconds since 1970, with no
    zone, so it is read as UTC and shown without one."""
    if clock_s is None:
        return None
    return datetime.fromtimestamp(clock_s, tz=timezone.utc).replace(tzinfo=None)


def clock_shown(clock_s: int | None) -> str:
    """The device clock as the table shows it: 2024-06-01 07:00:00, or - if not set then."""
    when = _clock(clock_s)
    return NO_CLOCK if when is None else when.strftime("%Y-%m-%d %H:%M:%S")


def clock_iso(clock_s: int | None) -> str | None:
    """The device clock as CSV and JSON give it: 2024-06-01T07:00:00 (no zone: local wall time), or None."""
    when = _clock(clock_s)
    return None if when is None else when.isoformat(timespec="seconds")


def left_ranges(since: int, events: list[Event]) -> list[tuple[int, int]]:
    """The entries from `since` on that have left the log, as inclusive (first, last) ranges: before the
    first entry read, and between two read whose indices are not consecutive."""
    out = []
    expected = since
    for e in events:
        if e.index > expected:
            out.append((expected, e.index - 1))
        expected = e.index + 1
    return out


def left_count(ranges: list[tuple[int, int]]) -> int:
    return sum(last - first + 1 for first, last in ranges)


def left_line(first: int, last: int) -> str:
    """entries 121-160 have left the log; entry 121 has left the log."""
    if first == last:
        return f"entry {first} has left the log"
    return f"entries {first}-{last} have left the log"


def _with_gaps(since: int, events: list[Event]) -> list[Event | str]:
    """The events in order, with the line saying what left before each gap."""
    before = {last + 1: (first, last) for first, last in left_ranges(since, events)}  # by the entry after each gap
    out: list[Event | str] = []
    for e in events:
        if e.index in before:
            out.append(left_line(*before[e.index]))
        out.append(e)
    return out


def _row(e: Event) -> list:
    """A CSV row (LOG_COLUMNS)."""
    return [e.index, exact_seconds(e.time_us), clock_iso(e.clock_s) or "", e.code, event_name(e.code), e.text]


def event_data(e: Event) -> dict:
    """An event as --json gives it: the Event's fields with time_s (exact), the ISO clock and the event's name."""
    return dict(asdict(e), time_s=exact_seconds(e.time_us), clock=clock_iso(e.clock_s), event=event_name(e.code))


def cmd_log(args) -> int:
    if args.since < 0:
        raise UsageError(f"--since {args.since}: give an event index, 0 or more")
    if args.csv and args.export:
        raise UsageError("--csv and --export: give one (--export writes its own CSV beside the JSON)")
    with Pump(port_of(args), timeout=args.timeout) as pump:
        events = _read_events(args, pump)
        if events is None:
            return EXIT_INTERRUPTED
        if args.export:
            return _export(args, pump, events)
    if args.csv:
        return _write_csv(args, events)
    left = left_ranges(args.since, events)
    emit(
        args,
        _human(args.since, events) if events else f"no events from index {args.since} on",
        {"events": [event_data(e) for e in events], "left": [list(r) for r in left]},
        rich=(lambda: _rich(args.since, events)) if events else None,
    )
    return EXIT_OK


def _human(since: int, events: list[Event]) -> str:
    """The table as text within 80 columns: a header, then for each entry a line of its index, pump time,
    device clock and event, and under it what happened (wrapped); a line ".." for each run of entries that
    left the log, where they were."""
    import textwrap

    times = {e.index: quantities.duration(e.time_us) for e in events}
    clocks = {e.index: clock_shown(e.clock_s) for e in events}
    tw = max([len(t) for t in times.values()] + [16])
    cw = max([len(c) for c in clocks.values()] + [len("device clock")])
    lines = [f"{'index':>5}  {'pump time':>{tw}}  {'device clock':<{cw}}  event, then what happened"]
    for item in _with_gaps(since, events):
        if isinstance(item, str):
            lines.append(f"{'..':>5}  {item}")
            continue
        e = item
        lines.append(f"{e.index:5d}  {times[e.index]:>{tw}}  {clocks[e.index]:<{cw}}  {event_name(e.code)}")
        lines += textwrap.wrap(
            e.text,
            80,
            initial_indent=" " * 7,
            subsequent_indent=" " * 7,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [""]
    return "\n".join(lines)


def _rich(since: int, events: list[Event]):
    """The table on a terminal: the same values, the clock in the last column (render.events)."""

    def row(e: Event) -> tuple[int, str, str, str, str]:
        return (e.index, quantities.duration(e.time_us), event_name(e.code), e.text, clock_shown(e.clock_s))

    return render.events(item if isinstance(item, str) else row(item) for item in _with_gaps(since, events))


def _open_for_writing(path: str, what: str):
    try:
        return open(path, "w", newline="", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}; give {what} that exists and is writable") from None


def _write_csv(args, events: list[Event]) -> int:
    out = sys.stdout if args.csv == "-" else _open_for_writing(args.csv, "a file in a folder")
    try:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(LOG_COLUMNS)
        writer.writerows(_row(e) for e in events)
    finally:
        if out is not sys.stdout:
            out.close()
    if args.csv == "-":
        return EXIT_OK
    last = events[-1].index if events else None
    emit(
        args,
        f"wrote {len(events)} events to {args.csv}" + (f" (next: --since {last + 1})" if last is not None else ""),
        {"csv": args.csv, "events": len(events), "next_since": None if last is None else last + 1},
    )
    return EXIT_OK


def _file_safe(device_id: str) -> str:
    """A device id as a file name's part (ids are letters, digits and . _ : -; a colon is no file name's)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", device_id) or "unprovisioned"


def _export(args, pump: Pump, events: list[Event]) -> int:
    """--export FOLDER: the events with what they came from (pump, library, times) as
    <device_id>-log-<YYYYMMDD-HHMMSS>.csv and .json, the host's local time in the name."""
    info = pump.hello()
    st = pump.status()
    th = pump.therapy()
    now = datetime.now().astimezone()  # the host's local time, with its UTC offset
    library_hash = f"{th.library_hash:08x}"
    left = left_ranges(args.since, events)
    folder = Path(args.export)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot make the folder {folder}: {e.strerror}; give a folder that can be written") from None
    stem = folder / f"{_file_safe(info.device_id)}-log-{now.strftime('%Y%m%d-%H%M%S')}"
    csv_path, json_path = f"{stem}.csv", f"{stem}.json"
    for path in (csv_path, json_path):  # a record is never written over (two exports in one second)
        if Path(path).exists():
            raise UsageError(f"{path} exists: an export is never written over; run again in a second")
    with _open_for_writing(csv_path, "a folder") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        writer.writerows([*_row(e), info.device_id, library_hash] for e in events)
    record = {
        "device_id": info.device_id,
        "library_version": th.library,
        "library_hash": library_hash,
        "exported_at": now.isoformat(timespec="seconds"),
        "pump_time_s": exact_seconds(st.time_us),
        "clock": clock_iso(th.clock_s),
        "first_index": events[0].index if events else None,
        "left": [list(r) for r in left],
        "events": [event_data(e) for e in events],
    }
    with _open_for_writing(json_path, "a folder") as out:
        json.dump(record, out, indent=2)
        out.write("\n")
    first = events[0].index if events else None
    last = events[-1].index if events else None
    gone = left_count(left)
    which = f"entries {first}-{last}; {gone} left the log" if events else f"none from index {args.since} on"
    emit(
        args,
        f"exported {len(events)} events ({which}) to {stem}.csv and .json",
        {
            "csv": csv_path,
            "json": json_path,
            "events": len(events),
            "first_index": first,
            "last_index": last,
            "left": [list(r) for r in left],
            "left_entries": gone,
            "next_since": args.since if last is None else last + 1,
        },
    )
    return EXIT_OK


def _read_events(args, pump: Pump):
    """pump.events(since), with a bar on a terminal: one request per event; None if Ctrl-C stopped it
    (said on stderr, with how many were read)."""
    read = [0]

    def counted(done: int, total: int) -> None:
        read[0] = done
        if bar is not None:  # a bar only on a terminal
            bar(done, total)

    try:
        with render.progress("reading the event log", lambda d, t: f"{d}/{t} events", not args.json) as bar:
            return pump.events(since=args.since, progress=counted)
    except KeyboardInterrupt:  # interrupted means stopped, and said (reading changes nothing on the pump)
        render.error(f"interrupted after {read[0]} events read; nothing on the pump changed")
        return None


def _log_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--since", type=int, default=0, metavar="N", help="from event index N on (default 0)")
    s.add_argument("--csv", metavar="FILE", help="write the events as CSV to FILE (- for stdout)")
    s.add_argument(
        "--export",
        metavar="FOLDER",
        help="write the events with the pump's id, library and times to FOLDER (made if missing) as "
        "DEVICE-log-YYYYMMDD-HHMMSS.csv and .json (host local time)",
    )


LOG = Command(
    "log",
    cmd_log,
    help="the pump's event log (a table, --csv, --json or --export)",
    epilog="""examples:
  pumpctl log                          index, pump time, device clock (- before it was set), event, text;
                                       "entries 5-139 have left the log" where some have (sessions first)
  pumpctl log --since 40               from event 40 on
  pumpctl log --csv events.csv         columns index,time_s,clock,code,event,text (time_s exact, in seconds;
                                       clock the device clock, 2024-06-01T07:00:00, empty before it was set)
  pumpctl log --csv - | grep alarm     the CSV on stdout
  pumpctl log --export records         records/sim-28ff9b67-log-20240601-070000.csv and .json: the events
                                       with the pump's id and library hash, its time and clock at export
  pumpctl --json log                   {"events": [...], "left": [[5, 139]]}""",
    arguments=_log_arguments,
)
