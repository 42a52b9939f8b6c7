# A program's review rows, each canonical line (program_check.render) beside
# what it means for each drug of the blend, written when REVIEW asks for one:
# neither a staged nor a running program holds them.
#
#   basal 2 mg/day      0.1 mL/day = morphine 2 mg/day
#   flex 07:00 ...      (each step, then one row "flex day total ..." after the last)
#   bolus, patient-bolus   the dose's volume and each drug's mass
#
# Imported for the call and forgotten after it (lazy.py).
#
# Command path only: may allocate and use long ints.

from firmware.formats import format_dose_rate, format_mass, format_volume
from firmware.program import DOSE_MASS, DOSE_VOLUME, NL_PER_ML


def rows(p):
    """Every review row of Program p: [(line, detail)], a flex day's total as ("", its text)."""
    return [row(p, i) for i in range(len(p.lines) + bool(p.flex))]


def row(p, index):
    """Review row index of Program p, (line, detail): its lines in order, and after the last flex
    step ("", the flex day's total)."""
    lines = p.lines
    if p.flex:
        total_at = _first_flex(lines) + len(p.flex)
        if index == total_at:
            return "", "flex day total " + _per_drug(p, p.basal_daily_nl(), True)
        if index > total_at:
            index -= 1
    line = lines[index]
    return line, detail(p, line)


def detail(p, line):
    """What canonical line of Program p means for each drug of its blend ("" for a line that doses nothing)."""
    if line.startswith("basal "):
        return _per_drug(p, p.basal_rate_at(0), True)
    if line.startswith("flex "):
        _start, kind, per_day = p.flex[p.lines.index(line) - _first_flex(p.lines)]
        return _per_drug(p, p.volume(kind, per_day), True)
    if line.startswith("bolus "):
        return _per_drug(p, p.bolus_volume_nl(), False)
    if line.startswith("patient-bolus "):
        return _per_drug(p, p.patient_volume_nl(), False)
    return ""


def _first_flex(lines):
    for i in range(len(lines)):
        if lines[i].startswith("flex "):
            return i
    raise ValueError("no flex line")


def _per_drug(p, volume, per_day):
    parts = []
    for name, conc in p.drugs:
        ng = volume * conc // NL_PER_ML  # rounded down: for showing only
        parts.append("%s %s" % (name, format_dose_rate(DOSE_MASS, ng) if per_day else format_mass(ng)))
    vol = format_dose_rate(DOSE_VOLUME, volume) if per_day else format_volume(volume)
    return (vol + " = " + ", ".join(parts)) if parts else vol
