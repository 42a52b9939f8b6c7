# The running therapy: which volume rate the scheduler should run at any
# moment, from the committed program, the device clock, running boluses and
# the fluid in the path. It decides rates only; the scheduler turns a rate
# into exact step times, and the dose guard checks every step.
#
# Everything changes only at events: a flex step starting, a day ending, a
# bolus starting or ending, a bridge finishing, a trial ending. The app asks
# next_event() for the time of the next one, and at that exact time calls
# fire() and hands rate_now() to the scheduler, whose rate change carries the
# partial step over. So the volume delivered is exactly the integral of the
# rates here.
#
# Times are pump microseconds since boot as one integer (a long int on a
# 32-bit port: events are rare, this is not the hot path). The device clock is
# pump time plus clock_offset_us, in local wall-clock microseconds.
#
# Flex schedule and the clock. Each schedule day runs every step once, in
# order. A day normally ends at the clock's midnight. When the clock is set
# (a drift fix, a time-zone or daylight-saving change), the current day ends
# at the clock midnight nearest to 24 h after the day began, but never more
# than half the last step's length earlier or later than that: the last step
# of the day (the overnight step in most schedules) is shortened or
# lengthened, by at most half its length per day, until the schedule is back
# on the clock. So no step is ever repeated or skipped, and a day's volume
# moves by at most half a last step.

from firmware.errors import sentence
from firmware.program import (
    BASAL_CONTINUOUS,
    BASAL_FLEX,
    BASAL_STOPPED,
    MIN_PER_DAY,
    US_PER_DAY,
    Program,
    bolus_rate,
)

US_PER_MIN = 60_000_000

BOLUS_NONE = 0
BOLUS_SINGLE = 1
BOLUS_PATIENT = 2
BOLUS_PRIME = 3
BRIDGE = 4  # not a bolus kind on the wire: Therapy.delivery() while a bridge runs

# Bolus kinds are sent in THERAPY; their names are the host's (pumpctl.words.BOLUS_KIND_NAMES):
# a text here names one by the token "{b<kind>}".

# The therapy's own state, by kind (fork() copies it, persist.py saves it):
# integers, integers or None, and the rest.
INT_STATE = (
    "day_start",
    "day_end",
    "bolus_kind",
    "bolus_rate",
    "bolus_start",
    "bolus_end",
    "bolus_volume_nl",
    "bridge_left",
    "bridge_mark",
)
OPTIONAL_INT_STATE = ("clock_offset_us", "trial_end")


class Therapy:
    def __init__(self):
        self.program: Program | None = None  # the committed Program, or None (stopped, never programmed)
        # The last program that dosed, kept when a stop replaced it (a stop command or program, an empty
        # reservoir, a fault): what `pumpctl resume` and a refill after a stop run again, through the same
        # checks. None while a program doses, or if none ever did. Without what acts once (a bolus, prime or
        # bridge) or belongs to a refill (fill, removed).
        self.last_program = None
        self.clock_offset_us = None  # device clock = pump time + offset; None until set
        self.drugs = []  # the blend the program is written for
        self.day_start = 0  # flex: pump time the schedule day began
        self.day_end = 0  # flex: pump time it ends
        self.bolus_kind = BOLUS_NONE
        self.bolus_rate = 0  # nL/day while the bolus runs
        self.bolus_start = 0  # a bolus waiting for its delay starts here
        self.bolus_end = 0
        self.bolus_volume_nl = 0
        self.bridge_left = 0  # old fluid still in the path, in nL * US_PER_DAY
        self.bridge_mark = 0  # pump time bridge_left was last brought up to date
        self.bridge_drugs = None  # the old blend while a bridge runs
        self.trial_end = None
        self.patient_times = []  # pump times of accepted patient boluses in the last 24 h

    def fork(self):
        """An independent copy, to project what a change would deliver."""
        t = Therapy()
        for names in (("program", "last_program", "drugs", "bridge_drugs"), INT_STATE, OPTIONAL_INT_STATE):
            for name in names:
                setattr(t, name, getattr(self, name))
        t.patient_times = list(self.patient_times)
        return t

    # -- the clock -------------------------------------------------------------

    def clock_us(self, now):
        return None if self.clock_offset_us is None else now + self.clock_offset_us

    def set_clock(self, now, wall_us):
        """Set the device clock so that it reads wall_us now; realign a flex day."""
        self.clock_offset_us = wall_us - now
        if self.program is not None and self.program.basal_kind == BASAL_FLEX:
            self.day_end = max(self._day_end_for(self.day_start), now)

    def _tod(self, t):
        return (t + self.clock_offset_us) % US_PER_DAY

    def _day_end_for(self, day_start):
        """End of the schedule day that began at day_start (see the header)."""
        target = day_start + US_PER_DAY
        early = self._tod(target)  # how far the nearer midnight is before target (negative: after it)
        if 2 * early >= US_PER_DAY:
            early -= US_PER_DAY
        half_last = (MIN_PER_DAY - self.program.flex[-1][0]) * US_PER_MIN // 2
        if early > half_last:
            early = half_last
        elif early < -half_last:
            early = -half_last
        return target - early

    # -- programs ----------------------------------------------------------------

    def commit(self, program, now):
        """Put a checked program in force at pump time now."""
        old = self.program
        self.bring_up_to_date(now)
        keep_day = program.basal_kind == BASAL_FLEX and program.basal_equal(old)
        keep = self.same_delivery(program)
        if not keep:
            self._end_bolus()  # a running bolus the program leaves out (or a patient bolus) is cancelled
        if program.basal_kind == BASAL_STOPPED:
            self._keep_last()
        else:
            self.last_program = None  # a program doses again: nothing to resume
        self.program = program
        if keep and program.bridge_nl is not None:
            pass  # the same bridge goes on pushing out the old blend
        elif program.bridge_nl is not None:
            self.bridge_drugs = list(self.drugs)
            self.bridge_left = program.bridge_nl * US_PER_DAY
            self.bridge_mark = now
        elif program.drugs != self.drugs:
            self.bridge_drugs = None
            self.bridge_left = 0
        self.drugs = list(program.drugs)
        if program.basal_kind == BASAL_FLEX and not keep_day:
            self.day_start = now - self._tod(now)
            self.day_end = max(self._day_end_for(self.day_start), now)
        if keep:
            pass  # the same delivery, still running or waiting: it goes on untouched
        elif program.prime is not None:
            self._start_bolus(BOLUS_PRIME, now, program.prime[0], program.prime[1])
        elif program.bolus is not None:
            kind, amount, duration_us, delay_us = program.bolus
            vol = program.volume(kind, amount)
            if delay_us:
                self.bolus_kind = BOLUS_SINGLE
                self.bolus_volume_nl = vol
                self.bolus_rate = 0
                self.bolus_start = now + delay_us
                self.bolus_end = now + delay_us + duration_us  # replaced at the start
            else:
                self._start_bolus(BOLUS_SINGLE, now, vol, duration_us)
        if program.trial_us is None:
            self.trial_end = None
        elif old is None or old.trial_us != program.trial_us or self.trial_end is None:
            self.trial_end = now + program.trial_us  # a new trial; the same one keeps its end
        if program.patient is None:
            self.patient_times = []

    def _keep_last(self):
        """The running program is about to be replaced by a stop: keep it, if it doses, without what
        acts once or belongs to a refill."""
        p = self.program
        if p is not None and p.basal_kind != BASAL_STOPPED:
            self.last_program = p.without_delivery(False)  # a resume is checked again, and warns again

    def stop(self, now):
        self.bring_up_to_date(now)
        self._keep_last()
        self.program = None
        self.cancel_bolus()
        self.bridge_left = 0
        self.bridge_drugs = None
        self.trial_end = None

    # -- boluses -------------------------------------------------------------------

    def _start_bolus(self, kind, now, volume_nl, duration_us):
        rate = bolus_rate(volume_nl, duration_us)
        self.bolus_kind = kind
        self.bolus_rate = rate
        self.bolus_volume_nl = volume_nl
        self.bolus_start = now
        # The exact end, rounded down: delivers rate * time <= volume_nl.
        self.bolus_end = now + volume_nl * US_PER_DAY // rate

    def cancel_bolus(self):
        """End a running or waiting bolus now (done, or cancelled by an alarm or a
        stop); a single bolus or prime leaves the running program with it."""
        was = self.bolus_kind
        self._end_bolus()
        if (was == BOLUS_SINGLE or was == BOLUS_PRIME) and self.program is not None:
            self.program = self.program.without_delivery()
        return was

    def _end_bolus(self):
        self.bolus_kind = BOLUS_NONE
        self.bolus_rate = 0

    def delivery(self):
        """The running or waiting delivery that acts once: BOLUS_SINGLE, BOLUS_PRIME,
        BOLUS_PATIENT, BRIDGE, or BOLUS_NONE."""
        if self.bolus_kind != BOLUS_NONE:
            return self.bolus_kind
        return BRIDGE if self.bridge_drugs is not None else BOLUS_NONE

    def same_delivery(self, program):
        """Whether program's bolus, prime or bridge is the one running or waiting now: the
        same values for the same blend. Committing it leaves it untouched."""
        running = self.program
        if running is None or self.delivery() == BOLUS_NONE or self.bolus_kind == BOLUS_PATIENT:
            return False
        mine = program.delivery()
        return mine is not None and mine == running.delivery() and program.drugs == running.drugs

    def cancelled_text(self, name, now):
        """What a bolus, prime or bridge (name) cut short at now leaves undelivered, for the review and the log."""
        left, total = self.delivery_left_nl(now)
        return "%s{t40|%d|%d}" % (name, left, total)  # .. cancelled: left of total not given (pumpctl.sentences)

    def delivery_left_nl(self, now):
        """(left, total) nL of the running or waiting delivery (a bridge: of the old blend)."""
        if self.bolus_kind == BOLUS_NONE:
            if self.bridge_drugs is None:
                return 0, 0
            self.bring_up_to_date(now)
            total = self.program.bridge_nl if self.program is not None and self.program.bridge_nl else 0
            return max(self.bridge_left, 0) // US_PER_DAY, total
        if now < self.bolus_start or self.bolus_rate == 0:
            return self.bolus_volume_nl, self.bolus_volume_nl
        left = self.bolus_volume_nl - self.bolus_rate * (now - self.bolus_start) // US_PER_DAY
        return max(left, 0), self.bolus_volume_nl

    def bolus_running(self, now):
        return self.bolus_kind != BOLUS_NONE and self.bolus_start <= now

    # -- rates and events ---------------------------------------------------------------

    def fluid(self):
        """The blend now leaving the pump (the old one during a bridge)."""
        return self.bridge_drugs if self.bridge_drugs is not None else self.drugs

    def basal_rate(self, now):
        p = self.program
        if p is None:
            return 0
        if p.basal_kind == BASAL_CONTINUOUS:
            return p.basal_rate_at(0, self.fluid())
        if p.basal_kind == BASAL_FLEX:
            minute = (now - self.day_start) // US_PER_MIN
            return p.basal_rate_at(minute if minute < MIN_PER_DAY else MIN_PER_DAY - 1, self.fluid())
        return 0

    def rate_now(self, now):
        """The volume rate (nL/day) that should run from now until the next event."""
        basal = self.basal_rate(now)
        if self.bolus_kind == BOLUS_NONE or now < self.bolus_start:
            return basal
        if self.bolus_kind == BOLUS_PRIME:
            return self.bolus_rate  # the program pauses while the catheter fills
        return basal + self.bolus_rate

    def next_event(self, now):
        """Pump time of the next rate change after now, or None. (A projection asks this at
        every event: the soonest is kept as it is found, no list made.)"""
        soonest = None
        p = self.program
        if p is not None and p.basal_kind == BASAL_FLEX:
            soonest = self._next_flex_boundary(now)
        if self.bolus_kind != BOLUS_NONE:
            t = self.bolus_start if now < self.bolus_start else self.bolus_end
            if soonest is None or t < soonest:
                soonest = t
        if self.bridge_drugs is not None:
            rate = self.basal_rate(now)
            if rate:
                self.bring_up_to_date(now)
                t = now + self.bridge_left // rate
                if soonest is None or t < soonest:
                    soonest = t
        t = self.trial_end
        if t is not None and (soonest is None or t < soonest):
            soonest = t
        return soonest

    def _next_flex_boundary(self, now):
        # In minutes of the schedule day (small ints; pump times are long ints on a 32-bit port): a
        # step starting at minute m starts after now exactly when m > the minute now is in. Only such
        # a step's start is made a pump time, to see whether it comes before the day ends.
        day_start = self.day_start
        minute = (now - day_start) // US_PER_MIN
        for start, _k, _r in self.program.flex:
            if minute < start:
                t = day_start + start * US_PER_MIN
                if t < self.day_end:
                    return t
        return self.day_end

    def bring_up_to_date(self, now):
        """Account the old fluid pushed out by the basal up to now (a bridge)."""
        if self.bridge_drugs is not None and now > self.bridge_mark:
            # The basal rate is constant between events, so since the mark.
            self.bridge_left -= self.basal_rate(self.bridge_mark) * (now - self.bridge_mark)
            self.bridge_mark = now

    def fire(self, now):
        """Carry out every change due at pump time now; return a note of what happened ("" if
        nothing to say). A projection fires every event: one note is a constant, not a new string."""
        notes = ""
        p = self.program
        self.bring_up_to_date(now)
        if self.bridge_drugs is not None and self.bridge_left < self.basal_rate(now):
            self.bridge_drugs = None
            self.bridge_left = 0
            if p is not None and p.bridge_nl is not None:  # the bridge line leaves the running program
                self.program = p = p.without_delivery()
            notes = _then(notes, sentence(41))  # bridge done: new concentration in the catheter
        if p is not None and p.basal_kind == BASAL_FLEX and now >= self.day_end:
            self.day_start = self.day_end
            self.day_end = self._day_end_for(self.day_start)
            notes = _then(notes, sentence(42))  # flex day starts
        if self.bolus_kind != BOLUS_NONE:
            if self.bolus_rate == 0 and now >= self.bolus_start:
                self._start_bolus(self.bolus_kind, now, self.bolus_volume_nl, self.bolus_end - self.bolus_start)
                notes = _then(notes, "bolus starts")
            elif self.bolus_rate and now >= self.bolus_end:
                notes = _then(notes, "{b%d} done" % self.bolus_kind)
                self.cancel_bolus()
        if self.trial_end is not None and now >= self.trial_end:
            self.stop(now)
            notes = _then(notes, sentence(43))  # trial ended: stopped
        self.bridge_mark = now
        return notes


def _then(notes, note):
    """notes followed by note, "; " between."""
    return notes + "; " + note if notes else note
