"""The rule make bench's heap figures count interned names by (bench/heap_bench.pool_room): on the
32-bit VM the pools of interned names hold 20, 40, 80, ... names, each twice the last, and a name
that finds its pools full costs a whole new pool at once (7 bytes a slot, and about 64 for the
pool). The same sizes were seen on the emulated Pico (stock RPI_PICO 1.29, 6 bytes a slot).
If a new MicroPython changes the rule, the bench's charge for the harness's free slots and its
qstr_room would be wrong: this says so."""

import re
import sys

import pytest
from vms import ROOT, run_wasm32

pytestmark = pytest.mark.micropython32

sys.path.insert(0, str(ROOT / "bench"))
from heap_bench import FIRST_POOL_NAMES, POOL_SLOT_BYTES, pool_room  # noqa: E402


def test_a_new_pool_comes_exactly_when_pool_room_says_the_pools_are_full():
    out = run_wasm32(ROOT / "tests" / "mp" / "qstr_pools.py")
    start = re.search(r"n_pool=(\d+), n_qstr=(\d+)", out)
    assert start, out
    pools, names = int(start[1]), int(start[2])
    jumps = [(int(i), int(b)) for i, b in re.findall(r"^POOL (\d+) (\d+)$", out, re.M)]
    assert len(jumps) >= 5, out
    for interned, size in jumps:
        # the name that made this pool was the (interned + 1)-th of the probe: the pools were full before it
        assert pool_room(pools, names + interned) == 0, (pools, names, interned)
        capacity = FIRST_POOL_NAMES * 2**pools  # the new pool: twice the last one
        assert capacity * POOL_SLOT_BYTES <= size < capacity * POOL_SLOT_BYTES + 96, (interned, size)
        pools += 1
