# ruff: noqa: UP031
# (written with % when it ran on the pump too)
#
# Quantities as pumpctl writes them: the inverse of units.py's parsers, for a
# program's canonical lines (program_words.py), its review, the pump's refusals
# and a library's limits, and the quantity tokens of the pump's texts (words.py:
# the pump writes "{n20000000}", pumpctl "20 mL").
#
# Units as units.py states them: mass ng, volume nL, concentration ng/mL,
# dose rates ng/day or nL/day, durations us, time of day minutes 0..1439.

from firmware.codec import DOSE_MASS, DOSE_VOLUME

_US_PER_DAY = 86_400_000_000  # a long int on a 32-bit port: command path only
# Time units as how many fit in a day (units.py reads the same).
_PER_DAY = {"s": 86_400, "min": 1_440, "h": 24, "day": 1}


# parse(format(x)) == x for every x the parsers return with at most 12
# significant digits (below 10**12 ng, nL, ng/mL, ng/day or nL/day) and
# every duration up to 400 days. A negative value or an unknown kind raises
# ValueError: a bug in the caller, not something a person typed.


def _show(n, top, units, per=""):
    # n (ng or nL, or per mL or per day) in the first of units ("mg mcg" or
    # "mL uL nL") from `top` up and for zero, else in the second from 1000 up
    # (or if it is the last), else in the third.
    if n < 0:
        raise ValueError("%d is negative" % n)
    units = units.split()
    i = 0 if n >= top or not n else 1 if n >= 1_000 or len(units) == 2 else 2
    return "%s %s%s" % (_decimal_text(n, 6 - 3 * i), units[i], per)


def _kind_units(kind):
    if kind not in (DOSE_MASS, DOSE_VOLUME):
        raise ValueError("unknown dose kind %s" % kind)
    return "mg mcg" if kind == DOSE_MASS else "mL uL nL"


# ng as "1.5 mg" from 1 mg up, else as "250 mcg" or "0.025 mcg"; 0 is "0 mg".
def format_mass(ng):
    return _show(ng, 1_000_000, "mg mcg")


def decimal_text(n, places):
    """n / 10**places written exactly, trailing zeros cut: (1500, 3) -> "1.5"."""
    whole, frac = divmod(n, 10**places)
    if not frac:
        return "%d" % whole
    frac = "%d" % frac
    return "%d.%s" % (whole, ("0" * (places - len(frac)) + frac).rstrip("0"))


_decimal_text = decimal_text


def format_volume(nl):
    """nL as mL from 1 mL up, uL from 1 uL up, else nL; 0 is "0 mL"."""
    return _show(nl, 1_000_000, "mL uL nL")


# ng/mL as mg/mL from 1 mg/mL up, else mcg/mL.
def format_concentration(ng_per_ml):
    return _show(ng_per_ml, 1_000_000, "mg mcg", "/mL")


# A DOSE_MASS amount (ng) as format_mass, a DOSE_VOLUME one (nL) as format_volume.
def format_dose(kind, amount):
    return _show(amount, 1_000_000, _kind_units(kind))


# ng/day or nL/day, per day: "2 mg/day", "480 mcg/day"; volumes in mL/day
# from 0.1 mL/day, uL/day from 1 uL/day, else nL/day; 0 is "0 mg/day" or "0 mL/day".
def format_dose_rate(kind, per_day):
    return _show(per_day, 1_000_000 if kind == DOSE_MASS else 100_000, _kind_units(kind), "/day")


# us in the largest of day, h, min, s that divides it ("90 min", "2 day"),
# else in seconds with decimals ("1.5 s", "0.000001 s"); 0 is "0 s".
def format_duration(us):
    if us < 0:
        raise ValueError("%d is negative" % us)
    if not us:
        return "0 s"
    for unit in ("day", "h", "min", "s"):
        size = _US_PER_DAY // _PER_DAY[unit]
        if us % size == 0:
            return "%d %s" % (us // size, unit)
    return _decimal_text(us, 6) + " s"


# Minutes after midnight as 24-hour "07:30".
def format_time_of_day(minutes):
    if not 0 <= minutes < 1440:
        raise ValueError("time of day %d is outside 0..1439" % minutes)
    return "%02d:%02d" % (minutes // 60, minutes % 60)
