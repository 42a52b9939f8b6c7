"""The gravimetric flow-rate bench test: program the pump, weigh what it delivers every 30 s of pump
time, and analyse the series the IEC 60601-2-24 way (flowtest.py): start-up curve, mean flow error,
trumpet curve, and volume accuracy as implantable pumps report it (delivered / programmed).

    with Pump(port) as pump, open_balance(balance_port) as balance:
        report = BenchTest(pump, balance, BenchConfig("1 mL/h", 2 * 3600), Path("run1")).run()
        print(report.summary())

Every sample is appended to samples.csv and flushed as it is taken, so an interrupted test loses no
sample: BenchTest.resume(pump, balance, folder) carries on from the next one (on real hardware the
pump kept dosing meanwhile; a sample that fell due while nobody was there is missing, and the flow of
the interval across the gap is computed over its true length). On a simulated pump (board "sim")
pump time is run forward with sim_advance, so a 2-hour test takes seconds; on a real one the test
waits in real time.
"""

from __future__ import annotations

import csv
import datetime
import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from . import flowtest, quantities
from .balance import Balance, BalanceError
from .client import NO_DRUG_LIMITS, Pump
from .errors import UsageError

SAMPLES_FILE = "samples.csv"
CONFIG_FILE = "bench.json"
RESULTS_FILE = "results.json"
PLOT_FILE = "curves.png"
_COLUMNS = ("sample", "t_s", "mass_g", "stable", "pump_steps", "pump_time_us", "wall_time")
_NL_PER_DAY_PER_ML_PER_H = 24_000_000  # 1 mL/h is 24,000,000 nL/day


@dataclass
class BenchConfig:
    rate: str  # as a person types it, converted by the pump: "1 mL/h"
    duration_s: int  # pump time from the first sample to the last
    sample_s: int = flowtest.SAMPLE_S
    density_g_per_ml: float = 0.9982  # water at 20 degC
    evaporation_g_per_h: float = 0.0  # lost by a reference vial beside the vessel; added back
    # The analysis period starts here: the standard's is the second hour of a 2-hour test; None takes
    # the second hour, or the second half of a shorter test.
    analysis_start_s: int | None = None
    max_mean_error_pct: float = 5.0  # |A| over the analysis period
    volume_limits_pct: tuple[float, float] = (85.0, 115.0)  # delivered / programmed (ISO 14708-4 as makers report it)

    def analysis_from_s(self) -> int:
        if self.analysis_start_s is not None:
            return self.analysis_start_s
        if self.duration_s >= 2 * 3600:
            return 3600
        return self.duration_s // 2 // self.sample_s * self.sample_s

    def check(self) -> None:
        if self.sample_s <= 0 or self.duration_s < 2 * self.sample_s:
            raise UsageError(f"a test of {self.duration_s} s cannot hold two samples {self.sample_s} s apart")
        if self.duration_s % self.sample_s:
            raise UsageError(
                f"the duration ({self.duration_s} s) must be a whole number of samples of {self.sample_s} s"
            )
        if not self.density_g_per_ml > 0:
            raise UsageError(f"density {self.density_g_per_ml} g/mL must be above 0")
        if self.evaporation_g_per_h < 0:
            raise UsageError(
                f"evaporation {self.evaporation_g_per_h} g/h cannot be negative (it is mass lost per hour)"
            )
        low, high = self.volume_limits_pct
        if not 0 < low < 100 < high:
            raise UsageError(f"volume limits {low}-{high} % must surround 100 %")
        shortest_s = min(flowtest.WINDOWS_MIN) * 60
        if self.duration_s - self.analysis_from_s() < shortest_s:
            raise UsageError(
                f"the analysis period (from {self.analysis_from_s()} s to {self.duration_s} s) is shorter than "
                f"the shortest observation window ({shortest_s} s): run the test longer (the standard's is 2 h)"
            )


# The fewest steps the shortest observation window must hold for its Ep to mean something: one
# step either way is then at most 1 % (at 0.5 mL/day a 2-min window holds 13 steps of 52 nL, and its
# Ep swings by 8 % a step, whatever the pump does). A test slower than that is not passed.
MIN_STEPS_PER_WINDOW = 100


@dataclass
class BenchReport:
    config: BenchConfig
    pump: dict  # device id, firmware, board, step volume
    balance: dict  # protocol, serial number
    rate_nl_per_day: int
    results: flowtest.FlowResults
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (what, passed, detail)
    folder: Path | None = None

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.checks)

    def to_dict(self) -> dict:
        return {
            "config": asdict(self.config),
            "pump": self.pump,
            "balance": self.balance,
            "rate_nl_per_day": self.rate_nl_per_day,
            "drug_limits": False,  # a bench test pumps water at a bare volume rate (NO_DRUG_LIMITS)
            "results": self.results.to_dict(),
            "checks": [{"check": what, "passed": ok, "detail": detail} for what, ok, detail in self.checks],
            "passed": self.passed,
        }

    def summary(self) -> str:
        r = self.results
        c = self.config
        head = (
            f"bench test: {c.rate} for {quantities.duration(c.duration_s * 10**6)}, weighed every {c.sample_s} s; "
            f"pump {self.pump['device_id'] or '(no id)'} ({self.pump['board']}, firmware {self.pump['firmware']}), "
            f"balance {self.balance['serial_number']} ({self.balance['protocol']})"
        )
        pump_view = "-" if r.pump_delivered_ml is None else f"{r.pump_delivered_ml:.6f} mL"
        lines = [
            head,
            "",
            f"  samples          {len(r.flows) + 1} ({r.unstable_samples} unstable)",
            f"  drug limits      {NO_DRUG_LIMITS}",
            f"  delivered        balance {r.delivered_ml:.6f} mL   pump's steps {pump_view}   "
            f"programmed {r.programmed_ml:.6f} mL",
        ]
        for what, ok, detail in self.checks:
            lines.append(f"  {what:<16} {detail:<58} {'pass' if ok else 'FAIL'}")
        label = f"trumpet curve, from {r.analysis_start_s / 60:g} min"
        lines += ["", f"  {label:<33}window    Ep(max)     Ep(min)"]
        for window, ep in r.trumpet.items():
            lines.append(f"  {'':<33}{window:>3} min  {ep['ep_max_pct']:+8.3f} %  {ep['ep_min_pct']:+8.3f} %")
        if self.folder is not None:
            files = "  ".join(str(self.folder / name) for name in (SAMPLES_FILE, RESULTS_FILE, PLOT_FILE))
            lines += ["", f"  files            {files}"]
        lines += ["", f"  result: {'PASS' if self.passed else 'FAIL'}"]
        return "\n".join(lines)


Progress = Callable[[int, int], None]  # (samples taken, samples in the test)


class BenchInterrupted(Exception):
    """The test was asked to stop (Ctrl-C) between two samples; every sample taken is on disk."""

    def __init__(self, folder: Path):
        self.folder = folder
        super().__init__(f"interrupted; every sample taken is in {folder}: carry on with --resume {folder}")


class BenchTest:
    """One pump on one balance, its files in one folder."""

    def __init__(
        self,
        pump: Pump,
        balance: Balance,
        config: BenchConfig,
        folder: Path,
        protocol: str = "mt-sics",
        realtime: bool | None = None,
    ):
        """realtime: wait for the pump's own clock between samples (a real pump, or a simulator run
        at a speed); None: only where the pump is not a simulator, which is run forward instead."""
        config.check()
        self.pump = pump
        self.balance = balance
        self.config = config
        self.folder = Path(folder)
        self.protocol = protocol
        self.realtime = realtime
        self.samples: list[flowtest.Sample] = []
        self.meta: dict = {}
        self.stop_requested = threading.Event()  # set: stop before the next sample (its files stay resumable)

    # -- the run ------------------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> BenchReport:
        """Start a new test: tare, program the rate, sample to the end, analyse, stop the pump."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if (self.folder / SAMPLES_FILE).exists():
            raise UsageError(f"{self.folder} already holds a test: resume it (--resume {self.folder}) or pick another")
        info = self.pump.hello()
        self.balance.tare()  # the readings are then of the fluid alone
        serial_number = self.balance.serial_number()
        programmed = self.pump.set_rate(self.config.rate)
        if not programmed.rate_nl_per_day:
            raise UsageError(f"rate {self.config.rate} is zero: a bench test needs the pump to run")
        self.meta = {
            "config": asdict(self.config),
            "pump": {
                "device_id": info.device_id,
                "firmware": info.firmware,
                "board": info.board,
                "step_volume_pl": info.step_volume_pl,
            },
            "balance": {"protocol": self.protocol, "serial_number": serial_number},
            "rate_nl_per_day": programmed.rate_nl_per_day,
            "start_pump_time_us": programmed.effective_us,
            "started": _now_text(),
        }
        (self.folder / CONFIG_FILE).write_text(json.dumps(self.meta, indent=2) + "\n")
        with open(self.folder / SAMPLES_FILE, "w", newline="") as f:
            csv.writer(f).writerow(_COLUMNS)
        return self._sample_to_the_end(progress)

    @classmethod
    def resume(
        cls,
        pump: Pump,
        balance: Balance,
        folder: Path,
        progress: Progress | None = None,
        realtime: bool | None = None,
    ) -> BenchReport:
        """Carry on an interrupted test from its files, with the same pump still running its rate."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / CONFIG_FILE).read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"{folder} holds no bench test to resume ({e})") from None
        config = BenchConfig(**dict(meta["config"], volume_limits_pct=tuple(meta["config"]["volume_limits_pct"])))
        test = cls(pump, balance, config, folder, meta["balance"]["protocol"], realtime)
        test.meta = meta
        info = pump.hello()
        if info.device_id != meta["pump"]["device_id"]:
            raise UsageError(
                f"the test in {folder} was of pump {meta['pump']['device_id']}, this is {info.device_id or '(no id)'}"
            )
        status = pump.status()
        if status.rate_nl_per_day != meta["rate_nl_per_day"]:
            raise UsageError(
                f"the pump now runs {status.rate_nl_per_day} nL/day, not the test's {meta['rate_nl_per_day']}: "
                "it was reprogrammed or stopped, so the test cannot go on; start a new one"
            )
        test.samples = read_samples(folder / SAMPLES_FILE)
        return test._sample_to_the_end(progress)

    def _sample_to_the_end(self, progress: Progress | None) -> BenchReport:
        c = self.config
        total = c.duration_s // c.sample_s + 1
        start_us = self.meta["start_pump_time_us"]
        realtime = self.realtime if self.realtime is not None else self.meta["pump"]["board"] != "sim"
        pace = 1  # pump seconds per wall second while waiting: 1 on a real pump, N on a simulator at speed N
        if realtime and self.meta["pump"]["board"] == "sim":
            pace = self.pump.sim_state().speed or 1
        with open(self.folder / SAMPLES_FILE, "a", newline="") as f:
            out = csv.writer(f)
            k = len(self.samples)
            if k:  # resuming: the next sample due after now (on real hardware time went on without us)
                elapsed_us = self.pump.status().time_us - start_us
                k = max(k, -(-elapsed_us // (c.sample_s * 10**6)))
            while k < total:
                target_us = start_us + k * c.sample_s * 10**6
                self._wait_until(target_us, realtime, pace)
                self._take(k, start_us, out)
                f.flush()
                k += 1
                if progress:
                    progress(len(self.samples), total)
        self.pump.stop()
        return self._report()

    def _wait_until(self, target_us: int, realtime: bool, pace: int) -> None:
        if self.stop_requested.is_set():
            raise BenchInterrupted(self.folder)
        now_us = self.pump.status().time_us
        if target_us <= now_us:
            return
        if not realtime:
            self.pump.sim_advance(target_us - now_us)
            return
        while True:  # the pump's own clock says when: look again as it nears, and at least every second
            left_us = target_us - self.pump.status().time_us
            if left_us <= 0:
                return
            if self.stop_requested.wait(min(left_us / 1e6 / pace, 1.0)):
                raise BenchInterrupted(self.folder)

    def _take(self, k: int, start_us: int, out) -> None:
        try:
            reading = self.balance.read()
        except BalanceError:
            reading = self.balance.read()  # one more try: a reading lost to a bumped cable is not a failed test
        status = self.pump.status()
        t_s = Fraction(status.time_us - start_us, 10**6)
        sample = flowtest.Sample(t_s, reading.mass_g, reading.stable, status.steps)
        self.samples.append(sample)
        out.writerow(
            (k, _decimal_text(t_s), str(reading.mass_g), int(reading.stable), status.steps, status.time_us, _now_text())
        )

    # -- the analysis -------------------------------------------------------------------------

    def _report(self) -> BenchReport:
        c = self.config
        rate_ml_per_h = Fraction(self.meta["rate_nl_per_day"], _NL_PER_DAY_PER_ML_PER_H)
        start_steps = self.samples[0].pump_steps
        # The pump's own view counts the steps from the first sample on, as the balance does.
        samples = [
            flowtest.Sample(s.t_s, s.mass_g, s.stable, None if s.pump_steps is None else s.pump_steps - start_steps)
            for s in self.samples
        ]
        results = flowtest.analyse(
            samples,
            rate_ml_per_h,
            density_g_per_ml=c.density_g_per_ml,
            evaporation_g_per_h=c.evaporation_g_per_h,
            step_volume_pl=self.meta["pump"]["step_volume_pl"],
            analysis_start_s=c.analysis_from_s(),
            sample_s=c.sample_s,
        )
        low, high = c.volume_limits_pct
        # Whether the shortest window can say anything: its Ep is of whole steps, so at a slow rate one
        # step either way is a large error. The rule stated here: at least MIN_STEPS_PER_WINDOW steps
        # (each 1 % or less) in the shortest observation window, else no PASS.
        shortest_min = min(flowtest.WINDOWS_MIN)
        step_pl = self.meta["pump"]["step_volume_pl"]
        steps_per_window = self.meta["rate_nl_per_day"] * shortest_min * 1000 // (1440 * step_pl)
        # And whether the test is long enough for its windows: every observation window, up to the longest
        # (31 min), must fit in the analysis period at least once, else the trumpet leaves it out and the
        # verdict would rest on the short windows alone. The rule stated here; IEC 60601-2-24 analyses the
        # second hour of a 2-hour test, which holds them all.
        left_out = [w for w in flowtest.WINDOWS_MIN if w not in results.trumpet]
        checks = [
            (
                "duration",
                not left_out,
                "every window, %d to %d min, fits the analysis period"
                % (min(flowtest.WINDOWS_MIN), max(flowtest.WINDOWS_MIN))
                if not left_out
                else "too short: no %s-min window from %g min on (%d min needed)"
                % ("/".join(map(str, left_out)), c.analysis_from_s() / 60, max(flowtest.WINDOWS_MIN)),
            ),
            (
                "windows",
                steps_per_window >= MIN_STEPS_PER_WINDOW,
                f"{steps_per_window} steps in each {shortest_min}-min window (at least {MIN_STEPS_PER_WINDOW} "
                "to judge Ep)" + ("" if steps_per_window >= MIN_STEPS_PER_WINDOW else ": too slow for its windows"),
            ),
            (
                "volume accuracy",
                low <= results.volume_accuracy_pct <= high,
                f"{results.volume_accuracy_pct:.3f} % of the programmed volume (limits {low:g}-{high:g} %)",
            ),
            (
                "mean flow error",
                abs(results.mean_error_pct) <= c.max_mean_error_pct,
                f"A = {results.mean_error_pct:+.3f} % from {c.analysis_from_s() / 60:g} min on "
                f"(limit +/-{c.max_mean_error_pct:g} %)",
            ),
        ]
        report = BenchReport(
            c, self.meta["pump"], self.meta["balance"], self.meta["rate_nl_per_day"], results, checks, self.folder
        )
        (self.folder / RESULTS_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        pump_name = self.meta["pump"]["device_id"] or self.meta["pump"]["board"]
        flowtest.plot(results, self.folder / PLOT_FILE, f"{c.rate}, pump {pump_name}: start-up and trumpet curves")
        return report


def read_samples(path: Path) -> list[flowtest.Sample]:
    """The samples a test wrote, as exact numbers (a torn last line, from a kill mid-write, is dropped)."""
    samples = []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        try:
            samples.append(
                flowtest.Sample(
                    Fraction(Decimal(row["t_s"])), Decimal(row["mass_g"]), row["stable"] == "1", int(row["pump_steps"])
                )
            )
        except (TypeError, ValueError, ArithmeticError, KeyError):
            if row is not rows[-1]:
                raise UsageError(f"{path} is damaged at sample {len(samples)}: {row}") from None
    return samples


def run_many(tests: list[tuple[BenchTest, bool]], progress: Callable[[int, int, int], None] | None = None):
    """Several pumps at once, each on its own balance and port, each test in a thread of its own.
    tests: (test, resume). Returns a report or the exception, per test, in order."""
    outcomes: list = [None] * len(tests)

    def one(i: int, test: BenchTest, resume: bool) -> None:
        step = (lambda done, total: progress(i, done, total)) if progress else None
        try:
            if resume:
                outcomes[i] = BenchTest.resume(test.pump, test.balance, test.folder, step)
            else:
                outcomes[i] = test.run(step)
        except Exception as e:  # reported with its pump; the other tests go on
            outcomes[i] = e

    threads = [threading.Thread(target=one, args=(i, t, r), daemon=True) for i, (t, r) in enumerate(tests)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():  # a join with a timeout lets Ctrl-C reach this thread
                t.join(0.2)
    except KeyboardInterrupt:
        for test, _ in tests:  # each stops before its next sample, its files resumable
            test.stop_requested.set()
        for t in threads:
            t.join()
        raise
    return outcomes


def _decimal_text(value: Fraction) -> str:
    """An exact decimal for a time in whole microseconds."""
    return str(Decimal(value.numerator) / Decimal(value.denominator))


def _now_text() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
