# The simulated battery: a primary cell drained by pump time and motor steps,
# with a fuel gauge that reads its charge exactly (the battery interface of
# hal/__init__.py: soc_permille(), voltage_mv()).
#
# Charge is kept in units u of 10**-9 of a full cell (FULL_U = 10**9, i.e.
# permille x 10**6), an integer below 2**30. Two drains:
#   base  the electronics, all the time: 1 u per BASE_US_PER_U = 432_000 us
#         of pump time, i.e. 200_000 u (0.2 permille) a day, 7.3 % a year
#   steps the motor: STEP_U = 20 u per step that turned the head (the
#         motor's turned_hi/lo, hal/sim/stepper.py); a stalled, sheared or
#         failed head is taken to draw nothing
# At 0.5 mL/day (9_600 steps of 52.083 nL a day) that is 392_000 u a day: a
# full cell lasts 10**9 / 392_000 = 2551 days, 6.98 years (intrathecal pumps
# are specified for 5 to 7 years, the rate deciding where): half the drain is
# the motor's there. With no delivery it lasts 13.7 years; at 10 mL/h (the
# pump's fastest rate, 4.6 million steps a day) about 11 days.
#
# The charge is settled lazily, when it is read: the pump time passed since
# the last settling, as the clock's (wraps, ticks) pair, and the turned steps
# since then, are charged at once. A wrap of the ticks is 2**30 us =
# 2485 u + 221_824 us; the whole wraps are charged in chunks of at most 1000
# (221_824_000 us) and the microseconds short of a unit are carried in a
# remainder (< 432_000 us), so the charge is exact (floor) over any span,
# 10 years or 100, and no value reaches 2**30 (at most 294 chunks per 10
# years left unread: the command path, not the hot path). The charge never
# goes below 0 and never rises by itself (a primary cell); FAULT_BATTERY
# sets it.
#
# The voltage is the hal/battery_adc LIION_CURVE read backwards: the charge
# in thousandths of a permille, interpolated linearly between its points (a
# typical Li-ion curve: the sim's cell is a model, not a datasheet). The
# state of charge is the charge in permille, rounded down.
#
# FAULT_TASK: the next soc_permille() raises RuntimeError once (the
# monitoring task fails); true_permille() (SIM_STATE) never raises.

from firmware import const
from firmware.scheduler import STEP_RADIX
from hal.battery_adc import LIION_CURVE

FULL_U = const(1_000_000_000)  # a full cell, u
U_PER_PERMILLE = const(1_000_000)
BASE_US_PER_U = const(432_000)  # the base drain: 1 u per 432 ms of pump time (200_000 u a day)
STEP_U = const(20)  # the charge one turned motor step takes, u
_WRAP_U = const(2485)  # 2**30 us = _WRAP_U * BASE_US_PER_U + _WRAP_REST_US
_WRAP_REST_US = const(221_824)
_CHUNK_WRAPS = const(1000)  # whole wraps charged at once: 1000 * _WRAP_REST_US < 2**28
_TICKS_MASK = const(0x3FFFFFFF)
_U_PER_MILLIPERMILLE = const(1000)
TASK_FAILURE = "sim: injected failure of the monitoring task"


class SimBattery:
    def __init__(self, clock, motor, permille=1000):
        """clock: the hal/sim/clock.SimClock; motor: the hal/sim/stepper.SimStepper it powers."""
        self._clock = clock
        self._motor = motor
        self._charge_u = 0
        self._rest_us = 0  # pump time not yet charged: < BASE_US_PER_U
        self._t = clock.ticks_us()  # the pump time (wraps, ticks) charged up to
        self._w = clock.wraps
        self._steps_hi = motor.turned_hi  # the turned steps charged up to
        self._steps_lo = motor.turned_lo
        self.fail_next = False  # FAULT_TASK
        self.set_permille(permille)

    def set_permille(self, permille):
        """The cell holds permille (0..1000) of its charge now (boot, FAULT_BATTERY)."""
        if not 0 <= permille <= 1000:
            raise ValueError("battery charge must be 0..1000 permille, not %r" % (permille,))
        self._settle()
        self._charge_u = permille * U_PER_PERMILLE

    def _settle(self):
        """Charge the drain since the last settling (see the header)."""
        clock = self._clock
        t = clock.ticks_us()  # first: at speed N reading the ticks may wrap them
        w = clock.wraps
        dw = w - self._w
        dt = t - self._t
        if dt < 0:  # borrow a wrap: dt + 2**30, in two steps below 2**30
            dt += _TICKS_MASK
            dt += 1
            dw -= 1
        self._t = t
        self._w = w
        m = self._motor
        hi = m.turned_hi
        lo = m.turned_lo
        sh = hi - self._steps_hi
        sl = lo - self._steps_lo
        if sl < 0:
            sl += STEP_RADIX
            sh -= 1
        self._steps_hi = hi
        self._steps_lo = lo
        charge = self._charge_u
        if not charge:
            self._rest_us = 0
            return
        # The motor's share: sl * STEP_U only once it is known to stay below the charge.
        if sh > 0 or sl > charge // STEP_U:
            charge = 0
        else:
            charge -= sl * STEP_U
        # The base drain over dw wraps and dt us, with the remainder carried.
        rest = self._rest_us + dt % BASE_US_PER_U  # < 2 * BASE_US_PER_U
        units = dt // BASE_US_PER_U + rest // BASE_US_PER_U  # <= 2486
        rest %= BASE_US_PER_U
        while dw > 0 and units < charge:
            k = dw if dw < _CHUNK_WRAPS else _CHUNK_WRAPS
            dw -= k
            rest += k * _WRAP_REST_US  # < 2**28
            units += k * _WRAP_U + rest // BASE_US_PER_U  # < charge + 2**22: below 2**30
            rest %= BASE_US_PER_U
        if units >= charge:
            charge = 0
            rest = 0
        else:
            charge -= units
        self._charge_u = charge
        self._rest_us = rest

    def charge_u(self):
        """The cell's true charge, u (0..FULL_U)."""
        self._settle()
        return self._charge_u

    def true_permille(self):
        """The cell's true charge in permille, rounded down (SIM_STATE). Never raises."""
        self._settle()
        return self._charge_u // U_PER_PERMILLE

    def soc_permille(self):
        """State of charge, 0..1000 permille, as the gauge reads it (exactly)."""
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError(TASK_FAILURE)
        return self.true_permille()

    def voltage_mv(self):
        """The cell's voltage, mV: LIION_CURVE at the charge (see the header)."""
        self._settle()
        x = self._charge_u // _U_PER_MILLIPERMILLE  # 0..1_000_000 thousandths of a permille
        curve = LIION_CURVE
        mv0, p0 = curve[0]
        if x <= p0 * 1000:
            return mv0
        for i in range(1, len(curve)):
            mv1, p1 = curve[i]
            if x < p1 * 1000:
                # (x - p0) < 10**5 thousandths (the widest span), (mv1 - mv0) < 1000 mV: below 2**30
                return mv0 + (x - p0 * 1000) * (mv1 - mv0) // ((p1 - p0) * 1000)
            mv0, p0 = mv1, p1
        return mv0
