"""Exact display and parsing of the quantities pumpctl shows and reads.

Everything the pump reports is an integer in a small unit (pL, nL/day, us);
these helpers turn those into text a person reads, without floats, so what
is printed is exactly what the pump holds.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

US_PER_S = 1_000_000


def _trim(d: Decimal, places: int) -> str:
    q = d.quantize(Decimal(1).scaleb(-places)) if places else d.to_integral_value()
    text = f"{q:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def as_decimal(value: Fraction | int, places: int = 6) -> str:
    """A rational as a decimal string, rounded to places, trailing zeros cut."""
    f = Fraction(value)
    d = Decimal(f.numerator) / Decimal(f.denominator)
    return _trim(d, places)


def volume(pl: Fraction | int) -> str:
    """A volume in pL, shown exactly in the unit that reads best (nL, uL or mL)."""
    f = Fraction(pl)
    if abs(f) >= 10**9:
        return f"{as_decimal(f / 10**9, 12)} mL"
    if abs(f) >= 10**6:
        return f"{as_decimal(f / 10**6, 9)} uL"
    return f"{as_decimal(f / 10**3, 6)} nL"


def volume_nl(nl: int) -> str:
    """A volume the pump gives in nL (reservoir, guard windows), shown as volume() shows it."""
    return volume(nl * 1000)


def time_until(seconds: int) -> str:
    """How long until a reservoir level is reached, in the unit that reads best, one decimal at most,
    rounded down (a warning is never later than the pump said): "36 days", "1 day", "1.8 hours",
    "12 min", "under a minute"."""
    for unit_s, one, many in ((86_400, "day", "days"), (3_600, "hour", "hours")):
        if seconds >= unit_s:
            tenths = seconds * 10 // unit_s
            text = f"{tenths // 10}" if tenths % 10 == 0 else f"{tenths // 10}.{tenths % 10}"
            return f"{text} {one if text == '1' else many}"
    return f"{seconds // 60} min" if seconds >= 60 else "under a minute"


def _terminates(f: Fraction) -> bool:
    d = f.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def rate(nl_per_day: int) -> str:
    """A rate in nL/day, shown exactly: mL/h where that is a finite decimal
    and the rate is at least 1 mL/h, else mL/day (from 0.1 mL/day) or uL/day."""
    per_h = Fraction(nl_per_day, 24 * 10**6)
    if per_h >= 1 and _terminates(per_h):
        return f"{as_decimal(per_h, 12)} mL/h"
    if nl_per_day >= 10**5:
        return f"{as_decimal(Fraction(nl_per_day, 10**6), 6)} mL/day"
    return f"{as_decimal(Fraction(nl_per_day, 10**3), 3)} uL/day"


def duration(us: int) -> str:
    """A pump time span as '26 h 03 min 04.5 s', or '8 d 02 h ...' from a week on
    (exact to the microsecond)."""
    s, micro = divmod(us, US_PER_S)
    d, s = divmod(s, 86_400)
    if d < 7:
        d, s = 0, s + d * 86_400
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    sec = f"{s:02d}" + (f".{micro:06d}".rstrip("0") if micro else "")
    parts = [f"{h:02d} h", f"{m:02d} min", f"{sec} s"]
    if d:
        parts.insert(0, f"{d} d")
    return " ".join(parts)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|h|day|days|d)\s*$")
_DURATION_US = {"ms": 1000, "s": US_PER_S, "sec": US_PER_S, "min": 60 * US_PER_S, "h": 3600 * US_PER_S}
_DURATION_US.update({"d": 86_400 * US_PER_S, "day": 86_400 * US_PER_S, "days": 86_400 * US_PER_S})


def parse_duration_us(text: str) -> int:
    """'24h', '90 min', '7 day', '1.5 h' -> microseconds. ValueError if unclear."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration; write a number and one of ms, s, min, h, day (for example 24h)")
    us = Fraction(m.group(1)) * _DURATION_US[m.group(2)]
    if us.denominator != 1:
        raise ValueError(f"{text!r} is finer than a microsecond")
    return int(us)


_NL_PER_UNIT = {"ml": 1_000_000, "ul": 1_000, "nl": 1}


def parse_volume_nl(text: str) -> int:
    """ "20 mL", "150 uL" or "500 nL" as whole nL (ValueError: no unit, not a number, finer than 1 nL)."""
    parts = text.strip().split()
    if len(parts) == 1:  # "20mL"
        m = re.fullmatch(r"([0-9.]+)([a-zA-Z]+)", parts[0])
        parts = list(m.groups()) if m else parts
    if len(parts) != 2 or parts[1].lower() not in _NL_PER_UNIT:
        raise ValueError(f"{text!r}: give a volume with its unit, e.g. 20 mL, 150 uL or 500 nL")
    try:
        amount = Decimal(parts[0])
    except ArithmeticError:
        raise ValueError(f"{text!r}: {parts[0]!r} is not a number") from None
    nl = amount * _NL_PER_UNIT[parts[1].lower()]
    if nl < 0 or nl != nl.to_integral_value():
        raise ValueError(f"{text!r} must be 0 or more, in whole nL")
    return int(nl)
