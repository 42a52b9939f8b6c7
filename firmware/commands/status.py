# The reads: who the pump is, what it is doing, its log, and the telemetry stream's
# interval. None needs a key; none changes the therapy. Resident (commands/__init__.py):
# served all the time. The therapy's read is the alarms family's (alarms.py).

import sys

from firmware import codec, tasks
from firmware.app import FIRMWARE_VERSION
from firmware.errors import Refusal
from firmware.scheduler import MAX_RATE_NL_PER_DAY, MIN_RATE_NL_PER_DAY

TELEMETRY_MIN_MS = 10  # the fastest telemetry stream: 100 samples/s
TELEMETRY_MAX_MS = 3_600_000


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
    _stream(pump, interval_ms)
    return (interval_ms,)


def _stream(pump, interval_ms):
    """Start, change or (0) stop the telemetry stream. Its code is loaded for the stream only
    (telemetry.py says why): a stream's start imports it and adds its task."""
    t = pump.telemetry
    running = pump.monitors.buzz is not None  # run() started the pump's tasks (monitors.start made their events)
    if t is None:
        if not interval_ms:
            return
        from firmware.telemetry import Telemetry

        t = pump.telemetry = Telemetry(pump)
        if running:
            tasks.create_task(t.run())
    t.set_interval(interval_ms)
    if not interval_ms and not running:  # no task to end it: dropped now
        from firmware.telemetry import drop

        drop(pump)


COMMANDS = (
    (codec.HELLO, hello, 0),
    (codec.STATUS, status, 0),
    (codec.EVENT, event, 0),
    (codec.TELEMETRY, telemetry, 0),
)
