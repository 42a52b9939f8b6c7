# The independent dose guard: the last check between the scheduler and the
# motor. It knows only the drug library's hard limits, the concentrations in
# the fluid path and the steps that were actually delivered, never the program
# that asked for them, so a wrong program (or a bug in the therapy code)
# cannot talk it into an overdose.
#
# What it enforces, per drug in the blend, in motor steps:
#   day    steps delivered in the rolling 24 h window <= daily hard limit
#   hour   steps delivered in the rolling 1 h window  <= rate hard limit x 1 h
#   bucket at most BUCKET_MAX_STEPS in one 36 s bucket (pump-level cap)
# and, before a bolus or a program change starts (admission.py), that the bolus is
# within the bolus hard limit and that what was delivered plus what the new
# delivery will add never passes those windows. A running bolus is then held
# by the hour and day windows like every other step.
#
# How the windows are kept. Delivered steps are counted in a ring of
# DAY_BUCKETS buckets of 36 s; the day window is the current (partial) bucket
# plus the 2399 before it, the hour window the current one plus the 99 before
# it. Such a window spans a little less than 24 h (or 1 h) and more than
# 24 h - 36 s, so a program delivering exactly the daily limit never trips it,
# and over an arbitrary 24 h interval a misbehaving program can exceed a
# limit by at most what the pump delivers in one 36 s bucket (which the hour
# limit caps at rate_hard x 36 s). That bound is the price of a fixed 4.8 KB
# of memory instead of a timestamp per step. The ring is _CHUNKS arrays of
# _CHUNK_BUCKETS u16 (480 bytes each), not one 4.8 KB block: a board's
# fragmented heap may have no block that large free, and bucket i is
# ring[i // _CHUNK_BUCKETS][i % _CHUNK_BUCKETS].
#
# A dose limit becomes a step count: a step of s pL of fluid at c ng/mL
# carries c * s / 1e9 ng, so the daily hard limit L ng allows
# ceil(L * 1e9 / (c * s)) steps (see steps_allowed). The smallest over the
# drugs in the blend is the limit. Concentrations only change at a refill and
# the step volume at a calibration; the history is then rescaled to steps of
# the new fluid, rounding up (toward caution).
#
# What the guard promises: whatever the sequence of drugs,
# strengths, refills, departures and calibrations, its record of each drug
# over every window is never less than what the motor gave of that drug.
# Nothing is dropped silently; where a number would not fit, the record
# errs toward caution, in this order:
#   - a bucket holds at most BUCKET_CAP steps as a number (2400 of them sum
#     below 2**30; above BUCKET_EXACT steps a u16 bucket keeps them in units of 16,
#     rounded up, see BUCKET_EXACT). Rescaled history above that spills into the next newer
#     bucket, up to the current one: it then leaves every window later than
#     the steps it stands for did (it may also count in an hour window that
#     the real steps had left: more caution, never less).
#   - what would not fit even in the current bucket makes it SATURATED: a
#     marker meaning "this bucket alone fills every window it is in". While a
#     saturated bucket is in the day (hour) window, permit() lets nothing
#     through (LIMIT_DAY) and admission refuses any delivery in that window.
#     A rescale never turns a saturated bucket back into a number.
#   - a drug that leaves the fluid keeps its day and hour totals (and whether
#     its windows held a saturated bucket) for 24 h; if it comes back they are
#     put back, rescaled, as stand-ins that leave no earlier than the real
#     steps did (see admission.fluid_change), spilling and saturating as above.
# Where this is conservative: saturation refuses the drug even when its real
# dose is below the limit, if that limit is more than BUCKET_CAP steps of the
# new fluid (one bucket of history, or a departed drug's whole day, worth more
# than 447,392 steps of a very weak fluid); a departed drug's day total comes
# back in one bucket an hour before its departure (earlier steps leave later
# than they really would), and what of it spills counts in the hour window for
# as many buckets as it spilled into (a returning drug at a hundredth of its
# strength after a heavy day: about a minute); a blend's history rescales by
# its largest ratio.
#
# Bounds: a bucket is 0..BUCKET_CAP or SATURATED (2**30 - 1, a small int);
# day_sum and hour_sum sum the numeric buckets, <= DAY_BUCKETS * BUCKET_CAP
# < 2**30; day_sat and hour_sat count saturated buckets, 0..DAY_BUCKETS; the
# limits are 0..NO_LIMIT. A departed record's totals are 0..DAY_BUCKETS *
# BUCKET_CAP (more is recorded as saturated: it could never fit back).
#
# permit() runs on the dosing hot path and allocates nothing; its values all
# stay below 2**30. set_fluid(), set_step_volume() and admission run on the command
# path and may use long ints.

from array import array

from firmware import const
from firmware.intmath import gcd
from firmware.lazy import call
from firmware.store import Pieces

US_PER_MDAY = const(86_400_000)
BUCKET_US = const(36_000_000)  # 36 s: 100 buckets to the hour, 2400 to the day
DAY_BUCKETS = const(2400)
HOUR_BUCKETS = const(100)
# The ring in chunks: 10 arrays of 240 u16 buckets (480 bytes), no bigger block.
_CHUNK_BUCKETS = const(240)
_CHUNKS = const(10)
# 12 buckets are exactly 5 millidays (432 s), which lets a long gap be skipped
# in whole groups without a long int.
_GROUP_BUCKETS = const(12)
_GROUP_MDAY = const(5)
# 32,768 steps in 36 s is far beyond the pump's 10 mL/h in its smallest 10 nL
# steps: the scheduler's MAX_RATE_NL_PER_DAY (240,000,000 pL per 86.4 s) for 36 s
# is 100,000,000 pL, in scheduler.MIN_STEP_PL (10 nL; the boards' own step is
# 52.083 nL) 10,000 steps, 10,001 with a step on each boundary. A late dosing turn
# may issue more at once: permit() caps a bucket at BUCKET_MAX_STEPS, a cap that
# only bites on a runaway burst. So every step permit() counts fits a u16 bucket
# exactly (BUCKET_MAX_STEPS <= BUCKET_EXACT).
BUCKET_MAX_STEPS = const(32_768)
# History rescaled to a weaker fluid after a refill (or to smaller steps after a
# calibration) can pass that. A bucket holds at most BUCKET_CAP steps as a number
# (2400 such buckets still sum below 2**30, a small int); more spills into newer
# buckets, and what fits nowhere marks a bucket SATURATED (see above).
BUCKET_CAP = const(447_392)
SATURATED = const(1_073_741_823)  # 2**30 - 1: this bucket alone fills every window it is in
# How a u16 bucket (raw 0..65,535) holds 0..BUCKET_CAP or SATURATED: raw 0..BUCKET_EXACT are
# the steps themselves (all permit() ever adds); above, a raw unit is 16 steps,
# steps = BUCKET_EXACT + (raw - BUCKET_EXACT) * 16, so BUCKET_CAP is raw 58,682 and nothing wraps.
# Only rescaled history goes there, rounded up to a multiple of 16 above BUCKET_EXACT (at most
# 15 steps more, toward caution, like the rescale's own rounding); history() yields the
# rounded counts, so what admission checks is what the ring then holds. RAW_SATURATED
# marks SATURATED; raw values in between are no bucket's.
BUCKET_EXACT = const(32_768)
RAW_CAP = const(58_682)  # BUCKET_EXACT + (BUCKET_CAP - BUCKET_EXACT) // 16
RAW_SATURATED = const(65_535)
# A departed record's flags: its hour window (1) or the rest of its day (2) held a saturated bucket.
SAT_HOUR = const(1)
SAT_REST = const(2)
NO_LIMIT = const(1_073_741_823)  # 2**30 - 1: no drug limit applies

# Why a step was refused (latched in `tripped` until clear_trip()).
LIMIT_NONE = const(0)
LIMIT_DAY = const(1)
LIMIT_HOUR = const(2)
LIMIT_BUCKET = const(3)
LIMIT_BOLUS = const(4)

# Their names are the host's (pumpctl.words.LIMIT_NAMES): a pump text names one by
# the token "{l<code>}".

_PL_PER_ML = const(1_000_000_000)


def window_totals(history):
    """(day_sum, hour_sum, day_sat, hour_sat) of a day of buckets given oldest first (a
    DoseGuard.history): the numeric buckets' sums and the saturated ones, of all of them
    and of the newest HOUR_BUCKETS (the hour window)."""
    day = hour = day_sat = hour_sat = 0
    k = HOUR_BUCKETS - DAY_BUCKETS  # 0 at the hour window's oldest bucket
    for b in history:
        if b == SATURATED:
            day_sat += 1
        else:
            day += b
        if k >= 0:
            if b == SATURATED:
                hour_sat += 1
            else:
                hour += b
        k += 1
    return day, hour, day_sat, hour_sat


def steps_allowed(limit_ng, conc_ng_per_ml, step_pl):
    """Steps of fluid at conc_ng_per_ml up to limit_ng, counting the step that reaches it.

    The pump moves fluid in whole steps, so a program at exactly the limit
    (say 19.2 mcg/day) holds floor or ceil of limit/step-dose steps in a
    window, depending on where the window falls. The guard allows the ceiling:
    at most one step's dose above the limit, so such a program never trips it.
    """
    unit = conc_ng_per_ml * step_pl
    n = -(-limit_ng * _PL_PER_ML // unit)
    return NO_LIMIT if n > NO_LIMIT else n


class DoseGuard:
    def __init__(self, step_pl):
        """An empty day."""
        self.step_pl = step_pl
        # Steps per 36 s bucket, in chunks each made once at its final size (no growth garbage).
        zero = bytes(2 * _CHUNK_BUCKETS)
        ring = [array("H", zero) for _ in range(_CHUNKS)]  # u16 raw counts (see BUCKET_EXACT)
        self._ring = ring
        self._buckets = Pieces(2 * DAY_BUCKETS, ring)  # the ring as saved: its bytes, chunk by chunk
        self._cur = 0  # index of the bucket holding now, 0..DAY_BUCKETS-1
        self._end_mday = 0  # end of the current bucket, two-word pump time
        self._end_us = BUCKET_US
        self.day_sum = 0  # steps in the day window's numeric buckets, <= DAY_BUCKETS * BUCKET_CAP < 2**30
        self.hour_sum = 0  # steps in the hour window's numeric buckets, <= day_sum
        self.day_sat = 0  # saturated buckets in the day window, 0..DAY_BUCKETS
        self.hour_sat = 0  # saturated buckets in the hour window, <= day_sat

        # Limits in steps of the fluid now leaving the pump, 0..NO_LIMIT.
        self.day_limit = NO_LIMIT
        self.hour_limit = NO_LIMIT
        self.bolus_limit = NO_LIMIT
        self.fluid = ()  # ((name, conc_ng_per_ml, daily_ng, hourly_ng, bolus_ng), ...)
        # The last limits_for(): (drugs, (day, hour, bolus)), or None. A command asks for the same fluid's
        # limits two or three times (a stage, a commit: about 0.7 KB of long ints each on a 32-bit port).
        self._limits_kept = None
        # Drugs that left the fluid in the last 24 h, so their history comes back if they
        # do: [(name, conc, day_steps, hour_steps, change_end_us, sat)], sat: SAT_HOUR | SAT_REST.
        self.departed = []

        self.tripped = LIMIT_NONE  # latched reason of the first refusal
        self.refused_steps = 0  # steps refused since boot, saturating at NO_LIMIT
        self.delivered_hi = 0  # steps let through = hi * 2**29 + lo
        self.delivered_lo = 0

    # -- every step, hot path ----------------------------------------------

    def permit(self, now_mday, now_us, n):
        """Let through as many of n due steps as every window allows; return that.

        Steps refused are not owed later: they are simply not delivered, the
        refusal is latched in `tripped`, and the caller raises the alarm.
        Hot path: no allocation.
        """
        self._rotate(now_mday, now_us)
        if n <= 0:
            return 0
        allowed = n
        why = LIMIT_NONE
        cur = self._cur
        chunk = self._ring[cur // _CHUNK_BUCKETS]
        at = cur % _CHUNK_BUCKETS
        if self.day_sat:  # a saturated bucket fills every window it is in (and may be the current one)
            allowed = 0
            why = LIMIT_DAY
        else:
            room = self.day_limit - self.day_sum
            if allowed > room:
                allowed = room
                why = LIMIT_DAY
            room = self.hour_limit - self.hour_sum
            if allowed > room:
                allowed = room
                why = LIMIT_HOUR
            room = BUCKET_MAX_STEPS - chunk[at]  # a raw count above BUCKET_EXACT holds more: no room
            if allowed > room:
                allowed = room
                why = LIMIT_BUCKET
            if allowed < 0:  # limits tightened below what the window already holds
                allowed = 0
        if allowed:
            chunk[at] += allowed
            self.day_sum += allowed
            self.hour_sum += allowed
            lo = self.delivered_lo + allowed
            if lo >= 536_870_912:
                lo -= 536_870_912
                self.delivered_hi += 1
            self.delivered_lo = lo
        if allowed < n:
            if not self.tripped:
                self.tripped = why
            extra = n - allowed
            if extra < NO_LIMIT - self.refused_steps:  # saturate without a long int
                self.refused_steps += extra
            else:
                self.refused_steps = NO_LIMIT
        return allowed

    def _rotate(self, now_mday, now_us):
        """Move the current bucket up to now, dropping what leaves each window."""
        em = self._end_mday
        eu = self._end_us
        if now_mday < em or (now_mday == em and now_us < eu):
            return
        ring = self._ring
        cur = self._cur
        moved = 0
        while now_mday > em or (now_mday == em and now_us >= eu):
            if moved >= DAY_BUCKETS and not self.day_sum and not self.day_sat:
                # Everything has left both windows: skip whole 5-mday groups, as many as keep the
                # current bucket's end at or before now (the buckets after it are then moved one by
                # one). One more would put now in a later bucket than its own whenever now is more
                # than a bucket before the end's time of day: its steps would then leave every window
                # 36 s late, and a program at exactly the daily limit would trip the guard.
                groups = (now_mday - em) // _GROUP_MDAY
                if groups and em + groups * _GROUP_MDAY == now_mday and now_us < eu:
                    groups -= 1
                if groups:
                    em += groups * _GROUP_MDAY
                    cur = (cur + (groups % DAY_BUCKETS) * _GROUP_BUCKETS) % DAY_BUCKETS
            cur += 1
            if cur == DAY_BUCKETS:
                cur = 0
            chunk = ring[cur // _CHUNK_BUCKETS]
            b = chunk[cur % _CHUNK_BUCKETS]  # the bucket 24 h old leaves the day window (raw: see BUCKET_EXACT)
            if b == RAW_SATURATED:
                self.day_sat -= 1
            else:
                self.day_sum -= b if b <= BUCKET_EXACT else BUCKET_EXACT + ((b - BUCKET_EXACT) << 4)
            chunk[cur % _CHUNK_BUCKETS] = 0
            old = cur - HOUR_BUCKETS
            if old < 0:
                old += DAY_BUCKETS
            b = ring[old // _CHUNK_BUCKETS][old % _CHUNK_BUCKETS]  # and the one 1 h old leaves the hour window
            if b == RAW_SATURATED:
                self.hour_sat -= 1
            else:
                self.hour_sum -= b if b <= BUCKET_EXACT else BUCKET_EXACT + ((b - BUCKET_EXACT) << 4)
            eu += BUCKET_US
            if eu >= US_PER_MDAY:
                eu -= US_PER_MDAY
                em += 1
            moved += 1
        self._cur = cur
        self._end_mday = em
        self._end_us = eu

    # -- configuration, command path ----------------------------------------

    def set_fluid(self, drugs):
        """Set the drugs in the fluid now leaving the pump.

        drugs: a tuple of (name, conc_ng_per_ml, daily_hard_ng, hourly_hard_ng,
        bolus_hard_ng), one per drug in the blend (empty: no drug, so only the
        pump-level cap applies). The steps already in the windows were of the
        old fluid; they are rescaled to steps of the new one, rounding up, by
        the largest ratio of old to new concentration over the drugs in both.
        A drug that leaves the fluid keeps its windows' totals for 24 h, and
        they come back (rescaled) if it returns: morphine, then saline, then
        morphine again within a day still counts the first morphine.
        """
        from firmware.admission import fluid_change  # loaded already: app imports it

        num, den, inserts, departed = fluid_change(self, drugs)
        self._rewrite(num, den, inserts)
        self.departed = departed
        self._set_limits(drugs)

    def history(self, num, den, inserts):
        """The buckets from the oldest (cur + 1) to the current one, as a change
        (admission.fluid_change's num, den and inserts) leaves them, one by one: what
        set_fluid writes and what admission.admit() checks a change of fluid against,
        without a second ring.

        A bucket rescales by num/den, rounding up (never less drug than was delivered;
        num == den: as it is). num 0 empties every bucket, saturated ones too: the history
        is of other drugs (a departed record keeps theirs, with its saturation). A bucket
        past BUCKET_CAP spills into newer ones; what passes the current one saturates it.
        A saturated bucket stays saturated, and a spill that reaches one ends there: the
        spill is history no newer than that bucket, which fills every window it is in
        already. Inserts add to their bucket (spilling the same way) or saturate it."""
        ring = self._ring
        i = self._cur
        rescale = num != den
        carry = 0  # the rescale's spill
        spill = 0  # the inserts'
        j = 0
        n = len(inserts)
        for k in range(DAY_BUCKETS):
            i = i + 1 if i < DAY_BUCKETS - 1 else 0
            b = ring[i // _CHUNK_BUCKETS][i % _CHUNK_BUCKETS] if num else 0
            if b > BUCKET_EXACT:  # raw: see BUCKET_EXACT
                b = SATURATED if b == RAW_SATURATED else BUCKET_EXACT + ((b - BUCKET_EXACT) << 4)
            if b == SATURATED:
                carry = 0
            elif rescale:
                b = (-(-b * num // den) if b else 0) + carry
                carry = b - BUCKET_CAP if b > BUCKET_CAP else 0
                b -= carry
                if carry and k == DAY_BUCKETS - 1:
                    b = SATURATED
            add = spill
            while j < n and inserts[j][0] == k:
                steps = inserts[j][1]
                j += 1
                if steps == SATURATED:
                    b = SATURATED
                else:
                    add += steps
            if b == SATURATED:
                spill = 0
            elif add:
                b += add
                spill = b - BUCKET_CAP if b > BUCKET_CAP else 0
                b -= spill
                if spill and k == DAY_BUCKETS - 1:
                    b = SATURATED
            if BUCKET_EXACT < b <= BUCKET_CAP:
                b += -(b - BUCKET_EXACT) & 15  # as a u16 bucket holds it: rounded up to 16 steps
            yield b

    def bucket(self, k):
        """The k-th bucket from the oldest (0..DAY_BUCKETS-1), in steps or SATURATED, as history(1, 1,
        ()) gives it: admission.admit reads the history unchanged two buckets at a time by this (two
        generators' frames were 0.2 KB of each admission's garbage)."""
        i = self._cur + 1 + k
        if i >= DAY_BUCKETS:
            i -= DAY_BUCKETS
        b = self._ring[i // _CHUNK_BUCKETS][i % _CHUNK_BUCKETS]
        if b > BUCKET_EXACT:  # raw: see BUCKET_EXACT
            b = SATURATED if b == RAW_SATURATED else BUCKET_EXACT + ((b - BUCKET_EXACT) << 4)
        return b

    def _rewrite(self, num, den, inserts):
        """Write the history a change leaves (history()) into the ring, and its windows' totals."""
        if num == den and not inserts:
            return  # nothing changes
        ring = self._ring
        if not num and not inserts:  # no drug in common and nothing put back: no history (no generator)
            for chunk in ring:
                for j in range(_CHUNK_BUCKETS):
                    chunk[j] = 0
            self.day_sum = self.hour_sum = self.day_sat = self.hour_sat = 0
            return
        i = self._cur
        for b in self.history(num, den, inserts):
            i = i + 1 if i < DAY_BUCKETS - 1 else 0
            if b > BUCKET_EXACT:  # raw: see BUCKET_EXACT (history() rounded it already)
                b = RAW_SATURATED if b == SATURATED else BUCKET_EXACT + ((b - BUCKET_EXACT) >> 4)
            ring[i // _CHUNK_BUCKETS][i % _CHUNK_BUCKETS] = b
        self._resum()

    def limits_for(self, drugs):
        """(day, hour, bolus) limits in steps of a fluid of drugs (set_fluid's tuples), 0..NO_LIMIT."""
        kept = self._limits_kept
        if kept is not None and kept[0] == drugs:
            return kept[1]
        day = hour = bolus = NO_LIMIT
        for _name, conc, daily_ng, hourly_ng, bolus_ng in drugs:
            day = min(day, steps_allowed(daily_ng, conc, self.step_pl))
            hour = min(hour, steps_allowed(hourly_ng, conc, self.step_pl))
            bolus = min(bolus, steps_allowed(bolus_ng, conc, self.step_pl))
        limits = (day, hour, bolus)
        if type(drugs) is tuple:  # a list may change after: not kept
            self._limits_kept = (drugs, limits)
        return limits

    def _set_limits(self, drugs):
        self.day_limit, self.hour_limit, self.bolus_limit = self.limits_for(drugs)
        self.fluid = tuple(drugs)

    def set_step_volume(self, step_pl):
        """A new calibration. The windows hold steps of the old volume: they
        become steps of the new one, rounding up (never less drug than was
        delivered), and so do the departed drugs' hour and rest-of-day totals;
        the limits follow."""
        old = self.step_pl
        self.step_pl = step_pl
        self._limits_kept = None  # limits in steps of the old volume
        g = gcd(old, step_pl)
        self._rewrite(old // g, step_pl // g, ())
        self.departed = call("firmware.guard_records", "rescale_departed", self.departed, old, step_pl)
        self._set_limits(self.fluid)

    def _resum(self):
        """The windows' totals taken again from the buckets."""
        self.day_sum, self.hour_sum, self.day_sat, self.hour_sat = window_totals(self.history(1, 1, ()))

    # -- persistence, command path -----------------------------------------------

    def saved_state(self):
        """What a restart needs, as (ints, departed, ring). ring is a store
        Pieces of the buckets' chunks themselves, not a copy: 4.8 KB, each bucket
        2 bytes little-endian in ring order, the same bytes as one array of
        2400 (to be written out at once, before any step); ints are the ring
        position, the latched trip and the counts."""
        ints = (
            self._cur,
            self._end_mday,
            self._end_us,
            self.tripped,
            self.refused_steps,
            self.delivered_hi,
            self.delivered_lo,
        )
        return ints, self.departed, self._buckets

    def ring(self):
        """The ring as a store Pieces (saved_state's), for a load to read the saved one into."""
        return self._buckets

    def clear_trip(self):
        self.tripped = LIMIT_NONE

    def bucket_end_us(self):
        """End of the current bucket as one pump-time integer (command path)."""
        return self._end_mday * US_PER_MDAY + self._end_us

    # -- reading -------------------------------------------------------------

    def delivered(self):
        """Steps let through since boot (a long int past 2**30; not hot path)."""
        return self.delivered_hi * 536_870_912 + self.delivered_lo

    def window_steps(self, now_mday, now_us):
        """(day, hour) steps in the windows as of now, a saturated bucket
        counting BUCKET_CAP (it holds more); each below 2**30."""
        self._rotate(now_mday, now_us)
        return self.day_sum + self.day_sat * BUCKET_CAP, self.hour_sum + self.hour_sat * BUCKET_CAP
