"""Screening trial before implant: pain scores before and during a trial, and whether it worked.

Before a permanent intrathecal pump is implanted the patient has a trial of a
few days on a temporary external pump (or single shots). The patient rates
pain on the 0-10 numeric rating scale at baseline and during the trial; the
trial is usually called successful when pain falls by at least 50 % from
baseline. This module keeps those scores in a JSON file the user chooses;
trial_report.py reports the result, with exact arithmetic (fractions.Fraction):
no float ever reaches a number shown as a clinical result.

What a record enforces, so that a report can be trusted:

- a score is an integer 0..10 (not 7.5, not "seven", not 11);
- a time is an ISO 8601 local wall-clock time to the minute, such as
  2024-05-01T08:30 (a date alone, seconds other than :00 or a UTC offset are
  refused, rather than silently rounded or converted);
- no two scores share the same minute (a double entry is far likelier than
  two honest ratings within a minute);
- every baseline score is earlier than every trial score: a baseline score
  at or after the first trial score is refused, and so is a trial score at or
  before the last baseline score. The phases therefore never interleave and
  each mean is over one unbroken stretch of time.

Scores are kept sorted by time. Times are local wall-clock times as the
patient reads them off a clock; across a daylight-saving change the hour that
repeats is not told apart.

Errors are TrialError, a UsageError: the command line prints the message and
exits 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from bisect import insort
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    from .trial_report import TrialReport

SCORE_MIN = 0
SCORE_MAX = 10
PHASES = ("baseline", "trial")
FILE_FORMAT = "pumpctl-trial"
FILE_VERSION = 1
FILE_MODE = 0o600  # the file holds patient data

_TIME_FORMAT = "%Y-%m-%dT%H:%M"
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?$")
_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$")
_INTEGER = re.compile(r"^\s*[+-]?[0-9]+\s*$")
_SCALE = f"the numeric rating scale has whole numbers {SCORE_MIN} to {SCORE_MAX}"


class TrialError(UsageError):
    """A trial record or a request about one is wrong: a bad score, time or file."""


def _fmt_time(t: datetime) -> str:
    return t.strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """'2024-05-01T08:30' (or with a space, or with :00 seconds) -> a naive local datetime.

    TrialError for anything else: a date without a time, seconds, a UTC offset,
    an impossible date.
    """
    if not isinstance(text, str):
        raise TrialError(f"time {text!r} is not text; write an ISO 8601 local time such as 2024-05-01T08:30")
    s = text.strip()
    if _WITH_OFFSET.match(s):
        raise TrialError(f"time {text!r} has a UTC offset; write the local time without one, such as 2024-05-01T08:30")
    if not _LOCAL_TIME.match(s):
        try:
            date.fromisoformat(s)
        except ValueError:
            pass
        else:
            raise TrialError(f"time {text!r} has no time of day; write it to the minute, such as {s}T08:30")
        raise TrialError(f"time {text!r} is not an ISO 8601 local time to the minute, such as 2024-05-01T08:30")
    try:
        t = datetime.fromisoformat(s)
    except ValueError as e:
        raise TrialError(f"time {text!r} is not a valid date and time: {e}") from None
    if t.second:
        raise TrialError(f"time {text!r} has seconds; pain scores are timed to the minute, such as {_fmt_time(t)}")
    return t


def parse_score(text: str) -> int:
    """'7' -> 7. TrialError for '7.5', 'seven', '11', '-1'."""
    if isinstance(text, str):
        if not _INTEGER.match(text):  # plain ASCII digits: not '1_0', not '7.5'
            raise TrialError(f"score {text!r} is not a whole number; {_SCALE}")
        text = int(text)
    return _check_score(text)


def _check_score(value) -> int:
    if type(value) is not int:  # bool is an int too, and 7.0 is not how a score is written
        raise TrialError(f"score {value!r} is not a whole number; {_SCALE}")
    if not SCORE_MIN <= value <= SCORE_MAX:
        raise TrialError(f"score {value} is outside the range {SCORE_MIN} to {SCORE_MAX}; {_SCALE}")
    return value


def _check_text(name: str, value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TrialError(f"{name} {value!r} is not text")
    return value if value.strip() else None


@dataclass(frozen=True, order=False)
class PainScore:
    """One rating: when (naive local time, to the minute), how much (0..10), and in which phase.

    `time` may be given as a datetime or as ISO 8601 text; it is kept as a datetime.
    """

    time: datetime
    score: int
    phase: str
    note: str | None = None

    def __post_init__(self):
        t = self.time
        if isinstance(t, str):
            t = parse_time(t)
        elif not isinstance(t, datetime):
            raise TrialError(f"time {t!r} is not a date and time")
        elif t.tzinfo is not None:
            raise TrialError(f"time {t.isoformat()} has a UTC offset; pain scores are kept in local time")
        elif t.second or t.microsecond:
            raise TrialError(f"time {t.isoformat()} has seconds; pain scores are timed to the minute")
        object.__setattr__(self, "time", t)
        _check_score(self.score)
        if self.phase not in PHASES:
            raise TrialError(f"phase {self.phase!r} is not one of: {', '.join(PHASES)}")
        object.__setattr__(self, "note", _check_text("note", self.note))

    def to_json(self) -> dict:
        return {"time": _fmt_time(self.time), "score": self.score, "phase": self.phase, "note": self.note}

    @classmethod
    def from_json(cls, data) -> PainScore:
        if not isinstance(data, dict):
            raise TrialError(f"a score entry must be a JSON object, not {type(data).__name__}")
        _check_keys(data, required=("time", "score", "phase"), optional=("note",))
        if not isinstance(data["time"], str):
            raise TrialError(
                f"time {data['time']!r} is not text; write an ISO 8601 local time such as 2024-05-01T08:30"
            )
        return cls(time=data["time"], score=data["score"], phase=data["phase"], note=data.get("note"))


def _check_keys(data: dict, required: tuple, optional: tuple) -> None:
    missing = [k for k in required if k not in data]
    if missing:
        raise TrialError(f"missing {', '.join(missing)}")
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise TrialError(f"unknown field {', '.join(map(repr, unknown))} (known: {', '.join(required + optional)})")


@dataclass
class TrialRecord:
    """A patient's screening trial: free-text labels and the pain scores, sorted by time.

    Add scores with add_score(), which refuses what would break the rules in
    the module docstring; constructing a record with `scores` checks them the
    same way.
    """

    patient: str | None = None
    note: str | None = None
    scores: list[PainScore] = field(default_factory=list)

    def __post_init__(self):
        self.patient = _check_text("patient", self.patient)
        self.note = _check_text("note", self.note)
        given, self.scores = list(self.scores), []
        for entry in given:
            self.add_score(entry)

    def phase_scores(self, phase: str) -> list[PainScore]:
        return [s for s in self.scores if s.phase == phase]

    def add_score(self, entry: PainScore) -> None:
        """Insert a score in time order, or raise TrialError and change nothing."""
        if not isinstance(entry, PainScore):
            raise TrialError(f"{entry!r} is not a PainScore")
        when = _fmt_time(entry.time)
        same = next((s for s in self.scores if s.time == entry.time), None)
        if same is not None:
            raise TrialError(
                f"there is already a {same.phase} score ({same.score}) at {when}; one score per minute at most"
            )
        if entry.phase == "baseline":
            trial = self.phase_scores("trial")
            if trial and entry.time >= trial[0].time:
                raise TrialError(
                    f"a baseline score at {when} is not before the first trial score at {_fmt_time(trial[0].time)}; "
                    "baseline scores must all come before the trial"
                )
        else:
            baseline = self.phase_scores("baseline")
            if baseline and entry.time <= baseline[-1].time:
                raise TrialError(
                    f"a trial score at {when} is not after the last baseline score at {_fmt_time(baseline[-1].time)}; "
                    "trial scores must all come after the baseline"
                )
        insort(self.scores, entry, key=lambda s: s.time)

    def to_json(self) -> dict:
        return {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "patient": self.patient,
            "note": self.note,
            "scores": [s.to_json() for s in self.scores],
        }

    @classmethod
    def from_json(cls, data) -> TrialRecord:
        if not isinstance(data, dict):
            raise TrialError(f"not a trial record: the top level is a JSON {type(data).__name__}, not an object")
        if data.get("format") != FILE_FORMAT:
            raise TrialError(f"not a trial record: format is {data.get('format')!r}, expected {FILE_FORMAT!r}")
        if data.get("version") != FILE_VERSION:
            raise TrialError(f"trial record version {data.get('version')!r} is not supported (this is {FILE_VERSION})")
        _check_keys(data, required=("format", "version", "scores"), optional=("patient", "note"))
        if not isinstance(data["scores"], list):
            raise TrialError("scores must be a JSON list")
        record = cls(patient=data.get("patient"), note=data.get("note"))
        for i, entry in enumerate(data["scores"]):
            try:
                record.add_score(PainScore.from_json(entry))
            except TrialError as e:
                raise TrialError(f"scores[{i}]: {e}") from None
        return record

    def report(self) -> TrialReport:
        from .trial_report import report  # the analysis imports the record: imported here, not at the top

        return report(self)


# --- the file -------------------------------------------------------------------------------------------------------


def load(path) -> TrialRecord:
    """Read a trial record. TrialError if the file is missing, unreadable or not a valid record."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise TrialError(f"no trial record {name} (start one with: pumpctl trial start {name})") from None
    except IsADirectoryError:
        raise TrialError(f"{name} is a directory, not a trial record") from None
    except OSError as e:
        raise TrialError(f"cannot read {name}: {e.strerror or e}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise TrialError(f"{name} is not a trial record: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise TrialError(f"{name} is not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
    try:
        return TrialRecord.from_json(data)
    except TrialError as e:
        raise TrialError(f"{name}: {e}") from None


def save(record: TrialRecord, path, *, new: bool = False) -> None:
    """Write a trial record atomically, mode 0600.

    The JSON goes to a temporary file in the same directory, is flushed to
    disk, and then replaces `path` in one step (os.replace), so a crash leaves
    the old record or the new one, never half of one. With new=True an
    existing file is never overwritten (the temporary file is hard-linked into
    place, which fails if the name is taken).
    """
    name = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(name))
    data = (json.dumps(record.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if new and os.path.lexists(name):
        raise TrialError(f"{name} already exists; a trial record is never overwritten (choose another file name)")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(name)}.", suffix=".tmp")
    except OSError as e:
        raise TrialError(f"cannot write {name}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), FILE_MODE)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if new:
            os.link(tmp, name)
        else:
            os.replace(tmp, name)
    except FileExistsError:
        raise TrialError(
            f"{name} already exists; a trial record is never overwritten (choose another file name)"
        ) from None
    except OSError as e:
        raise TrialError(f"cannot write {name}: {e.strerror or e}") from None
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); skipped where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
