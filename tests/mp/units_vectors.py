# Prints the answers of the units parsers and formatters for fixed inputs.
# Run on CPython, the unix port and the 32-bit MicroPython: the output must
# be identical, byte for byte, or the host and the pump would read a dose
# differently. Several answers are above 2**30 (long ints on a 32-bit port).
from firmware.errors import Refusal
from firmware.formats import (
    format_concentration,
    format_dose,
    format_dose_rate,
    format_duration,
    format_mass,
    format_time_of_day,
    format_volume,
)
from firmware.program import DOSE_MASS, DOSE_VOLUME
from firmware.units import (
    MAX_DURATION_US,
    parse_concentration,
    parse_count,
    parse_dose,
    parse_dose_rate,
    parse_duration,
    parse_mass,
    parse_time_of_day,
    parse_volume,
)

PARSES = (
    (parse_mass, "250 mcg"),
    (parse_mass, "1.5 MG"),
    (parse_mass, "0.0005 mcg"),
    (parse_mass, "999999.999999 mg"),
    (parse_mass, "2 µg"),
    (parse_mass, "2 μg"),
    (parse_mass, "2 ug"),
    (parse_mass, "2 micrograms"),
    (parse_mass, "2 g"),
    (parse_mass, "1,5 mg"),
    (parse_volume, "0.5 mL"),
    (parse_volume, "20 µL"),
    (parse_volume, "0.0001 uL"),
    (parse_volume, "3 L"),
    (parse_concentration, "25 mcg/mL"),
    (parse_concentration, "10 MG / ML"),
    (parse_concentration, "0.75%"),
    (parse_concentration, "25 µg/mL"),
    (parse_concentration, "0.0001 mcg/mL"),
    (parse_concentration, "0 mg/mL"),
    (parse_dose_rate, "2000 mg/day"),
    (parse_dose_rate, "480 mcg/day"),
    (parse_dose_rate, "0.3333333 mcg/min"),
    (parse_dose_rate, "10 mL/h"),
    (parse_dose_rate, "999999999999 mg/s"),
    (parse_dose_rate, "2 mg"),
    (parse_dose_rate, "1 ug/h"),
    (parse_dose_rate, "1 mg/hr"),
    (parse_dose, "3.5 mg"),
    (parse_dose, "0.25 mL"),
    (parse_dose, "2 mg/day"),
    (parse_duration, "90 min"),
    (parse_duration, "400 day"),
    (parse_duration, "400.000001 day"),
    (parse_duration, "34559999.999999 s"),
    (parse_duration, "0.0000001 s"),
    (parse_duration, "24"),
    (parse_duration, "1 m"),
    (parse_duration, "-1 h"),
    (parse_time_of_day, "7:30"),
    (parse_time_of_day, "23:59"),
    (parse_time_of_day, "24:00"),
    (parse_time_of_day, "7.30"),
    (parse_time_of_day, "7:30 pm"),
)

for parse, text in PARSES:
    try:
        print(parse.__name__, "'" + text + "'", parse("f", text))
    except Refusal as e:
        print(parse.__name__, "'" + text + "'", "refused", e.field, e.message)

for text in ("12", "0", "+3", "1.0", "4294967297"):
    try:
        print("parse_count", "'" + text + "'", parse_count("n", text, 1, 4294967296))
    except Refusal as e:
        print("parse_count", "'" + text + "'", "refused", e.field, e.message)

for ng in (0, 25, 250_000, 1_500_000, 2_000_000_000, 999_999_999_999):
    print("mass", ng, format_mass(ng), format_dose(DOSE_MASS, ng), format_dose_rate(DOSE_MASS, ng))
for nl in (0, 5, 1_500, 50_000, 100_000, 2_500_000_000):
    print("volume", nl, format_volume(nl), format_dose(DOSE_VOLUME, nl), format_dose_rate(DOSE_VOLUME, nl))
for c in (1, 25_000, 7_500_000, 3_000_000_001):
    print("concentration", c, format_concentration(c), parse_concentration("c", format_concentration(c)) == c)
for us in (0, 1, 1_500_000, 5_400_000_000, 14_400_000_000, 172_800_000_000, MAX_DURATION_US - 1, MAX_DURATION_US):
    print("duration", us, format_duration(us), parse_duration("d", format_duration(us)) == us)
for minutes in (0, 450, 1439):
    print("time", minutes, format_time_of_day(minutes), parse_time_of_day("t", format_time_of_day(minutes)) == minutes)
