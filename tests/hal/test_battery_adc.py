"""hal/battery_adc.py: the battery divider, exact, and the discharge curve."""

from pathlib import Path

import pytest
from hal_fakes import ADC

from hal.battery_adc import LIION_CURVE, DividerBattery, soc_from_curve

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("rt,rb,vref", [(100_000, 100_000, 3300), (1_000_000, 330_000, 3300), (200, 100, 3100)])
def test_divider_voltage_is_exact_floor(rt, rb, vref):
    adc = ADC(0)
    bat = DividerBattery(adc, rt, rb, vref)
    for raw in (0, 1, 12_345, 40_000, 65_534, 65_535):
        adc.raw = raw
        assert bat.voltage_mv() == raw * vref * (rt + rb) // (65535 * rb)
    adc.raw = 65_535
    assert DividerBattery(adc, 100_000, 100_000).voltage_mv() == 6600


def test_divider_refuses_resistor_values_it_cannot_keep_small():
    with pytest.raises(ValueError, match="coarser unit"):
        DividerBattery(ADC(0), 1_000_003, 999_983)


def test_curve_interpolates_at_and_between_points_and_clamps():
    for mv, p in LIION_CURVE:
        assert soc_from_curve(LIION_CURVE, mv) == p
    assert soc_from_curve(LIION_CURVE, 3855) == 500 + 15 * 100 // 30 == 550
    assert soc_from_curve(LIION_CURVE, 3611) == 50 + 1 * 50 // 80 == 50
    assert soc_from_curve(LIION_CURVE, 3000) == 0 and soc_from_curve(LIION_CURVE, 4300) == 1000
    adc = ADC(0)
    bat = DividerBattery(adc, 100_000, 100_000)
    adc.raw = 3855 * 65535 // 6600 + 1  # just above 3855 mV at the pin x 2
    assert bat.voltage_mv() == 3855 and bat.soc_permille() == 550
    with pytest.raises(ValueError, match="rise in mV"):
        DividerBattery(adc, 1, 1, curve=((4000, 0), (3900, 100)))
