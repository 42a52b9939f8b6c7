# Before a new delivery starts (a program, a bolus, a library that changes the
# limits): what it would deliver, checked against the dose guard's windows
# with what they hold, without changing anything.
#
#   Projection    what the therapy will deliver from now, bucket by bucket, run
#                 forward event by event on a fork of it (Therapy.fork())
#   fluid_change  what a change of the fluid does to the guard's history: the
#                 rescale, and the departed drugs that return (which
#                 DoseGuard.set_fluid() makes and admit() checks)
#   admit         every window of the next 24 h: the history left in it, plus
#                 the projected steps, plus the bolus, within its limit
#
# Command path only (and a delayed bolus's start: PumpApp.admit); it may use
# long ints and allocate.

from array import array

from firmware import const
from firmware.guard import (
    BUCKET_US,
    DAY_BUCKETS,
    HOUR_BUCKETS,
    LIMIT_BOLUS,
    LIMIT_DAY,
    LIMIT_HOUR,
    LIMIT_NONE,
    SAT_HOUR,
    SAT_REST,
    SATURATED,
    window_totals,
)
from firmware.intmath import gcd

_MANY_BUCKETS = const(1_048_576)  # more buckets than admit() asks for (2,400), as a small int
_NO_EVENT = const(536_870_912)  # the bucket of no event: after every bucket a projection reaches


def has_drug(drugs, name):
    """The concentration of name in drugs ((name, conc, ...) tuples), or 0."""
    for d in drugs:
        if d[0] == name:
            return d[1]
    return 0


def largest_ratio(top, bottom):
    """(num, den): the largest concentration in top over the same drug's in
    bottom, over the drugs in both ((name, conc, ...) tuples); (0, 1) if they
    have none in common."""
    num = 0
    den = 1
    for d in top:
        below = has_drug(bottom, d[0])
        if below and d[1] * den > num * below:
            num = d[1]
            den = below
    return num, den


def fluid_change(guard, drugs):
    """What a change of guard's fluid (a DoseGuard's, set_fluid tuples) to drugs does to its
    history, without doing it: (num, den, inserts, departed).

    The buckets rescale by num/den (the largest ratio of old to new concentration, in
    lowest terms; num 0: no drug in common, the history carries none of these); inserts,
    sorted, put back the history of the departed drugs that return, in steps of the new
    fluid rounded up, each as (k, steps) for the k-th bucket from the oldest (steps
    SATURATED: that bucket becomes saturated): a departure's hour total in the bucket it
    left in and the rest of its day total an hour of buckets before, so each leaves every
    window no earlier than the steps it stands for did, and comes back saturated if its
    windows held a saturated bucket when the drug left. departed: the records kept after
    the change (those under a day old that do not return, then the drugs that leave now)."""
    end_us = guard.bucket_end_us()
    departed = []
    inserts = []
    for rec in guard.departed:
        name, conc, day_steps, hour_steps, change_end, sat = rec
        age = (end_us - change_end) // BUCKET_US  # whole buckets since the drug left
        if age >= DAY_BUCKETS:
            continue  # a day has passed: forgotten
        new_conc = has_drug(drugs, name)
        if not new_conc:
            departed.append(rec)
            continue
        for back, steps, flag in ((age, hour_steps, SAT_HOUR), (age + HOUR_BUCKETS, day_steps - hour_steps, SAT_REST)):
            if back < DAY_BUCKETS:
                if sat & flag:
                    inserts.append((DAY_BUCKETS - 1 - back, SATURATED))
                elif steps:
                    inserts.append((DAY_BUCKETS - 1 - back, -(-steps * conc // new_conc)))
    sat = (SAT_HOUR if guard.hour_sat else 0) | (SAT_REST if guard.day_sat > guard.hour_sat else 0)
    for name, conc, _d, _h, _b in guard.fluid:
        if not has_drug(drugs, name):
            departed.append((name, conc, guard.day_sum, guard.hour_sum, end_us, sat))
    inserts.sort()
    num, den = largest_ratio(guard.fluid, drugs)
    if num:
        g = gcd(num, den)  # small terms keep b * num a small int for most blends
        num //= g
        den //= g
    return num, den, inserts, departed


def admit(guard, now_mday, now_us, bolus_steps, future, limits=None, drugs=None):
    """Check a delivery before it starts against guard (a DoseGuard); return LIMIT_NONE or
    the limit it would pass. The guard changes only as time moves its buckets on.

    drugs: the fluid a program change brings (set_fluid's tuples), or None for the
    fluid leaving now: the history is checked as set_fluid(drugs) would leave it,
    rescaled and with returning drugs put back, without changing it (nor making a
    second ring: a bucket at a time, from DoseGuard.history). limits: (day, hour,
    bolus) to check against instead of the fluid's own (limits_for() of the same
    drugs under another library), or None.

    bolus_steps: the size of a bolus starting now, in steps rounded up (0
    if none), checked against the bolus hard limit; its delivery is part of
    the future. future: an object whose next_bucket() returns, on each
    call, the steps the therapy (basal, boluses and all) will have
    delivered from now to the end of the current bucket, then of the next
    one, and so on: a non-decreasing upper bound (a Projection).
    For every window ending in the next 24 h (a day window, and each of
    the 2400 hour windows in that time), what is left of the history in
    it plus the future deliveries in it plus the bolus must stay within
    the window's limit. Windows ending later hold only future deliveries
    of a program that repeats daily, so they hold no more than these.
    """
    guard.window_steps(now_mday, now_us)  # brings the buckets up to now
    if drugs is None:
        num = den = 1  # the history as it is
        inserts = ()
        day_limit, hour_limit, bolus_limit = limits or (guard.day_limit, guard.hour_limit, guard.bolus_limit)
    else:
        num, den, inserts, _departed = fluid_change(guard, drugs)
        day_limit, hour_limit, bolus_limit = limits or guard.limits_for(drugs)
    if bolus_steps > bolus_limit:
        return LIMIT_BOLUS
    # No rescale and nothing put back: the history as it is. No drug in common and nothing put back: none
    # (num 0 empties every bucket). Either needs no run of guard.history (three generators' frames).
    empty = drugs is not None and not num and not inserts
    if num == den and not inserts:
        drugs = None
    if drugs is None:
        day_hist = guard.day_sum
        hour_hist = guard.hour_sum
        day_sat = guard.day_sat  # a saturated bucket fills its windows: nothing more may go in them
        hour_sat = guard.hour_sat
    elif empty:
        day_hist = hour_hist = day_sat = hour_sat = 0
    else:  # the history as the change leaves it
        day_hist, hour_hist, day_sat, hour_sat = window_totals(guard.history(num, den, inserts))
    # The buckets leaving the day window, oldest first, and the hour window's (the newest
    # HOUR_BUCKETS): the history as it is read from the ring (guard.bucket), as a change leaves
    # it from two runs of guard.history.
    leaving = hour_leaving = None
    if drugs is not None and not empty:
        leaving = guard.history(num, den, inserts)
        hour_leaving = guard.history(num, den, inserts)
        for _ in range(DAY_BUCKETS - HOUR_BUCKETS):
            next(hour_leaving)
    # ahead_at[k % 100]: future steps to the end of bucket k - 100, so the
    # hour window ending with bucket k holds ahead - ahead_at[k % 100] of them.
    ahead_at = array("I", range(HOUR_BUCKETS))  # command path: 400 B (from a range: no 400 B of bytes beside it)
    for slot in range(HOUR_BUCKETS):
        ahead_at[slot] = 0
    for k in range(DAY_BUCKETS):
        ahead = future.next_bucket()
        # A window the new delivery adds nothing to is not its to pass (a stop is always admitted).
        if ahead and (day_sat or day_hist + ahead > day_limit):
            return LIMIT_DAY
        slot = k % HOUR_BUCKETS
        added = ahead - ahead_at[slot]
        if added and (hour_sat or hour_hist + added > hour_limit):
            return LIMIT_HOUR
        ahead_at[slot] = ahead
        # One bucket later, the oldest bucket of each window drops out.
        if empty:
            continue  # nothing leaves an empty history
        b = guard.bucket(k) if leaving is None else next(leaving)
        if b == SATURATED:
            day_sat -= 1
        else:
            day_hist -= b
        if k < HOUR_BUCKETS:
            b = guard.bucket(k + DAY_BUCKETS - HOUR_BUCKETS) if hour_leaving is None else next(hour_leaving)
            if b == SATURATED:
                hour_sat -= 1
            else:
                hour_hist -= b
    return LIMIT_NONE


class Projection:
    """Steps a therapy will deliver from now, bucket by bucket, for admit().

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
        self._buckets = _project(therapy, now, first_end, bucket_us, carried_u, step_u)

    def next_bucket(self):
        return next(self._buckets)


def _project(t, now, end, bucket_us, vol_u, step_u):
    """Projection's buckets, one a next(), from pump time now, end the end of the current bucket,
    vol_u the carried part of a step (u = nL/day x us: a rate r delivers r u per us). A generator:
    its state lives in its frame, made once (as an object's 21 attributes it grew the object's
    dict seven times, about 650 B of garbage a projection).

    What has been delivered is steps, then acc_g units of G and acc_rest u below one unit: small
    ints at every bucket's end (acc_g < step_g, acc_rest < G). A bucket with an event sums its
    segments' volumes, long ints, and splits the sum once; the buckets between events add small
    ints only. (Kept as one volume in u, a long int, it was split and joined again around each
    run of buckets between events: about 160 B more each event.)

    Times are places: bucket k from the first one and us into it (off, 0..bucket_us), small ints;
    an event's pump time (a long int past 2**30 us) is made a place once, (ek, eoff) with eoff in
    1..bucket_us (an event at a bucket's end is that bucket's), and given to the therapy as the
    therapy gave it. (As pump times, each bucket with an event made about 0.4 KB of long ints.)"""
    rate = t.rate_now(now)
    event = t.next_event(now)
    fluid = guard_fluid = t.fluid()  # what the guard's steps are steps of
    num = den = 1  # volume of the fluid leaving now counts num/den of the guard's
    g = gcd(bucket_us, step_u)
    bucket_g = bucket_us // g  # a bucket, in units of G
    step_g = step_u // g  # a step, in units of G (small: see Projection)
    steps = vol_u // step_u
    vol_u %= step_u
    acc_g = vol_u // g
    acc_rest = vol_u % g
    base = end - bucket_us  # where bucket 0, the one holding now, starts
    k = 0
    off = now - base
    ek = _NO_EVENT
    eoff = 0
    placing = event is not None  # the event's place (ek, eoff) is yet to be found
    while True:
        vol_u = 0  # this bucket's volume, segment by segment
        while True:  # the volume up to each event in this bucket, then up to its end
            if placing:
                placing = False
                d = event - base  # pyright: ignore[reportOptionalOperand]  (placing: an event, not None)
                if d < 0:
                    # An event before bucket 0 that the therapy has not fired by now (flex boundaries
                    # passed since it last ran; only at k == 0): bucket 0's, before its start, fired
                    # first, as pump times would be (each segment back to one counts negative volume,
                    # as the sums do).
                    ek = 0
                    eoff = d
                else:
                    ek = d // bucket_us
                    eoff = d % bucket_us
                    if not eoff and ek:
                        ek -= 1
                        eoff = bucket_us
            at = eoff if ek == k else bucket_us
            added = rate * (at - off)
            if num != den:  # scaled, rounded up (unscaled: no long-int garbage for it)
                added = -(-added * num // den)
            vol_u = vol_u + added if vol_u else added
            off = at
            if ek != k:
                break
            t.fire(event)
            rate = t.rate_now(event)
            if t.fluid() != fluid:
                fluid = t.fluid()
                num, den = _strength_ratio(fluid, guard_fluid)
            nxt = t.next_event(event)
            if nxt is None:
                ek = _NO_EVENT
            elif nxt > event:
                event = nxt
                placing = True
            else:  # an event not after the one fired: the next us
                event = event + 1  # pyright: ignore[reportOptionalOperand]  (ek == k: an event, not None)
                eoff += 1
                if eoff > bucket_us:
                    ek += 1
                    eoff = 1
        if vol_u:
            acc_rest += vol_u % g
            acc_g += vol_u // g
            if acc_rest >= g:
                acc_rest -= g
                acc_g += 1
            if not 0 <= acc_g < step_g:  # (below 0 only for a therapy whose events were not run up to now)
                steps += acc_g // step_g
                acc_g %= step_g
        fast = 0
        if num == den:
            # The buckets after this one and before the event's, which end before it.
            fast = ek - k - 1
            if fast > _MANY_BUCKETS:
                fast = _MANY_BUCKETS
        yield steps
        if fast > 0:  # no event in these buckets and no scaling: small ints only
            add = rate * bucket_g  # a bucket adds add_q steps and add_g units of G
            add_q = add // step_g  # (small-int divisions: no tuple from divmod)
            add_g = add % step_g
            k += fast
            while fast:
                fast -= 1
                acc_g += add_g
                steps += add_q
                if acc_g >= step_g:
                    acc_g -= step_g
                    steps += 1
                yield steps
        k += 1
        off = 0


def _strength_ratio(fluid, guard_fluid):
    """(num, den): how many guard-fluid steps of drug one step of fluid carries, the
    largest over its drugs. A drug the guard's fluid lacks cannot be expressed in
    its steps, so it counts as far past any limit (programs never ask for that:
    only a bridge changes the fluid within a projection, and it keeps the drugs)."""
    for name, _conc in fluid:
        if not has_drug(guard_fluid, name):
            return 1 << 40, 1
    return largest_ratio(fluid, guard_fluid)
