"""Therapy programs as a clinician writes them, one line each, read into the items the pump
is sent (codec.STAGE_ITEM: a line's numbers). The pump checks every number against itself and
the drug library and refuses with a code pumpctl words (program_words.py); here only what a
text can get wrong is refused, with the whole reason, before anything is sent.

  drug morphine 25 mg/mL            the reservoir's blend, primary drug first (1-3)
  drug none                         the reservoir holds no drug (saline, bench water)
  fill 20 mL                        the reservoir now holds this (a refill)
  removed 1.8 mL                    with fill: what was drawn out of the reservoir before it
                                    (the pump checks it against what it counted was left)
  low-reservoir 3 mL                the low-reservoir alarm's volume (default 2 mL)
  empty-reservoir 0.5 mL            delivery stops here, with the empty alarm (default 1 mL)
  stop                              stopped mode
  basal 2 mg/day                    simple continuous
  flex 07:00 3 mg/day               one step of a daily schedule (1-24 lines)
  bolus 0.5 mg over 30 min [after 2 h]     a single bolus on top of the basal
  prime 0.2 mL over 20 min          priming bolus, then back to the program
  bridge 0.25 mL                    old fluid in the path after a refill
  patient-bolus 0.1 mg over 10 min lockout 4 h max 4 per day
  trial 3 day                       trial mode: the program stops after this

A program without drug lines keeps the blend already in the reservoir, so every library check
still applies to it; only "drug none" with a fill line says the reservoir was emptied and
refilled without a drug.

Doses (mg, mcg) refer to the primary drug and are converted to volume by the pump through its
concentration, rounding toward the smaller dose; a dose may also be a volume (mL, uL).

An item is a tuple of STAGE_ITEM's fields after its index: (item, drug, dose_kind, amount,
start_min, duration_s, duration_us, then_s, then_us, count).
"""

from __future__ import annotations

from firmware import codec
from firmware.errors import Refusal

from .units import (
    parse_concentration,
    parse_count,
    parse_dose,
    parse_dose_rate,
    parse_duration,
    parse_time_of_day,
    parse_volume,
)

Item = tuple[int, str, int, int, int, int, int, int, int, int]

MAX_LINES = 40
MAX_PATIENT_PER_DAY = 24
_U32 = 1 << 32
_US = 1_000_000

# The keyword of each line, by its item code; ITEM_DRUG_NONE is "drug none".
KEYWORDS = {
    "drug": codec.ITEM_DRUG,
    "fill": codec.ITEM_FILL,
    "removed": codec.ITEM_REMOVED,
    "low-reservoir": codec.ITEM_LOW,
    "empty-reservoir": codec.ITEM_EMPTY,
    "stop": codec.ITEM_STOP,
    "basal": codec.ITEM_BASAL,
    "flex": codec.ITEM_FLEX,
    "bolus": codec.ITEM_BOLUS,
    "prime": codec.ITEM_PRIME,
    "bridge": codec.ITEM_BRIDGE,
    "patient-bolus": codec.ITEM_PATIENT,
    "trial": codec.ITEM_TRIAL,
}
WORDS = {code: word for word, code in KEYWORDS.items()} | {codec.ITEM_DRUG_NONE: "drug none"}


def item(code: int, drug: str = "", kind: int = 0, amount: int = 0, start: int = 0, duration_us: int = 0,
         then_us: int = 0, count: int = 0) -> Item:  # fmt: skip
    """An item's tuple, its durations in microseconds split as the wire carries them."""
    return (code, drug, kind, amount, start, *divmod(duration_us, _US), *divmod(then_us, _US), count)


def parse_program(lines: list[str]) -> list[Item]:
    """The items of program lines, in their order; Refusal (naming the field) for a line that does
    not read. The pump checks the values (program_items.py, program_check.py)."""
    if not lines:
        raise Refusal("program", "the program is empty; give at least a basal, flex or stop line")
    if len(lines) > MAX_LINES:
        raise Refusal("program", "a program has at most %d lines, not %d" % (MAX_LINES, len(lines)))
    out = []
    for raw in lines:
        text = raw.strip()
        word, _, rest = text.partition(" ")
        read = _READERS.get(word)
        if read is None:
            raise Refusal("program", "unknown line %r; lines start with one of: %s" % (text, ", ".join(_READERS)))
        out.append(read(word, rest.strip()))
    return out


def _read_drug(_word: str, rest: str) -> Item:
    if rest == "none":
        return item(codec.ITEM_DRUG_NONE)
    typed, _, conc_text = rest.partition(" ")
    conc = parse_concentration("drug " + typed, conc_text.strip())
    return item(codec.ITEM_DRUG, typed, 0, _fits("drug " + typed, conc, conc_text.strip()))


def _read_volume(word: str, rest: str) -> Item:
    nl, _r = parse_volume(word, rest)
    return item(KEYWORDS[word], "", 0, _fits(word, nl, rest))


def _read_stop(_word: str, rest: str) -> Item:
    if rest:
        raise Refusal("stop", "stop takes no value (got %r)" % rest)
    return item(codec.ITEM_STOP)


def _read_basal(_word: str, rest: str) -> Item:
    kind, per_day = _dose_rate("basal", rest)
    return item(codec.ITEM_BASAL, "", kind, per_day)


def _read_flex(_word: str, rest: str) -> Item:
    when, _, rate_text = rest.partition(" ")
    minute = parse_time_of_day("flex", when)
    rate_text = rate_text.strip()
    if rate_text.partition(" ")[0].lower() in ("am", "pm", "a.m.", "p.m."):
        raise Refusal(
            "flex " + when,
            "flex %s %s: use 24-hour time, without am/pm (for example 19:30)" % (when, rate_text.partition(" ")[0]),
        )
    kind, per_day = _dose_rate("flex " + when, rate_text)
    return item(codec.ITEM_FLEX, "", kind, per_day, minute)


def _read_bolus(_word: str, rest: str) -> Item:
    dose_text, duration_us, after = _split_over(rest, "bolus", (" after ",))
    kind, amount = _dose("bolus", dose_text)
    delay = parse_duration("bolus after", after[0]) if after[0] is not None else 0
    return item(codec.ITEM_BOLUS, "", kind, amount, 0, duration_us, delay)


def _read_prime(_word: str, rest: str) -> Item:
    vol_text, duration_us, _ = _split_over(rest, "prime", ())
    nl, _r = parse_volume("prime", vol_text)
    return item(codec.ITEM_PRIME, "", 0, _fits("prime", nl, vol_text), 0, duration_us)


def _read_patient(_word: str, rest: str) -> Item:
    dose_text, duration_us, more = _split_over(rest, "patient-bolus", (" lockout ", " max "))
    if more[0] is None or more[1] is None:
        raise Refusal("patient-bolus", "write: patient-bolus DOSE over TIME lockout TIME max N per day")
    kind, amount = _dose("patient-bolus", dose_text)
    lockout = parse_duration("patient-bolus lockout", more[0])
    count_text = more[1]
    if not count_text.endswith(" per day"):
        raise Refusal("patient-bolus max", "write the count as 'max N per day' (got %r)" % count_text)
    count = parse_count("patient-bolus max", count_text[:-8].strip(), 1, MAX_PATIENT_PER_DAY)
    return item(codec.ITEM_PATIENT, "", kind, amount, 0, duration_us, lockout, count)


def _read_trial(_word: str, rest: str) -> Item:
    return item(codec.ITEM_TRIAL, "", 0, 0, 0, parse_duration("trial", rest))


_READERS = {
    "drug": _read_drug,
    "fill": _read_volume,
    "removed": _read_volume,
    "low-reservoir": _read_volume,
    "empty-reservoir": _read_volume,
    "stop": _read_stop,
    "basal": _read_basal,
    "flex": _read_flex,
    "bolus": _read_bolus,
    "prime": _read_prime,
    "bridge": _read_volume,
    "patient-bolus": _read_patient,
    "trial": _read_trial,
}


def _fits(field: str, value: int, text: str) -> int:
    """value, if the wire's u32 carries it; a value that large is above every limit of the pump."""
    if value >= _U32:
        raise Refusal(field, "%s %s is above anything the pump takes" % (field, text))
    return value


def _split_over(rest: str, field: str, extra_words: tuple[str, ...]) -> tuple[str, int, list[str | None]]:
    """Split 'DOSE over TIME [w1 X] [w2 Y]'; return (dose_text, duration_us, [X or None, ...]).
    extra_words: (" w1 ", " w2 "), each with its spaces."""
    parts = rest.split(" over ")
    if len(parts) != 2:
        raise Refusal(field, "write: %s DOSE over TIME (got %r)" % (field, rest))
    dose_text = parts[0].strip()
    tail = parts[1]
    found: list[str | None] = [None] * len(extra_words)
    for i in range(len(extra_words) - 1, -1, -1):
        head, sep, value = tail.partition(extra_words[i])
        if sep:
            found[i] = value.strip()
            tail = head
    duration_us = parse_duration(field + " over", tail.strip())
    return dose_text, duration_us, found


def _dose(field: str, text: str) -> tuple[int, int]:
    kind, amount, _rounded = parse_dose(field, text)
    if amount <= 0:
        raise Refusal(field, "%s %s must be above zero" % (field, text))
    return kind, _fits(field, amount, text)


def _dose_rate(field: str, text: str) -> tuple[int, int]:
    kind, per_day, _rounded = parse_dose_rate(field, text)
    if per_day <= 0:
        raise Refusal(field, "%s %s must be above zero (use a stop line to stop)" % (field, text))
    return kind, _fits(field, per_day, text)
