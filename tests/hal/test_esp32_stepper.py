"""hal/esp32_stepper.py: the RMT pulse tuples, built once, written only when the channel is idle."""

from pathlib import Path

import pytest
from hal_fakes import RMT, Pin, total

from hal.esp32_stepper import RmtStepper, burst, pulse_ticks
from hal.stepper import StepperConfig

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self):
        self.t = 1000

    def ticks_us(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b


def test_rmt_pulse_timing_in_ticks():
    assert pulse_ticks(2_000, 80) == (2, 1_998)  # 1 us ticks
    assert pulse_ticks(2_000, 8) == (20, 19_980)  # 100 ns ticks
    assert pulse_ticks(3, 1) == (160, 80)  # 12.5 ns ticks: 2 us high rounded up, the rest low
    with pytest.raises(ValueError, match="not a whole number of RMT ticks"):
        pulse_ticks(2_001, 7)
    with pytest.raises(ValueError, match="does not fit the ESP32 RMT at clock_div 1"):
        pulse_ticks(2_000, 1)
    assert burst(2, 1_998, 3) == (2, 1_998, 2, 1_998, 2, 1_998)


def test_rmt_stepper_writes_prebuilt_bursts_and_never_waits():
    RMT.made = 0
    clock = Clock()
    rmts = []

    def factory():
        rmts.append(RMT())
        return rmts[-1]

    m = RmtStepper(factory, StepperConfig("A4988", 16, 2_000), clock, 80, ms_pins=(Pin(), Pin(), Pin()))
    m.step(3)
    assert rmts[0].writes == [((2, 1_998) * 3, 1)]
    assert rmts[0].writes[0][0] is m._bursts[2]  # built once, not per call
    m.step(10)  # busy: waits in the backlog
    assert len(rmts[0].writes) == 1 and m.pending() == 10
    rmts[0].busy = False
    m.poll()
    assert rmts[0].writes[-1] == ((2, 1_998) * 8, 1) and m.pending() == 2
    clock.t += 2_500  # pulses 0 and 1 of the 8 have begun (at 0 and 2000 us)
    m.halt()
    assert m.dropped == 8 - 2 + 2 and total(m) == 3 + 2
    assert rmts[0].deinited and len(rmts) == 2 and m.halts == 1
