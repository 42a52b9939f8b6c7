"""pumpctl log: the pump's event log as a table, CSV or JSON."""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import asdict

from .. import quantities, render, words
from ..client import Pump
from ..errors import UsageError
from .common import EXIT_INTERRUPTED, EXIT_OK, Command, emit, port_of

# The name `pumpctl log` shows for each event code: words.EVENT_NAMES (the host's words for the wire's codes).
EVENT_NAMES = words.EVENT_NAMES


def event_name(code: int) -> str:
    return EVENT_NAMES.get(code, f"event-{code}")


def exact_seconds(us: int) -> str:
    """Pump time in seconds, exact to the microsecond: 131.250000."""
    return f"{us // 10**6}.{us % 10**6:06d}"


LOG_COLUMNS = ("index", "time_s", "code", "event", "text")


def cmd_log(args) -> int:
    if args.since < 0:
        raise UsageError(f"--since {args.since}: give an event index, 0 or more")
    with Pump(port_of(args), timeout=args.timeout) as pump:
        events = _read_events(args, pump)
    if events is None:
        return EXIT_INTERRUPTED
    rows = [(e.index, exact_seconds(e.time_us), e.code, event_name(e.code), e.text) for e in events]
    if args.csv:
        if args.csv == "-":
            out = sys.stdout
        else:
            try:
                out = open(args.csv, "w", newline="", encoding="utf-8")
            except OSError as e:
                raise UsageError(
                    f"cannot write {args.csv}: {e.strerror}; give a file in a folder that exists and is writable"
                ) from None
        try:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(LOG_COLUMNS)
            writer.writerows(rows)
        finally:
            if out is not sys.stdout:
                out.close()
        if args.csv == "-":
            return EXIT_OK
        last = events[-1].index if events else None
        emit(
            args,
            f"wrote {len(rows)} events to {args.csv}" + (f" (next: --since {last + 1})" if last is not None else ""),
            {"csv": args.csv, "events": len(rows), "next_since": None if last is None else last + 1},
        )
        return EXIT_OK
    width = max([len(r[3]) for r in rows] + [5])
    times = [quantities.duration(e.time_us) for e in events]
    tw = max([len(t) for t in times] + [16])
    human = "\n".join(
        f"{e.index:5d}  {t:>{tw}}  {r[3]:<{width}}  {e.text}" for e, r, t in zip(events, rows, times, strict=True)
    )
    emit(
        args,
        human or f"no events from index {args.since} on",
        {"events": [dict(asdict(e), time_s=r[1], event=r[3]) for e, r in zip(events, rows, strict=True)]},
        rich=(lambda: render.events((e.index, t, r[3], e.text) for e, r, t in zip(events, rows, times, strict=True)))
        if events
        else None,
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


LOG = Command(
    "log",
    cmd_log,
    help="the pump's event log (a table, --csv or --json)",
    epilog="""examples:
  pumpctl log                          index, pump time, event, text
  pumpctl log --since 40               from event 40 on
  pumpctl log --csv events.csv         columns index,time_s,code,event,text (time_s exact, in seconds)
  pumpctl log --csv - | grep alarm     the CSV on stdout
  pumpctl --json log""",
    arguments=_log_arguments,
)
