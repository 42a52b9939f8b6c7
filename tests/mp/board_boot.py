# The whole firmware on a real board's drivers, on the unix port: boards/<NAME>.py builds its
# hardware (hal/parts.py and its port's parts module) against stand-ins for `machine` and `rp2` or
# `esp32` (what cannot be real here: tests/mp/board_standins.py), PumpApp boots on it, doses 24 h of
# pump time at a rate, and every step must reach the step driver's hardware: the PIO state
# machine's FIFO (rp2) or the RMT channel (esp32). Pump time comes from a tick counter that wraps
# at 2**30 as on the boards.
#
#   micropython board_boot.py BOARD STORAGE_DIR
#
# Prints: steps the scheduler issued, pulses the hardware was asked for, the interval word (rp2)
# or pulse length (esp32), and the HELLO board name.
import sys

import board_standins  # machine, rp2 and esp32 as the drivers use them
from board_standins import RMT

BOARD, STORAGE = sys.argv[1], sys.argv[2]

board_standins.install(BOARD)

board = __import__("boards." + BOARD, None, None, ("NAME",), 0)
hw = board.make({"storage": STORAGE})

ticks = [0x3FFF0000]  # a Pico's ticks_us, 65 ms before its first wrap


def ticks_us():
    return ticks[0]


def ticks_diff(a, b):
    return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000


hw.clock.ticks_us = ticks_us
hw.clock.ticks_diff = ticks_diff

from rate_now import rate_now  # noqa: E402

from firmware import codec  # noqa: E402
from firmware.app import PumpApp  # noqa: E402

app = PumpApp(board, hw)
hello = app.commands.get(codec.HELLO)(())
rate_now(app, 500_000)  # 0.5 mL/day
left_us = 24 * 3600 * 1_000_000
while left_us > 0:
    wait = app.tick_and_wait()
    hw.clock.idle()  # what BoardClock.sleep_us() does first: the motor's poll()
    step = wait if wait < left_us else left_us
    if step < 1:
        step = 1
    ticks[0] = (ticks[0] + step) & 0x3FFFFFFF
    left_us -= step
app.tick()
hw.clock.idle()
if BOARD == "rp2_pico":
    sm = hw.motor._sm
    made, detail = sm.pulses, sm.words[0] if sm.words else -1
else:
    made = sum(r.pulses for r in RMT.made)
    detail = RMT.made[-1].durations[0] if RMT.made[-1].durations else -1
print(app.sched.steps(), made, detail, hello[2], app.mode())  # the mode code: its name is the host's
