# The pump's task loop (firmware/tasks.py) on a MicroPython VM (tests/firmware/test_tasks.py):
#
#   micropython tests/mp/tasks_loop.py
#
# Prints one line per case, what a task saw, in the order it saw it; then, on a VM with a
# heap lock, "locked N" after N waits of each kind with the heap locked (none allocates).

import time

from heaplock import heap_lock_works, lock, unlock

from firmware import tasks

seen = []


async def sleeper(name, ms, times):
    for i in range(times):
        await tasks.sleep_ms(ms)
        seen.append("%s%d" % (name, i))


def turns():
    """Three tasks sleeping 0 ms: each runs once a round, in the order they were added."""

    async def main():
        tasks.create_task(sleeper("a", 0, 3))
        tasks.create_task(sleeper("b", 0, 3))
        await sleeper("m", 0, 3)
        await tasks.sleep_ms(0)  # a and b's last turns
        return "main done"

    result = tasks.run(main())
    print("turns", result, " ".join(seen))


def sleeps():
    """A task that sleeps 200 ms wakes after one that sleeps 10 ms twice; main waits for both. (The
    margin is wide: on a loaded machine the second 10 ms sleep has started 15 ms late.)"""
    seen.clear()

    async def main():
        tasks.create_task(sleeper("slow", 200, 1))
        tasks.create_task(sleeper("fast", 10, 2))
        t0 = time.ticks_ms()
        await tasks.sleep_ms(250)
        return time.ticks_diff(time.ticks_ms(), t0) >= 250

    print("sleeps", tasks.run(main()), " ".join(seen))


def events():
    """set() wakes a task waiting for ever; a wait with a limit ends unset at the limit, or set."""
    seen.clear()
    ev = tasks.Event()

    async def waiter():
        await ev.wait()
        seen.append("woke:%s" % ev.state)
        ev.clear()
        await ev.wait(20)  # nobody sets it
        seen.append("limit:%s" % ev.state)
        await ev.wait(10_000)  # main sets it
        seen.append("set:%s" % ev.state)

    async def main():
        tasks.create_task(waiter())
        await tasks.sleep_ms(5)
        seen.append("setting")
        ev.set()
        await tasks.sleep_ms(40)
        ev.set()
        await tasks.sleep_ms(0)
        await tasks.sleep_ms(0)
        return True

    t0 = time.ticks_ms()
    tasks.run(main())
    print("events", " ".join(seen), time.ticks_diff(time.ticks_ms(), t0) < 5_000)


def set_and_end():
    """A task that sets an event and ends wakes the waiter at once, not at its wait's limit."""
    ev = tasks.Event()

    async def setter():
        await tasks.sleep_ms(5)
        ev.set()

    async def main():
        tasks.create_task(setter())
        t0 = time.ticks_ms()
        await ev.wait(10_000)
        return ev.state and time.ticks_diff(time.ticks_ms(), t0) < 5_000

    print("set and end", tasks.run(main()))


def failing():
    """A task that raises ends alone and the others run on; main's exception ends run() with it,
    and no task is left queued."""
    seen.clear()

    async def bad():
        await tasks.sleep_ms(1)
        raise ValueError("the monitoring task failed")

    async def main():
        tasks.create_task(bad())
        tasks.create_task(sleeper("on", 20, 1))
        await tasks.sleep_ms(40)
        return "main ran on with %d tasks" % len(tasks._tasks)

    print("failing", tasks.run(main()), " ".join(seen))

    async def main_fails():
        tasks.create_task(sleeper("never", 10_000, 1))
        await tasks.sleep_ms(1)
        raise ValueError("the dosing task failed")

    try:
        tasks.run(main_fails())
    except ValueError as e:
        print("main failing raised:", e, "queued", len(tasks._tasks))


def left():
    """main returns while other tasks wait: they are dropped; the next run starts empty."""
    seen.clear()

    async def main():
        tasks.create_task(sleeper("left", 10_000, 1))
        await tasks.sleep_ms(0)
        return len(tasks._tasks)

    during = tasks.run(main())

    async def again():
        await tasks.sleep_ms(0)
        return len(tasks._tasks)

    print("left", during, tasks.run(again()), " ".join(seen) or "-")


def locked():
    """Waits of every kind with the heap locked: none allocates (the dosing and link tasks wait
    thousands of times an hour)."""
    if not heap_lock_works():
        print("locked no heap lock here")
        return
    ev = tasks.Event()
    n = 200

    async def other():  # never ends: a task's end makes its StopIteration, which would allocate
        while True:
            await tasks.sleep_ms(0)
            ev.set()

    async def main():
        tasks.create_task(other())
        await tasks.sleep_ms(0)
        lock()
        try:
            for _ in range(n):
                await ev.wait()
                ev.clear()
                await ev.wait(0)
                await tasks.sleep_ms(0)
        finally:
            unlock()
        return n

    print("locked", tasks.run(main()))


turns()
sleeps()
events()
set_and_end()
failing()
left()
locked()
