# The dose guard's hot path, DoseGuard.permit(), with the heap locked: it
# must not allocate. Two guards (one with a drug's daily and hourly limits,
# one with none, so only the pump's BUCKET_MAX_STEPS cap applies) take
# tens of thousands of permit() calls over days of pump time, across many
# 36 s bucket boundaries, through refusals of every kind and a jump of 10**8
# millidays (274,000 years) of pump time in one call.
#
# On the 32-bit webassembly MicroPython a value past 2**30 is a long int,
# which allocates, which the lock turns into a MemoryError: so passing there
# proves the hot path stays within 31-bit small ints.
#
# Runs unchanged on CPython (no heap_lock there), the unix port and the
# 32-bit webassembly port; prints one line of counts that must be identical.
from heaplock import heap_lock_works, lock, unlock

from firmware.guard import BUCKET_EXACT, LIMIT_BUCKET, LIMIT_DAY, LIMIT_HOUR, US_PER_MDAY, DoseGuard

STEP_PL = 52_083  # the sim board's step
# Morphine at 20 mg/mL (1041.66 ng a step) with a 3 mg daily and a 0.4 mg
# hourly limit: 2881 steps a day, 385 an hour.
MORPHINE = (("morphine", 20_000_000, 3_000_000, 400_000, 1_000_000),)
CALLS = 40_000
GAP_AT = 25_000
GAP_MDAY = 100_000_000


def run(g, free, out):
    """The loop run under the lock. Results go to the preallocated list out:
    [steps allowed by g, calls g refused, day trips, hour trips, steps allowed by free,
    bucket trips of free, checksum of what g allowed, mday, us]."""
    mday = 0
    us = 0
    chk = 0
    for i in range(CALLS):
        us += 1_000_000 + (i * 7919) % 9_000_000  # 1 to 10 s: about 5.5 s a call, 2.5 days in all
        while us >= US_PER_MDAY:
            us -= US_PER_MDAY
            mday += 1
        if i == GAP_AT:
            mday += GAP_MDAY
        n = 1 + (i & 3)
        got = g.permit(mday, us, n)
        out[0] += got
        if got < n:
            out[1] += 1
        why = g.tripped
        if why:
            if why == LIMIT_DAY:
                out[2] += 1
            elif why == LIMIT_HOUR:
                out[3] += 1
            g.clear_trip()
        chk = (chk * 31 + got + i) & 0xFFFFF  # stays a small int
        got = free.permit(mday, us, 5_000 + (i & 7) * 2_000)  # about 78,000 asked a bucket
        out[4] += got
        if free.tripped == LIMIT_BUCKET:
            out[5] += 1
            free.clear_trip()
    out[6] = chk
    out[7] = mday
    out[8] = us


def run_saturated(sat, out):
    """permit() every 10 s for 25 h on a guard whose bucket 10 is saturated:
    [steps allowed, calls refused, day trips, allowed while saturated]."""
    mday = 4  # 360 s: 4 mday + 14.4 s
    us = 14_400_000
    for _ in range(9_000):
        got = sat.permit(mday, us, 2)
        us += 10_000_000
        if us >= US_PER_MDAY:
            us -= US_PER_MDAY
            mday += 1
        out[0] += got
        if not got:
            out[1] += 1
        if sat.tripped == LIMIT_DAY:
            out[2] += 1
            sat.clear_trip()
        if sat.day_sat:
            out[3] += got


g = DoseGuard(STEP_PL)
g.set_fluid(MORPHINE)
free = DoseGuard(STEP_PL)
# The hour's 0.4 mg at 20 mg/mL in bucket 10, then a refill 20,000 times weaker in that
# bucket: 7.7 million steps of the new fluid do not fit one bucket, so it is saturated.
sat = DoseGuard(STEP_PL)
sat.set_fluid(MORPHINE)
sat.permit(360_000_000 // US_PER_MDAY, 360_000_000 % US_PER_MDAY, 385)
sat.set_fluid((("morphine", 1_000, 3_000_000, 400_000, 1_000_000),))
sat.clear_trip()
sat_out = [0] * 4
sat_before = sat.day_sat
# A bucket of rescaled history above BUCKET_EXACT (kept in units of 16 steps): the hour's 385 steps
# at 20 mg/mL in bucket 10, then a refill 200 times weaker, with no limit: 77,000 steps of the new
# fluid, 77,008 as the u16 bucket holds them. Its count leaves both windows under the lock.
coarse = DoseGuard(STEP_PL)
coarse.set_fluid(MORPHINE)
coarse.permit(360_000_000 // US_PER_MDAY, 360_000_000 % US_PER_MDAY, 385)
coarse.set_fluid((("morphine", 100_000, 10**12, 10**12, 10**12),))
coarse.clear_trip()
coarse_out = [0] * 4
coarse_before = coarse.day_sum
# Warm up outside the lock: the first calls, then the list for the results.
g.permit(0, 0, 0)
free.permit(0, 0, 0)
out = [0] * 9
works = heap_lock_works()
lock()
try:
    run(g, free, out)
    run_saturated(sat, sat_out)
    run_saturated(coarse, coarse_out)
finally:
    unlock()

ring_ok = sum(sum(c) for c in g._ring) == g.day_sum and sum(sum(c) for c in free._ring) == free.day_sum


def steps(raw):
    return raw if raw <= BUCKET_EXACT else BUCKET_EXACT + 16 * (raw - BUCKET_EXACT)


coarse_ok = sum(steps(b) for c in coarse._ring for b in c) == coarse.day_sum
print(
    "heap_lock",
    works,
    "limits",
    g.day_limit,
    g.hour_limit,
    "allowed",
    out[0],
    "refused_calls",
    out[1],
    "day_trips",
    out[2],
    "hour_trips",
    out[3],
    "refused_steps",
    g.refused_steps,
    "delivered",
    g.delivered(),
    "windows",
    g.day_sum,
    g.hour_sum,
    "free_allowed",
    out[4],
    "bucket_trips",
    out[5],
    "free_delivered",
    free.delivered(),
    "free_refused_steps",
    free.refused_steps,
    "free_windows",
    free.day_sum,
    free.hour_sum,
    "checksum",
    out[6],
    "time",
    out[7],
    out[8],
    "bucket_end",
    g.bucket_end_us(),
    free.bucket_end_us() == g.bucket_end_us(),
    "ring_ok",
    ring_ok,
    "saturated",
    sat_before,
    sat.day_sat,
    sat_out[0],
    sat_out[1],
    sat_out[2],
    sat_out[3],
    "coarse",
    coarse_before,
    coarse.day_sum,
    coarse.hour_sum,
    coarse_out[0],
    coarse_out[1],
    coarse_ok,
)
