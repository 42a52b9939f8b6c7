# Integer units and the parsing of quantities a person typed.
#
# The pump is the one authority on units: the host sends a rate as the text
# the person typed ("0.5 mL/day") and the pump converts it with exact integer
# arithmetic, so a unit can never be lost or reinterpreted on the way. Any
# text that is not a plain decimal number followed by a known unit is
# refused with a reason naming the field, the value and what is accepted.
#
# Internal units: volume in pL or nL, rate in nL/day (see scheduler.py for
# why nL/day makes time and volume exact together), time in us.
#
# Runs on the command path, not the dosing hot path: it may allocate, and a
# product of a 12-digit number with a unit factor may briefly be a long int.

from firmware.errors import Refusal
from firmware.scheduler import MAX_RATE_NL_PER_DAY, MIN_RATE_NL_PER_DAY

# Volume units in nL. Matching ignores case ("ml" is mL; nobody means
# megalitres); "µ" (micro sign) and "μ" (Greek mu) are read as "u".
_VOLUME_NL = {"nl": 1, "ul": 1_000, "ml": 1_000_000}
# Time units as how many fit in a day.
_PER_DAY = {"s": 86_400, "min": 1_440, "h": 24, "day": 1}

RATE_UNITS_HELP = "a volume per time: nL, uL or mL per s, min, h or day (for example 0.5 mL/day)"

_MAX_DIGITS = 12  # more significant digits than any pump setting needs
_MAX_TEXT = 40


def parse_decimal(field, text):
    """Split a plain decimal into (mantissa, decimals): "0.50" -> (50, 2).

    Refuses signs, exponents, commas and empty numbers, so nothing a person
    typed is silently read as something else. A bare leading or trailing
    point (".5", "5.") is refused too: ISMP lists ".5" read as "5" among the
    error-prone ways of writing a dose.
    """
    if not text:
        raise Refusal(field, "no number given")
    if text[0] == "-":
        raise Refusal(field, "%s must not be negative (got %s)" % (field, text))
    whole, point, frac = text.partition(".")
    digits = whole + frac
    for ch in digits:
        if not "0" <= ch <= "9":
            raise Refusal(field, "%r is not a plain decimal number (use a point as the decimal separator)" % text)
    if not whole:
        raise Refusal(field, "write a leading zero: 0%s, not %s" % (text, text))
    if point and not frac:
        raise Refusal(field, "%r ends with a decimal point; write %s" % (text, whole))
    if len(digits.lstrip("0")) > _MAX_DIGITS or len(frac) > _MAX_DIGITS:
        raise Refusal(field, "%s has more than %d digits" % (text, _MAX_DIGITS))
    return int(digits), len(frac)


def split_quantity(field, text):
    """Split "0.5 mL/day" into ("0.5", "mL/day"); the space is optional."""
    if len(text) > _MAX_TEXT:
        raise Refusal(field, "%s text is longer than %d characters" % (field, _MAX_TEXT))
    text = text.strip()
    i = 0
    # Take commas and exponents into the number so that "1,5" or "1e3" is
    # refused as a number, not reported as a strange unit.
    while i < len(text) and text[i] in "0123456789.,+-eE":
        i += 1
    number = text[:i]
    unit = text[i:].strip()
    if not number:
        raise Refusal(field, "%r does not start with a number" % text)
    if not unit:
        raise Refusal(field, "%r has no unit; give %s" % (text, RATE_UNITS_HELP))
    return number, unit


def _normal_unit(unit):
    return unit.replace("µ", "u").replace("μ", "u").lower()


def rate_unit_factor(field, unit):
    """nL/day per 1 of the given rate unit, or Refusal for an unknown unit."""
    parts = _normal_unit(unit).split("/")
    if len(parts) == 2:
        vol = _VOLUME_NL.get(parts[0].strip())
        per = _PER_DAY.get(parts[1].strip())
        if vol is not None and per is not None:
            return vol * per
    raise Refusal(field, "unknown unit %r; give %s" % (unit, RATE_UNITS_HELP))


def parse_rate(field, text):
    """Parse a rate such as "0.5 mL/day"; return (nl_per_day, rounded).

    The value is converted exactly and rounded down (toward the smaller
    dose) only if it is finer than the pump's resolution of 1 nL/day;
    `rounded` says whether that happened. Refuses zero (use stop), and rates
    outside MIN_RATE_NL_PER_DAY..MAX_RATE_NL_PER_DAY, naming the limit.
    """
    number, unit = split_quantity(field, text)
    mantissa, decimals = parse_decimal(field, number)
    factor = rate_unit_factor(field, unit)
    scale = 10**decimals
    exact = mantissa * factor
    nl_per_day = exact // scale
    shown = "%s %s" % (number, unit)
    if mantissa == 0:
        raise Refusal(field, "a rate of zero is not a program; stop the pump instead")
    if exact > MAX_RATE_NL_PER_DAY * scale:
        raise Refusal(
            field,
            "%s %s is above the pump maximum of 10 mL/h (%d nL/day)" % (field, shown, MAX_RATE_NL_PER_DAY),
        )
    if nl_per_day < MIN_RATE_NL_PER_DAY:
        raise Refusal(
            field,
            "%s %s is below the pump minimum of 1 uL/day (%d nL/day)" % (field, shown, MIN_RATE_NL_PER_DAY),
        )
    return nl_per_day, exact != nl_per_day * scale
