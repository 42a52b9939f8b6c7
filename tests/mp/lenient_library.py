# The default drug library with morphine's limits made 10x too lenient, as if
# a bug let a program skip the real library check. The harness scripts check
# a wrong program against it and run it on a pump whose guard holds the real
# limits (the pump's own library).
from firmware.druglib import DEFAULT_NAMES, DEFAULT_NUMBERS
from firmware.library import DrugLimits, Library


def lenient_library():
    drugs = []
    for i in range(len(DEFAULT_NAMES)):
        numbers = list(DEFAULT_NUMBERS[i])
        if DEFAULT_NAMES[i] == "morphine":
            for f in range(1, 7):  # daily soft/hard, rate soft/hard, bolus soft/hard
                numbers[f] *= 10
        drugs.append(DrugLimits(DEFAULT_NAMES[i], numbers))
    return Library("bug", drugs)
