"""pumpctl: the command line.

Exit codes: 0 done; 1 the pump refused (it changed nothing) or a check
failed; 2 the command line itself is wrong; 3 the serial link failed;
4 the simulator could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import asdict

from . import quantities
from .client import Pump
from .errors import LinkError, PumpError, PumpRefused, SimulatorError, UsageError

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_LINK = 3
EXIT_SIM = 4

_EXIT_CODES = ((UsageError, EXIT_USAGE), (PumpRefused, EXIT_REFUSED), (LinkError, EXIT_LINK), (SimulatorError, EXIT_SIM))

EPILOG = """examples:
  pumpctl demo                                 dose 24 h of morphine on the simulator
  pumpctl sim                                  start a simulated pump, print its port
  pumpctl --port /dev/pts/4 status             what the pump is doing
  pumpctl --port /dev/pts/4 program --rate "0.5 mL/day"
  pumpctl --port /dev/pts/4 advance 24h        (simulator) run 24 h of pump time
  pumpctl --port /dev/pts/4 stop

The port is a device path or a pyserial URL (socket://host:port); set
PUMPCTL_PORT to avoid repeating it.
"""


def _port(args) -> str:
    if not args.port:
        raise UsageError("no port given: use --port PORT or set PUMPCTL_PORT (pumpctl sim prints one)")
    return args.port


def _duration_us(text: str) -> int:
    try:
        return quantities.parse_duration_us(text)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _status_data(st) -> dict:
    return dict(asdict(st), delivered_pl=st.delivered_pl)


def _print(args, human: str, data: dict) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(human)


def cmd_status(args) -> int:
    with Pump(_port(args), timeout=args.timeout) as pump:
        st = pump.status()
    rate = quantities.rate(st.rate_nl_per_day) + f" ({st.rate_nl_per_day} nL/day)" if st.rate_nl_per_day else "-"
    human = "\n".join(
        [
            f"pump time   {quantities.duration(st.time_us)}",
            f"mode        {st.mode}",
            f"rate        {rate}",
            f"delivered   {quantities.volume(st.delivered_pl)} "
            f"({st.steps} steps of {quantities.volume(st.step_volume_pl)})",
        ]
    )
    _print(args, human, _status_data(st))
    return EXIT_OK


def cmd_program(args) -> int:
    with Pump(_port(args), timeout=args.timeout) as pump:
        result = pump.set_rate(args.rate)
    note = " (rounded down to the pump's resolution of 1 nL/day)" if result.rounded else ""
    human = (
        f"programmed  {quantities.rate(result.rate_nl_per_day)} = {result.rate_nl_per_day} nL/day{note}\n"
        f"from        pump time {quantities.duration(result.effective_us)}"
    )
    _print(args, human, asdict(result))
    return EXIT_OK


def cmd_stop(args) -> int:
    with Pump(_port(args), timeout=args.timeout) as pump:
        at = pump.stop()
    _print(args, f"stopped at pump time {quantities.duration(at)}", {"stopped_us": at})
    return EXIT_OK


def cmd_advance(args) -> int:
    duration_us = _duration_us(args.duration)
    with Pump(_port(args), timeout=args.timeout) as pump:
        st = pump.sim_advance(duration_us)
    human = f"pump time now {quantities.duration(st.time_us)}; delivered {quantities.volume(st.delivered_pl)}"
    _print(args, human, _status_data(st))
    return EXIT_OK


def cmd_sim(args) -> int:
    from .sim import Simulator

    with Simulator(speed=args.speed, board=args.board) as sim:
        pace = "time moves only with 'pumpctl advance'" if args.speed == 0 else f"{args.speed}x real time"
        print(f"simulated pump (board {args.board}, {pace}) on {sim.port}", flush=True)
        print(f"try: pumpctl --port {sim.port} status    (Ctrl-C stops the simulator)", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while sim.running() and not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
        if not sim.running():
            print("the simulated firmware stopped:\n" + sim.stderr_text(), file=sys.stderr)
            return EXIT_SIM
    return EXIT_OK


def cmd_demo(args) -> int:
    from .demo import run_demo

    duration_us = _duration_us(args.duration)
    return run_demo(args.rate, duration_us, args.drug, args.concentration, timeout=args.timeout)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pumpctl",
        description="Program, watch and test a drug pump over USB serial.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", default=os.environ.get("PUMPCTL_PORT"), help="device path or pyserial URL")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each reply (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts instead of text")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("status", help="what the pump is doing")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("program", help="program a continuous rate", epilog='example: pumpctl program --rate "0.5 mL/day"')
    s.add_argument("--rate", required=True, help='rate with its unit: nL, uL or mL per s, min, h or day ("0.5 mL/day")')
    s.set_defaults(func=cmd_program)

    s = sub.add_parser("stop", help="stop delivery (stopped mode)")
    s.set_defaults(func=cmd_stop)

    s = sub.add_parser("advance", help="simulator only: run pump time forward", epilog="example: pumpctl advance 24h")
    s.add_argument("duration", help="how much pump time: 30s, 90min, 24h, 7day")
    s.set_defaults(func=cmd_advance)

    s = sub.add_parser("sim", help="start a simulated pump and print its port", epilog="example: pumpctl sim --speed 60")
    s.add_argument("--speed", type=int, default=0, help="0: time moves only with advance (default); N: N x real time")
    s.add_argument("--board", default="sim", help="board file to boot (default sim)")
    s.set_defaults(func=cmd_sim)

    s = sub.add_parser(
        "demo",
        help="dose on the simulator and compare with the exact expectation",
        epilog='example: pumpctl demo --rate "0.5 mL/day" --duration 24h --drug morphine --concentration "10 mg/mL"',
    )
    s.add_argument("--rate", default="0.5 mL/day", help="rate with its unit (default 0.5 mL/day)")
    s.add_argument("--duration", default="24h", help="pump time to run (default 24h)")
    s.add_argument("--drug", default="morphine", help="drug name, for the dose column (default morphine)")
    s.add_argument("--concentration", default="10 mg/mL", help="drug concentration (default 10 mg/mL)")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PumpError as e:  # a user's or the line's problem: a message, never a traceback
        print(f"pumpctl: {e}", file=sys.stderr)
        return next((code for kind, code in _EXIT_CODES if isinstance(e, kind)), EXIT_REFUSED)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
