"""pumpctl clock: show or set the device clock (local time)."""

from __future__ import annotations

import argparse

from firmware import codec

from .. import quantities, render
from ..client import Pump
from ..errors import UsageError
from .common import EXIT_OK, EXIT_REFUSED, Command, confirm, emit, port_of


def cmd_clock(args) -> int:
    import datetime as dt

    new_s = None
    if args.set:  # read (and refused) before the pump is asked anything
        when = dt.datetime.now() if args.set == "now" else _parse_local(args.set)
        new_s = _local_seconds(when)
        if not 0 <= new_s <= codec.NO_TIME - 1:  # the wire's u32 seconds since 1970, NO_TIME excluded
            raise UsageError(
                f"--set {args.set}: the device clock runs from {_shown(0)} to {_shown(codec.NO_TIME - 1)}; "
                "give a date and time between them"
            )
    with Pump(port_of(args), timeout=args.timeout) as pump:
        th = pump.therapy()
        before_s = th.clock_s
        if new_s is not None:
            if before_s is not None:  # a change of a clock already set: said, then asked
                if not args.json:
                    render.warn(_change(before_s, new_s, th.mode == "flex"))
                if not confirm(args, "set the device clock?", "not set: add --yes"):
                    render.warn("not set; the device clock is unchanged")
                    return EXIT_REFUSED
            pump.set_clock(new_s)
        clock_s = pump.therapy().clock_s
    data = {"clock_s": clock_s}
    human = f"device clock {_shown(clock_s)}"
    if args.set:
        data["was_clock_s"] = before_s
        human += f" (was {_shown(before_s)})"
    emit(args, human, data)
    return EXIT_OK


def _shown(clock_s: int | None) -> str:
    import datetime as dt

    if clock_s is None:
        return "not set"
    return dt.datetime.fromtimestamp(clock_s, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _change(before_s: int, new_s: int, flex: bool) -> str:
    """What setting the clock from before_s to new_s does (flex: a flex schedule runs), said before it is done."""
    shift = new_s - before_s
    sign = "+" if shift >= 0 else "-"
    said = f"device clock {_shown(before_s)} -> {_shown(new_s)} ({sign}{quantities.duration(abs(shift) * 10**6)})"
    if flex:
        shorter = "shortens" if shift > 0 else "lengthens"
        said += (
            f"; the running flex schedule follows the clock: the pump {shorter} the day's last step, by at "
            "most half of it a day, until its steps are back at their clock times (none repeated or skipped)"
        )
    return said


def _parse_local(text: str):
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a time; write now or YYYY-MM-DDTHH:MM[:SS] local time") from None
    if when.tzinfo is not None:
        raise UsageError(
            f"{text!r} has a UTC offset: the device clock is local wall time with no zone, so write the local "
            "time there without one (YYYY-MM-DDTHH:MM[:SS]); an offset would move every flex step"
        )
    return when


def _local_seconds(when) -> int:
    """Local wall time as seconds since 1970 read as if it were UTC (the pump has no time zone)."""
    import calendar

    return calendar.timegm(when.replace(tzinfo=None).timetuple())


def _clock_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--set", help="now, or local time YYYY-MM-DDTHH:MM[:SS] (no UTC offset: the clock has no zone)")
    s.add_argument("--yes", action="store_true", help="change a clock already set without asking")


CLOCK = Command(
    "clock",
    cmd_clock,
    help="show or set the device clock (local time; flex schedules run on it)",
    epilog="""examples:
  pumpctl clock                          the device clock
  pumpctl clock --set now                to this computer's local time
  pumpctl clock --set 2026-03-01T08:00 --yes   a clock already set: shows old -> new, asks, or --yes""",
    arguments=_clock_arguments,
)
