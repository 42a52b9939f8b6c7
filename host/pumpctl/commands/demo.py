"""pumpctl demo: dose on the simulator and compare with the exact expectation (pumpctl.demo)."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .common import Command, duration_us_arg


def cmd_demo(args) -> int:
    from ..demo import run_demo

    duration_us = duration_us_arg(args.duration)
    if args.no_drug and (args.drug or args.concentration):
        raise UsageError("--no-drug runs a plain volume rate: do not give --drug or --concentration with it")
    if args.no_drug:
        drug, concentration = None, None
    else:
        drug, concentration = args.drug or "morphine", args.concentration or "10 mg/mL"
    return run_demo(
        args.rate,
        duration_us,
        drug,
        concentration,
        timeout=args.timeout,
        as_json=args.json,
        confirm_soft=args.confirm_soft,
    )


def _demo_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--rate", default="0.5 mL/day", help="basal rate, a volume or dose per time (default 0.5 mL/day)")
    s.add_argument("--duration", default="24h", help="pump time to run (default 24h)")
    s.add_argument("--drug", help="drug name in the pump's library (default morphine)")
    s.add_argument("--concentration", help="drug concentration (default 10 mg/mL)")
    s.add_argument(
        "--no-drug", action="store_true", help="a plain volume rate of no drug: no drug-library limit applies"
    )
    s.add_argument("--confirm-soft", action="store_true", help="commit a program past a soft limit")


DEMO = Command(
    "demo",
    cmd_demo,
    help="dose on the simulator and compare with the exact expectation",
    epilog="""examples:
  pumpctl demo
  pumpctl demo --rate "0.5 mL/day" --duration 24h --drug morphine --concentration "10 mg/mL"
  pumpctl demo --rate "2 mg/day" --drug morphine --concentration "20 mg/mL"
  pumpctl demo --rate "1 mL/h" --duration 2h --no-drug

The drug is programmed as a drug (drug NAME CONC, fill 20 mL, basal RATE), so
the pump's drug library and dose guard apply: a rate over a hard limit is
refused, and the demo exits 1. --no-drug programs a plain volume rate, to which
no drug-library limit applies (only the pump's rate range).
""",
    arguments=_demo_arguments,
)
