# The simulated board's fault plan: faults (and physical acts: a refill, a
# leak) the host schedules with SIM_FAULT, applied to the physical models at
# an exact pump time (firmware/codec.py, FAULT_*):
#
#   FAULT_MOTOR         the driver fails for good: the head no longer turns, motor_check() says why
#   FAULT_STALL 1/0     the rotor jams: the head does not turn, the stall line goes active (latched)
#   FAULT_OCCLUSION 1/0 the outlet is blocked: the head turns, no fluid leaves, the input trips
#                       after hal/sim/monitors.TRIP_STEPS steps and clears at once when it ends
#   FAULT_ENCODER 1/0   the coupling shears: the head does not turn, no stall signal
#   FAULT_CLOCK_JUMP s  the tick counter jumps s (0..MAX_CLOCK_JUMP_S) seconds at once
#   FAULT_SENSOR_STUCK 1/0  the reservoir sensor's reading freezes
#   FAULT_BATTERY p     the cell's charge drops to p permille (0..1000) at once
#   FAULT_TASK          the next battery soc_permille() raises RuntimeError (once)
#   FAULT_FILL nL       the reservoir now holds nL (0..its capacity): a refill
#   FAULT_LEAK nL       the reservoir loses nL (>= 0) at once, none through the pump
#
# schedule(kind, delay_us, value) checks the kind and value at once (ValueError:
# the firmware refuses the command), then applies a delay of 0 now, before it
# returns, and keeps a later one pending (at most MAX_PENDING) until pump time
# reaches it. Pump time is the clock's never-wrapping (wraps, ticks) pair.
# The plan keeps the clock's stop (hal/sim/clock.py) at the nearest of its
# pending faults and the watchdog's bite, so the clock stops exactly there
# and calls _on_stop(): a fault fires at its exact pump time, not at the
# firmware's next tick, and sleep_us() ends there. Faults due at the same
# time fire in the order they were scheduled.
#
# A clock jump advances the clock in steps of at most MAX_JUMP_US, so the
# models see the time pass (queued steps finish, the battery drains, faults
# pending within it fire on the way) but the watchdog does not (its own
# oscillator: hal/sim/watchdog.py). A jump of more than 2**29 us could not be
# seen by ticks_diff: more than 500 s is refused.
#
# Allocation: schedule() and the faults themselves run on the command path
# and may allocate; rearm() and _on_stop() with nothing due (the clock calls
# it at least every 2**29 us of pump time) allocate nothing.

from firmware import const
from firmware.codec import (
    FAULT_BATTERY,
    FAULT_CLOCK_JUMP,
    FAULT_ENCODER,
    FAULT_FILL,
    FAULT_LEAK,
    FAULT_MOTOR,
    FAULT_OCCLUSION,
    FAULT_SENSOR_STUCK,
    FAULT_STALL,
    FAULT_TASK,
)
from hal.sim.clock import MAX_JUMP_US
from hal.sim.stepper import BLOCKED, FAILED, JAMMED, SHEARED

MAX_PENDING = const(16)
MAX_CLOCK_JUMP_S = const(500)  # 5 * 10**8 us: below ticks_diff's 2**29 us
_TICKS_MASK = const(0x3FFFFFFF)
_EMPTY = (0, 0, 0, 0)  # a free slot of the pending list
_ON_OFF = (FAULT_STALL, FAULT_OCCLUSION, FAULT_ENCODER, FAULT_SENSOR_STUCK)
# The kinds' names, for this model's own messages: only the simulated board loads them
# (the host's copy is pumpctl.words.FAULT_NAMES; tests/tree/test_protocol_doc.py checks they agree).
FAULT_NAMES = {
    FAULT_MOTOR: "motor",
    FAULT_STALL: "stall",
    FAULT_OCCLUSION: "occlusion",
    FAULT_ENCODER: "encoder",
    FAULT_CLOCK_JUMP: "clock-jump",
    FAULT_SENSOR_STUCK: "sensor-stuck",
    FAULT_BATTERY: "battery",
    FAULT_TASK: "task",
    FAULT_FILL: "fill",
    FAULT_LEAK: "leak",
}


def kinds_text():
    return ", ".join("%d %s" % (k, FAULT_NAMES[k]) for k in sorted(FAULT_NAMES))


class FaultPlan:
    def __init__(self, clock, motor, reservoir=None, battery=None, stall=None):
        """The models a fault acts on (hal/sim): None where the board has no such part."""
        self.clock = clock
        self.motor = motor
        self.reservoir = reservoir
        self.battery = battery
        self.stall = stall
        self.watchdog = None  # set by hal/sim/watchdog.SimWatchdog: its bite shares the clock's stop
        # (wraps, ticks, kind, value) in slots 0.._count-1, by pump time, equal times in the order
        # scheduled. A fixed list: firing shifts the slots down in place, where list.pop() could
        # shrink (reallocate) the list under the clock's allocation-free stop.
        self._pending = [_EMPTY] * MAX_PENDING
        self._count = 0
        self.fired = 0  # faults applied so far
        self._on_stop_ref = self._on_stop  # one bound method, made here: the clock calls it allocation-free
        clock.set_stop_handler(self._on_stop_ref)

    def set_watchdog(self, watchdog):
        self.watchdog = watchdog
        self.rearm()

    def pending(self):
        """The faults still to come: a list of (kind, value), soonest first."""
        return [(e[2], e[3]) for e in self._pending[: self._count]]

    def count(self):
        """How many faults are still to come."""
        return self._count

    def pending_at(self, i):
        """Pending fault i (0 = the soonest) as (kind, value, delay_us from now), or None past the last."""
        if not 0 <= i < self._count:
            return None
        e = self._pending[i]
        clock = self.clock
        t = clock.ticks_us()
        delay = ((e[0] - clock.wraps) << 30) + e[1] - t
        return e[2], e[3], delay if delay > 0 else 0

    def cancel(self, i):
        """Drop pending fault i (0 = the soonest); the others keep their order and times."""
        n = self._count - 1
        pending = self._pending
        for j in range(i, n):
            pending[j] = pending[j + 1]
        pending[n] = _EMPTY
        self._count = n
        self.rearm()

    def _check(self, kind, value):
        name = FAULT_NAMES.get(kind)
        if name is None:
            raise ValueError("fault kind must be one of %s; not %r" % (kinds_text(), kind))
        if kind in _ON_OFF:
            if value not in (0, 1):
                raise ValueError("the %s fault's value is 1 (it begins) or 0 (it ends), not %r" % (name, value))
        elif kind == FAULT_CLOCK_JUMP:
            if not 0 <= value <= MAX_CLOCK_JUMP_S:
                raise ValueError(
                    "a clock jump is 0..%d s (ticks_diff cannot see a jump beyond 2**29 us), not %r s"
                    % (MAX_CLOCK_JUMP_S, value)
                )
        elif kind == FAULT_BATTERY:
            if not 0 <= value <= 1000:
                raise ValueError("the battery fault's charge is 0..1000 permille, not %r" % (value,))
        elif kind in (FAULT_FILL, FAULT_LEAK):
            r = self.reservoir
            if r is None:
                raise ValueError("the board has no reservoir model for the %s fault" % name)
            if kind == FAULT_FILL and not 0 <= value <= r.capacity_nl:
                raise ValueError(
                    "a fill is 0..%d nL (the reservoir holds %d mL), not %r nL"
                    % (r.capacity_nl, r.capacity_nl // 1_000_000, value)
                )
            if value < 0:
                raise ValueError("a leak is 0 or more nL, not %r" % (value,))
        if kind in (FAULT_BATTERY, FAULT_TASK) and self.battery is None:
            raise ValueError("the board has no battery model for the %s fault" % name)
        if kind == FAULT_SENSOR_STUCK and self.reservoir is None:
            raise ValueError("the board has no reservoir sensor for the %s fault" % name)

    def schedule(self, kind, delay_us, value):
        """Apply fault kind with value delay_us (>= 0) of pump time from now: 0 applies it now,
        before this returns. ValueError for an unknown kind, a bad value, or too many pending."""
        self._check(kind, value)
        if delay_us < 0:
            raise ValueError("a fault's delay is 0 or more us of pump time, not %r" % (delay_us,))
        if not delay_us:
            self._apply(kind, value)
            return
        pending = self._pending
        n = self._count
        if n >= MAX_PENDING:
            raise ValueError("at most %d faults may be pending; %d are" % (MAX_PENDING, n))
        clock = self.clock
        t = clock.ticks_us()  # first: at speed N reading the ticks may wrap them
        w = clock.wraps + (delay_us >> 30)
        dt = delay_us & _TICKS_MASK
        room = _TICKS_MASK - t
        if dt > room:
            w += 1
            t = dt - room - 1
        else:
            t += dt
        i = n
        while i:
            e = pending[i - 1]
            if e[0] < w or (e[0] == w and e[1] <= t):
                break
            pending[i] = e  # later than the new one: one slot up
            i -= 1
        pending[i] = (w, t, kind, value)
        self._count = n + 1
        self.rearm()
        clock.wake()  # a sleep at speed N ends, and the next one ends at the fault

    def rearm(self):
        """Arm the clock's stop at the nearest of the next fault and the watchdog's bite. No allocation."""
        clock = self.clock
        pending = self._pending
        wd = self.watchdog
        if wd is not None and wd.started:
            w = wd.bite_w
            t = wd.bite_t
            if self._count:
                e = pending[0]
                if e[0] < w or (e[0] == w and e[1] < t):
                    w = e[0]
                    t = e[1]
            clock.stop_at(w, t)
        elif self._count:
            e = pending[0]
            clock.stop_at(e[0], e[1])
        else:
            clock.stop_never()

    def _on_stop(self):
        """The clock reached its stop: fire what is due, bite if due, arm the next stop."""
        clock = self.clock
        pending = self._pending
        while self._count:
            e = pending[0]
            if not clock.reached(e[0], e[1]):
                break
            n = self._count - 1
            for i in range(n):  # the rest one slot down
                pending[i] = pending[i + 1]
            pending[n] = _EMPTY
            self._count = n
            self.rearm()  # first: a clock jump this fault makes stops at the next one
            self._apply(e[2], e[3])
        wd = self.watchdog
        if wd is not None and wd.started and clock.reached(wd.bite_w, wd.bite_t):
            wd.bite()
        self.rearm()

    def _apply(self, kind, value):
        m = self.motor
        if kind == FAULT_MOTOR:
            m.set_fault(FAILED, True)
        elif kind == FAULT_STALL:
            m.set_fault(JAMMED, value == 1)
            if self.stall is not None:
                self.stall.set_line(value == 1)
        elif kind == FAULT_OCCLUSION:
            m.set_fault(BLOCKED, value == 1)
        elif kind == FAULT_ENCODER:
            m.set_fault(SHEARED, value == 1)
        elif kind == FAULT_CLOCK_JUMP:
            us = value * 1_000_000  # <= 5 * 10**8
            wd = self.watchdog
            if wd is not None:
                wd.postpone(us)
            clock = self.clock
            while us:
                step = us if us < MAX_JUMP_US else MAX_JUMP_US
                clock.advance(step)
                us -= step
        elif kind == FAULT_SENSOR_STUCK:
            self.reservoir.set_stuck(value == 1)
        elif kind == FAULT_BATTERY:
            self.battery.set_permille(value)
        elif kind == FAULT_TASK:
            self.battery.fail_next = True
        elif kind == FAULT_FILL:
            self.reservoir.set_nl(value)
        elif kind == FAULT_LEAK:
            self.reservoir.leak(value)
        self.fired += 1
