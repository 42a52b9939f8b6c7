# What a pump that left for the board's REPL (SERVICE) leaves on the heap (tests/host/test_flash.py).
#
#   micropython tests/mp/repl_heap.py    (bench/mp/heap32_pump.py on the path)
#
# The sim board's PumpApp (the heap bench's pump, heap32_pump.py) runs as a board runs it,
# app.run(), and leaves at once, as after SERVICE: its link and monitoring tasks are still
# waiting when run() returns, which drops them (firmware/tasks.py). Prints "held N" (bytes the pump still
# holds once main() has dropped it, above what was allocated before any of it was imported)
# and then "left N [modules]" after firmware.main.free_for_the_repl().

import gc
import sys

import heap32  # noqa: F401 - the whole heap bench (its host too) before the base: the names it interns are not the pump's
import heap32_pump


class LineSerial(heap32_pump.BenchSerial):
    """A line on which nothing arrives: read_byte() waits, as a real one does."""

    async def read_byte(self):
        from firmware import tasks  # the pump's module: not loaded before the base

        while True:
            await tasks.sleep_ms(10)


def run_and_leave():
    import hal.watchdog  # noqa: F401 - a board's watchdog driver: the REPL keeps it (its timer feeds the watchdog)

    hw = heap32_pump.make_hardware()
    hw.serial = LineSerial()
    app = heap32_pump.boot(hw)
    app.leaving = True  # SERVICE was served: the dosing task ends at its first turn
    app.run()


gc.collect()
base = gc.mem_alloc()
run_and_leave()
gc.collect()
print("held", gc.mem_alloc() - base)
from firmware.main import free_for_the_repl  # noqa: E402

free_for_the_repl()
print("left", gc.mem_alloc() - base, sorted(m for m in sys.modules if m.split(".")[0] in ("firmware", "hal", "boards")))
