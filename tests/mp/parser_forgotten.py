# The text parsers are on the heap only while they read text (firmware/lazy.py):
# after the factory library is read, a program parsed (and one refused), a
# plain rate parsed and a program checked again under a stricter library (and
# refused), none of the parser modules is loaded and the package does not name
# them. Prints one line per check, then the heap figures in bytes on
# MicroPython ("heap parsed=N parser=N": what the results hold after a
# collection, and what loading the parsers adds to that).
import gc
import sys

import firmware
from firmware.errors import Refusal
from firmware.lazy import TRANSIENT, call
from firmware.library import DrugLimits, Library, default_library
from firmware.program import parse_program, recheck_program

PROGRAM = (
    "drug morphine 20 mg/mL",
    "fill 20 mL",
    "flex 00:00 2 mg/day",
    "flex 07:00 4 mg/day",
    "flex 22:00 1 mg/day",
    "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day",
)


def loaded():
    return [m for m in TRANSIENT if m in sys.modules or hasattr(firmware, m[9:])]


def work():
    lib = default_library()
    print("library", lib.version, len(lib.order), loaded())
    p = parse_program(PROGRAM, lib, ())
    print("program", p.lines[2], p.flex_rates(), loaded())
    try:
        parse_program(("basal 2 mg/day", "bolus 50 mg over 1 h"), lib, p.drugs)
    except Refusal as e:
        print("refused", e.field, loaded())
    nl_per_day, rounded = call("firmware.units", "parse_rate", "rate", "0.5 mL/day")
    rate = call("firmware.program_check", "rate_program", nl_per_day, lib, ())
    print("rate", (rate.basal[1], rounded), rate.lines, loaded())
    strict = list(lib.drugs["morphine"].numbers)
    strict[2] = strict[1] = 1_000_000  # daily 1 mg/day: the program above gives 2.4 mg
    try:
        recheck_program(p, Library("strict", [DrugLimits("morphine", strict)]), p.drugs)
    except Refusal as e:
        print("recheck refused", e.field, loaded())
    return lib, p


def heap():
    gc.collect()
    return gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0  # MicroPython's (CPython has none)


base = heap()
kept = work()
parsed = heap() - base  # what the library and the program hold, and the names interned
# The parsers themselves, for scale: imported and kept.
__import__("firmware.program_text")
__import__("firmware.program_check")
parser = heap() - base - parsed
print("heap parsed=%d parser=%d" % (parsed, parser))
