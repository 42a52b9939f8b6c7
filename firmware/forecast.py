# When a therapy will have delivered a volume: the reservoir's low and empty
# times (THERAPY, the log's forecast after a program change), found by running
# a fork of the therapy (Therapy.fork()) forward, event by event.
#
# Command path only: loaded for a call and forgotten after it (lazy.call,
# lazy.TRANSIENT), so the running pump does not hold this code.

from firmware.program import BASAL_FLEX, US_PER_DAY
from firmware.therapy import BOLUS_NONE, US_PER_MIN


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
    the program's daily basal exactly (basal_day_nl_min), so at the start of the first
    one the whole days that still fit are skipped at once: a 400-day scan costs a day
    or two of events, not 1,600 of them (each makes long-int garbage on a 32-bit port),
    and a schedule of zero rates ends the scan there."""
    left_u = volume_nl * US_PER_DAY  # nL in u = nL/day x us
    at = now
    limit = now + horizon_us
    first = None  # the time to volume_nl, once found (with then_nl to go)
    while at < limit:
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
        p = t.program
        if p is None or p.basal_kind != BASAL_FLEX or at != t.day_start:
            continue
        if (
            t.bolus_kind != BOLUS_NONE
            or t.bridge_drugs is not None
            or t.trial_end is not None
            or t.day_end - t.day_start != US_PER_DAY
        ):
            continue  # not a plain day: its events are run
        day_u = p.basal_day_nl_min() * US_PER_MIN  # a plain day's delivery (rates x minutes, in u)
        if not day_u:
            break  # zero rates all day, every day: nothing more is delivered
        days = left_u // day_u - 1  # leave the last day to the events
        room = (limit - at) // US_PER_DAY
        if days > room:
            days = room
        if days > 0:
            at += days * US_PER_DAY
            left_u -= days * day_u
            t.day_start += days * US_PER_DAY
            t.day_end += days * US_PER_DAY
            t.bridge_mark = at
    return first, None
