# ruff: noqa: UP031
# (written with % when it ran on the pump too)
#
# Integer units and the parsing of quantities a person typed (formats.py writes them).
#
# pumpctl reads what a person typed ("0.5 mL/day", a program's lines, a site's
# library file) into the pump's units with exact integer arithmetic, and sends
# the numbers; the pump checks every number against its ranges and limits. Any
# text that is not a plain decimal number followed by a known unit is refused
# with a reason naming the field, the value and what is accepted, before
# anything is sent.
#
# Internal units (all plain ints, never floats):
#   mass           ng           (1 mg = 1_000_000 ng, 1 mcg = 1_000 ng)
#   volume         nL (or pL in the scheduler; 1 mL = 1_000_000 nL)
#   concentration  ng/mL        (1 mg/mL = 1_000_000 ng/mL)
#   dose rate      ng/day or nL/day (see scheduler.py for why per day makes
#                  time and volume exact together)
#   duration       us
#   time of day    minutes after midnight, 0..1439
#
# Exact: a product of a 12-digit number with a unit factor is a Python int.

from firmware.codec import DOSE_MASS, DOSE_VOLUME, MAX_RATE_NL_PER_DAY, MIN_RATE_NL_PER_DAY
from firmware.errors import Refusal

from .formats import decimal_text as _decimal_text

# Volume units in nL. Matching ignores case ("ml" is mL; nobody means
# megalitres); "µ" (micro sign) and "μ" (Greek mu) are read as "u".
_VOLUME_NL = {"nl": 1, "ul": 1_000, "ml": 1_000_000}
# Time units as how many fit in a day.
_PER_DAY = {"s": 86_400, "min": 1_440, "h": 24, "day": 1}

_MAX_DIGITS = 12  # more significant digits than any pump setting needs
_MAX_TEXT = 40

# The refusals' texts: refusals.UNITS[n], imported only to refuse (_text).
_T_NO_NUMBER = 0
_T_NEGATIVE = 1
_T_EXPONENT = 2
_T_NOT_DECIMAL = 3
_T_LEADING_ZERO = 4
_T_ENDS_WITH_POINT = 5
_T_DIGITS = 6
_T_TEXT_TOO_LONG = 7
_T_NO_NUMBER_AT_START = 8
_T_RATE_NO_UNIT = 9
_T_RATE_UNKNOWN_UNIT = 10
_T_RATE_ZERO = 11
_T_RATE_ABOVE = 12
_T_RATE_BELOW = 13
_T_RATE_HELP = 14
_T_MASS_HELP = 15
_T_VOLUME_HELP = 16
_T_CONCENTRATION_HELP = 17
_T_DOSE_HELP = 18
_T_DOSE_RATE_HELP = 19
_T_DURATION_HELP = 20
_T_TIME_HELP = 21
_T_LONGER = 22
_T_NO_START_NUMBER = 23
_T_NO_UNIT = 24
_T_DURATION_UNIT = 25
_T_MICROGRAMS = 26
_T_PERCENT = 27
_T_DOSE_NOT_RATE = 28
_T_RATE_NOT_DOSE = 29
_T_UNKNOWN_UNIT = 30
_T_CONC_FINER = 31
_T_CONC_ZERO = 32
_T_DURATION_ABOVE = 33
_T_DURATION_FINER = 34
_T_TIME = 35
_T_TIME_NONE = 36
_T_TIME_AM_PM = 37
_T_TIME_COLON = 38
_T_TIME_HOUR_DIGITS = 39
_T_TIME_MINUTE_DIGITS = 40
_T_TIME_HOUR_RANGE = 41
_T_TIME_MINUTE_RANGE = 42
_T_COUNT_NONE = 43
_T_COUNT_NOT_WHOLE = 44
_T_COUNT_RANGE = 45


def _text(n):
    # Text n of refusals.UNITS (see there why a module of their own), for a refusal.
    from .refusals import UNITS

    return UNITS[n]


def parse_decimal(field, text):
    """Split a plain decimal into (mantissa, decimals): "0.50" -> (50, 2).

    Refuses signs, exponents, commas and empty numbers, so nothing a person
    typed is silently read as something else. A bare leading or trailing
    point (".5", "5.") is refused too: ISMP lists ".5" read as "5" among the
    error-prone ways of writing a dose.
    """
    return _decimal(field, text, _MAX_DIGITS)


def _decimal(field, text, max_digits):
    # One pass over the characters, building nothing but the number.
    if not text:
        raise Refusal(field, _text(_T_NO_NUMBER))
    if text[0] == "-":
        raise Refusal(field, _text(_T_NEGATIVE) % (field, text))
    point = -1
    mantissa = 0
    significant = 0  # digits after the leading zeros (of the digits before and after the point)
    for i in range(len(text)):
        c = ord(text[i])
        if c == 46 and point < 0:  # the first "."
            point = i
        elif 48 <= c <= 57:
            if mantissa or c != 48:
                significant += 1
            mantissa = mantissa * 10 + c - 48
        elif c == 101 or c == 69:  # "e", "E": an exponent
            raise Refusal(field, _text(_T_EXPONENT) % text)
        else:
            raise Refusal(field, _text(_T_NOT_DECIMAL) % text)
    if point == 0:
        raise Refusal(field, _text(_T_LEADING_ZERO) % (text, text))
    decimals = len(text) - point - 1 if point > 0 else 0
    if point > 0 and not decimals:
        raise Refusal(field, _text(_T_ENDS_WITH_POINT) % (text, text[:point]))
    if significant > max_digits or decimals > max_digits:
        raise Refusal(field, _text(_T_DIGITS) % (text, max_digits))
    return mantissa, decimals


def split_quantity(field, text):
    """Split "0.5 mL/day" into ("0.5", "mL/day"); the space is optional."""
    if len(text) > _MAX_TEXT:
        raise Refusal(field, _text(_T_TEXT_TOO_LONG) % (field, _MAX_TEXT))
    text = text.strip()
    number, unit = _cut_number(text)
    if not number:
        raise Refusal(field, _text(_T_NO_NUMBER_AT_START) % text)
    if not unit:
        raise Refusal(field, _text(_T_RATE_NO_UNIT) % (text, _text(_T_RATE_HELP)))
    return number, unit


def _cut_number(text):
    # Split stripped text into the leading number and the stripped rest.
    i = 0
    # Take commas and exponents into the number so that "1,5" or "1e3" is
    # refused as a number, not reported as a strange unit.
    while i < len(text) and text[i] in "0123456789.,+-eE":
        i += 1
    return text[:i], text[i:].strip()


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
    raise Refusal(field, _text(_T_RATE_UNKNOWN_UNIT) % (unit, _text(_T_RATE_HELP)))


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
        raise Refusal(field, _text(_T_RATE_ZERO))
    if exact > MAX_RATE_NL_PER_DAY * scale:
        raise Refusal(field, _text(_T_RATE_ABOVE) % (field, shown, MAX_RATE_NL_PER_DAY))
    if nl_per_day < MIN_RATE_NL_PER_DAY:
        raise Refusal(field, _text(_T_RATE_BELOW) % (field, shown, MIN_RATE_NL_PER_DAY))
    return nl_per_day, exact != nl_per_day * scale


# --- Doses, concentrations, durations and times as a clinician types them ---
#
# Every refusal names the field, the text as typed and what is accepted or
# the limit, with its unit. Typed text is quoted as '%s', not %r, which on
# MicroPython would show "µ" as "\xb5". Mass units are mg and mcg only:
# "ug", "µg" and "microgram" are refused because a handwritten or misread µg
# becomes mg, a thousandfold overdose (ISMP list of error-prone abbreviations).
#
# The firmware compiles this module from source in a board-sized heap, so it
# is kept lean: one parser for every amount unit, and comments rather than
# docstrings (comments cost no RAM there; docstrings and code do).

# The dose kinds are the wire's (codec.DOSE_MASS: ng, ng/day; DOSE_VOLUME: nL, nL/day).

MAX_DURATION_DAYS = 400
_US_PER_DAY = 86_400_000_000  # a long int on a 32-bit port: command path only
MAX_DURATION_US = MAX_DURATION_DAYS * _US_PER_DAY

# Mass units in ng; matching ignores case ("MG" is mg).
_MASS_NG = {"mg": 1_000_000, "mcg": 1_000}
# Micrograms written the error-prone way, as matched (µ/μ read as u, lower case).
_MICRO_G = ("ug", "microgram", "micrograms")

# Significant digits a duration may have: every microsecond up to 400 days
# in seconds (34559999.999999 s), so that all format_duration shows parses.
_DURATION_DIGITS = 14

# What an amount may be divided by: nothing (a dose), a time (a rate) or mL
# (a concentration).
_PER_NOTHING = 0
_PER_TIME = 1
_PER_ML = 2


def _no(field, shown, reason):
    # The one place a message is built: "<field> '<typed>'<reason>".
    return Refusal(field, "%s '%s'%s" % (field, shown, reason))


def _is_digits(text):
    # One or more ASCII digits (str.isdigit also takes other scripts' digits).
    for ch in text:
        if not "0" <= ch <= "9":
            return False
    return text != ""


def _unit_key(unit):
    # A unit as matched: µ/μ read as u, spaces around "/" cut, and only ASCII
    # lowered, as MicroPython's lower() does, so both match the same units.
    # A unit already so (most are, and a time of day) is returned as it is:
    # nothing allocated.
    upper = False
    for i in range(len(unit)):
        c = ord(unit[i])
        if 65 <= c <= 90:
            upper = True
        elif not (97 <= c <= 122 or 46 <= c <= 58 or c == 37):  # not a letter, "./0-9:" or "%"
            break
    else:
        return unit.lower() if upper else unit  # ASCII only: lower() is the same on both
    out = ""
    for ch in unit.replace("µ", "u").replace("μ", "u"):
        out += chr(ord(ch) + 32) if "A" <= ch <= "Z" else ch
    return "/".join([part.strip() for part in out.split("/")])


def _shown(field, text):
    # The typed text, stripped, after refusing text too long to be a value.
    if len(text) > _MAX_TEXT:
        raise _no(field, text[:_MAX_TEXT], _text(_T_LONGER) % _MAX_TEXT)
    return text.strip()


def _quantity(field, text, accepted, max_digits=_MAX_DIGITS, no_unit=-1):
    # (shown, mantissa, decimals, unit as typed) of "number unit" text; the
    # number as parse_decimal reads it, its refusal prefixed with the text.
    # accepted: the _T_ of what is accepted; no_unit: the _T_ of why a unit
    # is needed, or -1.
    shown = _shown(field, text)
    number, unit = _cut_number(shown)
    if not number:
        raise _no(field, shown, _text(_T_NO_START_NUMBER) % _text(accepted))
    try:
        mantissa, decimals = _decimal(field, number, max_digits)
    except Refusal as e:
        raise _no(field, shown, ": " + e.message) from None
    if not unit:
        raise _no(field, shown, _text(_T_NO_UNIT) % (_text(no_unit) if no_unit >= 0 else "", _text(accepted)))
    return shown, mantissa, decimals, unit


def _floor(mantissa, decimals, factor):
    # (floor of mantissa / 10**decimals * factor, whether it was rounded).
    scale = 10**decimals
    exact = mantissa * factor
    return exact // scale, exact % scale != 0


def _amount(field, text, accepted, kinds, per):
    # (kind, value, rounded, shown) of a mass or volume (kinds: a mask of
    # DOSE_MASS and DOSE_VOLUME), alone or per time or per mL (per); accepted:
    # the _T_ of what is accepted.
    shown, mantissa, decimals, unit = _quantity(field, text, accepted)
    key = _unit_key(unit)
    amount, slash, under = key.partition("/")
    if kinds & DOSE_MASS and amount in _MICRO_G:
        raise _no(field, shown, _text(_T_MICROGRAMS) % amount)
    if per == _PER_ML and key == "%":
        why = _text(_T_PERCENT) % (_decimal_text(mantissa, decimals), _decimal_text(mantissa * 10, decimals))
        raise _no(field, shown, why)
    kind = DOSE_MASS
    factor = _MASS_NG.get(amount) if kinds & DOSE_MASS else None
    if factor is None and kinds & DOSE_VOLUME:
        kind = DOSE_VOLUME
        factor = _VOLUME_NL.get(amount)
    if factor is not None:
        if per == _PER_TIME:
            if not slash:
                raise _no(field, shown, _text(_T_DOSE_NOT_RATE) % _text(accepted))
            factor = factor * _PER_DAY[under] if under in _PER_DAY else None
        elif per == _PER_ML:
            factor = factor if under == "ml" else None
        elif slash:
            if under in _PER_DAY:
                raise _no(field, shown, _text(_T_RATE_NOT_DOSE) % _text(accepted))
            factor = None
    if factor is None:
        raise _no(field, shown, _text(_T_UNKNOWN_UNIT) % (unit, _text(accepted)))
    value, rounded = _floor(mantissa, decimals, factor)
    return kind, value, rounded, shown


# A mass such as "250 mcg" or "1.5 mg" as (ng, rounded); see parse_dose.
def parse_mass(field, text):
    return _amount(field, text, _T_MASS_HELP, DOSE_MASS, _PER_NOTHING)[1:3]


# A volume such as "0.5 mL" or "20 uL" as (nl, rounded); see parse_dose.
def parse_volume(field, text):
    return _amount(field, text, _T_VOLUME_HELP, DOSE_VOLUME, _PER_NOTHING)[1:3]


# A dose as (kind, amount, rounded): DOSE_MASS in ng or DOSE_VOLUME in nL.
#
# Rounded down (toward the smaller dose) below 1 ng or 1 nL; `rounded` says
# whether it was. Zero is allowed: the caller decides. A rate is refused.
def parse_dose(field, text):
    return _amount(field, text, _T_DOSE_HELP, DOSE_MASS | DOSE_VOLUME, _PER_NOTHING)[:3]


# A rate such as "2 mg/day" or "0.5 mL/h" as (kind, per_day, rounded).
#
# DOSE_MASS in ng/day or DOSE_VOLUME in nL/day, rounded down to a whole
# unit per day (`rounded` says whether it was). Zero is allowed, and no
# pump limit applies (parse_rate is the pump's own volume rate).
def parse_dose_rate(field, text):
    return _amount(field, text, _T_DOSE_RATE_HELP, DOSE_MASS | DOSE_VOLUME, _PER_TIME)[:3]


# A concentration such as "25 mcg/mL" or "10 mg/mL" in ng/mL, exact.
#
# Refused, not rounded, if finer than 1 ng/mL; zero and % are refused.
def parse_concentration(field, text):
    _, value, rounded, shown = _amount(field, text, _T_CONCENTRATION_HELP, DOSE_MASS, _PER_ML)
    if rounded:
        raise _no(field, shown, _text(_T_CONC_FINER))
    if not value:
        raise _no(field, shown, _text(_T_CONC_ZERO))
    return value


# A duration such as "90 min" or "1.5 h" in us, exact, at most 400 days.
#
# Units s, min, h, day only ("m" may be minutes or months) and required;
# finer than 1 us is refused. Zero is allowed.
def parse_duration(field, text):
    # No unit: a 2004 pump recall (_T_DURATION_UNIT).
    shown, mantissa, decimals, unit = _quantity(field, text, _T_DURATION_HELP, _DURATION_DIGITS, _T_DURATION_UNIT)
    per = _PER_DAY.get(_unit_key(unit))
    if per is None:
        raise _no(field, shown, _text(_T_UNKNOWN_UNIT) % (unit, _text(_T_DURATION_HELP)))
    us, rounded = _floor(mantissa, decimals, _US_PER_DAY // per)
    if us > MAX_DURATION_US or us == MAX_DURATION_US and rounded:
        raise _no(field, shown, _text(_T_DURATION_ABOVE) % MAX_DURATION_DAYS)
    if rounded:
        raise _no(field, shown, _text(_T_DURATION_FINER))
    return us


# A 24-hour time "HH:MM" ("7:30" or "07:30") in minutes after midnight.
def parse_time_of_day(field, text):
    shown = _shown(field, text)
    hours, colon, minutes = shown.partition(":")
    low = _unit_key(shown).replace(".", "")
    why = -1
    if not shown:
        why = _T_TIME_NONE
    elif "am" in low or "pm" in low:
        why = _T_TIME_AM_PM
    elif not colon:
        why = _T_TIME_COLON
    elif not _is_digits(hours) or len(hours) > 2:
        why = _T_TIME_HOUR_DIGITS
    elif not _is_digits(minutes) or len(minutes) != 2:
        why = _T_TIME_MINUTE_DIGITS
    elif int(hours) > 23:
        why = _T_TIME_HOUR_RANGE
    elif int(minutes) > 59:
        why = _T_TIME_MINUTE_RANGE
    if why >= 0:
        raise _no(field, shown, _text(_T_TIME) % (_text(why), _text(_T_TIME_HELP)))
    return int(hours) * 60 + int(minutes)


# A whole number of plain digits in lo..hi.
def parse_count(field, text, lo, hi):
    shown = _shown(field, text)
    if not shown:
        why = _T_COUNT_NONE
    elif not _is_digits(shown):
        why = _T_COUNT_NOT_WHOLE
    elif not lo <= int(shown) <= hi:
        why = _T_COUNT_RANGE
    else:
        return int(shown)
    raise _no(field, shown, "%s %d to %d" % (_text(why), lo, hi))


# --- Formatters: exact text for showing a program back to a person ---
#
