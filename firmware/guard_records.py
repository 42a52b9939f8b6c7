# The dose guard's records rewritten off the dosing path, each loaded for the
# call and forgotten after it (lazy.call, lazy.TRANSIENT): a saved ring read
# back into the guard's own chunks with the rest of its saved state (a restore, at boot: this firmware's u16
# buckets, or an older one's u32 buckets as u16 ones), and the departed
# drugs' totals in steps of a new step volume (a calibration). The guard
# hands over what they change; neither keeps anything.

from firmware.guard import (
    BUCKET_CAP,
    BUCKET_EXACT,
    DAY_BUCKETS,
    RAW_CAP,
    RAW_SATURATED,
    SAT_HOUR,
    SAT_REST,
    SATURATED,
)
from firmware.store import Pieces


def restore_guard(guard, ints, departed, ring, drugs):
    """Put back into guard a saved_state() with the fluid drugs (set_fluid's tuples). ring: its
    bytes (u16 buckets, or the u32 ones of a firmware before them), or a guard's ring() holding
    them (a load read it into this one's, or into the one a retry after a MemoryError replaced).
    (Here, not in guard.py: only a restart restores, and the guard stays on the heap.)"""
    read_ring(ring, guard._ring)  # ValueError: not a guard's ring
    (
        guard._cur,
        guard._end_mday,
        guard._end_us,
        guard.tripped,
        guard.refused_steps,
        guard.delivered_hi,
        guard.delivered_lo,
    ) = ints
    guard.departed = [tuple(d) if len(d) == 6 else tuple(d) + (0,) for d in departed]
    guard._set_limits(drugs)
    guard._resum()


def read_ring(ring, chunks):
    """Check a saved ring and copy it into chunks (a guard's: DAY_BUCKETS u16 buckets in arrays of
    equal length, raw counts: see guard.BUCKET_EXACT). ring: a guard's ring() (a store Pieces of
    chunks holding it), its 2 * DAY_BUCKETS bytes (u16 little-endian, raw), or the 4 * DAY_BUCKETS
    bytes of a firmware whose buckets were u32 (persist format 4 and before: the steps themselves,
    0..BUCKET_CAP or SATURATED), each then kept as a u16 keeps it (above BUCKET_EXACT rounded up
    to 16 steps, never fewer, never wrapped). ValueError if it is not a guard's ring: of another
    size (nothing copied), or a bucket no guard holds (the copy stops there: the restore fails)."""
    n = len(ring)
    if n != 2 * DAY_BUCKETS and n != 4 * DAY_BUCKETS:
        raise ValueError("guard ring of %d bytes, not %d" % (n, 2 * DAY_BUCKETS))
    per = len(chunks[0])  # buckets in a chunk
    saved = None
    raw = ring
    if isinstance(ring, Pieces):
        saved = ring.pieces
        raw = b""
    wide = n == 4 * DAY_BUCKETS
    for i in range(DAY_BUCKETS):
        if saved is not None:
            b = saved[i // per][i % per]
        elif wide:
            k = 4 * i  # a bucket is 0..BUCKET_CAP or SATURATED, below 2**30: a small int
            b = raw[k] | raw[k + 1] << 8 | raw[k + 2] << 16 | raw[k + 3] << 24
            if b > BUCKET_CAP and b != SATURATED:
                raise ValueError("guard bucket %d holds %d steps" % (i, b))
            if b == SATURATED:
                b = RAW_SATURATED
            elif b > BUCKET_EXACT:
                b = BUCKET_EXACT + ((b - BUCKET_EXACT + 15) >> 4)  # rounded up: never fewer steps
        else:
            b = raw[2 * i] | raw[2 * i + 1] << 8
        if RAW_CAP < b < RAW_SATURATED:
            raise ValueError("guard bucket %d holds raw %d" % (i, b))
        chunks[i // per][i % per] = b


def rescale_departed(departed, old_pl, new_pl):
    """The departed records (name, conc, day_steps, hour_steps, change_end_us, sat) in steps
    of new_pl instead of old_pl: the hour and rest-of-day totals each rounded up (never
    less drug than was delivered); a total that could never fit back is recorded as
    saturated instead."""
    rescaled = []
    for name, conc, day, hour, end, sat in departed:
        hour_new = -(-hour * old_pl // new_pl)
        rest_new = -(-(day - hour) * old_pl // new_pl)
        if hour_new > DAY_BUCKETS * BUCKET_CAP:  # could never fit back: saturated
            hour_new = 0
            sat |= SAT_HOUR
        if rest_new > DAY_BUCKETS * BUCKET_CAP - hour_new:
            rest_new = 0
            sat |= SAT_REST
        rescaled.append((name, conc, hour_new + rest_new, hour_new, end, sat))
    return rescaled
