"""The calibration wizard: measure the volume one motor step moves, by weighing.

    from pumpctl import Pump
    from pumpctl.balance import open_balance
    from pumpctl.calibrate import BalanceScale, calibrate

    with Pump(port) as pump, open_balance(balance_port) as balance:
        result = calibrate(pump, BalanceScale(balance), steps=2000, rates=["1 mL/h", "5 mL/h"])
        print(result.step_volume_pl, result.spread_ppm)

For each rate (two or more, each `repeats` times) the pump, stopped and holding
no drug (bench water), dispenses about `steps` steps into a tared vessel; the
scale weighs what came out; the pump's own count says how many steps it made.
Each run gives a volume per step (mass / density / steps, exact in fractions);
their mean is the calibration and their spread, (largest - smallest) / mean,
its check: over max_spread (default 2 %) the calibration is refused and
nothing is stored. Otherwise the mean, rounded to the pL, is stored on the pump
(CALIBRATE; the pump checks it again, logs it, keeps it across restarts) unless
store=False.

A simulated pump's time is run forward (sim_advance); a real pump's is waited
for, polling its step count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from firmware import codec

from .errors import PumpError, UsageError

DEFAULT_STEPS = 2000  # about 104 uL a run at 52 nL a step: 104 mg on a 0.01 mg balance, 0.01 % readability
DEFAULT_MAX_SPREAD_PPM = 20_000  # 2 %: the pump refuses more (app.CALIBRATION_MAX_SPREAD_PPM)
WATER_G_PER_ML = Decimal("0.9982")  # at 20 degC
_POLL_S = 0.2


class CalibrationRefused(PumpError):
    """The weighings spread too far to trust: nothing was stored (pumpctl exit 1, as a refusal)."""

    def __init__(self, result: Calibration, max_spread_ppm: int):
        self.result = result
        super().__init__(
            f"the weighings spread {result.spread_ppm / 10_000:.2f} %, more than {max_spread_ppm / 10_000:g} %: "
            "nothing stored; check for bubbles, drips or a draught on the balance, then weigh again"
        )


@dataclass(frozen=True)
class Run:
    rate_nl_per_day: int
    steps: int  # steps the pump made for this run, by its own count
    mass_mg: Fraction  # what the vessel gained
    volume_nl: Fraction  # mass / density

    @property
    def step_volume_pl(self) -> Fraction:
        return self.volume_nl * 1000 / self.steps


@dataclass(frozen=True)
class Calibration:
    runs: list[Run]
    previous_pl: int  # the pump's volume per step before
    density_g_per_ml: Decimal
    stored: bool

    @property
    def mean_pl(self) -> Fraction:
        return sum((r.step_volume_pl for r in self.runs), Fraction(0)) / len(self.runs)

    @property
    def step_volume_pl(self) -> int:
        """The mean, rounded to the pL (what the pump stores)."""
        m = self.mean_pl
        return int((m + Fraction(1, 2)) // 1)

    @property
    def spread_ppm(self) -> int:
        """(largest - smallest) / mean, in parts per million, rounded up."""
        per_step = [r.step_volume_pl for r in self.runs]
        s = (max(per_step) - min(per_step)) / self.mean_pl * 1_000_000
        return -(-s.numerator // s.denominator)


class BalanceScale:
    """Weigh with a lab balance on a serial port (pumpctl.balance): tare, then a stable reading."""

    def __init__(self, balance):
        self.balance = balance

    def tare(self, run: int) -> None:
        self.balance.tare()

    def weigh_mg(self, run: int) -> Fraction:
        reading = self.balance.read(stable=True)
        return Fraction(reading.mass_g) * 1000


class TypedScale:
    """Weigh by hand: the user tares the vessel and types each mass in mg (ask(prompt) -> text),
    or gives them all up front (masses_mg)."""

    def __init__(self, ask: Callable[[str], str] | None = None, masses_mg: list[str] | None = None):
        self.ask = ask
        self.masses = list(masses_mg or [])

    def tare(self, run: int) -> None:
        if self.ask is not None and not self.masses:
            self.ask(f"run {run + 1}: put the empty vessel under the outlet, tare the balance, then press Enter ")

    def weigh_mg(self, run: int) -> Fraction:
        text = (
            self.masses.pop(0)
            if self.masses
            else (self.ask(f"run {run + 1}: mass dispensed, in mg? ") if self.ask else "")
        )
        try:
            value = Fraction(Decimal(text.strip().removesuffix("mg").strip()))
        except (ArithmeticError, ValueError):
            raise UsageError(f"run {run + 1}: {text!r} is not a mass in mg (for example 104.17)") from None
        if value <= 0:
            raise UsageError(f"run {run + 1}: the mass must be above 0 mg, not {text}")
        return value


def dispense(pump, rate: str, steps: int, realtime: bool = False, progress=None) -> tuple[int, int]:
    """Run `rate` until the pump has made at least `steps` steps, then stop; return the steps it
    made and the rate in nL/day as the pump converted it."""
    start = pump.status().steps
    set_ = pump.set_rate(rate)
    rate_nl = set_.rate_nl_per_day
    step_pl = pump.hello().step_volume_pl
    try:
        while True:
            made = pump.status().steps - start
            if progress:
                progress(min(made, steps), steps)
            if made >= steps:
                break
            if realtime:
                time.sleep(_POLL_S)
                continue
            # The time the steps still owed take, rounded up (a rate of r nL/day is r pL per 86.4 s).
            owed_pl = (steps - made) * step_pl
            pump.sim_advance(-(-owed_pl * codec.US_PER_MDAY // rate_nl))
    finally:
        pump.stop()
    return pump.status().steps - start, rate_nl


def calibrate(
    pump,
    scale,
    steps: int = DEFAULT_STEPS,
    rates: list[str] | tuple[str, ...] = ("1 mL/h", "5 mL/h"),
    repeats: int = 1,
    density_g_per_ml: Decimal | str = WATER_G_PER_ML,
    max_spread_ppm: int = DEFAULT_MAX_SPREAD_PPM,
    store: bool = True,
    realtime: bool | None = None,
    on_run: Callable[[int, Run], None] | None = None,
) -> Calibration:
    """Weigh steps at each rate, repeats times; store the mean volume per step unless the spread
    is over max_spread_ppm (CalibrationRefused). realtime: wait on the pump's own clock (None: a
    simulated pump runs its time forward, a real one is waited for)."""
    if len(rates) < 2:
        raise UsageError("calibrate at two or more rates (for example --rates '1 mL/h,5 mL/h')")
    if steps < 100:
        raise UsageError(f"--steps {steps} is too few to weigh well: give 100 or more (2000 is about 0.1 mL)")
    if repeats < 1:
        raise UsageError("--repeats must be 1 or more")
    density = Decimal(str(density_g_per_ml))
    if not density > 0:
        raise UsageError(f"density {density} g/mL must be above 0")
    info = pump.hello()
    therapy = pump.therapy()
    if therapy.mode != "stopped":
        raise UsageError(f"the pump is {therapy.mode}: stop it first (pumpctl stop); calibration runs it itself")
    if realtime is None:
        realtime = not info.board == "sim"
    runs: list[Run] = []
    for k, rate in enumerate(r for r in rates for _ in range(repeats)):
        scale.tare(k)
        made, rate_nl = dispense(pump, rate, steps, realtime=realtime)
        mass_mg = scale.weigh_mg(k)
        # 1 mg at 1 g/mL is 1 uL, 1000 nL.
        run = Run(rate_nl_per_day=rate_nl, steps=made, mass_mg=mass_mg, volume_nl=mass_mg / Fraction(density) * 1000)
        runs.append(run)
        if on_run:
            on_run(k, run)
    result = Calibration(runs, info.step_volume_pl, density, stored=False)
    if result.spread_ppm > max_spread_ppm:
        raise CalibrationRefused(result, max_spread_ppm)
    if store:
        pump.calibrate(result.step_volume_pl, len(runs), result.spread_ppm)
        result = Calibration(runs, info.step_volume_pl, density, stored=True)
    return result
