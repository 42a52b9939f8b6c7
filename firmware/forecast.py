# When a therapy will have delivered a volume: the reservoir's low and empty
# times (THERAPY, the log's forecast after a program change or a patient's
# bolus: log_low), found by running
# a fork of the therapy (Therapy.fork()) forward, event by event, and once its
# days are the plain flex schedule, a step at a time (times_to_deliver).
#
# Command path only: loaded for a call and forgotten after it (lazy.call,
# lazy.TRANSIENT), so the running pump does not hold this code.

from firmware import eventlog
from firmware.monitors import MAX_EMPTY_SCAN_DAYS
from firmware.program import BASAL_FLEX, MIN_PER_DAY, US_PER_DAY
from firmware.therapy import BOLUS_NONE, US_PER_MIN

_SCAN_US = MAX_EMPTY_SCAN_DAYS * 86_400_000_000  # how far ahead a forecast looks (a long int: once a call)


def log_low(pump, now):
    """After a program change (COMMIT) or a patient's bolus: the counted reservoir, and when it
    reaches the low volume at the running program, in the log; nothing before any fill."""
    left = pump.reservoir_nl()
    if left is None:
        return
    low_nl, _e = pump.monitors.levels()
    low_in = 0 if left <= low_nl else time_to_deliver(pump.therapy.fork(), left - low_nl, now, _SCAN_US)
    if low_in is None:
        pump.log_event(eventlog.EV_THERAPY, "reservoir {n%d}; low level not within 400 days" % left)
    else:  # pumpctl writes the volume and the time ("in 36 days", "in 1.8 hours")
        pump.log_event(eventlog.EV_THERAPY, "reservoir {n%d}; low level in {u%d}" % (left, low_in // 1_000_000))


def time_to_deliver(t, volume_nl, now, horizon_us):
    """Pump time from now until therapy t (a fork: it is run forward) has delivered volume_nl,
    or None if it does not within horizon_us (times_to_deliver of one volume)."""
    return times_to_deliver(t, volume_nl, None, now, horizon_us)[0]


def times_to_deliver(t, volume_nl, then_nl, now, horizon_us):
    """(time to volume_nl, time to then_nl) as time_to_deliver gives each, in one scan: then_nl
    (at least volume_nl, or None: not asked) is found going on from the same point. THERAPY asks
    for the low and the empty volumes at once: one scan of a 400-day horizon, not two.

    Exact: the volume is the integral of the rates, event to event. A flex schedule
    repeats each day once nothing else is pending (no bolus, bridge or trial) and its
    day is 24 h long (the clock in step with the schedule), each such day delivering
    the program's daily basal exactly (basal_day_nl_min). From the first time in such a day
    (_plain_step) the days are walked step by step in minutes of the schedule day, not
    through the therapy's events (a pump time past 2**30 us is a long int on a 32-bit
    port: an event made about 400 B of them, a step walked 64 B), and at the start of
    the first such day the whole days that still fit are skipped at once: a 400-day
    scan costs a day or two of steps, not 1,600 events, and a schedule of zero rates
    ends the scan there."""
    left_u = volume_nl * US_PER_DAY  # nL in u = nL/day x us
    at = now
    limit = now + horizon_us
    first = None  # the time to volume_nl, once found (with then_nl to go)
    while at < limit:
        j = _plain_step(t, at)
        if j >= 0:
            p = t.program
            return _walk(p.flex_rates(t.fluid()), p, j, t.day_start, at, left_u, first, volume_nl, then_nl, now, limit)
        rate = t.rate_now(at)
        ev = t.next_event(at)
        end = limit if ev is None or ev > limit else ev
        span_u = rate * (end - at)  # nL x us delivered to the span's end
        while rate and span_u >= left_u:
            found = at + -(-left_u // rate) - now
            if then_nl is None:
                return found, None
            if first is not None:
                return first, found
            first = found  # and on to then_nl, from the start of this same span
            left_u += (then_nl - volume_nl) * US_PER_DAY
        left_u -= span_u
        if ev is None:
            break
        t.fire(end)
        at = end if end > at else at + 1
    return first, None


def _plain_step(t, at):
    """The index of the flex step that pump time at is in, if from at on every day is the
    schedule's plain 24 h day (nothing pending but the flex basal, steps in order); else -1."""
    p = t.program
    if (
        p is None
        or p.basal_kind != BASAL_FLEX
        or t.bolus_kind != BOLUS_NONE
        or t.bridge_drugs is not None
        or t.trial_end is not None
        or t.day_end - t.day_start != US_PER_DAY
        or not t.day_start <= at < t.day_end
    ):
        return -1
    minute = (at - t.day_start) // US_PER_MIN
    steps = p.flex
    found = -1
    for j in range(len(steps)):
        if j and steps[j][0] <= steps[j - 1][0]:
            return -1  # not in order (the parser makes no such schedule): event by event
        if steps[j][0] <= minute:
            found = j
    return found


def _walk(rates, p, j, day_start, at, left_u, first, volume_nl, then_nl, now, limit):
    """times_to_deliver from pump time at, in flex step j of the plain day that began at
    day_start (left_u still to go, first the time to volume_nl if found), a step at a time: rates
    (the steps' (start_min, nL/day)) repeat every 24 h. Each found time is the same as event by
    event: the span's start (at, then each step's) plus the time its rate takes to deliver what
    is left, rounded up, if that is within limit."""
    n = len(rates)
    if at == day_start:
        at = None  # a day start: its whole days are skipped at once
    skip = True  # whole days skipped at the next day start (after it, less than a day is left)
    day_u = 0
    while True:
        if j == n:  # the next day
            j = 0
            day_start += US_PER_DAY
            if day_start >= limit:
                return first, None
        if not j and skip and at is None:
            skip = False
            if not day_u:
                day_u = p.basal_day_nl_min() * US_PER_MIN  # a plain day's delivery (rates x minutes, in u)
            if not day_u:
                return first, None  # zero rates all day, every day: nothing more is delivered
            days = (left_u - 1) // day_u  # the whole days before the one where left_u is reached
            room = (limit - day_start) // US_PER_DAY
            if days > room:
                days = room
            if days > 0:
                day_start += days * US_PER_DAY
                left_u -= days * day_u
        start, rate = rates[j]
        j += 1
        stop = rates[j][0] if j < n else MIN_PER_DAY
        if at is None:
            span_u = rate * (stop - start) * US_PER_MIN
        else:  # the first span: from at to its step's end
            span_u = rate * (day_start + stop * US_PER_MIN - at)
        while rate and span_u >= left_u:
            found = (day_start + start * US_PER_MIN if at is None else at) + -(-left_u // rate)
            if found > limit:
                return first, None
            found -= now
            if then_nl is None:
                return found, None
            if first is not None:
                return first, found
            first = found
            left_u += (then_nl - volume_nl) * US_PER_DAY
            skip = True  # and then_nl's whole days skipped too
        left_u -= span_u
        at = None
