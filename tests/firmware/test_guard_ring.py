"""The dose guard's ring of 2400 u16 buckets in 480-byte chunks (issue 19): a board
with a fragmented heap still makes and forks a guard, and the ring is saved as
4.8 KB (bucket i at bytes 2i..2i+1, little-endian). A bucket counts steps exactly
up to BUCKET_EXACT (all a delivery ever adds) and rescaled history above it in
units of 16, rounded up, up to the same BUCKET_CAP as before. A record written by
the firmware whose buckets were u32 (9.6 KB, persist format 4 and before, the
ring once one array) restores the whole 24 h of history: no step fewer, none wrapped."""

import struct
import sys
from array import array

import pytest
from test_boot_memory import HOUR, RATE_NL_PER_DAY, Board, storage_of
from vms import MP_DIR, run_unix

from firmware import persist
from firmware.admission import fluid_change
from firmware.guard import (
    BUCKET_CAP,
    BUCKET_EXACT,
    BUCKET_MAX_STEPS,
    BUCKET_US,
    DAY_BUCKETS,
    HOUR_BUCKETS,
    LIMIT_DAY,
    RAW_CAP,
    RAW_SATURATED,
    SATURATED,
    US_PER_MDAY,
    DoseGuard,
)
from firmware.guard_records import restore_guard
from firmware.store import Pieces, Store

sys.path.insert(0, str(MP_DIR))
from mem_storage import MemStorage  # noqa: E402  (tests/mp: shared with the VM scripts)
from rate_now import rate_now  # noqa: E402

STEP_PL = 10_000
FLUID = (("x", 100_000, 10**9, 10**9, 10**9),)  # limits far above these counts
CUR = 130  # the current bucket: its hour window (31..130) crosses the old chunk boundary at 120
# Buckets at both sides of the old (120) and new (240) chunk boundaries, the ring's ends, the largest
# number a bucket holds (BUCKET_CAP, 447,392), and one above BUCKET_EXACT that is no multiple of 16.
OLD_VALUES = {0: 11, 31: 7, 119: 13, 120: 17, 130: 19, 131: 23, 239: 29, 240: 31, 1500: 447_392, 1600: 40_001, 2399: 37}


def u32_ring(values):
    """The guard's ring as the firmware with u32 buckets saved it: 9.6 KB, bucket i at bytes 4i..4i+3."""
    ring = array("I", bytes(4 * DAY_BUCKETS))
    for i, v in values.items():
        ring[i] = v
    return bytes(ring)


def old_ints(cur=CUR):
    end_mday, end_us = divmod((cur + 1) * BUCKET_US, US_PER_MDAY)
    return (cur, end_mday, end_us, 0, 0, 0, 1234)


def raw(g):
    """The guard's buckets as saved: 4.8 KB, one u16 each."""
    saved = bytes(g.saved_state()[2])
    assert len(saved) == 2 * DAY_BUCKETS
    return list(struct.unpack("<%dH" % DAY_BUCKETS, saved))


def steps(r):
    """The steps a raw u16 bucket stands for."""
    return SATURATED if r == RAW_SATURATED else r if r <= BUCKET_EXACT else BUCKET_EXACT + 16 * (r - BUCKET_EXACT)


def at(t_us):
    return divmod(t_us, US_PER_MDAY)


def test_the_bounds_that_make_a_bucket_fit_a_u16():
    """The most steps the scheduler can issue in one 36 s bucket (its top rate, the smallest step any
    board may calibrate to) is within the guard's cap on a bucket, which a u16 counts exactly; the
    largest rescaled count, BUCKET_CAP, is a raw u16 below the saturated marker, and a day of them
    still sums to a small int."""
    from firmware.scheduler import MAX_RATE_NL_PER_DAY, MIN_STEP_PL

    most = -(-MAX_RATE_NL_PER_DAY * BUCKET_US // (US_PER_MDAY * MIN_STEP_PL)) + 1  # a step on each boundary
    assert most == 10_001
    assert most <= BUCKET_MAX_STEPS <= BUCKET_EXACT
    assert steps(RAW_CAP) == BUCKET_CAP and RAW_CAP < RAW_SATURATED == 0xFFFF
    assert DAY_BUCKETS * BUCKET_CAP < 2**30


def test_a_u32_ring_of_the_firmware_before_restores_every_step_of_its_day():
    g = DoseGuard(STEP_PL)
    restore_guard(g, old_ints(), [], u32_ring(OLD_VALUES), FLUID)
    now = CUR * BUCKET_US + 1
    hour = sum(v for i, v in OLD_VALUES.items() if CUR - HOUR_BUCKETS < i <= CUR)
    # 40,001 steps are kept as 40,016 (16-step units above BUCKET_EXACT, rounded up): never fewer
    assert g.window_steps(*at(now)) == (sum(OLD_VALUES.values()) + 15, hour)
    got = raw(g)
    assert steps(got[1500]) == 447_392 and steps(got[1600]) == 40_016
    assert {i: got[i] for i in OLD_VALUES if i < 1500 or i > 1600} == {
        i: v for i, v in OLD_VALUES.items() if i < 1500 or i > 1600
    }
    # One bucket later bucket 131 leaves the day window and bucket 31 the hour window; 3 steps go in 131.
    later = (CUR + 1) * BUCKET_US
    assert g.permit(*at(later), 3) == 3
    assert g.window_steps(*at(later)) == (sum(OLD_VALUES.values()) + 15 - 23 + 3, hour - 7 + 3)
    got = raw(g)
    assert got[131] == 3 and got[120] == 17 and got[119] == 13 and got[240] == 31 and got[239] == 29
    # the big buckets leave the day window with what they count, to the step
    for i, n in ((1500, 447_392), (1600, 40_016)):
        before = g.window_steps(*at(i * BUCKET_US - 1))[0]
        assert before - g.window_steps(*at(i * BUCKET_US))[0] == n


def test_an_old_saturated_bucket_stays_saturated():
    g = DoseGuard(STEP_PL)
    restore_guard(g, old_ints(), [], u32_ring({CUR: 2**30 - 1, 5: 12}), FLUID)
    assert raw(g)[CUR] == RAW_SATURATED
    assert (g.day_sat, g.hour_sat, g.day_sum, g.hour_sum) == (1, 1, 12, 0)  # bucket 5: before the hour window
    assert g.permit(*at(CUR * BUCKET_US + 1), 1) == 0 and g.tripped == LIMIT_DAY


def test_admission_reads_each_bucket_as_the_history_gives_it():
    """admission.admit reads the history it does not change a bucket at a time (DoseGuard.bucket):
    each count the same as history() gives, the oldest first, saturated and rescaled buckets too."""
    g = DoseGuard(STEP_PL)
    restore_guard(g, old_ints(), [], u32_ring({**OLD_VALUES, 7: 2**30 - 1}), FLUID)
    history = list(g.history(1, 1, ()))
    assert [g.bucket(k) for k in range(DAY_BUCKETS)] == history
    assert history[0] == OLD_VALUES[CUR + 1] and history[-1] == OLD_VALUES[CUR]  # the oldest first
    assert SATURATED in history and 447_392 in history and 40_016 in history  # 40,001 rounded up to 16 steps


def test_a_ring_that_no_guard_could_have_written_is_refused():
    g = DoseGuard(STEP_PL)
    for ring, why in (
        (u32_ring({7: BUCKET_CAP + 1}), "guard bucket 7 holds 447393 steps"),
        (struct.pack("<%dH" % DAY_BUCKETS, *([0] * 9 + [RAW_CAP + 1] + [0] * 2390)), "guard bucket 9 holds raw 58683"),
        (bytes(3 * DAY_BUCKETS), "guard ring of 7200 bytes"),
    ):
        with pytest.raises(ValueError, match=why):
            restore_guard(g, old_ints(), [], ring, FLUID)


def test_a_rescale_is_checked_as_the_ring_then_holds_it():
    """admission checks a change of fluid against DoseGuard.history(), a bucket at a time: it yields
    each count as the u16 ring will hold it (rounded up above BUCKET_EXACT), so what was admitted is
    what set_fluid() leaves, to the step."""
    g = DoseGuard(STEP_PL)
    g.set_fluid(((("x", 4_100_000, 10**12, 10**12, 10**12)),))
    for k, n in enumerate((1_000, 999, 1, 10_000, 0, 7)):
        assert g.permit(*at(k * BUCKET_US), n) == n
    weak = (("x", 100_000, 10**12, 10**12, 10**12),)  # 41 times weaker
    checked = list(g.history(*fluid_change(g, weak)[:3]))
    g.set_fluid(weak)
    assert checked == [steps(r) for r in raw(g)[6:] + raw(g)[:6]]  # oldest (bucket 6) first
    assert checked[-6:] == [41_008, 40_960, 41, 410_000, 0, 287]  # 41,000 and 40,959 rounded up to 16 steps
    assert g.window_steps(*at(5 * BUCKET_US)) == (sum(checked), sum(checked))


def test_a_pump_updated_from_the_u32_firmware_restores_its_guards_whole_day():
    """A record of format 4 (the firmware before, its ring 9.6 KB of u32) boots this firmware with
    the same windows, and its next save writes the 4.8 KB ring of format 5."""
    storage = storage_of({})
    board = Board(storage)
    rate_now(board.app, RATE_NL_PER_DAY)
    board.advance(3 * HOUR)
    board.app.save()
    guard = board.app.guard
    windows = guard.window_steps(guard._end_mday, guard._end_us - 1)
    assert windows == (1200, 400)
    ring = raw(guard)
    store = Store(storage)
    _seq, record = store.load()
    assert len(record[persist.TAG_RING]) == 2 * DAY_BUCKETS
    record[persist.TAG_RING] = u32_ring(dict(enumerate(ring)))
    record[persist.TAG_META] = bytes(record[persist.TAG_META]).replace(b"format 5\n", b"format 4\n")
    store.save(sorted((tag, bytes(data)) for tag, data in record.items()))
    assert len(Store(storage).load()[1][persist.TAG_RING]) == 4 * DAY_BUCKETS
    restored = Board(storage).app
    g = restored.guard
    assert raw(g) == ring
    assert g.window_steps(g._end_mday, g._end_us - 1) == windows
    assert g.saved_state()[0] == guard.saved_state()[0]
    restored.save()
    record = Store(storage).load()[1]
    assert bytes(record[persist.TAG_RING]) == struct.pack("<%dH" % DAY_BUCKETS, *ring)
    assert b"format 5\n" in bytes(record[persist.TAG_META])


def test_the_store_writes_the_chunked_ring_byte_for_byte_as_one_array():
    ring = array("H", bytes(2 * DAY_BUCKETS))
    for i, v in OLD_VALUES.items():
        ring[i] = min(v, BUCKET_EXACT)
    ring[77] = RAW_CAP
    ring[78] = RAW_SATURATED
    g = DoseGuard(STEP_PL)
    restore_guard(g, old_ints(), [], bytes(ring), FLUID)
    chunked, whole = MemStorage(), MemStorage()
    Store(chunked).save([(5, g.saved_state()[2])])
    Store(whole).save([(5, Pieces(2 * DAY_BUCKETS, (ring,)))])
    assert chunked.files == whole.files
    seq, sections = Store(chunked).load()
    assert bytes(sections[5]) == bytes(ring)
    h = DoseGuard(STEP_PL)
    seq, sections = Store(chunked).load({5: h.ring()})  # read into a guard's own chunks
    assert sections[5] is h.ring()
    restore_guard(h, old_ints(), [], sections[5], FLUID)
    assert raw(h) == list(ring) and h.day_sat == 1


FRAGMENTED = """
import gc
from firmware.admission import admit
from firmware.guard import DoseGuard

FLUID = (("x", 100_000, 5_000, 400, 300),)
gc.collect()
hold = [None] * 4000
n = 0
try:
    while n < 4000:
        hold[n] = bytearray(1536)
        n += 1
except MemoryError:
    pass
for i in range(0, n, 2):  # free every other block: holes of about 1.5 KB, no bigger
    hold[i] = None
gc.collect()
free = gc.mem_free()
try:
    block = bytearray(9600)
    big = "allocated"
except MemoryError:
    big = "refused"
block = None
g = DoseGuard(10_000)
g.set_fluid(FLUID)
got = 0
for k in range(200):  # 200 buckets: across the first chunk boundary
    t_us = k * 36_000_000
    got += g.permit(t_us // 86_400_000, t_us % 86_400_000, 3)
WEAK = (("x", 50_000, 5_000, 400, 300),)  # half the strength: twice the steps


class Bolus:  # a future of `steps` steps now, then none
    def __init__(self, steps):
        self.steps = steps

    def next_bucket(self):
        return self.steps


now = (t_us // 86_400_000, t_us % 86_400_000)
before = g.window_steps(*now)
# Checked against the history rescaled (a bucket at a time, no copy of the ring): 600 steps of
# the weak fluid in the hour, whose limit is 800 of them.
fits = admit(g, now[0], now[1], 150, Bolus(150), None, WEAK)
passes = admit(g, now[0], now[1], 250, Bolus(250), None, WEAK)
g.set_fluid(WEAK)
print("filled", n > 20, "free", free > 20_000, "9600 B block", big)
print("guard", got, before, "admit", fits, passes, "changed", g.window_steps(*now), g.hour_limit)
"""


@pytest.mark.micropython
def test_a_guard_is_made_and_changes_fluid_where_the_heap_has_no_block_of_2_kb_free(tmp_path):
    """On the MicroPython unix port in a fixed 256 KB heap (the webassembly VM's heap
    grows), cut into 1.5 KB holes (tens of KB free, no 9.6 KB block to be had), a
    guard is made, counts 200 buckets of steps, admits a new fluid against them
    rescaled and then rescales them: the ring needs no block bigger than 480 bytes.
    One array of 2400 fails here."""
    script = tmp_path / "fragmented.py"
    script.write_text(FRAGMENTED)
    lines = run_unix(script, heap="256K").splitlines()
    assert lines[0] == "filled True free True 9600 B block refused"
    # 3 steps in each of 200 buckets, 300 of them in the last hour (limits: 5000 and 400 steps);
    # at half the strength they count as twice the steps: 600 in the hour, whose limit is now 800
    # steps, so 150 more fit and 250 pass it (LIMIT_HOUR, 2).
    assert lines[1] == "guard 600 (600, 300) admit 0 2 changed (1200, 600) 800"
