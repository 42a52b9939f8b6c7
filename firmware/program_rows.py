# REVIEW's rows of a program, as the pump understood it: each item (as STAGE_ITEM's fields after the
# index, read from what its check wrote: Program.saved) with what it means in the fluid (nL, or nL/day
# for a rate), a flex day's total after its last step, what committing does to a running bolus,
# prime or bridge, then a row per soft-limit warning. pumpctl writes them as lines.
#
# Imported for the call and forgotten after it (lazy.py): neither a staged nor a running program
# holds its rows.
#
# Command path only: may allocate and use long ints.

from firmware import codec, const
from firmware.eventlog import unesc
from firmware.program import MIN_PER_DAY

# What committing does to a bolus, prime or bridge (commands/program.py's _DELIVERY_*).
_DELIVERY_NONE = const(0)
_DELIVERY_CANCEL = const(3)
# The items of a delivery that acts once, and the rows that are no item (codec.ITEM_*).


def _no_item(code):
    return (code, "", 0, 0, 0, 0, 0, 0, 0, 0)


def own_rows(program):
    """The rows of a program's own: its items, and a flex day's total after them."""
    return program.understood().count(b"\ni") + bool(program.flex)


def row(program, index, verdict=_DELIVERY_NONE, note=""):
    """Review row index: (item, volume_nl, note). verdict: what committing does to a bolus, prime or
    bridge (commands/program.py's _DELIVERY_*), note what the review says of it: on the delivery's row
    (a new dose, or the running one unchanged), or a row of its own after the items (cancelled)."""
    base = own_rows(program)
    if index < base:
        item, volume = item_row(program, index)
        if (
            verdict == _DELIVERY_NONE
            or verdict == _DELIVERY_CANCEL
            or not codec.ITEM_BOLUS <= item[0] <= codec.ITEM_BRIDGE
        ):
            note = ""
        return item, volume, note
    if verdict == _DELIVERY_CANCEL:
        if index == base:
            return _no_item(codec.ITEM_NOTE), 0, note
        base += 1
    return _no_item(codec.ITEM_WARNING), 0, program.warnings[index - base]


def item_row(program, index):
    """Row index of a program's own (own_rows): (its item, nL it means in the fluid, or nL/day; 0 if it
    doses nothing); after the last flex step the flex day's total."""
    rows = item_rows(program)
    if program.flex:
        first = 0
        while not rows[first].startswith("i%d," % codec.ITEM_FLEX):
            first += 1
        if index == first + len(program.flex):
            return _no_item(codec.ITEM_FLEX_TOTAL), basal_daily_nl(program)
        if index > first + len(program.flex):
            index -= 1
    cells = rows[index][1:].split(",", 9)  # the drug's name last: it may hold a comma
    item = int(cells[0])
    kind = int(cells[1])
    amount = int(cells[2])
    it = (item, unesc(cells[9]), kind, amount) + tuple(int(c) for c in cells[3:9])
    if item == codec.ITEM_BASAL:
        volume = program.basal_rate_at(0)
    elif item == codec.ITEM_FLEX or item == codec.ITEM_BOLUS or item == codec.ITEM_PATIENT:
        volume = program.volume(kind, amount)
    elif item == codec.ITEM_PRIME or item == codec.ITEM_BRIDGE:
        volume = amount
    else:
        volume = 0
    return it, volume


# Here, not in program.py, which the running pump keeps: only a review row asks.
def item_rows(program):
    """Its items as saved: "i" and the numbers, the drug's name last, escaped (program_write.saved)."""
    return [r for r in program.understood().decode().split("\n") if r[:1] == "i"]


def basal_daily_nl(program):
    """One full day of the basal in nL, rounded down (for showing)."""
    return program.basal_day_nl_min() // MIN_PER_DAY
