# The firmware's whole per-tick path on the sim board (clock driver, timebase,
# scheduler, motor driver) with the heap locked: it must not allocate.
import micropython
from rate_now import rate_now

import boards.sim as board
from firmware.app import PumpApp

hw = board.make({})
app = PumpApp(board, hw)
rate_now(app, 240_000_000)  # 10 mL/h: a step every 3.6 ms
clock = hw.clock
sched = app.sched
tb = app.timebase
waits = 0
i = 0  # the loop's global made before the lock: a new global may grow the module's dict
micropython.heap_lock()
try:
    for i in range(300_000):
        clock.advance(997 + (i & 7))  # uneven ticks, through a few wraps
        waits += app.tick_and_wait()
finally:
    micropython.heap_unlock()
print(sched.steps(), hw.motor.steps_lo, tb.total_us(), tb.faults, waits > 0)
