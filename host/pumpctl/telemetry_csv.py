"""Telemetry samples recorded to CSV, one row a sample, flushed at each row.

`pumpctl telemetry --csv FILE` writes it in the plain and the live mode alike,
so a recording survives the host being stopped at any moment. Every value is
the pump's own integer, in the unit its column says; time_s is exact (pump
time since boot, to the microsecond) and delivered_pl is steps times the
pump's calibrated step volume. An empty cell: no value (no fill programmed,
no sensor fitted, no battery reading yet). alarms: every latched alarm, by
code order, separated by ';'.
"""

from __future__ import annotations

import csv
import sys

from .errors import UsageError
from .replies import Telemetry

COLUMNS = (
    "seq",
    "time_s",
    "mode",
    "rate_nl_per_day",
    "steps",
    "delivered_pl",
    "reservoir_nl",
    "sensor_nl",
    "day_nl",
    "hour_nl",
    "battery_permille",
    "alarm",
    "alarms",
    "session",
    "dropped",
)


def exact_seconds(us: int) -> str:
    """Pump time in seconds, exact to the microsecond: 131.250000."""
    return f"{us // 10**6}.{us % 10**6:06d}"


def _cell(value: int | None) -> str | int:
    return "" if value is None else value


def row(sample: Telemetry, step_volume_pl: int) -> list:
    """The CSV row of one sample (COLUMNS)."""
    return [
        sample.seq,
        exact_seconds(sample.time_us),
        sample.mode,
        sample.rate_nl_per_day,
        sample.steps,
        sample.steps * step_volume_pl,
        _cell(sample.reservoir_nl),
        _cell(sample.sensor_nl),
        sample.day_nl,
        sample.hour_nl,
        _cell(sample.battery_permille),
        sample.alarm,
        ";".join(sample.alarms),
        sample.session,
        sample.dropped,
    ]


class TelemetryCsv:
    """A CSV file (or "-": stdout) receiving every sample as it comes."""

    def __init__(self, path: str, step_volume_pl: int):
        self.path = path
        self.step_volume_pl = step_volume_pl
        self.rows = 0
        if path == "-":
            self._file = sys.stdout
        else:
            try:
                self._file = open(path, "w", newline="", encoding="utf-8")
            except OSError as e:
                raise UsageError(f"cannot write {path}: {e.strerror}") from None
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(COLUMNS)
        self._file.flush()

    def write(self, sample: Telemetry) -> None:
        self._writer.writerow(row(sample, self.step_volume_pl))
        self._file.flush()  # a recording cut short keeps every sample written so far
        self.rows += 1

    def close(self) -> None:
        if self._file is not sys.stdout:
            self._file.close()

    def __enter__(self) -> TelemetryCsv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
