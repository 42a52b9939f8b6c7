"""hal/stall.py: a stall line latching until cleared, an encoder counting the pulses steps owe."""

from pathlib import Path

import pytest
from hal_fakes import Pin

ROOT = Path(__file__).resolve().parents[2]


# -- stall feedback -------------------------------------------------------------------------------


def test_a_stall_line_latches_until_cleared_and_its_irq_only_counts():
    from hal.stall import StallInput

    pin = Pin(0)
    stall = StallInput(pin, "rising", "falling")
    assert pin.irq_trigger == "rising" and not stall.stalled()
    pin.irq_handler(pin)  # DIAG pulsed high and fell again before anyone looked
    assert stall.stalled() and stall.events == 1
    stall.clear()
    assert not stall.stalled()
    pin.level = 1  # held high now: stalled, even with no edge counted
    assert stall.stalled()
    low = StallInput(Pin(1), "rising", "falling", active_high=False)
    assert not low.stalled() and low._pin.irq_trigger == "falling"


def test_an_encoder_reports_the_pulses_the_steps_owe_and_did_not_see():
    from hal.stall import EncoderInput

    pin = Pin(0)
    enc = EncoderInput(pin, "rising", steps_per_pulse=8, tolerance_pulses=1)
    enc.restart(1000)
    for _ in range(10):
        pin.irq_handler(pin)
    assert enc.missing(1000 + 8 * 11) == 0  # 11 owed, 10 seen: within the tolerance of one
    assert enc.missing(1000 + 8 * 12) == 1
    assert enc.missing(1000 + 8 * 12 + 7) == 1  # a part-pulse is not owed yet
    enc.restart(2000)
    assert enc.pulses == 0 and enc.missing(2000 + 8 * 3) == 2
    with pytest.raises(ValueError, match="steps_per_pulse must be at least 1 motor step per encoder pulse"):
        EncoderInput(Pin(0), "rising", steps_per_pulse=0)
