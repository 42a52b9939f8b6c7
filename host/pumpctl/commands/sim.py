"""pumpctl sim: start a simulated pump and print its port."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ..errors import UsageError
from .common import EXIT_OK, EXIT_SIM, Command, volume_nl_arg


def cmd_sim(args) -> int:
    from ..sim import Simulator

    if args.speed < 0:
        raise UsageError(f"--speed {args.speed}: give 0 (time moves only with advance) or N, N x real time")
    board_args = []
    if args.reservoir is not None:
        board_args = ["--reservoir-nl", str(volume_nl_arg("--reservoir", args.reservoir))]
    with Simulator(
        speed=args.speed, board=args.board, register=True, balance=args.balance, board_args=board_args
    ) as sim:
        pace = "time moves only with 'pumpctl advance'" if args.speed == 0 else f"{args.speed}x real time"
        print(f"simulated pump (board {args.board}, {pace}) on {sim.port}", flush=True)
        if sim.balance_port:
            print(f"simulated MT-SICS balance weighing its output on {sim.balance_port}", flush=True)
        print(f"device id {sim.keys.device_id}; its keys are in the config file", flush=True)
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


def _sim_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--speed", type=int, default=0, help="0: time moves only with advance (default); N: N x real time")
    s.add_argument("--board", default="sim", help="board file to boot (default sim)")
    s.add_argument("--balance", action="store_true", help="also a simulated lab balance weighing what it delivers")
    s.add_argument(
        "--reservoir",
        metavar="VOLUME",
        help='fit the reservoir sensor, the reservoir holding VOLUME at boot ("20 mL"); none without it',
    )


SIM = Command(
    "sim",
    cmd_sim,
    help="start a simulated pump and print its port",
    epilog="""examples:
  pumpctl sim                          time moves only with pumpctl advance
  pumpctl sim --speed 60               a minute of pump time each second
  pumpctl sim --balance --reservoir "20 mL"   with a lab balance and a reservoir sensor""",
    arguments=_sim_arguments,
)
