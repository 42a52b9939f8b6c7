# The simulated reservoir and its sensor (the ReservoirSensor interface of
# hal/hx711.py, as the firmware uses it: volume_nl(density_mg_per_ml)).
#
# What it holds. The true contents are kept as a base volume set at boot
# (--reservoir-nl), by a refill (FAULT_FILL) or a leak (FAULT_LEAK), less what
# the head has moved out since: the motor's steps that turned freely (turned
# less blocked, hal/sim/stepper.py) since the base was set, times the motor's
# true_step_pl, pL -> nL rounded down. A step in motion counts as moved, as in
# the motor's steps_hi/lo (it finishes unless a halt drops it, and a halt
# takes it out of the count again). Never below 0: an empty reservoir pumps
# air. The reservoir reads the motor's two-word count only when asked (the
# command path), so the motor's hot path carries none of this.
#
# An occlusion. Steps that turned against a blocked outlet moved no fluid out
# of the reservoir (the motor counts them apart, blocked_hi/lo): the model
# leaves that fluid in the reservoir, and when the block ends it is not
# delivered as a bolus. The simplest choice; a real line may release some of
# what it was compressed by when it opens.
#
# The sensor. A reading is the true contents plus noise, deterministic per
# seed (--seed): uniform in -NOISE_NL..NOISE_NL (10 uL, a standard deviation
# of 5.8 uL), drawn anew at each reading from a linear congruential generator
# modulo 2**28 (multiplier 12_345, increment 1_664_525: full period by the
# Hull-Dobell rules) computed in 14-bit halves so that no product reaches
# 2**30; the noise comes from its top 14 bits. A reading is never below 0.
# The density is checked (1..2**29-1 mg/mL, as the HX711 driver does) but the
# fluid is taken to have exactly that density: the sensor reads volume.
# FAULT_SENSOR_STUCK freezes the reading: it then returns the reading it gave
# last (or one taken when it stuck, if it had given none), whatever moves.
# The sensor always has a reading ready (never None).

from firmware import const
from firmware.intmath import muldiv
from firmware.scheduler import STEP_RADIX

NOISE_NL = const(10_000)  # the noise is uniform in -NOISE_NL..NOISE_NL nL
_NOISE_SPAN = const(20_001)  # values of the noise
_LCG_MASK = const(0x0FFFFFFF)  # the generator runs modulo 2**28
_LCG_A = const(12_345)  # multiplier: = 1 mod 4, below 2**14
_LCG_C = const(1_664_525)  # increment: odd
_HALF_MASK = const(0x3FFF)  # 14 bits
_LIMIT = const(0x1FFFFFFF)  # 2**29 - 1
MAX_CAPACITY_NL = const(100_000_000)  # 100 mL: with a step of at least MIN_STEP_PL, the steps to empty it stay < 2**30
MIN_STEP_PL = const(100)
PL_PER_NL = const(1_000)


class SimReservoir:
    def __init__(self, motor, capacity_nl, content_nl=0, seed=1):
        """motor: the hal/sim/stepper.SimStepper that empties it (its true_step_pl at least
        MIN_STEP_PL); capacity_nl: 1..MAX_CAPACITY_NL."""
        if not 0 < capacity_nl <= MAX_CAPACITY_NL:
            raise ValueError("reservoir capacity must be 1..%d nL, not %r" % (MAX_CAPACITY_NL, capacity_nl))
        if seed < 0:
            raise ValueError("the sensor noise seed must be 0 or more, not %r" % (seed,))
        self._motor = motor
        self.capacity_nl = capacity_nl
        self.stuck = False  # FAULT_SENSOR_STUCK
        self.last_nl = None  # the last reading given
        self._x = seed & _LCG_MASK
        self._base_nl = 0
        self._ref_hi = 0  # the motor's free steps (two words) when the base was set
        self._ref_lo = 0
        self.set_nl(content_nl)

    def _free_steps(self):
        """The motor's steps that turned freely, as (hi, lo) with 0 <= lo < STEP_RADIX."""
        m = self._motor
        hi = m.turned_hi - m.blocked_hi
        lo = m.turned_lo - m.blocked_lo
        if lo < 0:
            lo += STEP_RADIX
            hi -= 1
        return hi, lo

    def set_nl(self, nl):
        """The reservoir holds nl nL now (boot, a refill): 0..capacity_nl."""
        if not 0 <= nl <= self.capacity_nl:
            raise ValueError(
                "the reservoir holds 0..%d nL (%d mL), not %r nL"
                % (self.capacity_nl, self.capacity_nl // 1_000_000, nl)
            )
        self._base_nl = nl
        self._ref_hi, self._ref_lo = self._free_steps()

    def leak(self, nl):
        """nl nL (>= 0) leave at once, none of it through the pump (down to empty)."""
        if nl < 0:
            raise ValueError("a leak is 0 or more nL, not %r" % (nl,))
        left = self.true_nl() - nl
        self.set_nl(left if left > 0 else 0)

    def true_nl(self):
        """What the reservoir really holds, nL (SIM_STATE). No allocation."""
        m = self._motor
        sh = m.turned_hi - m.blocked_hi - self._ref_hi
        sl = m.turned_lo - m.blocked_lo - self._ref_lo  # > -2 * STEP_RADIX
        while sl < 0:
            sl += STEP_RADIX
            sh -= 1
        base = self._base_nl
        if sh > 0:  # 2**29 steps or more since the base: far more than any reservoir holds
            return 0
        pl = m.true_step_pl
        if not MIN_STEP_PL <= pl <= _LIMIT:
            raise ValueError("sim reservoir: a step of %r pL is outside %d..%d pL" % (pl, MIN_STEP_PL, _LIMIT))
        # Steps enough to empty the base (< 2**30: the bounds above); below that, the volume out stays below the base.
        if sl > muldiv(base, PL_PER_NL, pl):
            return 0
        left = base - muldiv(sl, pl, PL_PER_NL)
        return left if left > 0 else 0

    def _noise_nl(self):
        """The next noise value, -NOISE_NL..NOISE_NL. No product reaches 2**30."""
        x = self._x
        hi = x >> 14
        lo = x & _HALF_MASK
        # x * A mod 2**28 = ((hi * A mod 2**14) << 14) + lo * A, mod 2**28
        x = ((((hi * _LCG_A) & _HALF_MASK) << 14) + lo * _LCG_A + _LCG_C) & _LCG_MASK
        self._x = x
        return (((x >> 14) * _NOISE_SPAN) >> 14) - NOISE_NL

    def set_stuck(self, on):
        """FAULT_SENSOR_STUCK: the reading freezes where it is (on) or follows the contents again."""
        if on and self.last_nl is None:
            self._read()
        self.stuck = on

    def _read(self):
        v = self.true_nl() + self._noise_nl()
        v = v if v > 0 else 0
        self.last_nl = v
        return v

    def volume_nl(self, density_mg_per_ml):
        """The sensor's reading of the contents, nL (never None: a reading is always ready)."""
        if not 0 < density_mg_per_ml <= _LIMIT:
            raise ValueError("density must be 1..%d mg/mL, not %r" % (_LIMIT, density_mg_per_ml))
        if self.stuck:
            return self.last_nl
        return self._read()
