# The reads: who the pump is, what it is doing, its therapy, its log, and
# the telemetry stream's interval. None needs a key; none changes the therapy.
# Resident (commands/__init__.py): served all the time.

import sys

from firmware import codec
from firmware.app import FIRMWARE_VERSION
from firmware.errors import Refusal
from firmware.lazy import call
from firmware.monitors import MAX_EMPTY_SCAN_DAYS
from firmware.scheduler import MAX_RATE_NL_PER_DAY, MIN_RATE_NL_PER_DAY
from firmware.therapy import BOLUS_NONE

TELEMETRY_MIN_MS = 10  # the fastest telemetry stream: 100 samples/s
TELEMETRY_MAX_MS = 3_600_000
_SCAN_US = MAX_EMPTY_SCAN_DAYS * 86_400_000_000  # as Monitors.low_in_us scans


# Who the pump is.
#
# Reply:
# protocol: the protocol version the pump speaks: 9
# firmware: firmware version, e.g. "0.2.0"
# board: board name, e.g. "sim"
# platform: "implementation version platform", e.g. "micropython 1.29.0 linux"
# device_id: the id the pump was provisioned with (1-40 bytes); empty if it has no keys
# step_volume_pl: calibrated volume of one motor step, pL (10,000..10,000,000)
# min_rate_nl_per_day: slowest rate it runs, nL/day (1,000 = 1 uL/day)
# max_rate_nl_per_day: fastest rate it runs, nL/day (240,000,000 = 10 mL/h)
#
# **Refusals:** none.
#
# **Notes:** a host checks `protocol` first. pumpctl finds the keys for the
# pump by `device_id`.
def hello(pump, values):
    impl = sys.implementation
    platform = "%s %s %s" % (impl.name, ".".join(str(v) for v in impl.version[:3]), sys.platform)
    return (
        codec.PROTOCOL_VERSION,
        FIRMWARE_VERSION,
        pump.board.NAME,
        platform,
        pump.auth.device_id,
        pump.sched.step_pl,
        MIN_RATE_NL_PER_DAY,
        MAX_RATE_NL_PER_DAY,
    )


# Pump time, mode, rate and steps delivered.
#
# Reply:
# time_mday: pump time now, millidays
# time_us: and microseconds into the milliday, 0..86,399,999
# mode: 0 stopped, 1 continuous, 2 flex
# rate_nl_per_day: the rate the scheduler runs now, nL/day: basal plus any running bolus (a prime alone); 0 when
#     stopped
# steps_hi: steps delivered = steps_hi × 2^29 + steps_lo: every step the dose guard let through, over the pump's life
#     (kept across restarts on a board with storage)
# steps_lo: (0..2^29-1)
# step_volume_pl: calibrated volume of one step, pL
#
# **Refusals:** none.
def status(pump, values):
    return pump.now_fields() + (pump.sched.step_pl,)


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
        elif to_low <= to_empty:  # both in one scan of the program (monitors.low_in_us is the other)
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


# Reads one entry of the event log (the ring in RAM, or the therapy log in flash).
#
# Request:
# index: the entry's number, from 0 = the first ever logged; one that has left the log gives the next one held
#
# Reply:
# count: entries logged so far (the next index)
# index: the entry's number (above the one asked for if that one left the log)
# time_mday: pump time it was logged, millidays
# time_us: and microseconds
# code: the event code (above)
# text: what happened, at most 100 characters
# clock_s: the device clock when it was logged (local wall time, s since 1970, modulo 2^32); NO_TIME if it was not set
#     then
#
# **Refusals:** `index` "event N is not logged yet; the log holds M
# events".
def event(pump, values):
    """Entry `index`, or the oldest held after it if that one has left the log (the ring in RAM,
    and the therapy log in flash for the entries that make the record)."""
    entry = pump.log.find(values[0])
    if entry is None:
        raise Refusal("index", "event %d is not logged yet; the log holds %d events" % (values[0], pump.log.count))
    index, mday, us, code, text, clock_s = entry
    return (pump.log.count, index, mday, us, code, text, codec.NO_TIME if clock_s is None else clock_s & 0xFFFFFFFF)


# Starts, changes or stops the telemetry stream.
#
# Request:
# interval_ms: one sample every this many ms of wall time, 10..3,600,000; 0 stops
#
# Reply:
# interval_ms: the interval now in force
#
# **Refusals:** `interval_ms` "interval N ms is outside 10..3600000 ms (0
# stops)".
#
# **Notes:** see [telemetry](#telemetry-and-link-supervision).
def telemetry(pump, values):
    (interval_ms,) = values
    if interval_ms and not TELEMETRY_MIN_MS <= interval_ms <= TELEMETRY_MAX_MS:
        raise Refusal(
            "interval_ms",
            "interval %d ms is outside %d..%d ms (0 stops)" % (interval_ms, TELEMETRY_MIN_MS, TELEMETRY_MAX_MS),
        )
    pump.stream(interval_ms)
    return (interval_ms,)


COMMANDS = (
    (codec.HELLO, hello, 0),
    (codec.STATUS, status, 0),
    (codec.THERAPY, therapy, 0),
    (codec.EVENT, event, 0),
    (codec.TELEMETRY, telemetry, 0),
)
