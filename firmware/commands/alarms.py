# The latched alarms (alarms.py): read one, acknowledge, silence the tones; and a test of the tones.

from firmware import codec, eventlog, framing
from firmware.commands import SAVES
from firmware.errors import Refusal
from firmware.timebase import US_PER_MDAY


# Acknowledges one latched alarm, or every one. An alarm
# whose condition has cleared leaves the list; one whose condition is still
# present stays latched, acknowledged, and goes when its condition clears
# ([alarms](#alarms)). Acknowledging the dose-limit alarm also clears the
# dose guard's trip.
#
# Request:
# alarm: the alarm's code ([codes](#codes-used-in-fields)); 0 acknowledges every latched alarm
#
# Reply:
# acknowledged: how many alarms this acknowledged (not counting those acknowledged before)
# alarms: the alarms still latched afterwards: bit 1 << code
#
# **Refusals** (field `alarm`): "alarm N does not exist"; "no alarm to
# acknowledge"; "the ... alarm is not latched"; "already acknowledged: it goes
# when its condition clears". Logged (event 7), one entry per alarm, with "
# (its condition is still present: it stays until that clears)" where so.
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


# Silences the alarm tones for at most 2 minutes
# (`alarms.SILENCE_US`). The alarms stay latched; any alarm raised meanwhile
# ends the silence and sounds at once. A second SILENCE starts the 2 minutes
# again.
#
# Reply:
# silenced_s: seconds of silence: 120
#
# **Refusals:** `alarm` "no alarm is sounding" (none is latched). Logged
# (event 20). Not saved: after a restart the tones sound again.
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


# Reads one of the latched alarms, in the order raised.
#
# Request:
# index: the alarm's place in the list, from 0
#
# Reply:
# count: how many alarms are latched; the other fields are 0 (and `text` empty) when `index` >= `count`
# code: the alarm's code ([codes](#codes-used-in-fields)); 0 past the end
# priority: 1 low, 2 medium, 3 high (`schema.ALARM_PRIORITY`)
# state: bits: 1 its condition is present now, 2 it was acknowledged
# raised_mday: pump time it was raised, millidays
# raised_us: and microseconds
# text: its cause, as the pump logged it (at most 100 bytes)
#
# **Refusals:** none.
#
# **Notes:** read index 0, 1, ... until `index` >= `count`. The list can
# change between two reads (an alarm raised or gone); pumpctl stops at the
# first code 0.
def read_alarm(pump, values):
    (index,) = values
    a = pump.alarms
    n = a.count()
    if index >= n:
        return (n, codec.ALARM_NONE, 0, 0, 0, 0, "")
    code, prio, state, raised_us, text = a.entry(index)
    return (n, code, prio, state, raised_us // US_PER_MDAY, raised_us % US_PER_MDAY, framing.clip(text))


# Sounds each alarm priority's tone once, low, medium, then high, about a
# second apart, so that the person at the pump hears that its speaker works
# (IEC 60601-1-8: the operator can check the alarm signals). The tones follow
# the reply; an alarm that sounds meanwhile ends the test at once (its tone
# takes the speaker), and the test never sounds over an alarm.
#
# **Refusals:** `alarm` "an alarm is sounding: its tone is the test; silence it
# to test the tones" (pumpctl alarms silence); `buzzer` "this pump has no
# buzzer". Not logged, not saved: nothing but the sound changes. A second
# TONE_TEST starts the test again from the low tone.
def tone_test(pump, values):
    if getattr(pump.hw, "buzzer", None) is None:
        raise Refusal("buzzer", "this pump has no buzzer")
    pump.tick()
    if pump.alarms.sounding(pump.timebase.total_us()):
        raise Refusal("alarm", "an alarm is sounding: its tone is the test; silence it to test the tones")
    pump.monitors.start_tone_test()
    return ()


COMMANDS = (
    (codec.ALARMS, read_alarm, 0),
    (codec.ACK_ALARM, ack_alarm, SAVES),
    (codec.SILENCE, silence, 0),
    (codec.TONE_TEST, tone_test, 0),
)
