# Battery fuel gauge: Maxim (Analog Devices) MAX17048 over I2C.
#
# What it relies on (MAX17048/MAX17049 datasheet, "Register Summary"):
#   address 0x36 (7-bit); registers are 16 bits, MSB first.
#   0x02 VCELL    78.125 uV per LSB (MAX17048, one cell): mV = raw * 78.125 / 1000 = raw * 5 / 64
#   0x04 SOC      1/256 % per LSB: tenths of a percent (permille) = raw * 10 / 256
#   0x06 MODE     write 0x4000 for a quick-start (restart the fuel-gauge estimate)
#   0x08 VERSION  0x001x on a MAX17048/9
#   0x0C CONFIG   high byte RCOMP (default 0x97), low byte SLEEP/ALSC/ALRT/ATHD
# Every conversion below is exact in integers (floor), below 2**20.
#
# Reads go into one preallocated 2-byte buffer with readfrom_mem_into, so
# voltage_mv() and soc_permille() allocate nothing. The I2C bus is injected
# (machine.I2C built by the board).

from firmware import const

ADDRESS = const(0x36)
REG_VCELL = const(0x02)
REG_SOC = const(0x04)
REG_MODE = const(0x06)
REG_VERSION = const(0x08)
REG_CONFIG = const(0x0C)
_QUICK_START = const(0x4000)
_PERMILLE_MAX = const(1000)


class MAX17048:
    def __init__(self, i2c, address=ADDRESS):
        self._i2c = i2c
        self.address = address
        self._buf = bytearray(2)

    def _read(self, reg):
        b = self._buf
        self._i2c.readfrom_mem_into(self.address, reg, b)
        return b[0] << 8 | b[1]

    def _write(self, reg, value):
        b = self._buf
        b[0] = value >> 8
        b[1] = value & 0xFF
        self._i2c.writeto_mem(self.address, reg, b)

    def version(self):
        return self._read(REG_VERSION)

    def check(self):
        """Raise OSError unless the part answers with a MAX17048/9 VERSION (0x001x)."""
        v = self._read(REG_VERSION)
        if v & 0xFFF0 != 0x0010:
            raise OSError("no MAX17048 at I2C address 0x%02x: VERSION reads 0x%04x, not 0x001x" % (self.address, v))
        return v

    def voltage_mv(self):
        """Cell voltage in mV (floor), from VCELL at 78.125 uV per LSB."""
        return (self._read(REG_VCELL) * 5) >> 6

    def soc_tenths(self):
        """State of charge in tenths of a percent as the gauge reports it (may pass 1000 briefly)."""
        return (self._read(REG_SOC) * 10) >> 8

    def soc_permille(self):
        """State of charge in permille, 0..1000."""
        s = (self._read(REG_SOC) * 10) >> 8
        return s if s < _PERMILLE_MAX else _PERMILLE_MAX

    def quick_start(self):
        """Restart the fuel-gauge estimate from the present voltage (MODE = 0x4000)."""
        self._write(REG_MODE, _QUICK_START)

    def rcomp(self):
        return self._read(REG_CONFIG) >> 8

    def set_rcomp(self, value):
        """RCOMP, the temperature compensation byte (0..255; 0x97 at power-up): CONFIG's high byte."""
        if not isinstance(value, int) or not 0 <= value <= 255:
            raise ValueError("RCOMP must be 0..255 for a MAX17048, not %r" % (value,))
        low = self._read(REG_CONFIG) & 0xFF
        self._write(REG_CONFIG, value << 8 | low)
