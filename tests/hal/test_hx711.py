"""hal/hx711.py: the HX711's clocking and decode, tare and calibration in integers."""

import random
from fractions import Fraction
from pathlib import Path

import pytest
from hal_fakes import AutoChip, HX711Chip, Pin

from firmware.intmath import muldiv
from hal.hx711 import HX711, decode

ROOT = Path(__file__).resolve().parents[2]


def hx711_reading(words, gain=128):
    chip = HX711Chip(words)
    hx = HX711(chip.sck, chip.dout, gain)
    return chip, hx


def read(chip, hx):
    v = hx.read_raw()
    chip.end_read()
    return v


# -- HX711 --------------------------------------------------------------------


@pytest.mark.parametrize("gain,pulses", [(128, 25), (32, 26), (64, 27)])
def test_hx711_clocks_24_bits_then_the_pulses_that_pick_the_next_gain(gain, pulses):
    chip, hx = hx711_reading([0x123456], gain)
    assert read(chip, hx) == 0x123456  # MSB first: any other order gives another number
    assert chip.pulses == [pulses]
    assert chip.sck.history[0] == 0  # __init__ drives PD_SCK low (powered up)
    assert chip.sck.history[1:] == [1, 0] * pulses and chip.sck.level == 0


def test_hx711_reads_nothing_until_dout_is_low():
    chip, hx = hx711_reading([])
    assert not hx.ready() and hx.read_raw() is None and chip.sck.history == [0]


def test_hx711_bit_order_is_msb_first():
    chip, hx = hx711_reading([0x800001, 0x000001])
    assert read(chip, hx) == decode(0x800001) == -8388607
    assert read(chip, hx) == 1


@pytest.mark.parametrize(
    "word,value", [(0x800000, -8388608), (0x7FFFFF, 8388607), (0xFFFFFF, -1), (0x000000, 0), (0x000001, 1)]
)
def test_hx711_twos_complement(word, value):
    assert decode(word) == value
    chip, hx = hx711_reading([word])
    assert read(chip, hx) == value and hx.raw == value


def test_hx711_gain_is_checked():
    with pytest.raises(
        ValueError,
        match=r"gain must be 128 \(channel A\), 64 \(channel A\) or 32 \(channel B\) "
        r"for an HX711, not 100",
    ):
        HX711(Pin(), Pin(), 100)


def test_hx711_tare_discards_the_first_reading_and_averages_exactly():
    chip = AutoChip([0x7FFFFF, 100, 101, 103, 0xFFFFF0])  # 0xFFFFF0 = -16
    hx = HX711(chip.sck, chip.dout)
    assert hx.tare(4, sleep_ms=lambda ms: None) == (100 + 101 + 103 - 16) // 4 == 72
    assert hx.offset == 72


def test_hx711_tare_times_out_with_a_clear_error():
    chip = AutoChip([])
    hx = HX711(chip.sck, chip.dout)
    with pytest.raises(OSError, match="no conversion within 5 ms"):
        hx.tare(2, timeout_ms=5, sleep_ms=lambda ms: None)


def test_hx711_calibration_and_mass_and_volume_in_integers():
    chip = AutoChip([1000 + 41_230] * 4)
    hx = HX711(chip.sck, chip.dout)
    hx.offset = 1000
    assert hx.calibrate(100_000, samples=4, sleep_ms=lambda ms: None) == 41_230
    assert (hx.cal_counts, hx.cal_mg) == (41_230, 100_000)
    for d in (0, 1, 412, -412, 41_230, -8_000_000, 8_000_000, 123_457):
        exact = Fraction(d * 100_000, 41_230)
        got = hx.mass_from_raw(1000 + d)
        assert got == (int(exact) if exact >= 0 else -int(-exact))  # toward zero
    assert hx.mass_from_raw(1000 + 412) == 999
    chip.words = [1000 + 8_246]  # 20_000 mg
    assert hx.volume_nl(998) == 20_000 * 1_000_000 // 998 == 20_040_080
    with pytest.raises(ValueError, match="calibration counts must be"):
        hx.set_calibration(0, 1)


def test_muldiv_is_floor_of_the_exact_product_over_the_divisor():
    rng = random.Random(5)
    for _ in range(3000):
        d = rng.randrange(1, 2**29)
        a = rng.randrange(0, 2**30)
        b = rng.randrange(0, 2**30)
        if a * b // d >= 2**30:
            continue
        assert muldiv(a, b, d) == a * b // d
    assert muldiv(2**30 - 1, 1, 1) == 2**30 - 1
