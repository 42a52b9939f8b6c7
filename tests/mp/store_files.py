# The file storage driver (hal/file_storage.py) and the record store over it,
# on the MicroPython unix port, in the working directory:
#
#   micropython store_files.py save   the driver's calls, then a 20 KB state saved
#   micropython store_files.py load   (a new process) what the last one saved
#
# Prints one line per check; the test compares them with what it expects.
import binascii
import gc
import sys

from mem_storage import pattern

import firmware.store_read  # noqa: F401  (kept loaded, so the bound on load()'s allocations is not its code's)
from firmware.store import MAX_SECTION, Store
from hal.file_storage import FileStorage

STATE = [(1, pattern(40, 1)), (2, pattern(MAX_SECTION, 2)), (3, pattern(3000, 3)), (9, b""), (200, pattern(257, 4))]


def digest(sections):
    return " ".join(
        "%d:%d:%08x" % (t, len(sections[t]), binascii.crc32(sections[t]) & 0xFFFFFFFF) for t in sorted(sections)
    )


def driver(fs):
    buf = bytearray(5)
    print("missing", fs.size("f"), fs.read_into("f", 0, buf))
    fs.begin("f")
    fs.append(b"hello ")
    fs.append(bytearray(b"wide "))
    fs.append(memoryview(b"world!!")[:5])
    fs.end()
    print("size", fs.size("f"))
    n = fs.read_into("f", 6, buf)
    print("read", n, bytes(buf))
    n = fs.read_into("f", 13, buf)
    print("short", n, bytes(buf[:n]))
    print("end", fs.read_into("f", 16, buf), fs.read_into("f", 99, buf))
    n = fs.read_into("f", 0, memoryview(buf)[1:3])
    print("view", n, bytes(buf))
    fs.begin("f")
    print("truncated", fs.size("f"))
    fs.append(b"xy")
    fs.end()
    n = fs.read_into("f", 0, buf)
    print("rewritten", n, bytes(buf[:n]))
    # Reading on from the file last read allocates nothing.
    view = memoryview(buf)
    gc.collect()
    gc.disable()
    start = gc.mem_alloc()
    for i in range(100):
        fs.read_into("f", i & 1, buf)
        fs.read_into("f", 0, view)
    used = gc.mem_alloc() - start
    gc.enable()
    print("read_alloc", used)


def main(phase):
    fs = FileStorage("flash")
    store = Store(fs)
    if phase == "save":
        driver(fs)
        print("seq", store.save(STATE[:2]), store.save(STATE))
        print("sizes", fs.size("state.0"), fs.size("state.1"))
        # What load() allocates beyond its sections, reading through the file driver.
        gc.collect()
        gc.disable()
        start = gc.mem_alloc()
        got = store.load()
        extra = gc.mem_alloc() - start - sum(len(d) for d in got[1].values())
        gc.enable()
        print("alloc", extra)
    else:
        seq, sections = store.load()
        print("load", seq, digest(sections))


main(sys.argv[1])
