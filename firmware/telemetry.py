# The telemetry stream (TELEMETRY, TELEMETRY_DATA): one sample of what the
# pump is doing every interval_ms of wall time while the host keeps the line
# alive; a task of the pump's, beside dosing and the link, while a stream runs.
#
# Memory: this module and its task are on the heap only while a stream runs
# (PumpApp.stream loads it; the task, or a stop with no tasks running, drops it):
# an idle or dosing pump streams nothing, and about 2 KB of its code stayed
# loaded for the pump's life before. A stream's start loads it again (a few ms
# on a board, its bytecode's bytes of garbage once the stream ends).

import sys

from firmware import codec, const

TELEMETRY_HOLD_MS = const(10_000)  # a stream stops when the host has sent nothing for this long (wall time)


class Telemetry:
    def __init__(self, pump):
        self._pump = pump
        self.ms = 0  # interval of the stream, 0 when off
        self.sent = 0  # samples sent since the stream started
        self.dropped = 0  # samples the line could not take (never waited for)

    def set_interval(self, interval_ms):
        """Start (counting afresh), change or (0) stop the stream."""
        if interval_ms and not self.ms:
            self.sent = 0
            self.dropped = 0
        self.ms = interval_ms

    async def run(self):
        """Send a sample every telemetry_ms of wall time (on deadlines, not a sleep
        after each sample, so the period does not stretch) while the host keeps the
        line alive. A sample the line cannot take now is dropped (counted), never
        waited for: the dosing task must not wait on a slow host. Ends when the
        stream stops (TELEMETRY 0, or the host went silent), and drops the stream."""
        import time

        from firmware import tasks

        serial = self._pump.hw.serial
        link = self._pump.link
        quiet_since = time.ticks_ms()
        due_ms = quiet_since  # the next sample is due then: deadlines, so its own work never stretches the period
        while self.ms and not self._pump.leaving:
            due_ms = time.ticks_add(due_ms, self.ms)
            wait_ms = time.ticks_diff(due_ms, time.ticks_ms())
            if wait_ms < -self.ms:  # more than a sample late (a long command): start afresh, no burst
                due_ms = time.ticks_ms()
            await tasks.sleep_ms(wait_ms)
            now_ms = time.ticks_ms()
            if link.host_seen:
                link.host_seen = False
                quiet_since = now_ms
            elif time.ticks_diff(now_ms, quiet_since) >= TELEMETRY_HOLD_MS:
                self.ms = 0  # the host went away: stop talking to no one
                continue
            if not self.ms:
                continue
            if serial.write_ready():
                link.send(codec.TELEMETRY_DATA, self.sent & 0xFFFFFFFF, self.sample())
                self.sent += 1
            else:
                self.dropped += 1
        drop(self._pump)

    def sample(self):
        now = self._pump.now_fields()
        self._pump.check_session()  # session_role: not one that has timed out
        tb = self._pump.timebase
        reservoir = self._pump.reservoir_nl()
        day_steps, hour_steps = self._pump.guard.window_steps(tb.mday, tb.us)
        step_pl = self._pump.sched.step_pl
        return now + (
            codec.NO_TIME if reservoir is None else reservoir,
            day_steps * step_pl // 1000,
            hour_steps * step_pl // 1000,
            self._pump.alarm,
            self._pump.auth.role,
            self.dropped,
            self._pump.alarms.mask,
            codec.u32(self._pump.monitors.sensor_nl),
            codec.NO_PERMILLE if self._pump.monitors.battery.permille is None else self._pump.monitors.battery.permille,
        )


def drop(pump):
    """The stream ended: the pump forgets it, and this module (imported again at the next start)."""
    pump.telemetry = None
    sys.modules.pop("firmware.telemetry", None)
    package = sys.modules.get("firmware")
    if package is not None and hasattr(package, "telemetry"):
        delattr(package, "telemetry")  # an import binds the module in its package too
