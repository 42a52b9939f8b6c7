"""The dose guard's ring of 2400 buckets in 480-byte chunks (issue 19): a board
with a fragmented heap still makes and forks a guard, and the ring is saved as
the same 9.6 KB it always was (bucket i at bytes 4i..4i+3, little-endian), so a
record written by the firmware that kept the ring as one array restores."""

import struct
import sys
from array import array

import pytest
from vms import MP_DIR, run_unix

from firmware.guard import BUCKET_US, DAY_BUCKETS, HOUR_BUCKETS, US_PER_MDAY, DoseGuard
from firmware.store import Pieces, Store

sys.path.insert(0, str(MP_DIR))
from mem_storage import MemStorage  # noqa: E402  (tests/mp: shared with the VM scripts)

STEP_PL = 10_000
FLUID = (("x", 100_000, 10**9, 10**9, 10**9),)  # limits far above these counts
CUR = 130  # the current bucket: its hour window (31..130) crosses the chunk boundary at 120
# Buckets at both sides of chunk boundaries, the ring's ends, and the saturated marker.
OLD_VALUES = {0: 11, 31: 7, 119: 13, 120: 17, 130: 19, 131: 23, 239: 29, 240: 31, 1500: 447_392, 2399: 37}


def old_record():
    """The guard's sections as the firmware with one array("I") of 2400 saved them."""
    ring = array("I", bytes(4 * DAY_BUCKETS))
    for i, v in OLD_VALUES.items():
        ring[i] = v
    end_mday, end_us = divmod((CUR + 1) * BUCKET_US, US_PER_MDAY)
    ints = (CUR, end_mday, end_us, 0, 0, 0, 1234)
    return ints, ring


def at(t_us):
    return divmod(t_us, US_PER_MDAY)


def test_a_ring_saved_as_one_array_restores_to_the_same_windows_and_saves_as_the_same_bytes():
    ints, ring = old_record()
    g = DoseGuard(STEP_PL)
    g.restore(ints, [], bytes(ring), FLUID)
    now = CUR * BUCKET_US + 1
    hour = sum(v for i, v in OLD_VALUES.items() if CUR - HOUR_BUCKETS < i <= CUR)
    assert g.window_steps(*at(now)) == (sum(OLD_VALUES.values()), hour)
    assert bytes(g.saved_state()[2]) == bytes(ring)  # not one byte moved
    # One bucket later bucket 131 leaves the day window and bucket 31 the hour window; 3 steps go in 131.
    later = (CUR + 1) * BUCKET_US
    assert g.permit(*at(later), 3) == 3
    assert g.window_steps(*at(later)) == (sum(OLD_VALUES.values()) - 23 + 3, hour - 7 + 3 + 0)
    saved = bytes(g.saved_state()[2])
    assert len(saved) == 4 * DAY_BUCKETS
    assert struct.unpack_from("<I", saved, 4 * 131) == (3,)
    assert struct.unpack_from("<I", saved, 4 * 120) == (17,) and struct.unpack_from("<I", saved, 4 * 119) == (13,)


def test_the_store_writes_the_chunked_ring_byte_for_byte_as_it_wrote_one_array():
    ints, ring = old_record()
    g = DoseGuard(STEP_PL)
    g.restore(ints, [], bytes(ring), FLUID)
    chunked, whole = MemStorage(), MemStorage()
    Store(chunked).save([(5, g.saved_state()[2])])
    Store(whole).save([(5, Pieces(4 * DAY_BUCKETS, (ring,)))])
    assert chunked.files == whole.files
    seq, sections = Store(chunked).load()
    assert bytes(sections[5]) == bytes(ring)


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
