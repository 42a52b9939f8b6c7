# The default drug library with morphine's limits made 10x too lenient, as if
# a bug let a program skip the real library check. The harness scripts check
# a wrong program against it and run it on a pump whose guard holds the real
# limits (the pump's own library).
from firmware.druglib import DEFAULT_LIBRARY
from firmware.library import Library

MORPHINE_10X = ["100 mg/day", "150 mg/day", "10 mg/h", "20 mg/h", "10 mg", "10 mg"]


def lenient_library():
    entries = []
    for entry in DEFAULT_LIBRARY:
        e = list(entry)
        if e[0] == "morphine":
            e[2:8] = MORPHINE_10X  # daily soft/hard, rate soft/hard, bolus soft/hard
        entries.append(e)
    return Library("bug", entries)
