"""A drug library as a pharmacist writes it, read into the numbers the pump holds, and written back.

A site's library file (docs/drug-library.md) gives each limit as text with its unit ("15 mg/day",
"1.625 mg/h", "1 h"). The pump holds and checks numbers only (LIB_DRUG: ng, ng/mL, ng/day, the
lockout in s); pumpctl reads the text with the same exact integer parsers a program's lines are
read with (units.py), and shows the pump's numbers with their inverse (formats.py),
so a limit reads back as it was written. Whether the limits agree with each other (soft below
hard, ...) is the pump's to decide: it refuses a drug that contradicts itself, naming it.
"""

from __future__ import annotations

from firmware import codec
from firmware.errors import Refusal

from . import formats, units

LIBRARY_FIELDS = codec.LIBRARY_FIELDS  # name, then the ten limits, as LIB_DRUG carries them
FILE_FIELDS = (*LIBRARY_FIELDS, "source")  # a file's drug may say where its numbers come from

_U32 = 0xFFFF_FFFF
_MAX_PER_DAY = 255  # the count's field is a byte (the pump allows at most 24)

# How each limit is read and written (after the name): a concentration, a mass per time (daily limits
# written per day, rate limits per hour), a mass, a duration, a count.
_KINDS = ("conc", "daily", "daily", "rate", "rate", "mass", "mass", "mass", "duration", "count")


class LibraryTextError(ValueError):
    """A limit that is not a quantity of its kind: field names the drug and the field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def parse_entry(fields: list[str] | tuple[str, ...]) -> tuple[str, tuple[int, ...]]:
    """One drug's texts (LIBRARY_FIELDS order; a source after them is left to the file) as
    (name, its ten numbers as LIB_DRUG carries them). LibraryTextError names what is wrong."""
    if len(fields) not in (len(LIBRARY_FIELDS), len(FILE_FIELDS)):
        raise LibraryTextError(
            "library", f"a library entry has {len(LIBRARY_FIELDS)} fields (and a source), not {len(fields)}"
        )
    name = fields[0]
    numbers = tuple(_number(name, LIBRARY_FIELDS[f], _KINDS[f - 1], fields[f]) for f in range(1, len(LIBRARY_FIELDS)))
    return name, numbers


def _number(drug: str, field: str, kind: str, text: str) -> int:
    where = f"{drug} {field}"
    try:
        if kind == "conc":
            value = units.parse_concentration(where, text)
        elif kind == "duration":
            us = units.parse_duration(where, text)
            if us % 1_000_000:
                raise LibraryTextError(where, f"{where} {text!r} must be whole seconds")
            value = us // 1_000_000
        elif kind == "count":
            value = units.parse_count(where, text, 0, _MAX_PER_DAY)
        else:
            read = units.parse_dose if kind == "mass" else units.parse_dose_rate
            dose_kind, value, _rounded = read(where, text)
            if dose_kind != units.DOSE_MASS:
                per = " (mg or mcg)" if kind == "mass" else " per time (mg/day)"
                raise LibraryTextError(where, f"{where} must be a mass{per}, not {text!r}")
    except Refusal as e:
        raise LibraryTextError(e.field, e.message) from None
    if value > _U32:
        raise LibraryTextError(where, f"{where} {text!r} is above what the pump holds")
    return value


def entry_texts(name: str, numbers: tuple[int, ...] | list[int]) -> list[str]:
    """A drug's numbers as a pharmacist reads them, LIBRARY_FIELDS order: parse_entry of these
    texts gives the same numbers back."""
    out = [name]
    for f, n in enumerate(numbers):
        kind = _KINDS[f]
        if kind == "conc":
            out.append(formats.format_concentration(n))
        elif kind == "daily":
            out.append(formats.format_dose_rate(units.DOSE_MASS, n))
        elif kind == "rate":
            out.append(mass_rate(n))
        elif kind == "mass":
            out.append(formats.format_mass(n))
        elif kind == "duration":
            out.append(formats.format_duration(n * 1_000_000))
        else:
            out.append("%d" % n)
    return out


def mass_rate(ng_per_day: int) -> str:
    """A mass rate limit per hour, as a library writes them, where that is exact; else per day."""
    if ng_per_day % 24 == 0:
        return formats.format_mass(ng_per_day // 24) + "/h"
    return formats.format_dose_rate(units.DOSE_MASS, ng_per_day)
