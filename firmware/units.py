# ruff: noqa: UP031
# (the firmware formats with %, which every MicroPython port supports; not f-strings or format specs)
#
# Integer units and the parsing of quantities a person typed.
#
# The pump is the one authority on units: the host sends a rate as the text
# the person typed ("0.5 mL/day") and the pump converts it with exact integer
# arithmetic, so a unit can never be lost or reinterpreted on the way. Any
# text that is not a plain decimal number followed by a known unit is
# refused with a reason naming the field, the value and what is accepted.
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
    number, unit = _cut_number(text)
    if not number:
        raise Refusal(field, "%r does not start with a number" % text)
    if not unit:
        raise Refusal(field, "%r has no unit; give %s" % (text, RATE_UNITS_HELP))
    return number, unit


def _cut_number(text):
    """Split stripped text into the leading number and the stripped rest."""
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


# --- Doses, concentrations, durations and times as a clinician types them ---
#
# Every refusal names the field, the text as typed and what is accepted or
# the limit, with its unit. Typed text is quoted as '%s', not %r, which on
# MicroPython would show "µ" as "\xb5". Mass units are mg and mcg only:
# "ug", "µg" and "microgram" are refused because a handwritten or misread µg
# becomes mg, a thousandfold overdose (ISMP list of error-prone abbreviations).

DOSE_MASS = 1  # a dose or dose rate in ng or ng/day
DOSE_VOLUME = 2  # a dose or dose rate in nL or nL/day

_NG_PER_MG = 1_000_000
_NG_PER_MCG = 1_000
_US_PER_S = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_S  # a long int on a 32-bit port: command path only
MAX_DURATION_DAYS = 400
MAX_DURATION_US = MAX_DURATION_DAYS * _US_PER_DAY
_MINUTES_PER_DAY = 1_440

# Mass units in ng; matching ignores case ("MG" is mg).
_MASS_NG = {"mg": _NG_PER_MG, "mcg": _NG_PER_MCG}
# Micrograms written the error-prone way, after "µ"/"μ" -> "u" and lower case.
_MICRO_G = ("ug", "microgram", "micrograms")

_MASS_HELP = "mg or mcg (for example 250 mcg)"
_VOLUME_HELP = "nL, uL or mL (for example 0.5 mL)"
_CONCENTRATION_HELP = "mg/mL or mcg/mL (for example 25 mcg/mL)"
_DOSE_HELP = "a mass in mg or mcg, or a volume in nL, uL or mL (for example 250 mcg or 0.5 mL)"
_DOSE_RATE_HELP = "mg, mcg, nL, uL or mL per s, min, h or day (for example 2 mg/day or 0.5 mL/day)"
_DURATION_HELP = "s, min, h or day (for example 90 min)"
_TIME_HELP = "24-hour HH:MM from 00:00 to 23:59 (for example 07:30)"

# Enough significant digits for any microsecond up to 400 days in seconds
# (34559999.999999 s), so that every duration format_duration shows parses.
_DURATION_DIGITS = 14


def _is_digits(text):
    """True if text is one or more ASCII digits (str.isdigit takes any script)."""
    if not text:
        return False
    for ch in text:
        if not "0" <= ch <= "9":
            return False
    return True


def _unit_key(unit):
    """A unit as matched: µ/μ read as u, ASCII letters lowered, spaces
    around "/" cut ("MG / mL" is "mg/ml").

    Only ASCII is lowered so that CPython and MicroPython (whose lower()
    leaves non-ASCII alone) match exactly the same units.
    """
    out = ""
    for ch in unit.replace("µ", "u").replace("μ", "u"):
        if "A" <= ch <= "Z":
            ch = chr(ord(ch) + 32)
        out += ch
    return "/".join([part.strip() for part in out.split("/")])


def _shown(field, text):
    """The typed text, stripped, after refusing text too long to be a value."""
    if len(text) > _MAX_TEXT:
        raise Refusal(field, "%s '%s'... is longer than %d characters" % (field, text[:_MAX_TEXT], _MAX_TEXT))
    return text.strip()


def _number(field, shown, number, max_digits):
    """(mantissa, decimals) of a plain decimal; the rules of parse_decimal,
    with messages that name the field and the whole text typed."""
    if number[0] == "-":
        raise Refusal(field, "%s '%s' must not be negative" % (field, shown))
    whole, point, frac = number.partition(".")
    digits = whole + frac
    if not _is_digits(digits):
        raise Refusal(
            field,
            "%s '%s': '%s' is not a plain decimal number (use a point as the decimal separator;"
            " no sign, comma or exponent)" % (field, shown, number),
        )
    if not whole:
        raise Refusal(field, "%s '%s': write a leading zero: 0%s, not %s" % (field, shown, number, number))
    if point and not frac:
        raise Refusal(field, "%s '%s' ends with a decimal point; write %s" % (field, shown, whole))
    if len(digits.lstrip("0")) > max_digits or len(frac) > max_digits:
        raise Refusal(field, "%s '%s' has more than %d digits" % (field, shown, max_digits))
    return int(digits), len(frac)


def _quantity(field, text, accepted, no_unit="", max_digits=_MAX_DIGITS):
    """(shown, mantissa, decimals, unit) of "number unit" text, unit as typed."""
    shown = _shown(field, text)
    number, unit = _cut_number(shown)
    if not number:
        raise Refusal(field, "%s '%s' does not start with a number; give %s" % (field, shown, accepted))
    mantissa, decimals = _number(field, shown, number, max_digits)
    if not unit:
        raise Refusal(field, "%s '%s' has no unit%s; give %s" % (field, shown, no_unit, accepted))
    return shown, mantissa, decimals, unit


def _refuse_micro_g(field, shown, unit, key):
    """Refuse micrograms written as ug, µg, μg or microgram(s), alone or per something."""
    if key.split("/")[0] in _MICRO_G:
        raise Refusal(
            field,
            "%s '%s': write mcg for micrograms, not %s: µg is misread as mg, a thousandfold overdose"
            " (ISMP error-prone abbreviations)" % (field, shown, unit.split("/")[0].strip()),
        )


def _amount_factor(key):
    """(kind, ng or nL per 1 of the unit) of a mass or volume unit key, or None."""
    if key in _MASS_NG:
        return DOSE_MASS, _MASS_NG[key]
    if key in _VOLUME_NL:
        return DOSE_VOLUME, _VOLUME_NL[key]
    return None


def _unknown(field, shown, unit, accepted):
    return Refusal(field, "%s '%s': unknown unit '%s'; give %s" % (field, shown, unit, accepted))


def _floor(mantissa, decimals, factor):
    """(floor of mantissa / 10**decimals * factor, whether it was rounded)."""
    scale = 10**decimals
    exact = mantissa * factor
    value = exact // scale
    return value, exact != value * scale


def parse_mass(field, text):
    """Parse a mass such as "250 mcg" or "1.5 mg"; return (ng, rounded).

    Rounded down (toward the smaller dose) if finer than 1 ng; `rounded`
    says whether it was. Zero is allowed: the caller decides.
    """
    shown, mantissa, decimals, unit = _quantity(field, text, _MASS_HELP)
    key = _unit_key(unit)
    _refuse_micro_g(field, shown, unit, key)
    factor = _MASS_NG.get(key)
    if factor is None:
        raise _unknown(field, shown, unit, _MASS_HELP)
    return _floor(mantissa, decimals, factor)


def parse_volume(field, text):
    """Parse a volume such as "0.5 mL" or "20 uL"; return (nl, rounded).

    Rounded down if finer than 1 nL, flagged as in parse_mass. Zero allowed.
    """
    shown, mantissa, decimals, unit = _quantity(field, text, _VOLUME_HELP)
    factor = _VOLUME_NL.get(_unit_key(unit))
    if factor is None:
        raise _unknown(field, shown, unit, _VOLUME_HELP)
    return _floor(mantissa, decimals, factor)


def parse_concentration(field, text):
    """Parse a concentration such as "25 mcg/mL" or "10 mg/mL"; return ng/mL.

    Exact or refused: a concentration finer than 1 ng/mL is refused, not
    rounded, and so are zero and percentages.
    """
    shown, mantissa, decimals, unit = _quantity(field, text, _CONCENTRATION_HELP)
    key = _unit_key(unit)
    if key == "%":
        raise Refusal(
            field,
            "%s '%s': give mg/mL, not a percentage: %s%% = %s mg/mL (1%% = 10 mg/mL)"
            % (field, shown, _decimal_text(mantissa, decimals), _decimal_text(mantissa * 10, decimals)),
        )
    _refuse_micro_g(field, shown, unit, key)
    mass, _, per = key.partition("/")
    if mass not in _MASS_NG or per != "ml":
        raise _unknown(field, shown, unit, _CONCENTRATION_HELP)
    ng_per_ml, rounded = _floor(mantissa, decimals, _MASS_NG[mass])
    if rounded:
        raise Refusal(
            field,
            "%s '%s' is finer than 1 ng/mL (0.001 mcg/mL), the resolution of a concentration;"
            " give at most 3 decimals in mcg/mL or 6 in mg/mL" % (field, shown),
        )
    if ng_per_ml == 0:
        raise Refusal(field, "%s '%s': a concentration must be above zero (at least 0.001 mcg/mL)" % (field, shown))
    return ng_per_ml


def parse_dose_rate(field, text):
    """Parse a dose rate such as "2 mg/day" or "0.5 mL/day".

    Returns (kind, per_day, rounded): DOSE_MASS with ng/day or DOSE_VOLUME
    with nL/day, rounded down to a whole unit per day (`rounded` says
    whether it was). Zero is allowed: the caller decides. Unlike parse_rate
    this applies no pump limits.
    """
    shown, mantissa, decimals, unit = _quantity(field, text, _DOSE_RATE_HELP)
    key = _unit_key(unit)
    _refuse_micro_g(field, shown, unit, key)
    amount, slash, per = key.partition("/")
    found = _amount_factor(amount)
    if found is not None and not slash:
        raise Refusal(field, "%s '%s' is a dose, not a rate; give %s" % (field, shown, _DOSE_RATE_HELP))
    if found is None or per not in _PER_DAY:
        raise _unknown(field, shown, unit, _DOSE_RATE_HELP)
    kind, factor = found
    per_day, rounded = _floor(mantissa, decimals, factor * _PER_DAY[per])
    return kind, per_day, rounded


def parse_dose(field, text):
    """Parse a dose such as "250 mcg" or "0.5 mL"; return (kind, amount, rounded).

    DOSE_MASS with ng or DOSE_VOLUME with nL, rounded down below 1 ng or
    1 nL (`rounded` says whether it was). Zero allowed. A rate is refused.
    """
    shown, mantissa, decimals, unit = _quantity(field, text, _DOSE_HELP)
    key = _unit_key(unit)
    _refuse_micro_g(field, shown, unit, key)
    amount, slash, per = key.partition("/")
    found = _amount_factor(amount)
    if found is not None and slash and per in _PER_DAY:
        raise Refusal(field, "%s '%s' is a rate; a dose, not a rate, is expected: give %s" % (field, shown, _DOSE_HELP))
    if found is None or slash:
        raise _unknown(field, shown, unit, _DOSE_HELP)
    kind, factor = found
    value, rounded = _floor(mantissa, decimals, factor)
    return kind, value, rounded


def parse_duration(field, text):
    """Parse a duration such as "90 min" or "1.5 h"; return us.

    Units s, min, h, day only ("m" could be minutes or months). Exact or
    refused: finer than 1 us is refused. A unit is required. At most 400
    days. Zero allowed.
    """
    shown, mantissa, decimals, unit = _quantity(
        field,
        text,
        _DURATION_HELP,
        " (a unit is required: minutes and hours were confused in a 2004 pump recall)",
        _DURATION_DIGITS,
    )
    per = _PER_DAY.get(_unit_key(unit))
    if per is None:
        raise _unknown(field, shown, unit, _DURATION_HELP)
    us, rounded = _floor(mantissa, decimals, _US_PER_DAY // per)
    if us > MAX_DURATION_US or (us == MAX_DURATION_US and rounded):
        raise Refusal(field, "%s '%s' is above the maximum of %d day" % (field, shown, MAX_DURATION_DAYS))
    if rounded:
        raise Refusal(field, "%s '%s' is finer than 1 microsecond (0.000001 s)" % (field, shown))
    return us


def parse_time_of_day(field, text):
    """Parse a 24-hour time "HH:MM" ("7:30" or "07:30"); return minutes after midnight."""
    shown = _shown(field, text)
    if not shown:
        raise Refusal(field, "%s '%s': no time given; give %s" % (field, shown, _TIME_HELP))
    key = _unit_key(shown)
    for half in ("am", "pm", "a.m", "p.m"):
        if half in key:
            raise Refusal(field, "%s '%s': use 24-hour time, without am/pm; give %s" % (field, shown, _TIME_HELP))
    hours, colon, minutes = shown.partition(":")
    if not colon:
        raise Refusal(field, "%s '%s': separate hours and minutes with a colon; give %s" % (field, shown, _TIME_HELP))
    if not (_is_digits(hours) and len(hours) <= 2):
        raise Refusal(field, "%s '%s': the hour must be one or two digits; give %s" % (field, shown, _TIME_HELP))
    if not (_is_digits(minutes) and len(minutes) == 2):
        raise Refusal(field, "%s '%s': the minutes must be two digits; give %s" % (field, shown, _TIME_HELP))
    h = int(hours)
    m = int(minutes)
    if h > 23:
        raise Refusal(
            field, "%s '%s': the hour goes from 0 to 23 (midnight is 00:00); give %s" % (field, shown, _TIME_HELP)
        )
    if m > 59:
        raise Refusal(field, "%s '%s': the minutes go from 00 to 59; give %s" % (field, shown, _TIME_HELP))
    return h * 60 + m


def parse_count(field, text, lo, hi):
    """Parse a whole number of plain digits in lo..hi; return it."""
    shown = _shown(field, text)
    if not shown:
        raise Refusal(field, "%s '%s': no number given; give a whole number from %d to %d" % (field, shown, lo, hi))
    if not _is_digits(shown):
        raise Refusal(field, "%s '%s' is not a whole number; give plain digits from %d to %d" % (field, shown, lo, hi))
    n = int(shown)
    if not lo <= n <= hi:
        raise Refusal(field, "%s '%s' is outside the range %d to %d" % (field, shown, lo, hi))
    return n


# --- Formatters: exact text for showing a program back to a person ---
#
# parse(format(x)) == x for every x the parsers can return with at most 12
# significant digits (below 10**12 ng, nL, ng/mL, ng/day or nL/day) and
# every duration up to 400 days. Negative values raise ValueError: they
# are a bug in the caller, not something a person typed.


def _decimal_text(n, places):
    """n / 10**places written exactly, trailing zeros cut: (1500, 3) -> "1.5"."""
    whole, frac = divmod(n, 10**places)
    if frac == 0:
        return "%d" % whole
    digits = "%d" % frac
    digits = ("0" * (places - len(digits)) + digits).rstrip("0")
    return "%d.%s" % (whole, digits)


def _check(what, n):
    if n < 0:
        raise ValueError("%s must not be negative (got %d)" % (what, n))


def format_mass(ng):
    """Mass in ng as text: mg from 1 mg up ("1.5 mg"), else mcg ("250 mcg", "0.025 mcg"); 0 is "0 mg"."""
    _check("mass", ng)
    if ng == 0 or ng >= _NG_PER_MG:
        return _decimal_text(ng, 6) + " mg"
    return _decimal_text(ng, 3) + " mcg"


def format_volume(nl):
    """Volume in nL as text: mL from 1 mL up, uL from 1 uL up, else nL; 0 is "0 mL"."""
    _check("volume", nl)
    if nl == 0 or nl >= 1_000_000:
        return _decimal_text(nl, 6) + " mL"
    if nl >= 1_000:
        return _decimal_text(nl, 3) + " uL"
    return "%d nL" % nl


def format_concentration(ng_per_ml):
    """Concentration in ng/mL as text: mg/mL from 1 mg/mL up, else mcg/mL; 0 is "0 mg/mL" (never parsed)."""
    _check("concentration", ng_per_ml)
    if ng_per_ml == 0 or ng_per_ml >= _NG_PER_MG:
        return _decimal_text(ng_per_ml, 6) + " mg/mL"
    return _decimal_text(ng_per_ml, 3) + " mcg/mL"


def format_dose_rate(kind, per_day):
    """Dose rate in ng/day or nL/day as text, per day: "2 mg/day", "480 mcg/day";
    volumes in mL/day from 0.1 mL/day, uL/day from 1 uL/day, else nL/day;
    0 is "0 mg/day" or "0 mL/day"."""
    _check("dose rate", per_day)
    if kind == DOSE_MASS:
        return format_mass(per_day) + "/day"
    if kind != DOSE_VOLUME:
        raise ValueError("unknown dose kind %s" % (kind,))
    if per_day == 0 or per_day >= 100_000:
        return _decimal_text(per_day, 6) + " mL/day"
    if per_day >= 1_000:
        return _decimal_text(per_day, 3) + " uL/day"
    return "%d nL/day" % per_day


def format_dose(kind, amount):
    """A dose as format_mass (DOSE_MASS, ng) or format_volume (DOSE_VOLUME, nL)."""
    if kind == DOSE_MASS:
        return format_mass(amount)
    if kind == DOSE_VOLUME:
        return format_volume(amount)
    raise ValueError("unknown dose kind %s" % (kind,))


def format_duration(us):
    """Duration in us as text in the largest of day, h, min, s that divides it
    ("2 day", "90 min"), else in seconds with decimals ("1.5 s", "0.000001 s"); 0 is "0 s"."""
    _check("duration", us)
    if us == 0:
        return "0 s"
    for unit in ("day", "h", "min", "s"):
        size = _US_PER_DAY // _PER_DAY[unit]
        if us % size == 0:
            return "%d %s" % (us // size, unit)
    return _decimal_text(us, 6) + " s"


def format_time_of_day(minutes):
    """Minutes after midnight as 24-hour HH:MM: 450 is "07:30"."""
    if not 0 <= minutes < _MINUTES_PER_DAY:
        raise ValueError("time of day %d is outside 0..1439 minutes" % minutes)
    return "%02d:%02d" % (minutes // 60, minutes % 60)
