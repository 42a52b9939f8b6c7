"""The calibration wizard: measure the volume one motor step moves, by weighing.

    from pumpctl import Pump
    from pumpctl.balance import open_balance
    from pumpctl.calibrate import BalanceScale, calibrate

    with Pump(port) as pump, open_balance(balance_port) as balance:
        result = calibrate(pump, BalanceScale(balance), steps=2000, rates=["1 mL/h", "5 mL/h"], confirm=True)
        print(result.step_volume_pl, result.spread_ppm)  # as the pump computed them

For each rate (two or more, each `repeats` times) the pump, stopped and holding
no drug (bench water), dispenses about `steps` steps into a tared vessel; the
scale weighs what came out; the pump's own delivered-step count, read at tare
and at weighing, says which steps it made. Nothing states a volume per step:
the raw weighings (those counts and the mass in ug) go to the pump
(CAL_WEIGHING), which refuses counts beyond its own and computes each run's
volume per step (mass / density / steps, to the nearest pL), their mean, their
spread (largest - smallest) / mean and the change from the volume in force
itself (CALIBRATE). The host computes the same and the two must agree. Over
max_spread (default 2 %) nothing is stored; a change over 2 % is stored only
when confirmed; the pump logs the weighings and the result, and keeps it
across restarts.

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
from .replies import Calibrated, Weighing

DEFAULT_STEPS = 2000  # about 104 uL a run at 52 nL a step: 104 mg on a 0.01 mg balance, 0.01 % readability
DEFAULT_MAX_SPREAD_PPM = 20_000  # 2 %: the pump refuses more (app.CALIBRATION_MAX_SPREAD_PPM)
CHANGE_CONFIRM_PPM = 20_000  # 2 %: a larger change needs confirming (app.CALIBRATION_CONFIRM_CHANGE_PPM)
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
    from_steps: int  # the pump's delivered-step count at tare
    to_steps: int  # and at weighing
    mass_ug: int  # what the vessel gained, micrograms
    density_ug_per_ml: int

    @property
    def steps(self) -> int:
        """Steps the pump made for this run, by its own count."""
        return self.to_steps - self.from_steps

    @property
    def mass_mg(self) -> Fraction:
        return Fraction(self.mass_ug, 1000)

    @property
    def volume_nl(self) -> Fraction:
        return Fraction(self.mass_ug * 1_000_000, self.density_ug_per_ml)

    @property
    def step_volume_pl(self) -> int:
        """mass / density / steps to the nearest pL, as the pump computes it (commands/service.py)."""
        den = self.density_ug_per_ml * self.steps
        return (2 * self.mass_ug * 10**9 + den) // (2 * den)

    @property
    def weighing(self) -> Weighing:
        return Weighing(self.from_steps, self.to_steps, self.mass_ug)


@dataclass(frozen=True)
class Calibration:
    runs: list[Run]
    previous_pl: int  # the pump's volume per step before
    density_g_per_ml: Decimal
    stored: bool
    pump: Calibrated | None = None  # what the pump computed from the runs (None: the host refused first)

    @property
    def density_ug_per_ml(self) -> int:
        return int(self.density_g_per_ml * 1_000_000)

    @property
    def mean_pl(self) -> Fraction:
        """The host's exact mean of the runs' volumes per step (to the pL each, as the pump's)."""
        return Fraction(sum(r.step_volume_pl for r in self.runs), len(self.runs))

    @property
    def step_volume_pl(self) -> int:
        """The mean, rounded to the nearest pL: the pump's, once it has computed it."""
        if self.pump is not None:
            return self.pump.step_volume_pl
        m = self.mean_pl
        return int((m + Fraction(1, 2)) // 1)

    @property
    def spread_ppm(self) -> int:
        """(largest - smallest) / mean, in parts per million, rounded up: the pump's, once computed."""
        if self.pump is not None:
            return self.pump.spread_ppm
        return _spread_ppm([r.step_volume_pl for r in self.runs], self.step_volume_pl)

    @property
    def change_ppm(self) -> int:
        """|new - previous| / previous, ppm, rounded up: the pump's, once computed."""
        if self.pump is not None:
            return self.pump.change_ppm
        return -(-abs(self.step_volume_pl - self.previous_pl) * 1_000_000 // self.previous_pl)

    @property
    def needs_confirming(self) -> bool:
        """The change from the volume in force is over CHANGE_CONFIRM_PPM: the pump stores it only confirmed."""
        return self.change_ppm > CHANGE_CONFIRM_PPM


def _spread_ppm(per_step: list[int], mean: int) -> int:
    return -(-(max(per_step) - min(per_step)) * 1_000_000 // mean)


class BalanceScale:
    """Weigh with a lab balance on a serial port (pumpctl.balance): tare, then a stable reading."""

    def __init__(self, balance):
        self.balance = balance

    def tare(self, run: int) -> None:
        self.balance.tare()

    def weigh_mg(self, run: int) -> Fraction:
        reading = self.balance.read(stable=True)
        ug = Fraction(reading.mass_g) * 1_000_000
        return Fraction(int((ug + Fraction(1, 2)) // 1), 1000)  # to the nearest ug: what the pump takes


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
        if self.masses or self.ask is None:
            return mass_mg(self.masses.pop(0) if self.masses else "", run)
        prompt = f"run {run + 1}: mass dispensed, in mg? "
        while True:  # a typo is asked again: the run's fluid is in the vessel, and nothing else is lost
            try:
                return mass_mg(self.ask(prompt), run)
            except UsageError as e:
                prompt = f"{e}; type it again: "


def mass_mg(text: str, run: int) -> Fraction:
    """A mass typed by hand ("104.17" or "104.17 mg"), in mg to at most 3 decimals; UsageError naming the run."""
    try:
        value = Fraction(Decimal(text.strip().removesuffix("mg").strip()))
    except (ArithmeticError, ValueError):
        raise UsageError(f"run {run + 1}: {text!r} is not a mass in mg (for example 104.17)") from None
    if value <= 0:
        raise UsageError(f"run {run + 1}: the mass must be above 0 mg, not {text}")
    if (value * 1000).denominator != 1:
        raise UsageError(f"run {run + 1}: {text} mg: give the mass to at most 3 decimals (0.001 mg, 1 ug)")
    return value


def dispense(pump, rate: str, steps: int, realtime: bool = False, progress=None) -> tuple[int, int, int]:
    """Run `rate` until the pump has made at least `steps` steps, then stop; return the pump's
    delivered-step count before and after, and the rate in nL/day as the pump converted it."""
    start = pump.status().steps
    set_ = pump.set_rate(rate)
    rate_nl = set_.rate_nl_per_day
    step_pl = pump.hello().step_volume_pl
    try:
        while True:
            status = pump.status()
            made = status.steps - start
            if progress:
                progress(min(made, steps), steps)
            if made >= steps:
                break
            if status.mode == "stopped":  # stopped by itself (an empty reservoir, a fault): it will make no more
                raise PumpError(
                    f"the pump stopped after {made} of the {steps} steps (alarm: {pump.therapy().alarm}): "
                    "nothing weighed is kept; clear the cause (pumpctl alarms, a refill) and calibrate again"
                )
            if realtime:
                time.sleep(_POLL_S)
                continue
            # The time the steps still owed take, rounded up (a rate of r nL/day is r pL per 86.4 s).
            owed_pl = (steps - made) * step_pl
            pump.sim_advance(-(-owed_pl * codec.US_PER_MDAY // rate_nl))
    finally:
        pump.stop()
    return start, pump.status().steps, rate_nl


def density_ug_per_ml(density_g_per_ml: Decimal | str) -> int:
    """The density in ug/mL as the pump takes it: exact to 0.000001 g/mL, bench water (0.99..1 g/mL)."""
    try:
        d = Decimal(str(density_g_per_ml).strip().removesuffix("g/mL").strip())
    except ArithmeticError:
        raise UsageError(f"density {density_g_per_ml!r}: give g/mL, for example 0.9982") from None
    ug = d * 1_000_000
    lo, hi = codec.CAL_MIN_DENSITY_UG_PER_ML, codec.CAL_MAX_DENSITY_UG_PER_ML
    if not ug.is_finite() or ug != ug.to_integral_value() or not lo <= ug <= hi:
        raise UsageError(
            f"density {density_g_per_ml} g/mL: the pump calibrates with bench water, "
            f"{Decimal(lo) / 1_000_000}..{Decimal(hi) / 1_000_000} g/mL, to at most 6 decimals"
        )
    return int(ug)


def calibrate(
    pump,
    scale,
    steps: int = DEFAULT_STEPS,
    rates: list[str] | tuple[str, ...] = ("1 mL/h", "5 mL/h"),
    repeats: int = 1,
    density_g_per_ml: Decimal | str = WATER_G_PER_ML,
    max_spread_ppm: int = DEFAULT_MAX_SPREAD_PPM,
    store: bool = True,
    confirm: bool = False,
    realtime: bool | None = None,
    on_run: Callable[[int, Run], None] | None = None,
) -> Calibration:
    """Weigh steps at each rate, repeats times, and have the pump compute the volume per step
    from the raw weighings (its step counts at tare and weighing, the mass in ug). Refused
    (CalibrationRefused) if the spread is over max_spread_ppm. Otherwise the pump checks the
    weighings (CALIBRATE, check only): its numbers are the result, and they must agree with the
    host's. With store, it is stored: a change over 2 % from the volume in force only with
    confirm (else PumpRefused, field "confirm", and nothing stored; store(pump, result, confirm=True)
    stores it later). realtime: wait on the pump's own clock (None: a simulated pump runs its
    time forward, a real one is waited for)."""
    if len(rates) < 2:
        raise UsageError("calibrate at two or more rates (for example --rates '1 mL/h,5 mL/h')")
    if steps < 100:
        raise UsageError(f"--steps {steps} is too few to weigh well: give 100 or more (2000 is about 0.1 mL)")
    if repeats < 1:
        raise UsageError("--repeats must be 1 or more")
    density_ug = density_ug_per_ml(density_g_per_ml)
    density = Decimal(density_ug) / 1_000_000
    info = pump.hello()
    therapy = pump.therapy()
    if therapy.mode != "stopped":
        raise UsageError(f"the pump is {therapy.mode}: stop it first (pumpctl stop); calibration runs it itself")
    if realtime is None:
        realtime = not info.board == "sim"
    runs: list[Run] = []
    for k, rate in enumerate(r for r in rates for _ in range(repeats)):
        scale.tare(k)
        start, end, rate_nl = dispense(pump, rate, steps, realtime=realtime)
        mass_mg = scale.weigh_mg(k)
        run = Run(rate_nl, start, end, int(mass_mg * 1000), density_ug)
        runs.append(run)
        if on_run:
            on_run(k, run)
    result = Calibration(runs, info.step_volume_pl, density, stored=False)
    if result.spread_ppm > max_spread_ppm:
        raise CalibrationRefused(result, max_spread_ppm)
    checked = pump.calibrate([r.weighing for r in runs], density_ug, check=True)
    _agree(result, checked)
    result = Calibration(runs, checked.previous_pl, density, stored=False, pump=checked)
    if store:
        result = store_calibration(pump, result, confirm=confirm)
    return result


def store_calibration(pump, result: Calibration, confirm: bool = False) -> Calibration:
    """Store a calibration the pump has checked: its weighings go to the pump again and it stores
    what it computes (a change over 2 % only with confirm). Returns it as stored."""
    done = pump.calibrate([r.weighing for r in result.runs], result.density_ug_per_ml, confirm=confirm)
    _agree(result, done)
    return Calibration(result.runs, done.previous_pl, result.density_g_per_ml, stored=done.stored, pump=done)


def _agree(result: Calibration, pump: Calibrated) -> None:
    """The pump's numbers must be the host's: else one side's arithmetic is wrong, and neither is trusted."""
    host = Calibration(result.runs, pump.previous_pl, result.density_g_per_ml, stored=False)
    mine = (host.step_volume_pl, host.spread_ppm, host.change_ppm)
    theirs = (pump.step_volume_pl, pump.spread_ppm, pump.change_ppm)
    if mine != theirs:
        raise PumpError(
            "the pump and this host computed different calibrations from the same weighings "
            f"(pL per step, spread ppm, change ppm: pump {theirs}, host {mine}): report this"
        )
