# Battery voltage through a resistor divider into an ADC pin, with the state
# of charge looked up on a discharge curve.
#
#   battery + -- r_top -- ADC pin -- r_bottom -- GND
#
# machine.ADC.read_u16() gives 0..65535 for 0..vref (on an rp2 the 12-bit
# result scaled up; on an ESP32 after its own attenuation and calibration:
# give the vref that maps 65535 there). So, exactly in integers (floor):
#
#   battery mV = raw * vref_mv * (r_top + r_bottom) / (65535 * r_bottom)
#
# The resistor ratio is reduced by its gcd once, in __init__; raw * vref_mv
# stays below 2**28 and the rest goes through firmware/intmath.muldiv, so
# voltage_mv() makes no long int on a 32-bit port and allocates nothing.
#
# The default curve is a typical resting (open-circuit, light load, room
# temperature) voltage of one Li-ion / LiPo cell against its state of charge,
# as widely circulated in hobbyist tables: typical, NOT from a datasheet.
# Measure your own cell at your load for anything that matters.

from firmware import const
from firmware.intmath import gcd, muldiv

_FULL_SCALE = const(65535)
_LIMIT = const(0x1FFFFFFF)

# (cell mV, permille), mV rising. Typical, not a datasheet (see above).
LIION_CURVE = (
    (3270, 0),
    (3610, 50),
    (3690, 100),
    (3730, 200),
    (3770, 300),
    (3800, 400),
    (3840, 500),
    (3870, 600),
    (3950, 700),
    (4020, 800),
    (4110, 900),
    (4200, 1000),
)


def check_curve(curve):
    if len(curve) < 2:
        raise ValueError("a discharge curve needs at least 2 (mV, permille) points, not %d" % len(curve))
    last_mv = last_p = -1
    for mv, p in curve:
        if mv <= last_mv or p < last_p or not 0 <= p <= 1000:
            raise ValueError("discharge curve points must rise in mV, not fall in permille, and be 0..1000 permille")
        last_mv, last_p = mv, p


def soc_from_curve(curve, mv):
    """Permille at mv by integer linear interpolation between curve points (floor); clamped at the ends."""
    mv0, p0 = curve[0]
    if mv <= mv0:
        return p0
    for i in range(1, len(curve)):
        mv1, p1 = curve[i]
        if mv < mv1:
            return p0 + (mv - mv0) * (p1 - p0) // (mv1 - mv0)
        mv0, p0 = mv1, p1
    return p0


class DividerBattery:
    def __init__(self, adc, r_top_ohm, r_bottom_ohm, vref_mv=3300, curve=LIION_CURVE):
        """adc: a machine.ADC (read_u16) on the divider's midpoint, built by the board."""
        if not 0 <= r_top_ohm <= _LIMIT or not 0 < r_bottom_ohm <= _LIMIT:
            raise ValueError("divider resistors must be 0..%d ohm (r_bottom above 0)" % _LIMIT)
        if not 1 <= vref_mv <= 4095:
            raise ValueError("vref_mv must be 1..4095 mV for the battery ADC, not %r" % (vref_mv,))
        check_curve(curve)
        g = gcd(r_top_ohm + r_bottom_ohm, r_bottom_ohm)
        num = (r_top_ohm + r_bottom_ohm) // g
        den = r_bottom_ohm // g
        if den * _FULL_SCALE > _LIMIT or num > _LIMIT:
            raise ValueError(
                "divider %d/%d ohm: give the resistors in a coarser unit (their ratio reduced must have a"
                " bottom below %d)" % (r_top_ohm, r_bottom_ohm, _LIMIT // _FULL_SCALE)
            )
        self._adc = adc
        self._num = num
        self._den = den * _FULL_SCALE
        self.vref_mv = vref_mv
        self.curve = curve

    def mv_from_raw(self, raw):
        return muldiv(raw * self.vref_mv, self._num, self._den)

    def voltage_mv(self):
        """Battery voltage in mV (floor). Hot path: no allocation."""
        return muldiv(self._adc.read_u16() * self.vref_mv, self._num, self._den)

    def soc_permille(self):
        return soc_from_curve(self.curve, self.voltage_mv())
