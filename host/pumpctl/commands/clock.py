"""pumpctl clock: show or set the device clock (local time)."""

from __future__ import annotations

import argparse

from ..client import Pump
from ..errors import UsageError
from .common import EXIT_OK, Command, emit, port_of


def cmd_clock(args) -> int:
    import datetime as dt

    with Pump(port_of(args), timeout=args.timeout) as pump:
        if args.set:
            when = dt.datetime.now() if args.set == "now" else _parse_local(args.set)
            pump.set_clock(_local_seconds(when))
        clock_s = pump.therapy().clock_s
    shown = (
        "not set"
        if clock_s is None
        else dt.datetime.fromtimestamp(clock_s, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    )
    emit(args, f"device clock {shown}", {"clock_s": clock_s})
    return EXIT_OK


def _parse_local(text: str):
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a time; write now or YYYY-MM-DDTHH:MM[:SS] local time") from None


def _local_seconds(when) -> int:
    """Local wall time as seconds since 1970 read as if it were UTC (the pump has no time zone)."""
    import calendar

    return calendar.timegm(when.replace(tzinfo=None).timetuple())


def _clock_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--set", help="now, or local time YYYY-MM-DDTHH:MM[:SS]")


CLOCK = Command(
    "clock",
    cmd_clock,
    help="show or set the device clock (local time; flex schedules run on it)",
    epilog="""examples:
  pumpctl clock                          the device clock
  pumpctl clock --set now                to this computer's local time
  pumpctl clock --set 2026-03-01T08:00""",
    arguments=_clock_arguments,
)
