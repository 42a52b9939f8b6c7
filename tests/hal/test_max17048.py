"""hal/max17048.py: the fuel gauge's registers, read into one buffer."""

from fractions import Fraction
from pathlib import Path

import pytest
from hal_fakes import I2C

from hal.max17048 import MAX17048

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "raw,mv",
    [(0xD000, 4160), (0xCFFF, 4159), (0xB400, 3600), (0, 0), (0xFFFF, 5119), (1, 0), (13, 1)],
)
def test_max17048_vcell_is_78_125_uv_per_lsb(raw, mv):
    assert MAX17048(I2C({0x02: raw})).voltage_mv() == mv == int(Fraction(raw * 78125, 10**6))


@pytest.mark.parametrize("raw,tenths", [(0x5A80, 905), (0x6400, 1000), (0x6480, 1005), (0x0019, 0), (0x001A, 1)])
def test_max17048_soc_is_1_256_percent_per_lsb(raw, tenths):
    gauge = MAX17048(I2C({0x04: raw}))
    assert gauge.soc_tenths() == tenths == int(Fraction(raw * 10, 256))
    assert gauge.soc_permille() == min(tenths, 1000)


def test_max17048_reads_into_one_buffer_and_writes_its_commands():
    bus = I2C({0x08: 0x0012, 0x0C: 0x971C, 0x02: 0xD000})
    gauge = MAX17048(bus)
    buf = gauge._buf
    assert gauge.check() == 0x0012 and gauge.voltage_mv() == 4160 and gauge._buf is buf
    gauge.quick_start()
    assert bus.writes[-1] == (0x36, 0x06, b"\x40\x00")
    assert gauge.rcomp() == 0x97
    gauge.set_rcomp(0x60)
    assert bus.writes[-1] == (0x36, 0x0C, b"\x60\x1c")  # the low byte (alert bits) kept
    with pytest.raises(ValueError, match="RCOMP must be 0..255 for a MAX17048, not 300"):
        gauge.set_rcomp(300)
    with pytest.raises(OSError, match="no MAX17048 at I2C address 0x36: VERSION reads 0x0000"):
        MAX17048(I2C({0x08: 0})).check()
