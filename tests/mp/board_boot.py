# The whole firmware on a real board's drivers, on the unix port: boards/<NAME>.py builds its
# hardware (hal/parts.py and its port's parts module) against stand-ins for `machine` and `rp2` or
# `esp32` (what cannot be real here), PumpApp boots on it, doses 24 h of pump time at a rate, and
# every step must reach the step driver's hardware: the PIO state machine's FIFO (rp2) or the RMT
# channel (esp32). Pump time comes from a tick counter that wraps at 2**30 as on the boards.
#
#   micropython board_boot.py BOARD STORAGE_DIR
#
# Prints: steps the scheduler issued, pulses the hardware was asked for, the interval word (rp2)
# or pulse length (esp32), and the HELLO board name.
import sys

BOARD, STORAGE = sys.argv[1], sys.argv[2]


class Pin:
    OUT = 1
    IN = 0
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, n, mode=0, pull=None, value=0):
        self.n = n
        self.level = value

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v

    def irq(self, handler=None, trigger=None):
        self.handler = handler


class I2C:
    def __init__(self, *args, **kwargs):
        pass

    def scan(self):
        return []  # no fuel gauge: the board falls back to its divider


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin):
        pass

    def atten(self, a):
        pass

    def read_u16(self):
        return 40_000


class PWM:
    def __init__(self, pin):
        pass

    def freq(self, f=None):
        return 0

    def duty_u16(self, d=None):
        return 0


class RTC:
    def datetime(self, t=None):
        return (2026, 12, 1, 1, 12, 0, 0, 0)


class WDT:
    def __init__(self, timeout=0):
        pass

    def feed(self):
        pass


class machine:  # a module stand-in (MicroPython makes no module objects at run time): import reads its attributes
    Pin = Pin
    I2C = I2C
    ADC = ADC
    PWM = PWM
    RTC = RTC
    WDT = WDT

    @staticmethod
    def disable_irq():
        return 0

    @staticmethod
    def enable_irq(state):
        pass


sys.modules["machine"] = machine


class StateMachine:
    """rp2.StateMachine as the driver uses it; the PIO makes each queued word's pulses at once."""

    def __init__(self, sm_id, prog, freq=0, sideset_base=None):
        self.pulses = 0
        self.words = []

    def active(self, v=None):
        return 1

    def restart(self):
        pass

    def exec(self, instruction):
        pass

    def get(self):
        return 0

    def tx_fifo(self):
        return 0  # drained as soon as put: the PIO keeps up with 2 ms steps

    def put(self, word):
        self.pulses += word & 0xFFFF
        self.words.append(word >> 16)


def asm_pio(**settings):
    def assemble(_program):
        from hal.rp2_stepper import PROGRAM_WORDS

        return [list(PROGRAM_WORDS)]  # what the real assembler gives (tests/test_drivers.py checks it)

    return assemble


class PIO:
    OUT_LOW = 0
    SHIFT_RIGHT = 1


class rp2:
    StateMachine = StateMachine
    asm_pio = staticmethod(asm_pio)
    PIO = PIO


sys.modules["rp2"] = rp2


class RMT:
    """esp32.RMT as the driver uses it: each burst is done at once."""

    made = []

    def __init__(self, channel, pin=None, clock_div=80, idle_level=False):
        self.pulses = 0
        self.durations = None
        RMT.made.append(self)

    def wait_done(self, timeout=0):
        return True

    def write_pulses(self, durations, data=True):
        self.pulses += len(durations) // 2
        self.durations = durations

    def deinit(self):
        pass


class esp32:
    RMT = RMT


sys.modules["esp32"] = esp32

board = __import__("boards." + BOARD, None, None, ("NAME",), 0)
hw = board.make({"storage": STORAGE})

ticks = [0x3FFF0000]  # a Pico's ticks_us, 65 ms before its first wrap


def ticks_us():
    return ticks[0]


def ticks_diff(a, b):
    return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000


hw.clock.ticks_us = ticks_us
hw.clock.ticks_diff = ticks_diff

from firmware import codec  # noqa: E402
from firmware.app import PumpApp  # noqa: E402

app = PumpApp(board, hw)
hello = app._hello(())
app.set_rate(500_000)  # 0.5 mL/day
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
print(app.sched.steps(), made, detail, hello[2], codec.MODE_NAMES[app._mode()])
