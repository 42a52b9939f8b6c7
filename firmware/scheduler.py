# Fixed-point dose scheduler: turns a rate into motor step times, exactly.
#
# Contract. Let V(t) be the exact volume programmed up to time t (the integral
# of the rate, across any sequence of rate changes) and s the calibrated
# volume of one motor step. Polled at integer microsecond t, the scheduler has
# issued exactly floor(V(t) / s) steps: never ahead of the prescription, never
# a whole step behind, late by at most the time to the next poll.
#
# Units that make it exact. Rates are in nL/day, and r nL/day is exactly
# r pL per milliday (86.4 s = US_PER_MDAY us). Measuring volume in
# u = 1 pL / US_PER_MDAY, a rate r delivers exactly r u per microsecond, so
# the volume programmed up to any integer microsecond is an integer number of
# u, and the exact time of a step is a rational with denominator r. Nothing
# is ever rounded:
#
#   * The next step's exact time is kept in "ceiling form": the integer
#     microsecond when the step is issued (due_mday, due_us) and how early the
#     exact crossing was, due_g / r us, with 0 <= due_g < r.
#   * One step's exact duration at rate r, s * US_PER_MDAY / r us, is kept in
#     the same form (iv_mday, iv_us, iv_g). Each step adds it with carries,
#     like Bresenham's line algorithm: no drift, ever.
#   * A rate change at time t converts what is left of the current step to
#     volume, W = r_old * (exact due time - t), an exact integer of u, and
#     from it the time at the new rate. So the fraction of a step already
#     delivered is carried over exactly; stopping (rate 0) keeps it as W.
#
# 32-bit safety. Every value below stays in 0 .. 2**30-1 (small ints on a
# 32-bit port), with the bound stated where it is defined. Products that would
# overflow go through firmware.intmath.muldiv, a shift-and-add long multiplication whose
# intermediates stay below 2**30. poll() and us_until_due() run every tick
# and allocate nothing; set_rate() allocates nothing either.
#
# Pure integer code, no I/O, no floats, no true division.

from firmware import const, intmath
from firmware.intmath import muldiv

# us per milliday; also u per pL (< 2**27). The same as timebase.US_PER_MDAY,
# defined here too because MicroPython inlines a const() only in its module.
US_PER_MDAY = const(86_400_000)

# The range the product supports, and the bounds every proof below relies on.
MIN_RATE_NL_PER_DAY = const(1_000)  # 1 uL/day
MAX_RATE_NL_PER_DAY = const(240_000_000)  # 10 mL/h (< 2**28)
MIN_STEP_PL = const(10_000)  # 10 nL
MAX_STEP_PL = const(10_000_000)  # 10 uL (< 2**24)

# Step totals are two words: total = steps_hi * STEP_RADIX + steps_lo.
# Ten years at 10 mL/h in 10 nL steps is 8.8e10 steps, so one word is not
# enough; the radix leaves room to add a poll's steps without passing 2**30.
STEP_RADIX = const(536_870_912)  # 2**29


class DoseScheduler:
    def __init__(self, step_pl):
        if not MIN_STEP_PL <= step_pl <= MAX_STEP_PL:
            raise ValueError("step volume out of range")
        self.step_pl = step_pl  # s, pL per step: MIN_STEP_PL..MAX_STEP_PL
        self.rate = 0  # r, nL/day = pL/mday: 0 or 1..MAX_RATE_NL_PER_DAY

        # Volume still to deliver before the next step, while stopped:
        # rest_pl pL + rest_u u, 0 <= rest_u < US_PER_MDAY, 0 < W <= s.
        self.rest_pl = step_pl
        self.rest_u = 0

        # While running: exact time of the next step, in ceiling form.
        self.due_mday = 0  # < 2**30
        self.due_us = 0  # 0 <= due_us < US_PER_MDAY
        self.due_g = 0  # 0 <= due_g < r

        # While running: exact duration of one step at rate r, ceiling form.
        # iv_mday <= s / r <= MAX_STEP_PL (rate 1 nL/day: no product rate is
        # that slow, the bound only keeps the maths safe).
        self.iv_mday = 0
        self.iv_us = 0  # 0 <= iv_us < US_PER_MDAY
        self.iv_g = 0  # 0 <= iv_g < r

        self.steps_hi = 0  # total steps issued = hi * STEP_RADIX + lo
        self.steps_lo = 0  # 0 <= steps_lo < STEP_RADIX

        # Scratch results, so helpers need not return tuples (which allocate).
        self._t_mday = 0  # result of _time_for, ceiling form
        self._t_us = 0
        self._t_g = 0

    # -- every tick -------------------------------------------------------

    def poll(self, now_mday, now_us):
        """Issue the steps due at time now; return how many (usually 0 or 1).

        Hot path: no allocation. Returns n < 2**29 as long as the caller
        polls at least every few days at the fastest rate.
        """
        r = self.rate
        if not r:
            return 0
        dm = self.due_mday
        du = self.due_us
        if now_mday < dm or (now_mday == dm and now_us < du):
            return 0
        g = self.due_g
        iv_mday = self.iv_mday
        iv_us = self.iv_us
        iv_g = self.iv_g
        n = 0
        while now_mday > dm or (now_mday == dm and now_us >= du):
            n += 1
            # due += interval, both in ceiling form: (du - g/r) + (iv - iv_g/r)
            dm += iv_mday
            du += iv_us  # < 2 * US_PER_MDAY
            g += iv_g  # < 2r
            if g >= r:  # borrow one microsecond from the ceiling
                g -= r
                du -= 1
            if du >= US_PER_MDAY:
                du -= US_PER_MDAY
                dm += 1
            elif du < 0:
                du += US_PER_MDAY
                dm -= 1
        self.due_mday = dm
        self.due_us = du
        self.due_g = g
        lo = self.steps_lo + n
        if lo >= STEP_RADIX:
            lo -= STEP_RADIX
            self.steps_hi += 1
        self.steps_lo = lo
        return n

    def us_until_due(self, now_mday, now_us, cap_us):
        """Microseconds from now until the next step is due, at most cap_us.

        cap_us <= US_PER_MDAY. Returns cap_us when stopped. Hot path.
        """
        if not self.rate:
            return cap_us
        dm = self.due_mday - now_mday
        if dm > 1:
            return cap_us
        wait = self.due_us - now_us  # -US_PER_MDAY < wait < US_PER_MDAY
        if dm == 1:
            wait += US_PER_MDAY
        if wait < 0:
            return 0
        if wait > cap_us:
            return cap_us
        return wait

    # -- on a rate change ---------------------------------------------------

    def set_rate(self, now_mday, now_us, rate_nl_per_day):
        """Change the rate at time now, carrying the partial step over exactly.

        Steps that were due at the old rate are issued first; their number is
        returned so the caller can drive the motor. No allocation.
        """
        if not 0 <= rate_nl_per_day <= MAX_RATE_NL_PER_DAY:
            raise ValueError("rate out of range")
        n = self.poll(now_mday, now_us)
        r = self.rate
        if r:
            # Remaining volume W = r * (exact due - now) u, with due > now
            # after the poll, so 0 < W <= s * US_PER_MDAY.
            dm = self.due_mday - now_mday
            du = self.due_us - now_us
            if du < 0:
                du += US_PER_MDAY
                dm -= 1
            # r * dm <= s: the whole wait is at most one step's duration.
            wp = r * dm + muldiv(du, r, US_PER_MDAY)  # du < US_PER_MDAY
            wu = intmath.remainder - self.due_g  # > -r > -3 * US_PER_MDAY
            while wu < 0:
                wu += US_PER_MDAY
                wp -= 1
            self.rest_pl = wp
            self.rest_u = wu
        self.rate = rate_nl_per_day
        if rate_nl_per_day:
            self._time_for(self.step_pl, 0, rate_nl_per_day)
            self.iv_mday = self._t_mday
            self.iv_us = self._t_us
            self.iv_g = self._t_g
            self._time_for(self.rest_pl, self.rest_u, rate_nl_per_day)
            dm = now_mday + self._t_mday
            du = now_us + self._t_us  # < 2 * US_PER_MDAY
            if du >= US_PER_MDAY:
                du -= US_PER_MDAY
                dm += 1
            self.due_mday = dm
            self.due_us = du
            self.due_g = self._t_g
        return n

    def carried_u(self, now_mday, now_us):
        """Volume already delivered toward the next step, in u (pL / US_PER_MDAY).

        Call after poll(now). Command path: may use long ints.
        """
        r = self.rate
        if r:
            owed = r * ((self.due_mday - now_mday) * US_PER_MDAY + self.due_us - now_us) - self.due_g
        else:
            owed = self.rest_pl * US_PER_MDAY + self.rest_u
        return self.step_pl * US_PER_MDAY - owed

    def steps(self):
        """Total steps issued, as one integer (a long int past 2**30: not hot path)."""
        return self.steps_hi * STEP_RADIX + self.steps_lo

    # -- integer helpers ----------------------------------------------------

    def _time_for(self, wp, wu, r):
        """Time to deliver wp pL + wu u at rate r, into _t_* in ceiling form.

        0 <= wp <= MAX_STEP_PL, 0 <= wu < US_PER_MDAY, 1 <= r <= MAX_RATE.
        Time = (wp * US_PER_MDAY + wu) / r us.
        """
        m = wp // r  # whole millidays, <= MAX_STEP_PL
        q = muldiv(wp - m * r, US_PER_MDAY, r)  # < US_PER_MDAY
        x = intmath.remainder + wu  # < r + US_PER_MDAY < 2**29
        q2 = x // r  # <= 1 + US_PER_MDAY
        rem = x - q2 * r  # 0 <= rem < r
        us = q + q2  # < 2 * US_PER_MDAY + 1
        g = 0
        if rem:
            us += 1
            g = r - rem
        while us >= US_PER_MDAY:  # at most 2 rounds
            us -= US_PER_MDAY
            m += 1
        self._t_mday = m
        self._t_us = us
        self._t_g = g
