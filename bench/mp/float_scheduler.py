# The straightforward alternative to firmware/scheduler.py, written only to
# measure the fixed-point scheduler against: the next step's time and one
# step's duration as floats in seconds, the interval added at every step.
# A rate change carries the partial step over as a fraction of a step, so the
# comparison is with a careful float design, not a careless one.
#
# On the unix port and the webassembly VM a float is a C double. On a Pico or
# an ESP32, MicroPython's float is single precision: Float32Scheduler is the
# same design with every result rounded to single precision through an
# array('f'). For + - * / that gives the correctly rounded single result (a
# double holds the exact result of two singles closely enough that rounding
# it once more to single changes nothing).

import array

_S_PER_DAY = 86400.0


class FloatScheduler:
    def __init__(self, step_nl):
        self.step_nl = step_nl  # float nL
        self.interval_s = 0.0  # one step's duration at the running rate; 0.0 when stopped
        self.next_s = 0.0  # when the next step is due
        self.left = 1.0  # while stopped: the fraction of a step still owed
        self.steps = 0

    def poll(self, now_s):
        """Issue the steps due by now_s; return how many."""
        if not self.interval_s:
            return 0
        n = 0
        while now_s >= self.next_s:
            self.next_s += self.interval_s
            n += 1
        self.steps += n
        return n

    def s_until_due(self, now_s, cap_s):
        if not self.interval_s:
            return cap_s
        wait = self.next_s - now_s
        if wait < 0.0:
            return 0.0
        return wait if wait < cap_s else cap_s

    def set_rate(self, now_s, rate_nl_per_day):
        if self.interval_s:
            self.left = (self.next_s - now_s) / self.interval_s
        if rate_nl_per_day:
            self.interval_s = self.step_nl * _S_PER_DAY / rate_nl_per_day
            self.next_s = now_s + self.left * self.interval_s
        else:
            self.interval_s = 0.0


class Float32Scheduler(FloatScheduler):
    """The same design in single precision, as MicroPython's float on a Pico or ESP32."""

    def __init__(self, step_nl):
        self._single = array.array("f", [0.0])
        FloatScheduler.__init__(self, self.single(step_nl))

    def single(self, x):
        """x rounded to the nearest single-precision float."""
        self._single[0] = x
        return self._single[0]

    def poll(self, now_s):
        """As FloatScheduler.poll, or -1 once adding an interval no longer moves
        the next step's time: the schedule has stalled for good."""
        if not self.interval_s:
            return 0
        f = self.single
        n = 0
        nxt = self.next_s
        while now_s >= nxt:
            later = f(nxt + self.interval_s)
            if later == nxt:
                return -1
            nxt = later
            n += 1
        self.next_s = nxt
        self.steps += n
        return n

    def s_until_due(self, now_s, cap_s):
        wait = FloatScheduler.s_until_due(self, now_s, cap_s)
        return self.single(wait)

    def set_rate(self, now_s, rate_nl_per_day):
        f = self.single
        if self.interval_s:
            self.left = f(f(self.next_s - now_s) / self.interval_s)
        if rate_nl_per_day:
            self.interval_s = f(f(self.step_nl * _S_PER_DAY) / rate_nl_per_day)
            self.next_s = f(now_s + f(self.left * self.interval_s))
        else:
            self.interval_s = 0.0
