# The per-step cost of the fixed-point scheduler (firmware/scheduler.py)
# against the float-accumulator baseline (float_scheduler.py), in the same
# VM and the same run, and the bytes each allocates per step.
#
# Both are driven the way the firmware's dosing task drives its scheduler:
# ask how long until the next step, let that much time pass, poll. One
# wake-up per step at either rate (the cap is above both step intervals).
# Rounds alternate fixed / float so machine noise falls on both alike.
#
#   micropython sched_cost.py [STEPS ROUNDS]   (argv, or the defaults on the webassembly VM)
#
# Prints "key value" lines: per rate, the median us per step of each and the
# median of the per-round ratios; bytes allocated per step of each (gc off,
# gc.mem_alloc before and after); and whether the fixed one also ran with the
# heap locked (any allocation would have raised MemoryError).
import gc
import sys
import time

from float_scheduler import FloatScheduler
from heaplock import heap_lock_works, lock, unlock

from firmware.scheduler import US_PER_MDAY, DoseScheduler

STEP_PL = 52_083  # the sim board's calibrated step (boards/sim.py)
RATES_NL_PER_DAY = (240_000_000, 500_000)  # 10 mL/h, the pump's fastest; 0.5 mL/day, a usual intrathecal rate
CAP_US = 60_000_000  # longer than a step at either rate (18.75 ms, 9.0 s)


def fixed_scheduler(rate):
    s = DoseScheduler(STEP_PL)
    s.set_rate(0, 0, rate)
    return s


def float_scheduler(rate):
    s = FloatScheduler(STEP_PL / 1000)
    s.set_rate(0.0, rate)
    return s


def fixed_run(s, n_steps):
    mday = 0
    us = 0
    done = 0
    while done < n_steps:
        us += s.us_until_due(mday, us, CAP_US)
        if us >= US_PER_MDAY:
            us -= US_PER_MDAY
            mday += 1
        done += s.poll(mday, us)
    return done


def float_run(s, n_steps):
    now_s = 0.0
    cap_s = CAP_US / 1_000_000
    done = 0
    while done < n_steps:
        now_s += s.s_until_due(now_s, cap_s)
        done += s.poll(now_s)
    return done


def timed(run, s, n_steps):
    gc.collect()
    t0 = time.ticks_us()
    run(s, n_steps)
    return time.ticks_diff(time.ticks_us(), t0)


def allocated(run, s, n_steps):
    """Bytes allocated per step (gc off, so nothing is freed meanwhile)."""
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        run(s, n_steps)
        return (gc.mem_alloc() - before) / n_steps
    finally:
        gc.enable()


def median(values):
    v = sorted(values)
    return v[len(v) // 2]


def main():
    n_steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print("platform", sys.platform)
    print("steps_per_round", n_steps)
    print("rounds", rounds)
    for rate in RATES_NL_PER_DAY:
        fixed_us = []
        float_us = []
        ratios = []
        for _ in range(rounds):
            a = timed(fixed_run, fixed_scheduler(rate), n_steps)
            b = timed(float_run, float_scheduler(rate), n_steps)
            fixed_us.append(a)
            float_us.append(b)
            ratios.append(a / b)
        print("rate", rate)
        print("fixed_us_per_step", median(fixed_us) / n_steps)
        print("float_us_per_step", median(float_us) / n_steps)
        print("ratio", median(ratios))
        print("fixed_bytes_per_step", allocated(fixed_run, fixed_scheduler(rate), 10_000))
        print("float_bytes_per_step", allocated(float_run, float_scheduler(rate), 10_000))
    locked = heap_lock_works()
    if locked:
        s = fixed_scheduler(RATES_NL_PER_DAY[0])
        lock()
        try:
            fixed_run(s, 10_000)  # raises MemoryError if a step allocates
        finally:
            unlock()
    print("fixed_ran_under_heap_lock", 1 if locked else 0)


main()
