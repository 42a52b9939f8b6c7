# Replays dosing scenarios through the firmware's Timebase and DoseScheduler,
# driven by a tick counter that wraps at 2**30 as on a Pico, with the heap
# locked: any allocation (a float, a long int past 2**30, a new object) in
# the per-tick, per-step or rate-change code raises MemoryError.
#
# Runs unchanged on CPython, the MicroPython unix port and the 32-bit
# webassembly MicroPython. Reads scenarios.bin from the working directory:
# little-endian int32 words
#   count, then per scenario:
#   step_pl, start_mday, start_us, start_ticks, n_checks, n_words, events...
# events are (op, arg) pairs:
#   0 ADVANCE arg us (0..2**29-1): move ticks, advance time, poll
#   1 RATE    arg nL/day: set_rate now
#   2 CHECK   arg index: record steps_hi, steps_lo, mday, us
#   3 LONG    arg n: n ADVANCEs of 2**29-1 us each (years in a few words)
# Prints "heap_lock <works>" once, then per scenario one line of numbers:
#   timebase faults, then 4 numbers per check.
import array

from heaplock import heap_lock_works, lock, unlock

try:
    from time import ticks_add, ticks_diff

    if ticks_add(0, -1) != 0x3FFFFFFF:  # this port's ticks do not wrap at 2**30
        raise ImportError
except ImportError:  # CPython, or the unix port (2**62): emulate a Pico

    def ticks_add(a, b):
        return (a + b) & 0x3FFFFFFF

    def ticks_diff(a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000


from firmware.scheduler import DoseScheduler
from firmware.timebase import Timebase


def run(sched, tb, ticks, words, start, end, out):
    lock()
    try:
        i = start
        while i < end:
            op = words[i]
            arg = words[i + 1]
            i += 2
            if op == 0:
                new = ticks_add(ticks, arg)
                tb.advance(ticks_diff(new, ticks))
                ticks = new
                sched.poll(tb.mday, tb.us)
            elif op == 1:
                sched.set_rate(tb.mday, tb.us, arg)
            elif op == 3:
                while arg > 0:
                    new = ticks_add(ticks, 0x1FFFFFFF)
                    tb.advance(ticks_diff(new, ticks))
                    ticks = new
                    sched.poll(tb.mday, tb.us)
                    arg -= 1
            else:
                k = arg * 4
                out[k] = sched.steps_hi
                out[k + 1] = sched.steps_lo
                out[k + 2] = tb.mday
                out[k + 3] = tb.us
    finally:
        unlock()


def main():
    with open("scenarios.bin", "rb") as f:
        raw = f.read()
    words = array.array("i", raw)
    print("heap_lock", 1 if heap_lock_works() else 0)
    pos = 1
    for _ in range(words[0]):
        step_pl, mday, us, ticks, n_checks, n_words = words[pos : pos + 6]
        pos += 6
        sched = DoseScheduler(step_pl)
        tb = Timebase()
        tb.mday = mday  # a pump that has already run this long
        tb.us = us
        out = array.array("i", [0] * (4 * n_checks))
        run(sched, tb, ticks, words, pos, pos + n_words, out)
        pos += n_words
        print(tb.faults, " ".join(str(v) for v in out))


main()
