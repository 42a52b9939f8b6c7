"""A screening trial's result: the pain scores of a record (trial.py) summed up per phase, the
reduction from baseline and whether it meets the success criterion, all exact (fractions.Fraction),
and shown as text or JSON with exactly the decimals a clinical result needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from .trial import PainScore, TrialError, TrialRecord, _fmt_time

SUCCESS_PERCENT = 50
LAST_WINDOW = timedelta(hours=24)


def fixed(value: Fraction | int, places: int = 1) -> str:
    """A rational as a decimal with exactly `places` decimals, rounded half to even, exactly.

    (quantities.as_decimal cuts trailing zeros, so 8 would show as '8' and not '8.0'.)
    """
    q = round(Fraction(value) * 10**places)  # Fraction rounds half to even, exactly
    sign = "-" if q < 0 else ""
    whole, frac = divmod(abs(q), 10**places)
    return f"{sign}{whole}.{frac:0{places}d}" if places else f"{sign}{whole}"


def percent_text(value: Fraction) -> str:
    """A percentage to 1 decimal; more decimals only where 1 would round a value below
    the success criterion up to it (49.96 shows as 49.96, not as 50.0)."""
    for places in range(1, 16):
        text = fixed(value, places)
        if (Fraction(text) >= SUCCESS_PERCENT) == (value >= SUCCESS_PERCENT):
            return text
    return f"{fixed(value, 15)}"  # pragma: no cover - needs a denominator beyond any real trial


@dataclass(frozen=True)
class PhaseSummary:
    """Scores of one phase (or of the last 24 h of the trial): how many, their mean, lowest and highest."""

    count: int
    mean: Fraction
    lowest: int
    highest: int
    first: datetime
    last: datetime

    @classmethod
    def of(cls, scores: list[PainScore]) -> PhaseSummary:
        values = [s.score for s in scores]
        return cls(
            len(values), Fraction(sum(values), len(values)), min(values), max(values), scores[0].time, scores[-1].time
        )

    def to_json(self) -> dict:
        return {
            "count": self.count,
            "mean": fixed(self.mean),
            "mean_exact": str(self.mean),
            "lowest": self.lowest,
            "highest": self.highest,
            "first": _fmt_time(self.first),
            "last": _fmt_time(self.last),
        }


def _reduction(baseline_mean: Fraction, value: Fraction | int) -> Fraction:
    return 100 * (baseline_mean - value) / baseline_mean


@dataclass(frozen=True)
class TrialReport:
    """The outcome of a trial. All numbers are exact Fractions; fixed()/percent_text() show them.

    success is the usual criterion: the mean pain score over the whole trial
    phase is at least 50 % lower than the mean baseline score
    (reduction_percent >= 50, exactly 50 counts as success). The best (lowest)
    single trial score and the last 24 h of the trial are reported beside it
    but do not decide success.

    last_24h covers the trial scores later than 24 h before the last trial
    score (after `last_24h_after`); it is always there when the trial has
    scores, and equals the whole trial when the trial is shorter than a day.
    """

    patient: str | None
    note: str | None
    baseline: PhaseSummary
    trial: PhaseSummary
    reduction_percent: Fraction
    best_reduction_percent: Fraction
    last_24h: PhaseSummary
    last_24h_after: datetime
    last_24h_reduction_percent: Fraction
    success: bool

    @property
    def best_trial_score(self) -> int:
        return self.trial.lowest

    def to_json(self) -> dict:
        return {
            "patient": self.patient,
            "note": self.note,
            "baseline": self.baseline.to_json(),
            "trial": self.trial.to_json(),
            "reduction_percent": percent_text(self.reduction_percent),
            "reduction_percent_exact": str(self.reduction_percent),
            "best_trial_score": self.best_trial_score,
            "best_reduction_percent": percent_text(self.best_reduction_percent),
            "best_reduction_percent_exact": str(self.best_reduction_percent),
            "last_24h": dict(
                self.last_24h.to_json(),
                after=_fmt_time(self.last_24h_after),
                reduction_percent=percent_text(self.last_24h_reduction_percent),
                reduction_percent_exact=str(self.last_24h_reduction_percent),
            ),
            "success": self.success,
            "criterion_percent": SUCCESS_PERCENT,
        }

    def text(self, title: str) -> str:
        """The report as a plain-text table; `title` names the record (its file)."""
        b, t, w = self.baseline, self.trial, self.last_24h
        counts = [f"{s.count} score{'' if s.count == 1 else 's'}" for s in (b, t, w)]
        means = [fixed(s.mean) for s in (b, t, w)]
        cw, mw = max(map(len, counts)), max(map(len, means))

        def row(label: str, i: int, rest: str) -> str:
            return f"  {label:<10}{counts[i]:<{cw}}  mean {means[i]:>{mw}}{rest}".rstrip()

        head = f"trial report: {title}" + (f" (patient {self.patient})" if self.patient else "")
        lines = [head]
        if self.note:
            lines.append(f"  {'note':<10}{self.note}")
        lines += [
            row("baseline", 0, f"   from {_fmt_time(b.first)} to {_fmt_time(b.last)}"),
            row("trial", 1, f"   best {t.lowest}   from {_fmt_time(t.first)} to {_fmt_time(t.last)}"),
            row("last 24 h", 2, f"   reduction {percent_text(self.last_24h_reduction_percent)}%"),
            (
                f"  {'reduction':<10}{percent_text(self.reduction_percent)}% of baseline (mean)   "
                f"success: {'yes' if self.success else 'no'} (criterion >= {SUCCESS_PERCENT}%)"
            ),
            f"  {'best':<10}{percent_text(self.best_reduction_percent)}% of baseline (lowest trial score {t.lowest})",
        ]
        return "\n".join(lines)


def report(record: TrialRecord) -> TrialReport:
    """Summarise a trial record; see TrialReport for the success criterion.

    reduction = 100 * (baseline mean - trial mean) / baseline mean, exactly.
    TrialError if there is no baseline score, no trial score, or the baseline
    mean is 0 (nothing to reduce: a 50 % reduction means nothing).
    """
    baseline = record.phase_scores("baseline")
    trial = record.phase_scores("trial")
    if not baseline:
        raise TrialError("no baseline score yet: record some with --phase baseline before the trial starts")
    if not trial:
        raise TrialError("no trial score yet: record some with --phase trial")
    b, t = PhaseSummary.of(baseline), PhaseSummary.of(trial)
    if b.mean == 0:
        raise TrialError("the baseline mean is 0: there is no pain to reduce, so a 50% reduction means nothing")
    after = t.last - LAST_WINDOW
    w = PhaseSummary.of([s for s in trial if s.time > after])
    reduction = _reduction(b.mean, t.mean)
    return TrialReport(
        patient=record.patient,
        note=record.note,
        baseline=b,
        trial=t,
        reduction_percent=reduction,
        best_reduction_percent=_reduction(b.mean, t.lowest),
        last_24h=w,
        last_24h_after=after,
        last_24h_reduction_percent=_reduction(b.mean, w.mean),
        success=reduction >= SUCCESS_PERCENT,
    )
