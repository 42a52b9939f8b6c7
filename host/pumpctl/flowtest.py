"""Analysis of a gravimetric flow-rate test: start-up curve, trumpet curve and volume accuracy.

The bench test follows the gravimetric method of IEC 60601-2-24 (infusion pumps and controllers). That
standard excludes implantable pumps (ISO 14708-4 covers them), but its method is the accepted bench
reference, so it is used here as one. The pump delivers at a set rate r (mL/h) into a vessel on a balance;
the balance is read every S = 0.5 min (30 s) for T = 120 min or longer.

- Flow per sample interval: Q_i = 60 (W_i - W_(i-1)) / (S d) mL/h, W in g, S in min, d the density in g/mL.
  Here it is written 3600 (W_i - W_(i-1)) / ((t_i - t_(i-1)) d) with t in s and the actual interval, so a
  series with an irregular or resumed interval still gives the right flow for that interval.
- Evaporation: a reference vial beside the vessel loses e g/h; the vessel loses the same, so it is added
  back: W_i is taken as the balance reading + e t_i / 3600.
- Start-up curve: Q_i against time over the whole test.
- Analysis period T2: by default the second hour, i.e. the sample intervals that end after 60 min.
- Mean error A = 100 (Q_mean - r) / r over the analysis period.
- Trumpet curve: for each observation window P (2, 5, 11, 19, 31 min) with p = P / S samples, the
  m = T2 / S - p + 1 windows sliding by one sample give Ep_j = (100 / p) sum_{i=j}^{j+p-1} (Q_i - r) / r;
  Ep(max) and Ep(min) are the largest and smallest. A window longer than the analysis period has no
  complete window and is left out of the result.

Sources and their standing: the formulas are from memory of IEC 60601-2-24:1998, clause 50.102, and are
UNVERIFIED against the 2012 edition, whose text is paywalled. What vendors' manuals show publicly agrees with
the parameters: B. Braun (Perfusor compact plus, Infusomat Space: measurement interval 0.5 min, duration
120 min, trumpet values from the second hour, observation windows p x 0.5 min), Smiths Medical CADD-Solis
(start-up graph of flow Q_i against time with the set rate; trumpet curve of Ep(max) and Ep(min) against the
observation window with zero error and mean flow error lines) and Alaris (trumpet curves from the second
hour). Some manuals add a 1 min window; pass windows_min to get it.

An implantable pump is judged in the literature by the volume delivered against the volume programmed over
a refill interval, so the results also give that view, from the balance and (when the samples carry the
pump's step count) from the pump's own count of steps.

Arithmetic is exact: masses come as Decimal, as a balance prints them, and everything is computed in
fractions.Fraction; only the final results are floats. A float given as an input (the default density
0.9982, say) is read as the decimal number its repr shows, which is the number that was typed, not the
binary fraction nearest to it.

Unstable balance readings are counted, not dropped: dropping one would merge two intervals into one and
break the sampling the trumpet windows count on. The count is in the results for the report to show.

Irregular sampling: each Q_i uses its own interval, so jitter in the reading instants (a balance that takes
a moment to answer) costs nothing and is not reported. The trumpet windows, as the standard defines them,
count samples, not minutes: where a reading is missing from the analysis period (a test resumed after a
gap, say), the windows across the gap span more than P minutes and give the long interval the weight of one
sample. Such data is still analysed, not refused, but every interval in the analysis period that differs
from sample_s by more than a tenth of it is counted in irregular_intervals, for the report to show; a
trumpet with a non-zero count is not the standard's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from os import PathLike

WINDOWS_MIN = (2, 5, 11, 19, 31)
SAMPLE_S = 30
S_PER_H = 3600
S_PER_MIN = 60
PL_PER_ML = 10**9
IRREGULAR_FRACTION = Fraction(1, 10)  # an interval this far off sample_s is a missed or extra reading, not jitter

Number = Decimal | Fraction | int | float | str


@dataclass(frozen=True)
class Sample:
    """One balance reading."""

    t_s: Fraction | int  # pump time since the test started
    mass_g: Decimal  # as the balance prints it
    stable: bool = True  # the balance's own stability flag
    pump_steps: int | None = None  # the pump's step count at that instant


def _exact(value: Number, name: str) -> Fraction:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, not {value!r}")
    if isinstance(value, float):
        # The shortest repr is the decimal that was typed; Fraction(0.9982) would be 0.99819999999999997619...
        value = repr(value)
    try:
        return Fraction(value)
    except (ValueError, OverflowError, ZeroDivisionError) as e:
        raise ValueError(f"{name} must be a finite number, not {value!r}") from e
    except TypeError as e:
        raise TypeError(f"{name} must be a number, not {value!r}") from e


def _positive(value: Number, name: str) -> Fraction:
    f = _exact(value, name)
    if f <= 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return f


def _samples_per_window(window_min: Number, sample_s: Fraction) -> int:
    p = _positive(window_min, "an observation window") * S_PER_MIN / sample_s
    if p.denominator != 1:
        raise ValueError(f"a {window_min} min observation window is not a whole number of {sample_s} s samples")
    return p.numerator


def _irregular(interval_s: Fraction, sample_s: Fraction) -> bool:
    return abs(interval_s - sample_s) > IRREGULAR_FRACTION * sample_s


def _points(samples: Sequence[Sample]) -> list[tuple[Fraction, Fraction]]:
    """(t_s, mass_g) of each sample, exact, after checking there are two or more and time increases."""
    if len(samples) < 2:
        raise ValueError(f"a flow test needs at least 2 samples, got {len(samples)}")
    points = [(_exact(s.t_s, "t_s"), _exact(s.mass_g, "mass_g")) for s in samples]
    for k in range(1, len(points)):
        if points[k][0] <= points[k - 1][0]:
            raise ValueError(
                f"sample times must increase: sample {k} at {samples[k].t_s} s "
                f"follows sample {k - 1} at {samples[k - 1].t_s} s"
            )
    return points


def _corrected_masses_g(points: list[tuple[Fraction, Fraction]], evaporation_g_per_h: Fraction) -> list[Fraction]:
    return [m + evaporation_g_per_h * t / S_PER_H for t, m in points]


def _evaporation(value: Number) -> Fraction:
    e = _exact(value, "evaporation_g_per_h")
    if e < 0:
        # A negative loss would double the evaporation instead of cancelling it: most likely a sign slip.
        raise ValueError(f"evaporation_g_per_h is the mass the reference vial loses per hour, >= 0, not {value}")
    return e


def flows_ml_per_h(
    samples: Sequence[Sample], density_g_per_ml: Number, evaporation_g_per_h: Number = 0
) -> list[tuple[Fraction, Fraction]]:
    """(t_end_s, Q_i mL/h) for each interval between consecutive samples, evaporation-corrected."""
    d = _positive(density_g_per_ml, "density_g_per_ml")
    points = _points(samples)
    w = _corrected_masses_g(points, _evaporation(evaporation_g_per_h))
    return [
        (t1, S_PER_H * (w1 - w0) / ((t1 - t0) * d))
        for (t0, _), (t1, _), w0, w1 in zip(points, points[1:], w, w[1:], strict=False)
    ]


def trumpet(
    flows: Sequence[tuple[Fraction, Fraction]],
    rate_ml_per_h: Number,
    sample_s: Number = SAMPLE_S,
    windows_min: Sequence[int] = WINDOWS_MIN,
) -> dict[int, tuple[Fraction, Fraction]]:
    """(Ep(max), Ep(min)) in % for each observation window, over the flows given (the analysis period).

    The flows are taken to be one per sample_s: a window is p = P * 60 / sample_s consecutive flows. A window
    longer than the flows given has no complete window and is left out of the result.
    """
    r = _positive(rate_ml_per_h, "rate_ml_per_h")
    s = _positive(sample_s, "sample_s")
    errors = [(q - r) / r for _, q in flows]
    prefix = [Fraction(0)]  # prefix[k] = sum of errors[:k], so each window's sum is one subtraction
    for x in errors:
        prefix.append(prefix[-1] + x)
    result = {}
    for window in windows_min:
        p = _samples_per_window(window, s)
        if p > len(errors):
            continue
        ep = [100 * (prefix[j + p] - prefix[j]) / p for j in range(len(errors) - p + 1)]
        result[window] = (max(ep), min(ep))
    return result


@dataclass
class FlowResults:
    """What a flow test report shows; floats, rounded once from the exact values."""

    rate_ml_per_h: float
    sample_s: float
    analysis_start_s: float
    flows: list[tuple[float, float]]  # (t_min, Q mL/h): the start-up curve, over the whole test
    mean_error_pct: float  # A, over the analysis period
    trumpet: dict[int, dict[str, float]]  # window_min -> {"ep_max_pct", "ep_min_pct"}
    delivered_ml: float  # by the balance, whole test, evaporation-corrected
    programmed_ml: float  # rate x duration
    volume_accuracy_pct: float  # 100 delivered / programmed
    pump_delivered_ml: float | None  # by the pump's step count, whole test
    pump_volume_accuracy_pct: float | None
    unstable_samples: int
    irregular_intervals: int  # in the analysis period, more than IRREGULAR_FRACTION of a sample off sample_s

    def to_dict(self) -> dict:
        """The results as plain JSON types (window keys as strings, as JSON has them)."""
        return {
            "rate_ml_per_h": self.rate_ml_per_h,
            "sample_s": self.sample_s,
            "analysis_start_s": self.analysis_start_s,
            "flows": [[t, q] for t, q in self.flows],
            "mean_error_pct": self.mean_error_pct,
            "trumpet": {str(w): dict(ep) for w, ep in self.trumpet.items()},
            "delivered_ml": self.delivered_ml,
            "programmed_ml": self.programmed_ml,
            "volume_accuracy_pct": self.volume_accuracy_pct,
            "pump_delivered_ml": self.pump_delivered_ml,
            "pump_volume_accuracy_pct": self.pump_volume_accuracy_pct,
            "unstable_samples": self.unstable_samples,
            "irregular_intervals": self.irregular_intervals,
        }


def analyse(
    samples: Sequence[Sample],
    rate_ml_per_h: Number,
    density_g_per_ml: Number = 0.9982,
    evaporation_g_per_h: Number = 0,
    step_volume_pl: Number | None = None,
    analysis_start_s: Number = 3600,
    sample_s: Number = SAMPLE_S,
    windows_min: Sequence[int] = WINDOWS_MIN,
) -> FlowResults:
    """Analyse a flow test: start-up curve, mean error and trumpet over the analysis period, volumes.

    The analysis period is the sample intervals that end after analysis_start_s (default: the second hour).
    Raises ValueError, with the reason, for data that cannot be analysed. Intervals in the analysis period
    that are not about sample_s long are counted in irregular_intervals (see the module docstring).
    """
    r = _positive(rate_ml_per_h, "rate_ml_per_h")
    d = _positive(density_g_per_ml, "density_g_per_ml")
    s = _positive(sample_s, "sample_s")
    e = _evaporation(evaporation_g_per_h)
    start_s = _exact(analysis_start_s, "analysis_start_s")
    step_pl = None if step_volume_pl is None else _positive(step_volume_pl, "step_volume_pl")
    if not windows_min:
        raise ValueError("windows_min is empty: give at least one observation window")
    p_min = min(_samples_per_window(w, s) for w in windows_min)

    points = _points(samples)
    flows = flows_ml_per_h(samples, d, e)
    analysed = [(t, q) for t, q in flows if t > start_s]
    if len(analysed) < p_min:
        raise ValueError(
            f"the analysis period (intervals ending after {float(start_s / S_PER_MIN):g} min) holds "
            f"{len(analysed)} samples, fewer than the {p_min} of the shortest observation window "
            f"({min(windows_min)} min at {float(s):g} s); run a longer test (the standard runs 120 min and "
            "analyses the second hour)"
        )
    irregular = sum(
        1 for (t0, _), (t1, _) in zip(points, points[1:], strict=False) if t1 > start_s and _irregular(t1 - t0, s)
    )

    mean_q = sum((q for _, q in analysed), Fraction(0)) / len(analysed)
    ep = trumpet(analysed, r, s, windows_min)

    w = _corrected_masses_g(points, e)
    delivered_ml = (w[-1] - w[0]) / d
    programmed_ml = r * (points[-1][0] - points[0][0]) / S_PER_H

    pump_ml = None
    first_steps, last_steps = samples[0].pump_steps, samples[-1].pump_steps
    if step_pl is not None and first_steps is not None and last_steps is not None:
        pump_ml = (last_steps - first_steps) * step_pl / PL_PER_ML

    return FlowResults(
        rate_ml_per_h=float(r),
        sample_s=float(s),
        analysis_start_s=float(start_s),
        flows=[(float(t / S_PER_MIN), float(q)) for t, q in flows],
        mean_error_pct=float(100 * (mean_q - r) / r),
        trumpet={window: {"ep_max_pct": float(hi), "ep_min_pct": float(lo)} for window, (hi, lo) in ep.items()},
        delivered_ml=float(delivered_ml),
        programmed_ml=float(programmed_ml),
        volume_accuracy_pct=float(100 * delivered_ml / programmed_ml),
        pump_delivered_ml=None if pump_ml is None else float(pump_ml),
        pump_volume_accuracy_pct=None if pump_ml is None else float(100 * pump_ml / programmed_ml),
        unstable_samples=sum(1 for sample in samples if not sample.stable),
        irregular_intervals=irregular,
    )


def plot(results: FlowResults, path: str | PathLike, title: str) -> None:
    """Write one PNG: the start-up curve and the trumpet curve side by side, as the standard's reports draw them."""
    # Lazy, and without pyplot: matplotlib is an optional dependency (pumpctl[bench]) and pyplot's global
    # state and backend choice have no place in a library.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), layout="constrained")
    FigureCanvasAgg(fig)
    start_ax, trumpet_ax = fig.subplots(1, 2)

    # In the unit of the rate tested: uL/h below 0.1 mL/h (intrathecal rates), else mL/h.
    unit, per_ml = ("uL/h", 1000.0) if results.rate_ml_per_h < 0.1 else ("mL/h", 1.0)
    t_min = [t for t, _ in results.flows]
    q = [flow * per_ml for _, flow in results.flows]
    rate = results.rate_ml_per_h * per_ml
    start_ax.plot(t_min, q, color="tab:blue", linewidth=1, label="Flow $Q_i$")
    start_ax.axhline(rate, color="black", linestyle="--", label=f"Set rate {rate:g} {unit}")
    start_ax.axvline(
        results.analysis_start_s / S_PER_MIN, color="grey", linestyle=":", label="Start of the analysis period"
    )
    start_ax.set_xlim(0, max(t_min))
    start_ax.set_ylim(min(0.0, min(q)), max(2 * rate, max(q)) * 1.05)
    start_ax.set_xlabel("Time (min)")
    start_ax.set_ylabel(f"Flow ({unit})")
    start_ax.set_title(f"Start-up curve (sampling interval {results.sample_s / S_PER_MIN:g} min)")
    start_ax.legend(loc="lower right")

    windows = sorted(results.trumpet)
    ep_max = [results.trumpet[w]["ep_max_pct"] for w in windows]
    ep_min = [results.trumpet[w]["ep_min_pct"] for w in windows]
    trumpet_ax.plot(windows, ep_max, marker="^", color="tab:red", label="Ep(max)")
    trumpet_ax.plot(windows, ep_min, marker="v", color="tab:green", label="Ep(min)")
    trumpet_ax.axhline(
        results.mean_error_pct,
        color="tab:purple",
        linestyle="--",
        label=f"Mean error A = {results.mean_error_pct:.3g} %",
    )
    trumpet_ax.axhline(0, color="black", linewidth=0.8, label="Zero error")
    # Symmetric about zero, as the reports draw the trumpet, with room for the lines at 0 and A.
    span = max([abs(x) for x in ep_max + ep_min] + [abs(results.mean_error_pct)])
    span = span * 1.25 if span > 0 else 1.0
    trumpet_ax.set_ylim(-span, span)
    trumpet_ax.set_xticks(windows)
    trumpet_ax.set_xlim(0, max(windows) + 1)
    analysis_min = max(t_min) - results.analysis_start_s / S_PER_MIN
    trumpet_ax.set_xlabel("Observation window (min)")
    trumpet_ax.set_ylabel("Percentage error (%)")
    trumpet_ax.set_title(f"Trumpet curve over the analysis period ({analysis_min:g} min)")
    trumpet_ax.legend(loc="upper right")

    fig.suptitle(title)
    fig.savefig(path, format="png", dpi=100)
