# The pump's tasks: a few coroutines taking turns on one loop, in place of asyncio.
#
# The pump needs four things of a scheduler: a task sleeps (sleep_ms), waits for an
# Event (for ever or for at most some milliseconds), waits until its input stream
# can be read (readable), and tasks are added (create_task). asyncio does all that
# and much more, and its modules hold 3,936 bytes of a Pico's heap (measured on the
# emulated Pico: asyncio, its event, funcs and stream modules, frozen in the
# board's flash) and 4,384 on the 32-bit VM of make bench; this module does what
# the pump needs in a fraction of that (tests/firmware/test_tasks.py,
# make bench's imports).
#
# How. A task is a coroutine. What it awaits is always WAIT, one object that says
# nothing itself: the call that returned it (sleep_ms, Event.wait, readable) has
# written what the task waits for in the task's row, and WAIT yields once to the
# loop, which resumes the task when that came. Nothing is allocated per wait (no
# awaitable, no timeout exception: a wait with a time limit returns and the task
# looks at its event). The loop visits the tasks in turn, resumes each one that
# can go on, and when none can it sleeps until the nearest wake-up time, in
# select.poll if a task waits for its input, so a byte from the host ends the
# sleep at once. Tasks run in the order they were added, each at most once per
# round: none can starve another.
#
# A task that raises ends, alone, as under asyncio: the pump watches its tasks itself
# (monitors.py: a monitoring task silent past its deadline stops dosing, raises the
# watchdog alarm and starves the hardware watchdog, which resets the board). Its
# exception is not printed (asyncio printed it, onto stdout: the host's link). The
# main coroutine ends run(): its return, with its result, or its exception, raised
# by run(); the other tasks are dropped with it.
#
# Time is time.ticks_ms (MicroPython's): a wait is at most 2**29 ms, and a wait of
# n ms ends once n ms ticks have passed since the one it began in, as asyncio's.
# Event.set() is for tasks, not interrupt handlers (as asyncio's Event).

import select
import time

from firmware import const

_MAX_WAIT_MS = const(0x1FFFFFFF)  # 2**29 - 1 ms: the longest a wait may be (ticks_diff's range)
# A task's row: [coroutine, wake-up time (ticks_ms) or None, the Event it waits for or None,
# the stream it waits to read or None].
_CORO = const(0)
_AT = const(1)
_EVENT = const(2)
_STREAM = const(3)

_tasks = []  # the rows, in the order the tasks were added
_current = None  # the row of the task running now
_poll = None  # select.poll of the streams tasks have waited to read, each registered once
_polled = []  # those streams


class _Wait:
    """The one awaitable: yields once to the loop if a wait was just asked for (by _wait), else returns
    (None). The flag is the asking call's: a task resumed finds it down, whichever task raised it last."""

    def __init__(self):
        self.asked = False
        self._stop = StopIteration()  # raised again and again: a wait allocates no exception

    def __iter__(self):
        return self

    def __await__(self):  # CPython's await (tests, pyright): MicroPython's await calls __iter__
        yield from self

    def __next__(self):
        if self.asked:
            self.asked = False
            return None  # to the loop: the task waits
        self._stop.__traceback__ = None  # else each raise adds to its traceback
        raise self._stop


WAIT = _Wait()


def _wait(at_ms, event, stream):
    row = _current
    row[_AT] = at_ms
    row[_EVENT] = event
    row[_STREAM] = stream
    WAIT.asked = True
    return WAIT


def sleep_ms(ms):
    """Awaitable: let the other tasks run for ms milliseconds (0: one round)."""
    return _wait(time.ticks_add(time.ticks_ms(), ms if ms > 0 else 0), None, None)


def readable(stream):
    """Awaitable: until stream has something to read (or an error to report)."""
    global _poll
    if _poll is None:
        _poll = select.poll()
    if stream not in _polled:
        _poll.register(stream, select.POLLIN)
        _polled.append(stream)
    return _wait(None, None, stream)


class Event:
    """A flag a task waits for: set() wakes every task waiting, and it stays set until clear().
    state: whether it is set (asyncio's is_set(), without a method to call)."""

    def __init__(self):
        self.state = False

    def set(self):
        self.state = True

    def clear(self):
        self.state = False

    def wait(self, timeout_ms=-1):
        """Awaitable: until the event is set (the loop's next round if it is already: every wait
        yields once, so no task can keep the others out), or for at most timeout_ms (>= 0; -1: no
        limit). The task then looks at state if it needs to know which."""
        at = None if timeout_ms < 0 else time.ticks_add(time.ticks_ms(), timeout_ms)
        return _wait(at, self, None)


def create_task(coro):
    """Add coroutine coro as a task: it runs from the loop's next round."""
    _tasks.append([coro, time.ticks_ms(), None, None])


def run(main):
    """Run coroutine main and the tasks it adds until main returns: its result (or its exception);
    the other tasks are dropped either way."""
    global _current
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    tasks = _tasks
    tasks.insert(0, [main, ticks_ms(), None, None])
    try:
        while True:
            # One round: every task that can go on, once, in turn.
            now = ticks_ms()
            nearest = _MAX_WAIT_MS
            reading = False
            i = 0
            while i < len(tasks):
                row = tasks[i]
                event = row[_EVENT]
                at = row[_AT]
                if row[_STREAM] is not None:
                    go = False
                    for polled, _flags in _poll.ipoll(0):  # readable now (or an error to report)?
                        if polled is row[_STREAM]:
                            go = True
                    reading = True
                elif event is not None and event.state:
                    go = True
                else:
                    go = at is not None and ticks_diff(now, at) >= 0
                if go:
                    _current = row
                    row[_STREAM] = row[_EVENT] = None
                    nearest = 0  # it may have set an event or added a task: look again before sleeping
                    try:
                        row[_CORO].send(None)
                    except StopIteration as done:
                        if row[_CORO] is main:
                            return done.value
                        tasks.pop(i)
                        continue
                    except Exception:
                        if row[_CORO] is main:
                            raise
                        tasks.pop(i)  # it ends alone (the header says why)
                        continue
                    now = ticks_ms()
                    i += 1
                    continue
                if at is not None:  # a task waiting for its time (an event's limit): the sleep ends then at most
                    at = ticks_diff(at, now)
                    if at < nearest:
                        nearest = at if at > 0 else 0
                i += 1
            # Nothing could go on: sleep until the nearest wake-up time, or a byte to read.
            if nearest:
                if reading:
                    for _ in _poll.ipoll(nearest):  # ipoll: no list of results made
                        break
                else:
                    time.sleep_ms(nearest)
    finally:  # nothing of the pump stays queued (it left for the REPL, or failed)
        tasks.clear()
        _current = None
