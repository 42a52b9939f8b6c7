# The real-board drivers' hot paths on MicroPython with the heap locked:
# PioStepper.step/poll, RmtStepper.step/poll, HX711.read_raw and the mass and
# volume maths, MAX17048 and divider battery readings, muldiv. Any allocation
# raises MemoryError. Then BoardClock.sleep_us ends early on wake() and times
# out otherwise, and the dosing task's wait (BoardClock's and SimClock's
# sleep_us, awaited in a task of firmware/tasks.py) allocates nothing: an async
# def made a coroutine object at every turn. Prints "ok" last.
import time

from heaplock import heap_lock_works, lock, unlock

from firmware import tasks
from firmware.intmath import muldiv
from hal.battery_adc import DividerBattery
from hal.board_clock import BoardClock
from hal.esp32_stepper import RmtStepper
from hal.hx711 import HX711
from hal.max17048 import MAX17048
from hal.rp2_stepper import PioStepper
from hal.sim.clock import SimClock
from hal.stepper import StepperConfig

assert heap_lock_works()


class SM:
    def __init__(self):
        self.n = 0
        self.last = 0

    def restart(self):
        pass

    def exec(self, w):
        pass

    def active(self, v=None):
        return True

    def tx_fifo(self):
        return self.n

    def put(self, w):
        if self.n >= 4:
            raise AssertionError("put on a full FIFO")
        self.n += 1
        self.last = w


class Pin:
    def __init__(self, level=0):
        self.level = level

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v


class DataPin:
    """DOUT low (ready), then alternate bits."""

    def __init__(self):
        self.i = 0

    def value(self):
        i = self.i  # 0: the ready check, 1..24: the bits
        self.i = i + 1 if i < 24 else 0
        return i & 1 if i else 0


class I2C:
    def readfrom_mem_into(self, addr, reg, buf):
        buf[0] = 0xD0
        buf[1] = 0x00


class ADC:
    def read_u16(self):
        return 40_000


class RMT:
    def __init__(self):
        self.busy = False

    def wait_done(self, timeout=0):
        return not self.busy

    def write_pulses(self, d, level):
        self.busy = True

    def deinit(self):
        pass


class Clock:
    def ticks_us(self):
        return time.ticks_us()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)


sm = SM()
pio = PioStepper(sm, StepperConfig("TMC2209", 16, 2_000))
rmt = RMT()
rmt_motor = RmtStepper(lambda: rmt, StepperConfig("A4988", 16, 2_000), Clock(), 80)
hx = HX711(Pin(), DataPin())
hx.set_calibration(41_230, 100_000)
gauge = MAX17048(I2C())
bat = DividerBattery(ADC(), 100_000, 100_000)


def hot(n):
    """n turns of every hot path; the last readings into out (a tuple would allocate)."""
    mv = bmv = m = soc = bsoc = q = 0
    for _ in range(n):
        pio.step(1)
        if sm.n == 4:
            sm.n = 0
        pio.poll()
        rmt_motor.step(3)
        rmt.busy = False
        rmt_motor.poll()
        raw = hx.read_raw()
        m = hx.mass_from_raw(raw)
        mv = gauge.voltage_mv()
        soc = gauge.soc_permille()
        bmv = bat.voltage_mv()
        bsoc = bat.soc_permille()
        q = muldiv(7, 999_983, 536_870_909)
    out[0] = mv
    out[1] = bmv
    out[2] = m
    out[3] = soc
    out[4] = bsoc
    out[5] = q


out = [0] * 6


hx.offset = 17
hot(1)  # warm up (first calls may intern or cache)
lock()
try:
    hot(100)
finally:
    unlock()
mv, bmv, m, soc, bsoc, q = out
assert mv == 4160 and bmv == 4028, (mv, bmv)
assert pio.steps_lo == 101 and rmt_motor.steps_lo == 303

clock = BoardClock(None)


async def main():
    t0 = time.ticks_ms()
    await clock.sleep_us(30_000)  # times out
    t1 = time.ticks_ms()
    assert 25 <= time.ticks_diff(t1, t0) < 200, time.ticks_diff(t1, t0)

    async def waker():
        await tasks.sleep_ms(5)
        clock.wake()

    tasks.create_task(waker())
    t0 = time.ticks_ms()
    await clock.sleep_us(5_000_000)  # woken after about 5 ms
    assert time.ticks_diff(time.ticks_ms(), t0) < 1_000

    sim = SimClock(0)
    sim.grant(1_000_000_000)
    await clock.sleep_us(0)  # warm up
    await sim.sleep_us(1_000)
    lock()
    try:
        for _ in range(50):
            await clock.sleep_us(0)  # a step due now
            await clock.sleep_us(1_000)  # 1 ms of wall time
            await sim.sleep_us(1_000_000)  # a jump of granted pump time
    finally:
        unlock()
    assert sim.granted_us == 1_000_000_000 - 1_000 - 50 * 1_000_000, sim.granted_us


tasks.run(main())
print("ok")
