# The latched alarms (alarms.py): read one, acknowledge, silence the tones.

from firmware import codec, eventlog, framing
from firmware.commands import SAVES
from firmware.errors import Refusal
from firmware.timebase import US_PER_MDAY


def ack_alarm(pump, values):
    """Acknowledge one latched alarm (or every one: alarm 0). One whose
    condition has gone leaves the list; one still present stays, and sounds."""
    (code,) = values
    if code != codec.ALARM_NONE and not codec.alarm_priority(code):
        raise Refusal("alarm", "alarm %d does not exist" % code)
    if not pump.alarms.count():
        raise Refusal("alarm", "no alarm to acknowledge")
    if code != codec.ALARM_NONE and not pump.alarms.latched(code):
        raise Refusal("alarm", "the {a%d} alarm is not latched" % code)
    done = pump.alarms.acknowledge(code)
    if not done:
        raise Refusal("alarm", "already acknowledged: it goes when its condition clears")
    for c in done:
        if c == codec.ALARM_DOSE_LIMIT:
            pump.guard.clear_trip()
        still = " (its condition is still present: it stays until that clears)" if pump.alarms.active(c) else ""
        pump.log_event(eventlog.EV_ACK, "{a%d}%s" % (c, still))
    return (len(done), pump.alarms.mask)


def silence(pump, values):
    """Silence the tones for at most 2 min; the alarms stay latched."""
    pump.tick()
    if not pump.alarms.count():
        raise Refusal("alarm", "no alarm is sounding")
    seconds = pump.alarms.silence(pump.timebase.total_us())
    pump.log_event(eventlog.EV_SILENCE, "tones silenced for %d s" % seconds)
    if pump.monitors.buzz is not None:
        pump.monitors.buzz.set()
    return (seconds,)


def read_alarm(pump, values):
    (index,) = values
    a = pump.alarms
    n = a.count()
    if index >= n:
        return (n, codec.ALARM_NONE, 0, 0, 0, 0, "")
    code, prio, state, raised_us, text = a.entry(index)
    return (n, code, prio, state, raised_us // US_PER_MDAY, raised_us % US_PER_MDAY, framing.clip(text))


COMMANDS = (
    (codec.ALARMS, read_alarm, 0),
    (codec.ACK_ALARM, ack_alarm, SAVES),
    (codec.SILENCE, silence, 0),
)
