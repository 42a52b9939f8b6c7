"""pumpctl bench: the flow-rate bench test against a lab balance (pumpctl.benchtest)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
from pathlib import Path

from .. import render
from ..benchtest import BenchConfig, BenchInterrupted, BenchTest, run_many
from ..client import Pump
from ..errors import PumpError, UsageError
from .common import EXIT_CODES, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, Command, duration_us_arg, port_of

BENCH_EPILOG = """examples:
  pumpctl bench --sim --rate "1 mL/h" --duration 2h      a simulated pump on a simulated balance
  pumpctl bench --sim 3 --rate "1 mL/h"                  three at once, each on its own balance
  pumpctl --port /dev/ttyACM0 bench --balance /dev/ttyUSB0 --rate "1 mL/h" --duration 2h
  pumpctl bench --rig /dev/ttyACM0=/dev/ttyUSB0 --rig /dev/ttyACM1=/dev/ttyUSB1 --rate "1 mL/h"
  pumpctl --port /dev/ttyACM0 bench --balance /dev/ttyUSB0 --resume bench-20261201-101500

Every 30 s of pump time it reads the balance (MT-SICS SI, or Sartorius SBI ESC P) and the pump's
step count, appends both to samples.csv at once (an interrupted test loses no sample), and at the
end writes results.json and curves.png (start-up and trumpet curves, IEC 60601-2-24 method: mean
flow error A and Ep(max)/Ep(min) over 2, 5, 11, 19 and 31 min windows from the second hour on),
prints a summary with pass/fail against the limits, and stops the pump.
"""


_EVAPORATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mg|g)\s*/\s*(h|min)\s*$")


def _evaporation_g_per_h(text: str) -> float:
    m = _EVAPORATION.match(text)
    if not m:
        raise UsageError(f"evaporation {text!r} is not a mass per time; write for example '0.5 mg/h'")
    value = float(m.group(1)) * (0.001 if m.group(2) == "mg" else 1.0)
    return value * (60 if m.group(3) == "min" else 1)


def _volume_limits(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split("-"))
    except ValueError:
        raise UsageError(f"volume limits {text!r}: write LOW-HIGH in percent, for example 85-115") from None
    return low, high


def _bench_config(args) -> BenchConfig:
    if not args.rate:
        raise UsageError('bench needs --rate with its unit, for example --rate "1 mL/h"')
    duration_us = duration_us_arg(args.duration)
    if duration_us % 10**6:
        raise UsageError(f"duration {args.duration!r} must be whole seconds")
    config = BenchConfig(
        args.rate,
        duration_us // 10**6,
        density_g_per_ml=args.density,
        evaporation_g_per_h=_evaporation_g_per_h(args.evaporation),
        max_mean_error_pct=args.max_mean_error,
        volume_limits_pct=_volume_limits(args.volume_limits),
    )
    config.check()
    return config


def cmd_bench(args) -> int:
    import time as _time

    from ..balance import open_balance
    from ..sim import Simulator

    if args.resume and (args.sim or args.rig):
        raise UsageError("--resume carries on one test: give its pump (--port) and --balance, not --sim or --rig")
    if args.sim < 0:
        raise UsageError(f"--sim {args.sim}: give how many simulated pumps, 1 or more")
    config = None if args.resume else _bench_config(args)
    stamp = _time.strftime("bench-%Y%m%d-%H%M%S")
    with contextlib.ExitStack() as stack:
        pairs = []  # (pump, balance)
        if args.sim:
            for _ in range(args.sim):
                sim = stack.enter_context(Simulator(balance=True))
                pairs.append((stack.enter_context(sim.pump(timeout=args.timeout)), sim.balance_port))
        elif args.rig:
            for rig in args.rig:
                pump_port, sep, balance_port = rig.partition("=")
                if not sep or not pump_port or not balance_port:
                    raise UsageError(f"--rig {rig!r}: write PUMP_PORT=BALANCE_PORT")
                pairs.append((stack.enter_context(Pump(pump_port, timeout=args.timeout)), balance_port))
        else:
            if not args.balance:
                raise UsageError("bench needs the balance's port: --balance PORT (or --sim to try it on the simulator)")
            pairs.append((stack.enter_context(Pump(port_of(args), timeout=args.timeout)), args.balance))
        tests = []
        for i, (pump, balance_port) in enumerate(pairs):
            balance = stack.enter_context(open_balance(balance_port, args.protocol, timeout=args.timeout))
            if args.resume:
                folder = Path(args.resume)
            else:
                base = Path(args.out or stamp)
                folder = base if len(pairs) == 1 else base / f"pump{i + 1}"
            tests.append(
                (BenchTest(pump, balance, config or _placeholder_config(), folder, args.protocol), bool(args.resume))
            )
        labels = [f"pump {i + 1}" for i in range(len(tests))] if len(tests) > 1 else ["bench test"]
        try:  # a bar per pump on a terminal (its samples taken), gone once the test ends
            with render.progress_many(labels, lambda done, total: f"{done}/{total} samples") as bar:
                outcomes = run_many(tests, bar)
        except KeyboardInterrupt:
            for test, _ in tests:
                render.error(str(BenchInterrupted(test.folder)))
            return EXIT_INTERRUPTED
    failed_to_run = [o for o in outcomes if isinstance(o, Exception)]
    reports = [o for o in outcomes if not isinstance(o, Exception)]
    if args.json:
        print(
            json.dumps([r.to_dict() for r in reports] if len(tests) > 1 else reports[0].to_dict(), indent=2)
            if reports
            else "[]"
        )
    elif reports:
        render.show("\n\n".join(r.summary() for r in reports), lambda: render.bench(reports))
    for (test, _), outcome in zip(tests, outcomes, strict=True):
        if isinstance(outcome, OSError):  # its folder or files: --out, --resume
            render.error(
                f"the test in {test.folder} stopped: cannot write its files ({outcome.strerror or outcome}); "
                "give --out a folder you may write to"
            )
        elif isinstance(outcome, Exception):
            render.error(f"the test in {test.folder} stopped: {outcome}")
    if failed_to_run:
        first = failed_to_run[0]
        if isinstance(first, PumpError):
            return next((code for kind, code in EXIT_CODES if isinstance(first, kind)), EXIT_REFUSED)
        if isinstance(first, OSError):
            return EXIT_USAGE
        raise first
    return EXIT_OK if all(r.passed for r in reports) else EXIT_REFUSED


def _placeholder_config() -> BenchConfig:
    """Resume reads the real one from the test's folder; BenchTest only needs a valid one to exist."""
    return BenchConfig("1 mL/h", 3600)


def _bench_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--rate", help='rate with its unit, for example "1 mL/h"')
    s.add_argument("--duration", default="2h", help="test length in pump time, whole 30 s samples (default 2h)")
    s.add_argument(
        "--balance", default=os.environ.get("PUMPCTL_BALANCE"), help="the balance's port (or PUMPCTL_BALANCE)"
    )
    s.add_argument(
        "--protocol", default="mt-sics", choices=("mt-sics", "sbi"), help="balance protocol (default mt-sics)"
    )
    s.add_argument(
        "--density", type=float, default=0.9982, help="of the test fluid, g/mL (default 0.9982, water at 20 C)"
    )
    s.add_argument("--evaporation", default="0 mg/h", help="lost by a reference vial, e.g. '0.5 mg/h' (default 0)")
    s.add_argument("--max-mean-error", type=float, default=5.0, help="limit on |A|, percent (default 5)")
    s.add_argument("--volume-limits", default="85-115", help="delivered / programmed, percent (default 85-115)")
    s.add_argument("--out", help="folder for the files (default bench-DATE-TIME; one per pump inside with several)")
    s.add_argument("--resume", metavar="FOLDER", help="carry on the interrupted test in FOLDER")
    s.add_argument(
        "--sim",
        type=int,
        nargs="?",
        const=1,
        default=0,
        metavar="N",
        help="run on N simulated pumps (default 1), each on a simulated MT-SICS balance",
    )
    s.add_argument("--rig", action="append", metavar="PUMP=BALANCE", help="a pump and its balance; repeat for several")


BENCH = Command(
    "bench",
    cmd_bench,
    help="flow-rate bench test against a lab balance: start-up and trumpet curves, volume accuracy",
    epilog=BENCH_EPILOG,
    arguments=_bench_arguments,
)
