# ruff: noqa: UP031
# The texts of the refusals of the parsers and the program's checks (units.py: UNITS,
# program_text.py: LINES, program_check.py: CHECKS), in a module of their own that each imports
# only to write a refusal (its _text).
#
# Loaded from .mpy into RAM (a Pico's stock build), every string constant of a module longer
# than 10 characters is an object made on the heap each time the module is imported, and the
# parsers and checks are imported for every programming step (lazy.py) while these texts are read
# only to refuse: here they cost nothing until a value is refused. Forgotten after the call, like
# the parsers (lazy.TRANSIENT).
#
# Each text's number is the constant, named in its comment, of the module that writes it.

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

LINES = (
    # _T_EMPTY
    "the program is empty; give at least a basal, flex or stop line",
    # _T_TOO_MANY_LINES: MAX_LINES, the lines
    "a program has at most %d lines, not %d",
    # _T_UNKNOWN_LINE: the line, the keywords
    "unknown line %r; lines start with one of: %s",
    # _T_DRUG_NONE_TWICE
    "only one drug none line is allowed",
    # _T_ABOVE_CONC: drug, concentration, the limit
    "%s %s is above the library's hard limit of %s",
    # _T_DRUG_TWICE: drug
    "drug %s is listed twice",
    # _T_BLEND: MAX_DRUGS_IN_BLEND, drug, its number
    "a blend holds at most %d drugs; %s would be drug %d",
    # _T_STOP_VALUE: the value
    "stop takes no value (got %r)",
    # _T_FLEX_AM_PM: time, am/pm word
    "flex %s %s: use 24-hour time, without am/pm (for example 19:30)",
    # _T_FLEX_STEPS: MAX_FLEX_STEPS, time, its number
    "a flex schedule has at most %d steps; flex %s would be step %d",
    # _T_FLEX_ORDER: time, the step before
    "flex steps must be in time order; %s is not after %s",
    # _T_FLEX_FIRST: time
    "the first flex step must start at 00:00, not %s",
    # _T_BOLUS_DELAY: delay, the most
    "bolus delay %s is above %s",
    # _T_PATIENT_FORM
    "write: patient-bolus DOSE over TIME lockout TIME max N per day",
    # _T_PATIENT_COUNT: the count
    "write the count as 'max N per day' (got %r)",
    # _T_TRIAL: duration
    "trial %s must be between 1 h and 30 day",
    # _T_ONCE: keyword
    "only one %s line is allowed",
    # _T_VOLUME_OR_NONE: field, volume, the most
    "%s %s must be 0 to %s",
    # _T_VOLUME: field, volume, the most
    "%s %s must be above 0 and at most %s",
    # _T_OVER_FORM: field, what followed it
    "write: %s DOSE over TIME (got %r)",
    # _T_DURATION: field, duration
    "%s duration %s must be above 0 and at most 24 h",
    # _T_DOSE_ZERO: field, dose
    "%s %s must be above zero",
    # _T_RATE_ZERO: field, rate
    "%s %s must be above zero (use a stop line to stop)",
)

CHECKS = (
    # _T_NONE_WITH_DRUGS
    "drug none cannot be given with drug lines",
    # _T_ONE_BASAL
    "give exactly one of: a basal line, flex lines, or stop",
    # _T_STOPPED_DOSES
    "a stopped program cannot have a bolus, bridge, patient-bolus or trial",
    # _T_ONE_BOLUS
    "one bolus at a time: give at most one of bolus, prime and bridge",
    # _T_MASS_NEEDS_DRUG
    "a dose in mg or mcg needs a drug line naming the drug and its concentration",
    # _T_REMOVED_NEEDS_FILL
    "removed is part of a refill: give the fill line with it",
    # _T_EMPTY_BELOW_LOW: empty level, low level
    "empty-reservoir %s must be below low-reservoir %s",
    # _T_BLEND_NEEDS_FILL
    "the blend changed (a refill): give a fill line with the volume the reservoir now holds",
    # _T_BRIDGE_NO_CHANGE
    "a bridge bolus is for a refill that changed a concentration; none changed",
    # _T_BRIDGE_SAME_DRUGS
    "a bridge needs the same drugs as before, with new concentrations",
    # _T_BRIDGE_MASS
    "a bridge keeps the dose steady, so the basal must be given as a dose (mg/day)",
    # _T_COMBINED_RATE: rate
    "the combined rate %s is above the pump maximum of 10 mL/h",
    # _T_TOO_SMALL: what, duration
    "%s is too small to deliver over %s",
    # _T_PRIME_TOO_SMALL: duration
    "prime is too small to deliver over %s",
    # _T_BELOW_MIN_RATE: field, rate
    "%s is %s, below the pump minimum of 1 uL/day",
    # _T_NO_PATIENT_BOLUS: drug
    "the library allows no patient bolus of %s",
    # _T_LOCKOUT_SHORT: lockout, minimum, drug
    "lockout %s is shorter than the library's minimum of %s for %s",
    # _T_PATIENT_MAX: count, maximum, drug
    "%d patient boluses per day is above the library's maximum of %d for %s",
)
