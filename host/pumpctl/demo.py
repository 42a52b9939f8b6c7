"""`pumpctl demo`: the whole path end to end on the simulator.

Boots the real firmware on the MicroPython unix port, programs a continuous
rate over a pty, runs pump time forward, and prints what was programmed,
what the pump reports it delivered and the exact expectation side by side.

A drug is always programmed as a drug (`drug NAME CONC`, `fill`, `basal RATE`
in a programming session), so the pump's drug library and its dose guard apply
to the demo as to any program: a rate over a hard limit is refused, the demo
says so, shows that the simulated motor made no step, and exits 1. Only
`--no-drug` programs a bare volume rate, and then says that no drug limit applies.
"""

from __future__ import annotations

import json
import re
import sys
import time
from fractions import Fraction

from . import quantities
from .client import NO_DRUG_LIMITS, US_PER_MDAY, expected_steps
from .errors import PumpRefused, UsageError
from .sim import Simulator

_CONCENTRATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mg|mcg|ug)\s*/\s*mL\s*$", re.IGNORECASE)
_DRUG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
FILL = "20 mL"  # the demo's reservoir: a common implanted pump's


def parse_concentration(text: str) -> tuple[Fraction, str]:
    """'10 mg/mL' -> (Fraction(10), 'mg'): the amount per mL and its unit."""
    m = _CONCENTRATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a concentration; write for example '10 mg/mL' or '25 mcg/mL'")
    unit = "mcg" if m.group(2).lower() in ("mcg", "ug") else "mg"
    return Fraction(m.group(1)), unit


def program_for(drug: str, concentration: str, rate: str) -> list[str]:
    """The program lines the demo stages for a drug: the pump checks them against its library."""
    return [f"drug {drug} {concentration.strip()}", f"fill {FILL}", f"basal {rate.strip()}"]


def _progress(done_us: int, total_us: int) -> None:
    if sys.stderr.isatty() and total_us:
        pct = 100 * done_us // total_us
        print(f"\r  running pump time ... {pct:3d}%", end="", file=sys.stderr, flush=True)


def _clear_progress() -> None:
    if sys.stderr.isatty():
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)


def run_demo(
    rate: str,
    duration_us: int,
    drug: str | None,
    concentration: str | None,
    timeout: float = 2.0,
    out=None,
    as_json: bool = False,
    confirm_soft: bool = False,
) -> int:
    """drug None: a bare volume rate (no drug, no library limit); else drug at concentration,
    programmed through the library. Returns the exit code; a refusal raises PumpRefused after
    the demo has said what the motor did."""
    out = out or sys.stdout
    per_ml, dose_unit = Fraction(0), ""
    if drug is not None:
        if not _DRUG_NAME.match(drug):
            raise UsageError(f"--drug {drug!r}: give one drug name from the pump's library, for example morphine")
        try:
            per_ml, dose_unit = parse_concentration(concentration or "")
        except ValueError as e:
            raise UsageError(str(e)) from None

    def say(line: str = "") -> None:
        if not as_json:
            print(line, file=out, flush=True)

    what = f"{drug} {concentration}" if drug is not None else "no drug (a plain volume rate)"
    say(f"pumpctl demo: {what} at {rate} for {quantities.duration(duration_us)}, on the simulated pump")
    say()
    lines = program_for(drug, concentration or "", rate) if drug is not None else None
    refused: PumpRefused | None = None
    rows: list[tuple[str, str]] = []
    library = None
    rounded = False
    with Simulator() as sim, sim.pump(timeout=timeout) as pump:
        info = pump.hello()
        before = pump.status()
        port = sim.port
        if lines is None:
            programmed = pump.set_rate(rate)
            start_us, rate_nl, rounded = programmed.effective_us, programmed.rate_nl_per_day, programmed.rounded
        else:
            try:
                staged = pump.stage(lines)
            except PumpRefused as e:
                refused = e
            else:
                rows = staged.rows
                if staged.warnings and not confirm_soft:
                    pump.discard()
                    for warning in staged.warnings:
                        say(f"  soft limit    {warning}")
                    raise UsageError("soft limits passed: not committed (add --confirm-soft after checking them)")
                start_us = pump.commit(staged, confirm_soft=confirm_soft)
                th = pump.therapy()
                rate_nl, library = th.rate_nl_per_day, th.library
                if th.empty_in_s is not None and th.empty_in_s * 10**6 < duration_us:
                    raise UsageError(
                        f"the demo's {FILL} reservoir reaches its empty level after "
                        f"{quantities.duration(th.empty_in_s * 10**6)} at {rate}: give a shorter --duration"
                    )
        wall_start = time.monotonic()
        after = pump.sim_advance(duration_us, progress=_progress)  # after a refusal too: nothing may move
        wall_s = time.monotonic() - wall_start
        _clear_progress()
        model = pump.sim_state()

    say(f"  pump          board {info.board}, firmware {info.firmware} on {info.platform}, port {port}")
    say(f"  step volume   {quantities.volume(after.step_volume_pl)} (calibrated)")
    if refused is not None:
        return _refused(
            say,
            out if as_json else None,
            refused,
            lines or [],
            duration_us,
            after.steps - before.steps,
            model.motor_steps,
        )
    if lines is not None:
        shown = [f"{line} ({detail})" if detail else line for line, detail in rows if line and line != "soft limit"]
        say(f"  program       {'; '.join(shown)}")
        for warning in staged.warnings:
            say(f"  soft limit    {warning} (confirmed with --confirm-soft)")
        say(f"  drug limits   library {library}: checked before the commit; its dose guard checks every step")
    else:
        say(f"  drug limits   {NO_DRUG_LIMITS}")

    step_pl = after.step_volume_pl
    ran_us = after.time_us - start_us
    programmed_pl = Fraction(rate_nl * ran_us, US_PER_MDAY)
    reported_steps = after.steps - before.steps
    reported_pl = reported_steps * step_pl
    owed_steps = expected_steps(rate_nl, ran_us, step_pl)
    owed_pl = owed_steps * step_pl
    speedup = ran_us / 1e6 / wall_s if wall_s > 0 else float("inf")

    def dose(volume_pl: Fraction | int) -> str:
        amount = Fraction(volume_pl) / 10**9 * per_ml  # pL -> mL -> drug amount
        return f"{quantities.as_decimal(amount, 9)} {dose_unit}"

    note = " (rounded down to 1 nL/day)" if rounded else ""
    say(f"  programmed    {quantities.rate(rate_nl)} = {rate_nl} nL/day{note}")
    say(
        f"  ran           {quantities.duration(ran_us)} of pump time in {wall_s:.2f} s of wall time "
        f"({speedup:,.0f}x real time)"
    )
    say()
    table = [
        ("", "programmed", "pump reports", "expected (exact)"),
        ("steps", quantities.as_decimal(programmed_pl / step_pl, 4), str(reported_steps), str(owed_steps)),
        ("volume", quantities.volume(programmed_pl), quantities.volume(reported_pl), quantities.volume(owed_pl)),
    ]
    if drug is not None:
        table.append((drug, dose(programmed_pl), dose(reported_pl), dose(owed_pl)))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for r in table:
        say("  " + "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
    say()
    short_pl = programmed_pl - reported_pl
    ok = reported_steps == owed_steps and model.motor_steps == after.steps
    if as_json:
        data = {
            "drug": drug,
            "concentration": concentration if drug is not None else None,
            "drug_limits": drug is not None,
            "library": library,
            "program": [line for line, _ in rows if line and line != "soft limit"] if lines is not None else None,
            "soft_limits": list(staged.warnings) if lines is not None else [],
            "rate_nl_per_day": rate_nl,
            "step_volume_pl": step_pl,
            "ran_us": ran_us,
            "programmed_pl": str(quantities.as_decimal(programmed_pl, 6)),
            "reported_steps": reported_steps,
            "expected_steps": owed_steps,
            "motor_steps": model.motor_steps,
            "passed": ok,
        }
        if drug is None:
            data["note"] = NO_DRUG_LIMITS
        print(json.dumps(data, indent=2), file=out, flush=True)
        return 0 if ok else 1
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


def _refused(say, json_out, refused, lines, duration_us, reported_steps, motor_steps) -> int:
    """The pump refused the program: say so and what the motor did since; raise the refusal (exit 1)
    when nothing moved, as it must; a motor that moved anyway is a mismatch (also exit 1)."""
    moved = motor_steps or reported_steps
    say(f"  program       {'; '.join(lines)}")
    say(f"  refused       {refused.reason}")
    say(
        f"  motor         {motor_steps} steps in {quantities.duration(duration_us)} of pump time since "
        f"(the pump reports {reported_steps})"
    )
    say()
    if json_out is not None:
        data = {
            "program": lines,
            "drug_limits": True,
            "refused": {"field": refused.field, "reason": refused.reason},
            "reported_steps": reported_steps,
            "motor_steps": motor_steps,
            "passed": not moved,
        }
        print(json.dumps(data, indent=2), file=json_out, flush=True)
    if moved:
        say(f"  MISMATCH: the pump refused the program, yet the motor made {motor_steps} steps.")
        return 1
    say("  result: the pump refused the program and delivered nothing.")
    raise refused
