# The reservoir's load cell through an HX711 24-bit bridge ADC, bit-banged.
#
# What it relies on (Avia Semiconductor HX711 datasheet, "Serial Interface"
# and its timing table):
#   * DOUT high: no conversion ready; DOUT goes low when one is (10 or 80 SPS,
#     the RATE pin).
#   * Then 24 PD_SCK pulses shift the result out MSB first, each bit valid on
#     DOUT within 0.1 us of PD_SCK's rising edge (T2); it is read while PD_SCK
#     is high. The result is 24-bit two's complement, 0x800000..0x7FFFFF.
#   * 1, 2 or 3 more pulses (25, 26, 27 in all) pick the input and gain of the
#     NEXT conversion: channel A gain 128, channel B gain 32, channel A gain 64.
#   * PD_SCK high time 0.2..50 us (T3), low time >= 0.2 us (T4). High for more
#     than 60 us powers the chip down, which would corrupt a reading: so the
#     board passes machine.disable_irq/enable_irq and the 25-27 pulses run with
#     interrupts off (about 27 x 2 pin writes of bytecode, a few hundred us on a
#     Pico, with no allocation, so no GC can land in it either). Bytecode
#     cannot make a high time below 0.2 us.
#   * After power-up (or a gain change) the first conversion uses the old
#     settings; and settling takes 4 conversions (400 ms at 10 SPS): tare()
#     discards the first reading.
#
# Units: raw counts; tare offset in counts; the calibration as a ratio
# cal_counts / cal_mg (counts per milligram as a fraction, from a reference
# mass), so mass_mg = (raw - offset) * cal_mg // cal_counts, in integers
# (firmware/intmath.muldiv, no long ints on a 32-bit port). Bounds: |raw - offset|
# < 2**25; cal_mg and cal_counts below 2**29; the mass below 2**30 mg.

from firmware import const
from firmware.intmath import muldiv

_SIGN = const(0x800000)
_MASK = const(0xFFFFFF)
_LIMIT = const(0x1FFFFFFF)  # 2**29 - 1
NL_PER_ML = const(1_000_000)

GAIN_PULSES = {128: 1, 32: 2, 64: 3}  # pulses after the 24 data bits, per the next conversion's gain


def decode(word):
    """A 24-bit two's-complement word as a signed int: 0x800000 -> -8388608, 0xFFFFFF -> -1."""
    word &= _MASK
    return (word ^ _SIGN) - _SIGN


class ReservoirSensor:
    """What the firmware may ask of a reservoir sensor (the HX711 below is one;
    a capacitive level sensor or a flow counter could replace it):

      ready() -> bool             a new reading can be taken now without waiting
      read_raw() -> int or None   take it (sensor counts), None if not ready
      mass_mg() -> int or None    the reservoir's contents in mg (tare removed), None if not ready
      volume_nl(density_mg_per_ml) -> int or None
                                  the contents in nL at that density (mg/mL, e.g. 998 for
                                  water at 20 C), None if not ready

    All integer, allocation-free, never blocking for long."""


class HX711(ReservoirSensor):
    def __init__(self, clock_pin, data_pin, gain=128, disable_irq=None, enable_irq=None):
        """clock_pin: a machine.Pin output on PD_SCK; data_pin: a machine.Pin input on DOUT."""
        extra = GAIN_PULSES.get(gain)
        if extra is None:
            raise ValueError(
                "gain must be 128 (channel A), 64 (channel A) or 32 (channel B) for an HX711, not %r" % (gain,)
            )
        self._sck = clock_pin
        self._dout = data_pin
        self.gain = gain
        self._extra = extra
        self._disable_irq = disable_irq
        self._enable_irq = enable_irq
        self.raw = 0  # the last reading, counts
        self.offset = 0  # tare, counts
        self.cal_counts = 1  # calibration: cal_counts counts per cal_mg mg
        self.cal_mg = 1
        clock_pin.value(0)  # low: powered up, ready to clock

    def ready(self):
        return self._dout.value() == 0

    def read_raw(self):
        """Clock out one conversion if DOUT says it is ready; else None. Hot path: no allocation."""
        dout = self._dout
        if dout.value():
            return None
        sck = self._sck
        state = self._disable_irq() if self._disable_irq is not None else 0
        v = 0
        for _ in range(24):
            sck.value(1)
            v = (v << 1) | dout.value()  # valid 0.1 us after the rising edge (T2)
            sck.value(0)
        for _ in range(self._extra):
            sck.value(1)
            sck.value(0)
        if self._enable_irq is not None:
            self._enable_irq(state)
        v = (v ^ _SIGN) - _SIGN
        self.raw = v
        return v

    def power_down(self):
        """PD_SCK high for more than 60 us: the chip powers down until it goes low."""
        self._sck.value(1)

    def power_up(self):
        self._sck.value(0)

    def _average(self, samples, timeout_ms, sleep_ms):
        if not 1 <= samples <= 64:
            raise ValueError("samples must be 1..64 for the HX711 tare/calibration, not %r" % (samples,))
        total = 0
        got = 0
        waited = 0
        while got < samples:
            v = self.read_raw()
            if v is None:
                if waited >= timeout_ms:
                    raise OSError(
                        "HX711: no conversion within %d ms (is DOUT wired and the chip powered?)" % timeout_ms
                    )
                sleep_ms(1)
                waited += 1
                continue
            total += v  # |v| < 2**23, 64 of them < 2**29
            got += 1
        # floor of the mean, rounding toward minus infinity for negatives too
        return total // samples

    def tare(self, samples=8, timeout_ms=2_000, sleep_ms=None):
        """Take the mean of samples readings (after one discarded) as zero. Blocks: not for the hot path."""
        if sleep_ms is None:
            import time

            sleep_ms = time.sleep_ms
        self._average(1, timeout_ms, sleep_ms)
        self.offset = self._average(samples, timeout_ms, sleep_ms)
        return self.offset

    def set_calibration(self, counts, per_mg):
        """counts counts per per_mg milligrams (e.g. 41_230 counts per 100_000 mg)."""
        if not 0 < counts <= _LIMIT:
            raise ValueError("HX711 calibration counts must be 1..%d, not %r" % (_LIMIT, counts))
        if not 0 < per_mg <= _LIMIT:
            raise ValueError("HX711 calibration mass must be 1..%d mg, not %r" % (_LIMIT, per_mg))
        self.cal_counts = counts
        self.cal_mg = per_mg

    def calibrate(self, known_mg, samples=8, timeout_ms=2_000, sleep_ms=None):
        """With known_mg mg on the cell (after tare()), set the calibration from the mean reading."""
        if sleep_ms is None:
            import time

            sleep_ms = time.sleep_ms
        counts = self._average(samples, timeout_ms, sleep_ms) - self.offset
        if counts <= 0:
            raise ValueError(
                "HX711 calibration: %d mg read %d counts above the tare; load the cell" % (known_mg, counts)
            )
        self.set_calibration(counts, known_mg)
        return counts

    def mass_from_raw(self, raw):
        """mg for a raw reading: (raw - offset) * cal_mg // cal_counts, rounded toward zero."""
        d = raw - self.offset
        if d < 0:
            return -muldiv(-d, self.cal_mg, self.cal_counts)
        return muldiv(d, self.cal_mg, self.cal_counts)

    def mass_mg(self):
        v = self.read_raw()
        if v is None:
            return None
        return self.mass_from_raw(v)

    def volume_nl(self, density_mg_per_ml):
        """Contents in nL at density_mg_per_ml (1..2**29-1 mg/mL), rounded toward zero."""
        if not 0 < density_mg_per_ml <= _LIMIT:
            raise ValueError("density must be 1..%d mg/mL, not %r" % (_LIMIT, density_mg_per_ml))
        m = self.mass_mg()
        if m is None:
            return None
        if m < 0:
            return -muldiv(-m, NL_PER_ML, density_mg_per_ml)
        return muldiv(m, NL_PER_ML, density_mg_per_ml)
