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


def status(pump, values):
    return pump.now_fields() + (pump.sched.step_pl,)


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
        codec.program_crc(p.lines, p.library_version) if p is not None else 0,
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


def event(pump, values):
    """Entry `index`, or the oldest held after it if that one has left the log (the ring in RAM,
    and the therapy log in flash for the entries that make the record)."""
    entry = pump.log.find(values[0])
    if entry is None:
        raise Refusal("index", "event %d is not logged yet; the log holds %d events" % (values[0], pump.log.count))
    index, mday, us, code, text, clock_s = entry
    return (pump.log.count, index, mday, us, code, text, codec.NO_TIME if clock_s is None else clock_s & 0xFFFFFFFF)


def telemetry(pump, values):
    (interval_ms,) = values
    if interval_ms and not TELEMETRY_MIN_MS <= interval_ms <= TELEMETRY_MAX_MS:
        raise Refusal(
            "interval_ms",
            "interval %d ms is outside %d..%d ms (0 stops)" % (interval_ms, TELEMETRY_MIN_MS, TELEMETRY_MAX_MS),
        )
    pump.telemetry.set_interval(interval_ms)
    return (interval_ms,)


COMMANDS = (
    (codec.HELLO, hello, 0),
    (codec.STATUS, status, 0),
    (codec.THERAPY, therapy, 0),
    (codec.EVENT, event, 0),
    (codec.TELEMETRY, telemetry, 0),
)
