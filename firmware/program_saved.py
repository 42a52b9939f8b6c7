# A saved program read back at a restart (persist.py): a PROGRAM_ITEMS section (what a check wrote
# of a program: program_write.saved), each item checked again for its form as STAGE_ITEM's are
# (program_items._read); and a PROGRAM_VALUES section of protocol 8's firmware, whose format is
# known (that firmware parsed the lines this one has no parser for).
#
# Imported for the call and forgotten after it (lazy.py): a restart only.
#
# Command path only: may allocate and use long ints.

from firmware import const
from firmware.program import BASAL_STOPPED, Program
from firmware.program_items import _read


def from_saved(data, unesc):
    """The Program of a PROGRAM_ITEMS section (program_write.saved), as it was checked; ValueError if it
    is not one."""
    rows = bytes(data).decode().split("\n")
    p = Program()
    p.library_version = unesc(rows[0])
    stopped = False
    for row in rows[1:]:
        if row[:1] == "i":
            cells = row[1:].split(",", 9)  # the name last: it may hold a comma
            if len(cells) != 10:
                raise ValueError("program item of %d fields" % len(cells))
            it = [int(v) for v in cells[:9]]
            it.insert(1, unesc(cells[9]))
            stopped = _read(p, it, None) or stopped
        elif row[:1] == "w":
            p.warnings.append(unesc(row[1:]))
        else:
            raise ValueError("program items: unknown row %r" % row[:10])
    if p.basal_kind == BASAL_STOPPED and not stopped:
        raise ValueError("program items: no basal, flex or stop")
    p.saved = bytes(data)  # as its check wrote it
    return p


# -- a record of protocol 8's firmware (persist.py) ------------------------------------------

# A PROGRAM_VALUES section of protocol 8's firmware (0.3.0): a Program's values, one line each after
# that firmware's version, in this order: the ints ("-" for None), each optional tuple as its ints
# joined by "," ("-" for None), the flex steps ("start,kind,per_day" joined by ";"), the blend, the
# library version, then one line per canonical line ("d" line TAB) and per warning ("w" text), escaped.
_PROGRAM_INTS = const(("no_drug", "fill_nl", "removed_nl", "low_nl", "empty_nl", "basal_kind", "bridge_nl", "trial_us"))
_PROGRAM_TUPLES = const(("basal", "bolus", "prime", "patient"))
_VALUES_OF = const(("0.3.0",))  # the firmware versions whose PROGRAM_VALUES are read


def from_values(data, lines, library_version, unesc):
    """The Program a PROGRAM_VALUES section of protocol 8's firmware holds, or None if it cannot be
    read: written by a firmware whose format is not known here, for other lines, or under another
    library (its values were checked against the one the record holds). Its warnings stay the texts
    that firmware wrote. A section of the wrong shape: ValueError (persist.py: the program is not run)."""
    rows = bytes(data).decode().split("\n")
    if rows[0] not in _VALUES_OF or len(rows) < 9 or unesc(rows[8]) != library_version:
        return None
    p = Program()
    ints = rows[1].split(" ")
    if len(ints) != len(_PROGRAM_INTS):
        raise ValueError("program values: %d ints, not %d" % (len(ints), len(_PROGRAM_INTS)))
    for i in range(len(ints)):
        setattr(p, _PROGRAM_INTS[i], None if ints[i] == "-" else int(ints[i]))
    p.no_drug = bool(p.no_drug)
    for i in range(len(_PROGRAM_TUPLES)):
        v = rows[2 + i]
        setattr(p, _PROGRAM_TUPLES[i], None if v == "-" else tuple(int(x) for x in v.split(",")))
    p.flex = [tuple(int(x) for x in step.split(",")) for step in rows[6].split(";")] if rows[6] else []
    p.drugs = []
    for item in rows[7].split(",") if rows[7] else ():
        name, _, conc = item.partition(":")
        p.drugs.append((name, int(conc)))
    p.library_version = library_version
    of_lines = []  # the lines these values are of
    for row in rows[9:]:
        if row[:1] == "d":
            line, tab, _detail = row[1:].partition("\t")
            if not tab:
                raise ValueError("program values: a line's row without its tab")
            if line:
                of_lines.append(unesc(line))
        elif row[:1] == "w":
            p.warnings.append(unesc(row[1:]))
        else:
            raise ValueError("program values: unknown row %r" % row[:10])
    if of_lines != lines:
        return None  # not these lines' values
    return p
