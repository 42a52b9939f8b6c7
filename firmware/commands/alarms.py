# The latched alarms (alarms.py): read one, acknowledge, silence the tones; and a test of the tones.
# And the therapy's read (THERAPY), here rather than in the resident status family: its code is on the
# heap only while it is used, and a host that watches the pump (pumpctl live) reads it with the alarms,
# so one family load serves both.

from firmware import codec, const, eventlog, framing
from firmware.commands import SAVES
from firmware.errors import Refusal
from firmware.lazy import call
from firmware.therapy import BOLUS_NONE
from firmware.timebase import US_PER_MDAY

_SCAN_US = const(
    400 * 86_400_000_000
)  # monitors.MAX_EMPTY_SCAN_DAYS days, as forecast.log_low scans (a test keeps them equal)


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
    # Each priority's tone once, low first, a second apart, unless an alarm's tone takes the speaker
    # (the tones task plays both, so the buzzer has one owner: monitors.py tones).
    mon = pump.monitors
    mon.tone_test = codec.PRIORITY_LOW
    if mon.buzz is not None:
        mon.buzz.set()
    return ()


# The therapy in force, the reservoir, the dose guard, the
# alarms and the battery.
#
# Reply:
# mode: 0 stopped, 1 continuous, 2 flex
# basal_nl_per_day: the basal now (the flex step running), nL/day, at the fluid in the path
# rate_nl_per_day: what the scheduler runs: basal plus any bolus (a prime: the prime alone), nL/day
# bolus_kind: 0 none, 1 bolus, 2 patient-bolus, 3 prime: running or waiting to start
# bolus_rate_nl_per_day: the bolus's own rate while it runs, nL/day; 0 otherwise
# bolus_left_s: seconds until the bolus ends, rounded up; 0 without one
# bridge: 1 while the old fluid is pushed out at the old dose after a refill, else 0
# reservoir_nl: volume left in the reservoir, nL; NO_TIME until a program gives a fill
# empty_in_s: seconds of pump time until the running program has delivered all of the counted reservoir (to 0 nL, not
#     to `empty_nl`, where delivery stops); NO_TIME if unknown, never, or beyond 400 days
# day_nl: delivered in the dose guard's rolling 24 h window, nL (rounded down)
# hour_nl: delivered in its rolling 1 h window, nL (rounded down)
# refused_steps: steps the dose guard refused since boot (saturates at 0xFFFFFFFF)
# alarm: the latched alarm of highest priority (the latest raised of those); 0 if none
#     ([codes](#codes-used-in-fields))
# clock_s: the device clock: local wall time, seconds since 1970 (naive, modulo 2^32); NO_TIME if never set
# program_crc: `program_crc` of the running program; 0 if none
# library: version of the drug library in force
# alarms: every latched alarm: bit 1 << code
# sounding: the priority the tones sound at now (the highest latched): 0 if none or silenced, 1 low, 2 medium, 3 high
# silenced_s: seconds of silence left (SILENCE), rounded up; 0 if not silenced
# hold: 1 while a motor stall, an occlusion or an unconfirmed step holds delivery (until it clears), else 0
# sensor_nl: the reservoir sensor's last reading, nL (read once a minute); NO_TIME without a sensor or before its
#     first reading
# low_in_s: seconds of pump time until the counted reservoir reaches the low-reservoir volume at the running program
#     (0: there already); NO_TIME without a fill, or not within 400 days
# low_nl: the low-reservoir volume, nL (program line `low-reservoir`; default 2,000,000)
# empty_nl: the empty volume, nL: delivery stops there (`empty-reservoir`; default 1,000,000)
# battery_permille: the battery's state of charge, ‰ (the mean of 4 readings, once a minute); 0xFFFF (NO_PERMILLE)
#     without a reading
# battery_days: battery life left in days, estimated from the drain since the first reading after boot (once 1 % of
#     charge was used); NO_TIME until then
# library_hash: `library_hash` of the library in force
# bolus_nl: the running or waiting bolus, prime or bridge: its volume, nL (0 without one)
# bolus_left_nl: and what of it is still to go, nL
#
# **Refusals:** none.
def therapy(pump, values):
    pump.tick()
    tb = pump.timebase
    now = tb.total_us()
    t = pump.therapy
    step_pl = pump.sched.step_pl
    day_steps, hour_steps = pump.guard.window_steps(tb.mday, tb.us)
    bolus_left_s = 0
    if t.bolus_kind != BOLUS_NONE:
        bolus_left_s = -(-(t.bolus_end - now) // 1_000_000) if t.bolus_end > now else 0
    reservoir = pump.reservoir_nl()
    low_nl, empty_nl = pump.monitors.levels()
    empty_in = codec.NO_TIME
    low_in = None
    if reservoir is not None:  # until delivery stops (at the empty volume), and until the low one
        to_empty = max(reservoir - empty_nl, 0)
        to_low = reservoir - low_nl
        if to_low <= 0:
            low_in, s = 0, call("firmware.forecast", "time_to_deliver", t.fork(), to_empty, now, _SCAN_US)
        elif to_low <= to_empty:  # both in one scan of the program (forecast.log_low is the other)
            low_in, s = call("firmware.forecast", "times_to_deliver", t.fork(), to_low, to_empty, now, _SCAN_US)
        else:
            s, low_in = call("firmware.forecast", "times_to_deliver", t.fork(), to_empty, to_low, now, _SCAN_US)
        if s is not None and s // 1_000_000 < codec.NO_TIME:
            empty_in = s // 1_000_000
    clock = t.clock_us(now)
    p = t.program
    left_nl, total_nl = t.delivery_left_nl(now)  # a bolus, prime or bridge: what it is and what is left (0, 0: none)
    return (
        pump.mode(),
        t.basal_rate(now),
        pump.sched.rate,
        t.bolus_kind,
        t.bolus_rate if t.bolus_running(now) else 0,
        bolus_left_s,
        1 if t.bridge_drugs is not None else 0,
        codec.NO_TIME if reservoir is None else reservoir,
        empty_in,
        day_steps * step_pl // 1000,
        hour_steps * step_pl // 1000,
        min(pump.guard.refused_steps, codec.NO_TIME),
        pump.alarm,
        codec.NO_TIME if clock is None else (clock // 1_000_000) % (codec.NO_TIME + 1),
        p.program_crc() if p is not None else 0,
        pump.library.version,
        pump.alarms.mask,
        pump.alarms.sounding(now),
        -(-pump.alarms.silenced_us(now) // 1_000_000),
        1 if pump.monitors.motor_watch.hold else 0,
        codec.u32(pump.monitors.sensor_nl),
        codec.u32(None if low_in is None else low_in // 1_000_000),
        low_nl,
        empty_nl,
        codec.NO_PERMILLE if pump.monitors.battery.permille is None else pump.monitors.battery.permille,
        codec.u32(pump.monitors.battery.days),
        pump.library.hash,
        total_nl,
        left_nl,
    )


COMMANDS = (
    (codec.THERAPY, therapy, 0),
    (codec.ALARMS, read_alarm, 0),
    (codec.ACK_ALARM, ack_alarm, SAVES),
    (codec.SILENCE, silence, 0),
    (codec.TONE_TEST, tone_test, 0),
)
