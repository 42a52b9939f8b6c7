# Where the 32-bit VM makes a new pool of interned names (tests/firmware/test_qstr_pools.py): names are
# interned one by one (an attribute lookup interns its name) and the heap's jumps are printed as
# "POOL <names interned so far> <bytes>", after the "qstr pool: n_pool=P, n_qstr=N, ..." line of the
# start (micropython.qstr_info).
import gc

import micropython

micropython.qstr_info()
_prev = gc.mem_alloc()
for _i in range(1400):
    hasattr(1, "pool_probe_%d" % _i)
    _now = gc.mem_alloc()
    if _now - _prev > 200:  # a pool (300 bytes and more); a name's text and its garbage are < 64 B
        print("POOL", _i, _now - _prev)
    _prev = _now
