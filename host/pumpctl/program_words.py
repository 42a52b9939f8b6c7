"""A program's numbers in words: the lines of the items REVIEW returns (the program as the pump
understood it), what each means per drug, and the sentences of the pump's program refusals and
soft-limit warnings, which it sends as a code and values ("{p60|morphine|16000000|15000000|v1}").

The pump owns numbers, the host owns words (DESIGN.md): the pump keeps a program as its values
and checks them (firmware/program_items.py, firmware/program_check.py: each code's values are
listed there); the texts are here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from firmware import codec, framing

from .formats import (
    DOSE_MASS,
    DOSE_VOLUME,
    format_concentration,
    format_dose,
    format_dose_rate,
    format_duration,
    format_mass,
    format_time_of_day,
    format_volume,
)
from .program_text import WORDS, Item
from .sentences import coded_token, words_of

_US = 1_000_000
NL_PER_ML = 1_000_000


def _us(it: Sequence, at: int) -> int:
    return it[at] * _US + it[at + 1]


def line(it: Sequence) -> str:
    """The canonical line of an item (as the pump's item, or REVIEW's row)."""
    code, drug, kind, amount, start = it[0], it[1], it[2], it[3], it[4]
    duration, then, count = _us(it, 5), _us(it, 7), it[9]
    if code == codec.ITEM_DRUG:
        return "drug %s %s" % (drug, format_concentration(amount))
    if code in (codec.ITEM_DRUG_NONE, codec.ITEM_STOP):
        return WORDS[code]
    if code in (codec.ITEM_FILL, codec.ITEM_REMOVED, codec.ITEM_LOW, codec.ITEM_EMPTY, codec.ITEM_BRIDGE):
        return "%s %s" % (WORDS[code], format_volume(amount))
    if code == codec.ITEM_BASAL:
        return "basal " + format_dose_rate(kind, amount)
    if code == codec.ITEM_FLEX:
        return "flex %s %s" % (format_time_of_day(start), format_dose_rate(kind, amount))
    if code == codec.ITEM_BOLUS:
        text = "bolus %s over %s" % (format_dose(kind, amount), format_duration(duration))
        return text + (" after " + format_duration(then) if then else "")
    if code == codec.ITEM_PRIME:
        return "prime %s over %s" % (format_volume(amount), format_duration(duration))
    if code == codec.ITEM_PATIENT:
        return "patient-bolus %s over %s lockout %s max %d per day" % (
            format_dose(kind, amount),
            format_duration(duration),
            format_duration(then),
            count,
        )
    if code == codec.ITEM_TRIAL:
        return "trial " + format_duration(duration)
    return "item %d" % code


def per_drug(volume: int, per_day: bool, drugs: Sequence[tuple[str, int]]) -> str:
    """What volume nL (nL/day if per_day) of the blend is of each drug: "0.1 mL/day = morphine 2 mg/day"."""
    parts = []
    for name, conc in drugs:
        ng = volume * conc // NL_PER_ML  # rounded down: for showing only
        parts.append("%s %s" % (name, format_dose_rate(DOSE_MASS, ng) if per_day else format_mass(ng)))
    vol = format_dose_rate(DOSE_VOLUME, volume) if per_day else format_volume(volume)
    return (vol + " = " + ", ".join(parts)) if parts else vol


def rows(raw: Sequence[Sequence]) -> list[tuple[str, str]]:
    """REVIEW's rows (each item, its fields, volume_nl, note) as (line, detail), as the pump wrote them
    before programs travelled as numbers: each line beside what it means per drug, a flex day's
    total, a delivery's note, a soft-limit warning ("soft limit", its sentence)."""
    from . import words

    drugs = [(r[1], r[3]) for r in raw if r[0] == codec.ITEM_DRUG]
    out = []
    for r in raw:
        code, volume, note = r[0], r[10], r[11]
        if code == codec.ITEM_FLEX_TOTAL:
            out.append(("", "flex day total " + per_drug(volume, True, drugs)))
        elif code == codec.ITEM_NOTE:
            out.append(("", words.render(note)))
        elif code == codec.ITEM_WARNING:
            out.append(("soft limit", words.render(note)))
        elif code == codec.ITEM_NO_PROGRAM:
            out.append(("stop", "no program"))
        else:
            detail = ""
            if code in (codec.ITEM_BASAL, codec.ITEM_FLEX):
                detail = per_drug(volume, True, drugs)
            elif code in (codec.ITEM_BOLUS, codec.ITEM_PATIENT):
                detail = per_drug(volume, False, drugs)
            if note:
                detail = words.render(note)
            out.append((line(r), detail))
    return out


def program_crc(items: Sequence[Sequence], version: str) -> int:
    """The program_crc of items (as STAGE_ITEM's fields after its index) checked under library version:
    what the pump computes of the program it understood (firmware/framing.py)."""
    return framing.program_crc(["%d,%d,%d,%d,%d,%d,%d,%d,%d,%s" % (*it[:1], *it[2:10], it[1]) for it in items], version)


def items_of(raw: Sequence[Sequence]) -> list[Item]:
    """The items among REVIEW's rows (the program's own, in order: what its program_crc covers)."""
    return [tuple(r[:10]) for r in raw if r[0] < codec.ITEM_FLEX_TOTAL]  # type: ignore[misc]


# -- the pump's program refusals and warnings ----------------------------------------------

_WHAT = (
    ("daily dose", "day"),
    ("basal rate", "hour"),
    ("basal plus bolus rate", "hour"),
    ("basal plus patient-bolus rate", "hour"),
    ("prime rate", "hour"),
    ("bolus", "dose"),
    ("prime", "dose"),
    ("patient-bolus", "dose"),
)


def _shown(ng: int, shape: str) -> str:
    """A dose (ng) or a rate (ng/day) as its limit is written: per hour ('1.083 mg/h', rounded up to
    the ng/h), per day or a dose."""
    if shape == "hour":
        return format_mass(-(-ng // 24)) + "/h"
    if shape == "day":
        return format_dose_rate(DOSE_MASS, ng)
    return format_mass(ng)


def _limit(what: int, over: str) -> Callable[[list[str]], str]:
    name, shape = _WHAT[what]

    def text(a: list[str]) -> str:
        said = "%s of %s %s is above the %s limit of %s" % (name, a[0], _shown(int(a[1]), shape), over,
                                                            _shown(int(a[2]), shape))  # fmt: skip
        return said + (" (library %s)" % a[3] if over == "hard" else "")

    return text


def _word(a: str) -> str:
    return WORDS.get(int(a), "item " + a)


def _n(a: str) -> str:
    return format_volume(int(a))


def _t(a: str) -> str:
    return format_duration(int(a))


def _minute(a: str) -> str:
    m = int(a)
    return format_time_of_day(m) if 0 <= m < 1440 else a


# Each code's sentence from its values (as text): the sentences the user read when the pump wrote them.
TEXTS: dict[int, Callable[[list[str]], str]] = {
    1: lambda a: "the program is empty; give at least a basal, flex or stop line",
    2: lambda a: "a program has at most %s lines, not %s" % (a[0], a[1]),
    3: lambda a: "unknown item %s: this pump's firmware does not know it" % a[0],
    4: lambda a: "only one drug none line is allowed",
    5: lambda a: (
        "%s %s is above the library's hard limit of %s"
        % (a[0], format_concentration(int(a[1])), format_concentration(int(a[2])))
    ),
    6: lambda a: "drug %s is listed twice" % a[0],
    7: lambda a: "a blend holds at most %s drugs; %s would be drug %s" % (a[0], a[1], a[2]),
    8: lambda a: "a flex schedule has at most %s steps; flex %s would be step %s" % (a[0], _minute(a[1]), a[2]),
    9: lambda a: "flex steps must be in time order; %s is not after %s" % (_minute(a[0]), _minute(a[1])),
    10: lambda a: "the first flex step must start at 00:00, not %s" % _minute(a[0]),
    11: lambda a: "bolus delay %s is above %s" % (_t(a[0]), _t(a[1])),
    12: lambda a: "patient-bolus max %s per day is outside the range 1 to 24" % a[0],
    13: lambda a: "trial %s must be between 1 h and 30 day" % _t(a[0]),
    14: lambda a: "only one %s line is allowed" % _word(a[0]),
    15: lambda a: "%s %s must be 0 to %s" % (_word(a[0]), _n(a[1]), _n(a[2])),
    16: lambda a: "%s %s must be above 0 and at most %s" % (_word(a[0]), _n(a[1]), _n(a[2])),
    17: lambda a: "%s duration %s must be above 0 and at most 24 h" % (_word(a[0]), _t(a[1])),
    18: lambda a: "%s must be above zero" % _word(a[0]),
    19: lambda a: "%s must be above zero (use a stop line to stop)" % _word(a[0]),
    20: lambda a: "flex start minute %s is not a time of day (0 to 1439)" % a[0],
    21: lambda a: "%s: a value is out of its range (a dose kind, or microseconds above 999999)" % _word(a[0]),
    22: lambda a: "drug %s: a concentration must be above zero (at least 0.001 mcg/mL)" % a[0],
    30: lambda a: "drug none cannot be given with drug lines",
    31: lambda a: "give exactly one of: a basal line, flex lines, or stop",
    32: lambda a: "a stopped program cannot have a bolus, bridge, patient-bolus or trial",
    33: lambda a: "one bolus at a time: give at most one of bolus, prime and bridge",
    34: lambda a: "a dose in mg or mcg needs a drug line naming the drug and its concentration",
    35: lambda a: "removed is part of a refill: give the fill line with it",
    36: lambda a: "empty-reservoir %s must be below low-reservoir %s" % (_n(a[0]), _n(a[1])),
    37: lambda a: "the blend changed (a refill): give a fill line with the volume the reservoir now holds",
    38: lambda a: "a bridge bolus is for a refill that changed a concentration; none changed",
    39: lambda a: "a bridge needs the same drugs as before, with new concentrations",
    40: lambda a: "a bridge keeps the dose steady, so the basal must be given as a dose (mg/day)",
    41: lambda a: (
        "the combined rate %s is above the pump maximum of 10 mL/h" % format_dose_rate(DOSE_VOLUME, int(a[0]))
    ),
    42: lambda a: "%s is too small to deliver over %s" % (a[0], _t(a[1])),
    43: lambda a: "prime is too small to deliver over %s" % _t(a[0]),
    44: lambda a: "%s is %s, below the pump minimum of 1 uL/day" % (a[0], format_dose_rate(DOSE_VOLUME, int(a[1]))),
    45: lambda a: "the library allows no patient bolus of %s" % a[0],
    46: lambda a: "lockout %s is shorter than the library's minimum of %s for %s" % (_t(a[0]), _t(a[1]), a[2]),
    47: lambda a: "%s patient boluses per day is above the library's maximum of %s for %s" % (a[0], a[1], a[2]),
    70: lambda a: (
        "refill: the pump did not count the reservoir (no earlier fill), so it cannot check the %s removed" % _n(a[0])
    ),
    71: lambda a: (
        "refill discrepancy %s (over %s): check for a pocket fill; removed %s, counted %s"
        % (_n(a[0]), _n(a[1]), _n(a[2]), _n(a[3]))
    ),
    80: lambda a: "new dose: " + per_drug(int(a[0]), False, [(a[i], int(a[i + 1])) for i in range(1, len(a), 2)]),
    81: lambda a: "new: %s of the old blend first, at the old dose" % _n(a[0]),
}
for _what in range(len(_WHAT)):
    TEXTS[50 + _what] = _limit(_what, "soft")
    TEXTS[60 + _what] = _limit(_what, "hard")

TOKEN = coded_token("p")
LOG_ITEM = re.compile(r"\{i([0-9]+(?:,[0-9]+){8}),([^}]*)\}")


def sentence(m: re.Match) -> str:
    """The sentence of a "{pN|value|...}" token."""
    return words_of(m, lambda code, values: TEXTS[code](values) if code in TEXTS else None, "program refusal")


def log_line(m: re.Match) -> str:
    """The line of an item as the event log holds it: "{iITEM,KIND,AMOUNT,START,DURATION_S,DURATION_US,
    THEN_S,THEN_US,COUNT,DRUG}" (the pump's saved row of it)."""
    n = [int(v) for v in m[1].split(",")]
    return line((n[0], m[2], *n[1:]))
