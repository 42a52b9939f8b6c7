"""pumpctl stop and advance: stop delivery; run the simulator's pump time forward."""

from __future__ import annotations

import argparse

from .. import quantities, render
from ..client import Pump
from .common import EXIT_INTERRUPTED, EXIT_OK, Command, duration_us_arg, emit, port_of, status_data


def cmd_stop(args) -> int:
    with Pump(port_of(args), timeout=args.timeout) as pump:
        at = pump.stop()
    emit(args, f"stopped at pump time {quantities.duration(at)}", {"stopped_us": at}, style=render.OK)
    return EXIT_OK


def cmd_advance(args) -> int:
    duration_us = duration_us_arg(args.duration)

    def shown(done_us: int, total_us: int) -> str:  # to the second: the bar moves on, the exact time follows
        return f"{quantities.duration(done_us // 10**6 * 10**6)} of {quantities.duration(total_us)}"

    with Pump(port_of(args), timeout=args.timeout) as pump:
        start_us = pump.status().time_us
        try:
            with render.progress("advancing pump time", shown, not args.json) as bar:
                st = pump.sim_advance(duration_us, progress=bar)
        except KeyboardInterrupt:  # Ctrl-C: the simulator's time stops too, and says where
            st = pump.sim_stop_advance()
            ran = quantities.duration(st.time_us - start_us)
            render.error(
                f"interrupted: pump time stopped at {quantities.duration(st.time_us)} "
                f"({ran} of the {quantities.duration(duration_us)} asked for ran); delivered "
                f"{quantities.volume(st.delivered_pl)}"
            )
            return EXIT_INTERRUPTED
    human = f"pump time now {quantities.duration(st.time_us)}; delivered {quantities.volume(st.delivered_pl)}"
    emit(args, human, status_data(st))
    return EXIT_OK


STOP = Command(
    "stop",
    cmd_stop,
    help="stop delivery (stopped mode)",
    epilog="""examples:
  pumpctl stop                 delivery stops; program again (or refill) to start it""",
)


def _advance_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("duration", help="how much pump time: 30s, 90min, 24h, 7day")


ADVANCE = Command(
    "advance",
    cmd_advance,
    help="simulator only: run pump time forward",
    epilog="""examples:
  pumpctl advance 24h          a day of pump time (a bar shows it on a terminal)
  pumpctl advance 90min""",
    arguments=_advance_arguments,
)
