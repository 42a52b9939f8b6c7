"""pumpctl calibrate: the volume per step, by weighing (pumpctl.calibrate)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from decimal import Decimal
from fractions import Fraction

from .. import quantities
from ..client import NO_DRUG_LIMITS, Pump
from ..errors import UsageError
from .common import EXIT_OK, Command, confirm, emit, port_of

CALIBRATE_EPILOG = """\
examples:
  pumpctl sim --balance                      # a simulated pump with a simulated balance: prints both ports
  pumpctl --port /dev/pts/4 calibrate --balance /dev/pts/5
  pumpctl --port /dev/ttyACM0 calibrate --balance /dev/ttyUSB0 --rates "1 mL/h,5 mL/h" --repeats 2
  pumpctl --port /dev/ttyACM0 calibrate --typed --steps 4000       # weigh by hand, type each mass

The pump must be stopped and hold no drug (bench water): for each rate the
vessel is tared, the pump makes --steps steps, the vessel is weighed. The raw
weighings (the pump's step counts at tare and weighing, the mass) go to the
pump, which computes the volume per step, the spread and the change itself
(it refuses more than 20 % from the board's volume or a spread over 2 %). It
is shown, old beside new, and stored when you answer yes (or --yes; a change
over 2 % is stored only so confirmed), and logged with the weighings; not
with --dry-run or when the runs spread more than --max-spread.
"""


def cmd_calibrate(args) -> int:
    from .. import calibrate as cal

    rates = [r.strip() for r in args.rates.split(",") if r.strip()]
    max_spread_ppm = _percent_ppm("--max-spread", args.max_spread)
    cal.density_ug_per_ml(args.density)  # a bad density is refused before anything is dispensed
    with contextlib.ExitStack() as stack:
        pump = stack.enter_context(Pump(port_of(args), timeout=args.timeout))
        if args.balance:
            from ..balance import open_balance

            scale = cal.BalanceScale(stack.enter_context(open_balance(args.balance, args.balance_protocol)))
        elif args.typed or args.masses:
            if not args.masses and (sys.stdin is None or not sys.stdin.isatty()):
                raise UsageError("--typed asks for each mass on the terminal: give --masses MG,MG,... without one")
            masses = args.masses.split(",") if args.masses else None
            if masses is not None:  # all of them checked before the pump moves: one per run, each a mass
                runs = len(rates) * args.repeats
                if len(masses) != runs:
                    raise UsageError(
                        f"--masses gives {len(masses)} mass{'es' if len(masses) != 1 else ''} for {runs} run"
                        f"{'s' if runs != 1 else ''} ({len(rates)} rate(s) x {args.repeats}): one per run, in order"
                    )
                for k, text in enumerate(masses):
                    cal.mass_mg(text, k)
            scale = cal.TypedScale(input, masses)
        else:
            raise UsageError("weigh with a balance (--balance PORT) or by hand (--typed, or --masses MG,MG,...)")

        def shown(k, run):
            if not args.json:
                mass = quantities.as_decimal(run.mass_mg, 3)
                print(
                    f"run {k + 1}  {quantities.rate(run.rate_nl_per_day):>12}  {run.steps:6d} steps  "
                    f"{mass:>10} mg  {run.step_volume_pl:>10} pL/step",
                    flush=True,
                )

        try:
            result = cal.calibrate(
                pump,
                scale,
                steps=args.steps,
                rates=rates,
                repeats=args.repeats,
                density_g_per_ml=args.density,
                max_spread_ppm=max_spread_ppm,
                store=False,
                on_run=shown,
            )
        except cal.CalibrationRefused as e:
            _print_calibration(args, e.result, refused=str(e))
            raise
        if not args.json:
            print(_calibration_summary(result), flush=True)
        if not args.dry_run:
            change = quantities.as_decimal(Fraction(result.change_ppm, 10_000), 2)
            question = (
                f"store {result.step_volume_pl} pL per step on the pump (it has {result.previous_pl} pL)?"
                if not result.needs_confirming
                else f"the pump has {result.previous_pl} pL per step and computed {result.step_volume_pl} pL: "
                f"a change of {change} %, more than 2 %. Confirm it and store it?"
            )
            if confirm(
                args,
                question,
                "not stored: run again with --yes to store the calibration (or --dry-run to only measure)",
            ):
                result = cal.store_calibration(pump, result, confirm=True)
    _print_calibration(args, result, stored=result.stored)
    return EXIT_OK


def _percent_ppm(option: str, text: str) -> int:
    t = text.strip().removesuffix("%").strip()
    try:
        value = Decimal(t)
    except ArithmeticError:
        raise UsageError(f"{option} {text!r}: give a percentage, for example 2%") from None
    if not 0 < value <= 20:
        raise UsageError(f"{option} {text!r} must be above 0 and at most 20 %")
    return int(value * 10_000)


def _calibration_summary(result) -> str:
    """The pump's figures (the host's while the pump has not computed them), old beside new."""
    spread = quantities.as_decimal(Fraction(result.spread_ppm, 10_000), 2)
    change = quantities.as_decimal(Fraction(result.change_ppm, 10_000), 2)
    who = "computed by the pump" if result.pump is not None else "computed by this host"
    return (
        f"mean        {result.step_volume_pl} pL per step over {len(result.runs)} runs ({who})\n"
        f"spread      {spread} % (largest - smallest, over the mean)\n"
        f"change      {change} % from the {result.previous_pl} pL in force"
        + (": more than 2 %, stored only when confirmed" if result.needs_confirming else "")
    )


def _print_calibration(args, result, stored=False, refused=None) -> None:
    if refused:
        verdict = "refused: " + refused
    elif stored:
        verdict = f"stored on the pump: {result.step_volume_pl} pL per step (was {result.previous_pl} pL), and logged"
    else:
        verdict = f"not stored (the pump keeps {result.previous_pl} pL per step)"
    limits = f"limits      bench water, {NO_DRUG_LIMITS}"
    data = {
        "runs": [
            {
                "rate_nl_per_day": r.rate_nl_per_day,
                "from_steps": r.from_steps,
                "to_steps": r.to_steps,
                "steps": r.steps,
                "mass_ug": r.mass_ug,
                "mass_mg": str(quantities.as_decimal(r.mass_mg, 6)),
                "step_volume_pl": r.step_volume_pl,
            }
            for r in result.runs
        ],
        "mean_pl": str(quantities.as_decimal(result.mean_pl, 3)),
        "step_volume_pl": result.step_volume_pl,
        "previous_pl": result.previous_pl,
        "spread_ppm": result.spread_ppm,
        "change_ppm": result.change_ppm,
        "needs_confirming": result.needs_confirming,
        "computed_by_pump": result.pump is not None,
        "density_g_per_ml": str(result.density_g_per_ml),
        "density_ug_per_ml": result.density_ug_per_ml,
        "stored": stored,
        "refused": refused,
        "drug_limits": False,
    }
    if args.json:
        emit(args, "", data)
    elif refused:
        print(_calibration_summary(result).split("\nchange")[0])  # the refusal itself is the error line
        print(limits)
    else:
        print(f"{verdict}\n{limits}")


def _calibrate_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--balance", metavar="PORT", help="the balance's serial port or pyserial URL")
    s.add_argument("--balance-protocol", default="mt-sics", choices=("mt-sics", "sbi"), help="default mt-sics")
    s.add_argument("--typed", action="store_true", help="weigh by hand: tare and type each mass (mg) when asked")
    s.add_argument("--masses", metavar="MG,MG,...", help="the masses weighed by hand, in mg, one per run, in order")
    s.add_argument("--steps", type=int, default=2000, help="steps per run (default 2000, about 0.1 mL)")
    s.add_argument(
        "--rates", default="1 mL/h,5 mL/h", help='two or more rates, comma-separated (default "1 mL/h,5 mL/h")'
    )
    s.add_argument("--repeats", type=int, default=1, help="runs at each rate (default 1)")
    s.add_argument("--density", default="0.9982", help="of the fluid, g/mL (default 0.9982: water at 20 degC)")
    s.add_argument(
        "--max-spread", default="2%", help="largest minus smallest over the mean (default 2%%; the pump's limit)"
    )
    s.add_argument("--dry-run", action="store_true", help="measure and show, store nothing")
    s.add_argument("--yes", action="store_true", help="store without asking")


CALIBRATE = Command(
    "calibrate",
    cmd_calibrate,
    help="measure the volume per step by weighing at two or more rates, and store it on the pump",
    epilog=CALIBRATE_EPILOG,
    arguments=_calibrate_arguments,
)
