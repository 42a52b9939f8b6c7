# A program's checks are on the heap only while they check (firmware/lazy.py):
# after the factory library is read, a program built from its items (and one
# refused), a plain rate's program built and a program checked again under a
# stricter library (and refused), none of the modules that build and check a
# program is loaded and the package does not name them. Prints one line per
# check, then the heap figures in bytes on MicroPython ("heap parsed=N
# parser=N": what the results hold after a collection, and what loading the
# checks adds to that).
import gc
import sys

import firmware
from firmware.errors import Refusal
from firmware.lazy import TRANSIENT, call
from firmware.library import DrugLimits, Library, default_library
from firmware.program import build_program, recheck_program

# The items pumpctl sends for (tests/firmware/test_lazy.py checks they are):
#   drug morphine 20 mg/mL; fill 20 mL; flex 00:00 2 mg/day; flex 07:00 4 mg/day; flex 22:00 1 mg/day;
#   patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day
PROGRAM = (
    (1, "morphine", 0, 20000000, 0, 0, 0, 0, 0, 0),
    (3, "", 0, 20000000, 0, 0, 0, 0, 0, 0),
    (9, "", 1, 2000000, 0, 0, 0, 0, 0, 0),
    (9, "", 1, 4000000, 420, 0, 0, 0, 0, 0),
    (9, "", 1, 1000000, 1320, 0, 0, 0, 0, 0),
    (13, "", 1, 200000, 0, 600, 0, 3600, 0, 4),
)
# basal 2 mg/day; bolus 50 mg over 1 h
TOO_MUCH = ((8, "", 1, 2000000, 0, 0, 0, 0, 0, 0), (10, "", 1, 50000000, 0, 3600, 0, 0, 0, 0))


def loaded():
    return [m for m in TRANSIENT if m in sys.modules or hasattr(firmware, m[9:])]


def work():
    lib = default_library()
    print("library", lib.version, len(lib.order), loaded())
    p = build_program(PROGRAM, lib, ())
    print("program", p.program_crc(), p.flex_rates(), loaded())
    try:
        build_program(TOO_MUCH, lib, p.drugs)
    except Refusal as e:
        print("refused", e.field, loaded())
    rate = call("firmware.program_check", "rate_program", 500_000, lib, ())
    print("rate", rate.basal, loaded())
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
# The checks themselves, for scale: imported and kept.
__import__("firmware.program_items")
__import__("firmware.program_check")
parser = heap() - base - parsed
print("heap parsed=%d parser=%d" % (parsed, parser))
