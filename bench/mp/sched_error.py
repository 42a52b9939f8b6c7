# How far a scheduler's delivery strays from the exact prescription over a
# long run with rate changes: the fixed-point scheduler (firmware/scheduler.py)
# or the float baseline (float_scheduler.py) in double or single precision.
#
#   micropython sched_error.py KIND STEP_PL SEGMENTS_FILE
#     KIND      fixed | float64 | float32
#     SEGMENTS  one "rate_nl_per_day duration_s" line per segment, in order
#
# Pump time is exact integer microseconds (the tick counter). Each scheduler
# is driven as the dosing task drives one: it says how long until its next
# step, that much time passes (at most MAX_SLEEP_US, and never past the next
# rate change), then it is polled. The float schedulers keep their own float
# clock, advanced by each sleep, as a float firmware would.
#
# The exact volume programmed is tracked in u = 1 pL / US_PER_MDAY, in which
# rate r nL/day delivers exactly r u per microsecond, as
#   D = steps * S - V,  S = step_pl * US_PER_MDAY (u per step)
# so D / S is the deviation in steps (positive: ahead of the prescription).
# After each poll D is the deviation just after its steps (the most ahead);
# one microsecond before the poll it was D_before + r (the most behind).
# Runs on the unix port (63-bit small ints; V itself may grow past them).
#
# Prints "key value" lines: steps, max_ahead_u, max_behind_u (>= 0), step_u,
# volume_u, final_deviation_u, polls, stalled_at_s (-1: never).
import sys

from float_scheduler import Float32Scheduler, FloatScheduler

from firmware.scheduler import US_PER_MDAY, DoseScheduler

# The longest sleep of the dosing task: the sim board's MAX_SLEEP_US (2**28 us)
# capped, as firmware/app.py caps it, at the most us_until_due() may be asked.
MAX_SLEEP_US = US_PER_MDAY


def read_segments(path):
    segments = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts:
                segments.append((int(parts[0]), int(parts[1])))
    return segments


def run_fixed(step_pl, segments, out):
    sched = DoseScheduler(step_pl)
    step_u = step_pl * US_PER_MDAY
    mday = 0
    us = 0
    d = 0  # steps * step_u - volume_u
    ahead = -step_u
    behind = 0
    polls = 0
    volume_u = 0
    for rate, duration_s in segments:
        d += step_u * sched.set_rate(mday, us, rate)  # steps due at the change (none: just polled)
        left_us = duration_s * 1_000_000
        volume_u += rate * left_us
        while left_us > 0:
            wait = sched.us_until_due(mday, us, MAX_SLEEP_US)
            if wait > left_us:
                wait = left_us
            left_us -= wait
            us += wait
            while us >= US_PER_MDAY:
                us -= US_PER_MDAY
                mday += 1
            d -= rate * wait
            if wait and rate and behind < -d - rate:
                behind = -d - rate  # one microsecond ago, before this poll's steps
            n = sched.poll(mday, us)
            polls += 1
            if n:
                d += n * step_u
                if d > ahead:
                    ahead = d
    out(sched.steps(), ahead, behind, step_u, volume_u, d, polls, -1)


def run_float(scheduler_class, step_pl, segments, out):
    sched = scheduler_class(step_pl / 1000)
    single = getattr(sched, "single", None)  # rounds the float clock too on a single-precision board
    step_u = step_pl * US_PER_MDAY
    now_s = 0.0
    cap_s = MAX_SLEEP_US / 1_000_000
    elapsed_us = 0
    d = 0
    ahead = -step_u
    behind = 0
    polls = 0
    volume_u = 0
    stalled_at_s = -1
    for rate, duration_s in segments:
        n = sched.poll(now_s)
        sched.set_rate(now_s, rate)
        left_us = duration_s * 1_000_000
        volume_u += rate * left_us
        while left_us > 0:
            wait_s = sched.s_until_due(now_s, cap_s)
            wait = int(wait_s * 1_000_000)
            if wait_s > 0 and wait == 0:
                wait = 1  # sleep at least a tick when not yet due
            if wait > left_us:
                wait = left_us
            left_us -= wait
            elapsed_us += wait
            now_s = now_s + wait / 1_000_000
            if single is not None:
                now_s = single(now_s)
            d -= rate * wait
            if wait and rate and behind < -d - rate:
                behind = -d - rate
            n = sched.poll(now_s)
            polls += 1
            if n < 0:  # the schedule stalled: no further step will ever be due
                stalled_at_s = elapsed_us // 1_000_000
                volume_u -= rate * left_us  # the program's volume up to now, not to the segment's end
                out(sched.steps, ahead, behind, step_u, volume_u, d, polls, stalled_at_s)
                return
            if n:
                d += n * step_u
                if d > ahead:
                    ahead = d
    out(sched.steps, ahead, behind, step_u, volume_u, d, polls, stalled_at_s)


def report(steps, ahead, behind, step_u, volume_u, d, polls, stalled_at_s):
    print("steps", steps)
    print("max_ahead_u", ahead)
    print("max_behind_u", behind)
    print("step_u", step_u)
    print("volume_u", volume_u)
    print("final_deviation_u", d)
    print("polls", polls)
    print("stalled_at_s", stalled_at_s)


def main():
    kind, step_pl, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    segments = read_segments(path)
    if kind == "fixed":
        run_fixed(step_pl, segments, report)
    elif kind == "float64":
        run_float(FloatScheduler, step_pl, segments, report)
    elif kind == "float32":
        run_float(Float32Scheduler, step_pl, segments, report)
    else:
        raise ValueError("kind must be fixed, float64 or float32")


main()
