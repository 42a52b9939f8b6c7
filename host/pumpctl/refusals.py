# ruff: noqa: UP031
# The texts of the unit parsers' refusals (units.py's _T_ constants, each named in its
# comment): kept apart from when the parsers ran on the pump too, where a text cost heap.

UNITS = (
    # _T_NO_NUMBER
    "no number given",
    # _T_NEGATIVE: field, text
    "%s must not be negative (got %s)",
    # _T_EXPONENT: text
    "%r has an exponent: write the number out (0.5, not 5e-1)",
    # _T_NOT_DECIMAL: text
    "%r is not a plain decimal number (use a point as the decimal separator)",
    # _T_LEADING_ZERO: text, text
    "write a leading zero: 0%s, not %s",
    # _T_ENDS_WITH_POINT: text, the number before the point
    "%r ends with a decimal point; write %s",
    # _T_DIGITS: text, max_digits
    "%s has more than %d digits",
    # _T_TEXT_TOO_LONG: field, max length
    "%s text is longer than %d characters",
    # _T_NO_NUMBER_AT_START: text
    "%r does not start with a number",
    # _T_RATE_NO_UNIT: text, _T_RATE_HELP
    "%r has no unit; give %s",
    # _T_RATE_UNKNOWN_UNIT: unit, _T_RATE_HELP
    "unknown unit %r; give %s",
    # _T_RATE_ZERO
    "a rate of zero is not a program; stop the pump instead",
    # _T_RATE_ABOVE: field, shown, MAX_RATE_NL_PER_DAY
    "%s %s is above the pump maximum of 10 mL/h (%d nL/day)",
    # _T_RATE_BELOW: field, shown, MIN_RATE_NL_PER_DAY
    "%s %s is below the pump minimum of 1 uL/day (%d nL/day)",
    # _T_RATE_HELP
    "a volume per time: nL, uL or mL per s, min, h or day (for example 0.5 mL/day)",
    # _T_MASS_HELP
    "mg or mcg (for example 250 mcg)",
    # _T_VOLUME_HELP
    "nL, uL or mL (for example 0.5 mL)",
    # _T_CONCENTRATION_HELP
    "mg/mL or mcg/mL (for example 25 mcg/mL)",
    # _T_DOSE_HELP
    "a mass in mg or mcg, or a volume in nL, uL or mL (for example 250 mcg or 0.5 mL)",
    # _T_DOSE_RATE_HELP
    "mg, mcg, nL, uL or mL per s, min, h or day (for example 2 mg/day or 0.5 mL/day)",
    # _T_DURATION_HELP
    "s, min, h or day (for example 90 min)",
    # _T_TIME_HELP
    "24-hour HH:MM from 00:00 to 23:59 (for example 07:30)",
    # _T_LONGER: max length
    "... is longer than %d characters",
    # _T_NO_START_NUMBER: help
    " does not start with a number; give %s",
    # _T_NO_UNIT: what a unit is for, help
    " has no unit%s; give %s",
    # _T_DURATION_UNIT: (for _T_NO_UNIT)
    " (a unit is required: minutes and hours were confused in a 2004 pump recall)",
    # _T_MICROGRAMS: the unit as matched
    ": write mcg for micrograms, not %s: µg is misread as mg, a thousandfold overdose (ISMP error-prone abbreviations)",
    # _T_PERCENT: the number, ten times it
    ": give mg/mL, not a percentage: %s%% = %s mg/mL (1%% = 10 mg/mL)",
    # _T_DOSE_NOT_RATE: help
    " is a dose, not a rate; give %s",
    # _T_RATE_NOT_DOSE: help
    " is a rate; a dose, not a rate, is expected: give %s",
    # _T_UNKNOWN_UNIT: unit, help
    ": unknown unit '%s'; give %s",
    # _T_CONC_FINER
    " is finer than 1 ng/mL (0.001 mcg/mL), the resolution of a concentration;"
    " give at most 3 decimals in mcg/mL or 6 in mg/mL",
    # _T_CONC_ZERO
    ": a concentration must be above zero (at least 0.001 mcg/mL)",
    # _T_DURATION_ABOVE: MAX_DURATION_DAYS
    " is above the maximum of %d day",
    # _T_DURATION_FINER
    " is finer than 1 microsecond (0.000001 s)",
    # _T_TIME: why, _T_TIME_HELP
    ": %s; give %s",
    # _T_TIME_NONE
    "no time given",
    # _T_TIME_AM_PM
    "use 24-hour time, without am/pm",
    # _T_TIME_COLON
    "separate hours and minutes with a colon",
    # _T_TIME_HOUR_DIGITS
    "the hour must be one or two digits",
    # _T_TIME_MINUTE_DIGITS
    "the minutes must be two digits",
    # _T_TIME_HOUR_RANGE
    "the hour goes from 0 to 23 (midnight is 00:00)",
    # _T_TIME_MINUTE_RANGE
    "the minutes go from 00 to 59",
    # _T_COUNT_NONE
    ": no number given; give a whole number from",
    # _T_COUNT_NOT_WHOLE
    " is not a whole number; give plain digits from",
    # _T_COUNT_RANGE
    " is outside the range",
)
