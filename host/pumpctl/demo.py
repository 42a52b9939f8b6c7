"""`pumpctl demo`: the whole path end to end on the simulator.

Boots the real firmware on the MicroPython unix port, programs a continuous
rate over a pty, runs pump time forward, and prints what was programmed,
what the pump reports it delivered and the exact expectation side by side.
"""

from __future__ import annotations

import re
import sys
import time
from fractions import Fraction

from . import quantities
from .client import US_PER_MDAY, expected_steps
from .errors import UsageError
from .sim import Simulator

_CONCENTRATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mg|mcg|ug)\s*/\s*mL\s*$", re.IGNORECASE)


def parse_concentration(text: str) -> tuple[Fraction, str]:
    """'10 mg/mL' -> (Fraction(10), 'mg'): the amount per mL and its unit."""
    m = _CONCENTRATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a concentration; write for example '10 mg/mL' or '25 mcg/mL'")
    unit = "mcg" if m.group(2).lower() in ("mcg", "ug") else "mg"
    return Fraction(m.group(1)), unit


def _progress(done_us: int, total_us: int) -> None:
    if sys.stderr.isatty() and total_us:
        pct = 100 * done_us // total_us
        print(f"\r  running pump time ... {pct:3d}%", end="", file=sys.stderr, flush=True)


def run_demo(rate: str, duration_us: int, drug: str, concentration: str, timeout: float = 2.0, out=None) -> int:
    out = out or sys.stdout
    try:
        per_ml, dose_unit = parse_concentration(concentration)
    except ValueError as e:
        raise UsageError(str(e)) from None

    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    say(f"pumpctl demo: {drug} {concentration} at {rate} for {quantities.duration(duration_us)}, on the simulated pump")
    say()
    with Simulator() as sim, sim.pump(timeout=timeout) as pump:
        info = pump.hello()
        before = pump.status()
        programmed = pump.set_rate(rate)
        wall_start = time.monotonic()
        after = pump.sim_advance(duration_us, progress=_progress)
        wall_s = time.monotonic() - wall_start
        if sys.stderr.isatty():
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
        model = pump.sim_state()
        port = sim.port

    step_pl = after.step_volume_pl
    ran_us = after.time_us - programmed.effective_us
    programmed_pl = Fraction(programmed.rate_nl_per_day * ran_us, US_PER_MDAY)
    reported_steps = after.steps - before.steps
    reported_pl = reported_steps * step_pl
    owed_steps = expected_steps(programmed.rate_nl_per_day, ran_us, step_pl)
    owed_pl = owed_steps * step_pl
    speedup = ran_us / 1e6 / wall_s if wall_s > 0 else float("inf")

    def dose(volume_pl: Fraction | int) -> str:
        amount = Fraction(volume_pl) / 10**9 * per_ml  # pL -> mL -> drug amount
        return f"{quantities.as_decimal(amount, 9)} {dose_unit}"

    rounded = " (rounded down to 1 nL/day)" if programmed.rounded else ""
    say(f"  pump          board {info.board}, firmware {info.firmware} on {info.platform}, port {port}")
    say(f"  step volume   {quantities.volume(step_pl)} (calibrated)")
    say(f"  programmed    {quantities.rate(programmed.rate_nl_per_day)} = {programmed.rate_nl_per_day} nL/day{rounded}")
    say(
        f"  ran           {quantities.duration(ran_us)} of pump time in {wall_s:.2f} s of wall time "
        f"({speedup:,.0f}x real time)"
    )
    say()
    rows = [
        ("", "programmed", "pump reports", "expected (exact)"),
        ("steps", quantities.as_decimal(programmed_pl / step_pl, 4), str(reported_steps), str(owed_steps)),
        ("volume", quantities.volume(programmed_pl), quantities.volume(reported_pl), quantities.volume(owed_pl)),
        (drug, dose(programmed_pl), dose(reported_pl), dose(owed_pl)),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        say("  " + "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
    say()
    short_pl = programmed_pl - reported_pl
    ok = reported_steps == owed_steps and model.motor_steps == after.steps
    if ok:
        say(
            f"  result: the pump delivered exactly the {owed_steps} steps owed; "
            f"{quantities.volume(short_pl)} ({quantities.as_decimal(short_pl / step_pl, 2)} of a step) "
            "short of the programmed volume, never ahead."
        )
        return 0
    say(
        f"  MISMATCH: pump reports {reported_steps} steps, the motor model made {model.motor_steps}, "
        f"the exact expectation is {owed_steps}."
    )
    return 1
