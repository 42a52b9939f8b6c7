# What the dose guard's admission sees of a therapy's future: the steps it will
# deliver from now, bucket by bucket (Projection), run forward event by event on
# a fork of the therapy (Therapy.fork()), never the therapy itself.
#
# Command path only (and a delayed bolus's start: PumpApp.admit).

from firmware import const
from firmware.guard import has_drug, largest_ratio
from firmware.intmath import gcd

_MANY_BUCKETS = const(1_048_576)  # more buckets than admit() asks for (2,400), as a small int


class Projection:
    """Steps a therapy will deliver from now, bucket by bucket, for DoseGuard.admit().

    next_bucket() returns the steps delivered from now to the end of the
    current guard bucket, then the next, and so on: floor((carried + volume)
    / step), with carried the part of a step the scheduler already holds, so
    this is exactly what the scheduler will issue.

    The guard counts steps of the fluid leaving the pump now. When a bridge
    ends and the new concentration reaches the catheter, each new step
    carries new/old as much drug (the largest ratio over the blend), so its
    volume is counted scaled by that ratio, rounded up.

    Garbage: pump times and volumes here are long ints on a 32-bit port, and
    admit() asks for 2,400 buckets. Between two events at an unscaled rate
    every bucket adds the same volume, rate x bucket_us, so those buckets run
    on small ints, Bresenham style: with G = gcd(bucket_us, step_u), a bucket
    adds rate x (bucket_us / G) units of G and a step is step_u / G of them
    (12 x the step volume in pL for the guard's buckets: below 2**27); the
    part of a step below one unit G does not change there. Only the buckets
    holding an event, and those of a scaled bridge, use the long-int sums.
    """

    def __init__(self, therapy, now, first_end, bucket_us, carried_u, step_u):
        self._t = therapy
        self._now = now
        self._next_end = first_end
        self._bucket_us = bucket_us
        self._vol_u = carried_u  # u = nL/day x us: a rate r delivers r u per us
        self._step_u = step_u
        self._rate = therapy.rate_now(now)
        self._event = therapy.next_event(now)
        self._guard_fluid = therapy.fluid()  # what the guard's steps are steps of
        self._fluid = self._guard_fluid
        self._num = 1  # volume of the fluid leaving now counts num/den of the guard's
        self._den = 1
        g = gcd(bucket_us, step_u)
        self._g = g
        self._bucket_g = bucket_us // g  # a bucket, in units of G
        self._step_g = step_u // g  # a step, in units of G (small: see above)
        self._fast = 0  # buckets left on the small-int path
        self._steps = 0  # on that path: steps so far,
        self._acc_g = 0  # the part of the next step in units of G (< _step_g),
        self._acc_rest = 0  # and below one unit (fixed there)
        self._add_q = 0  # a bucket adds _add_q steps and _add_g units of G
        self._add_g = 0

    def next_bucket(self):
        if self._fast:  # no event in this bucket and no scaling: small ints only
            self._fast -= 1
            acc = self._acc_g + self._add_g
            steps = self._steps + self._add_q
            if acc >= self._step_g:
                acc -= self._step_g
                steps += 1
            self._acc_g = acc
            self._steps = steps
            if not self._fast:  # back to the long-int sums for the next bucket
                self._vol_u = (steps * self._step_g + acc) * self._g + self._acc_rest
                self._now = self._next_end - self._bucket_us
            return steps
        end = self._next_end
        t = self._t
        while self._event is not None and self._event <= end:
            ev = self._event
            self._add(ev)
            t.fire(ev)
            self._rate = t.rate_now(ev)
            if t.fluid() != self._fluid:
                self._fluid = t.fluid()
                self._num, self._den = _strength_ratio(self._fluid, self._guard_fluid)
            nxt = t.next_event(ev)
            self._event = nxt if nxt is None or nxt > ev else ev + 1
        self._add(end)
        bucket_us = self._bucket_us
        steps = self._vol_u // self._step_u
        if self._num == self._den:
            # The buckets ending before the next event: end + j x bucket_us < event.
            ev = self._event
            fast = _MANY_BUCKETS if ev is None else (ev - end - 1) // bucket_us
            if fast > _MANY_BUCKETS:
                fast = _MANY_BUCKETS
            if fast > 0:
                self._fast = fast
                self._steps = steps
                self._acc_g, self._acc_rest = divmod(self._vol_u - steps * self._step_u, self._g)
                self._add_q, self._add_g = divmod(self._rate * self._bucket_g, self._step_g)
                self._next_end = end + (fast + 1) * bucket_us  # the bucket after the fast ones
                return steps
        self._next_end = end + bucket_us
        return steps

    def _add(self, until):
        """Count the volume delivered from the last point up to until."""
        self._vol_u += -(-self._rate * (until - self._now) * self._num // self._den)
        self._now = until


def _strength_ratio(fluid, guard_fluid):
    """(num, den): how many guard-fluid steps of drug one step of fluid carries, the
    largest over its drugs. A drug the guard's fluid lacks cannot be expressed in
    its steps, so it counts as far past any limit (programs never ask for that:
    only a bridge changes the fluid within a projection, and it keeps the drugs)."""
    for name, _conc in fluid:
        if not has_drug(guard_fluid, name):
            return 1 << 40, 1
    return largest_ratio(fluid, guard_fluid)
