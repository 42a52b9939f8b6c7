# A Program written as the pump understood it (Program.saved): its library version, its items in
# canonical order (the order pumpctl writes its lines in), its warnings. Its review rows, CRC and
# saved record are read from what this writes (program.py, program_rows.py, persist.py), without
# this module; its CRC too (crc), made with it. And a plain rate's Program (SET_RATE), which needs
# no check beyond its range.
#
# Split from program_check.py so that the commands that write a program without checking its
# values (SET_RATE; a record of protocol 8's firmware read back) load only this, and a library's
# recheck of the running program (which keeps its items: only the version and warnings change)
# loads none of it.
#
# Imported for one call and forgotten after it (lazy.py).
#
# Command path only: may allocate and use long ints.

import binascii

from firmware import codec, const
from firmware.eventlog import esc, unesc
from firmware.program import BASAL_CONTINUOUS, BASAL_STOPPED, DOSE_VOLUME, Program

_US = const(1_000_000)


def saved(p):
    """Program p as the pump keeps it understood: the library version, a line per item ("i", its nine
    numbers and the drug's name last, escaped), a line per warning ("w" and its token, escaped)."""
    out = [esc(p.library_version)]
    if p.no_drug:
        _put(out, codec.ITEM_DRUG_NONE)
    for name, conc in p.drugs:
        _put(out, codec.ITEM_DRUG, 0, conc, 0, 0, 0, 0, esc(name))
    for item, nl in (
        (codec.ITEM_FILL, p.fill_nl),
        (codec.ITEM_REMOVED, p.removed_nl),
        (codec.ITEM_LOW, p.low_nl),
        (codec.ITEM_EMPTY, p.empty_nl),
    ):
        if nl is not None:
            _put(out, item, 0, nl)
    if p.basal_kind == BASAL_STOPPED:
        _put(out, codec.ITEM_STOP)
    elif p.basal_kind == BASAL_CONTINUOUS:
        _put(out, codec.ITEM_BASAL, p.basal[0], p.basal[1])
    for start, kind, per_day in p.flex:
        _put(out, codec.ITEM_FLEX, kind, per_day, start)
    if p.bolus is not None:
        kind, amount, dur, delay = p.bolus
        _put(out, codec.ITEM_BOLUS, kind, amount, 0, dur, delay)
    if p.prime is not None:
        _put(out, codec.ITEM_PRIME, 0, p.prime[0], 0, p.prime[1])
    if p.bridge_nl is not None:
        _put(out, codec.ITEM_BRIDGE, 0, p.bridge_nl)
    if p.patient is not None:
        kind, amount, dur, lockout, count = p.patient
        _put(out, codec.ITEM_PATIENT, kind, amount, 0, dur, lockout, count)
    if p.trial_us is not None:
        _put(out, codec.ITEM_TRIAL, 0, 0, 0, p.trial_us)
    for w in p.warnings:
        out.append("w" + esc(w))
    return "\n".join(out).encode()


def _put(out, item, kind=0, amount=0, start=0, duration=0, then=0, count=0, drug=""):
    """An item's line: STAGE_ITEM's fields after its index (program_items.py), the drug's name last."""
    out.append(
        "i%d,%d,%d,%d,%d,%d,%d,%d,%d,%s"
        % (item, kind, amount, start, duration // _US, duration % _US, then // _US, then % _US, count, drug)
    )


def crc(saved, version):
    """framing.program_crc (the wire's definition: each item's text and a newline, then the library
    version) of a program as saved (a line per item, "i" and its text, the drug's name escaped):
    each item's line and its newline straight from saved (no copy, no list of them), a line whose
    name was escaped (a backslash in it: none that a library's names allow) unescaped first."""
    mv = memoryview(saved)
    c = 0
    at = saved.find(b"\ni")
    while at >= 0:
        end = saved.find(b"\n", at + 1)
        if end < 0:  # the last line: no newline after it in saved
            end = len(saved)
        if saved.find(b"\\", at, end) >= 0:
            c = binascii.crc32((unesc(bytes(mv[at + 2 : end]).decode()) + "\n").encode(), c)
        else:
            c = binascii.crc32(b"\n", binascii.crc32(mv[at + 2 : end], c))
        at = saved.find(b"\ni", end)
    return binascii.crc32(version.encode(), c) & 0xFFFFFFFF


def written(p):
    """p with what it understood written (saved) and its CRC, for a program just checked."""
    p.saved = saved(p)
    p.crc = crc(p.saved, p.library_version)
    return p


def plain_rate(rate_nl_per_day, library_version):
    """The Program of a plain volume rate, in nL/day, of a pump with no drug in it (SET_RATE).

    SET_RATE has checked what program_check.check() would: a rate in the pump's range
    (MIN_RATE_NL_PER_DAY..MAX_RATE_NL_PER_DAY) and no drug in the reservoir. A basal of a volume
    and nothing else has no drug limit to pass, no other line to conflict with and the default
    reservoir levels, so no check refuses it or warns of it: it is written, not checked."""
    p = Program()
    p.basal = (DOSE_VOLUME, rate_nl_per_day)
    p.basal_kind = BASAL_CONTINUOUS
    p.library_version = library_version
    return written(p)
