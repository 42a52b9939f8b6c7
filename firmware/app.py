# The pump application: wires the board's hardware to the therapy, the dose
# scheduler, the dose guard and the command link, as two tasks (tasks.py).
#
#   dosing  every tick: bring pump time up to date, carry out therapy events
#           that are due (a flex step, a bolus ending), issue the steps that
#           are due through the dose guard, then sleep until the next step or
#           event (at most the board's MAX_SLEEP_US, so ticks are never
#           further apart than ticks_diff can measure). The tick allocates
#           nothing unless an event or an alarm is due.
#   link    decodes frames from the host and runs one command at a time.
#           A command that changes the therapy wakes the dosing task.
#
# Programming is two steps (stage, review, commit): the running program keeps
# dosing while a new one is staged, and a staged program expires after
# STAGED_TTL_US. Only the board file and hal/ know what hardware this is.
#
# Power cuts (a board with storage). The whole state is saved (persist.py,
# store.py) at every durable point: each command that changes it, each alarm,
# and each dose reservation. Before the motor moves a step that is not yet
# reserved, the steps due in the next _RESERVE_WINDOW_US (at most
# _RESERVE_MAX_STEPS) are reserved in a save. After a restart the pump resumes
# at the pump time of its last save, and the steps reserved then count as
# delivered: they go through the guard but not the motor. So a cut can never
# add a step, and loses at most _RESERVE_MAX_STEPS (20 uL at 52.083 nL a
# step) plus the partial step the scheduler held. Without a battery-backed
# clock the pump cannot know how long it was off: its program resumes where
# it stood at the save, and the restart alarm says so.
#
# The link (link.py, auth.py): reading needs no key; the patient bolus needs
# the patient's key or the clinician's; everything else that changes the
# pump needs the clinician's. A session that ends (timed out, ended, or
# replaced) drops what it staged, so a lost link never leaves half a change;
# the committed program doses on. Another task streams telemetry while asked (telemetry.py).

from firmware import admission, alarms, auth, codec, const, eventlog, tasks
from firmware.commands import FAMILIES, Commands, Staging
from firmware.errors import Refusal, explain, sentence
from firmware.guard import BUCKET_US, LIMIT_BOLUS, LIMIT_NONE, DoseGuard
from firmware.lazy import call
from firmware.library import default_library
from firmware.link import Link
from firmware.monitors import Monitors
from firmware.program import BASAL_CONTINUOUS, BASAL_FLEX
from firmware.scheduler import MAX_RATE_NL_PER_DAY, DoseScheduler
from firmware.therapy import BOLUS_NONE, Therapy
from firmware.timebase import MAX_ADVANCE_US, US_PER_MDAY, Timebase

FIRMWARE_VERSION = "0.4.0"

_SECURITY_LOG_BURST = const(10)  # security refusals logged one by one, at most this many in a row,
_SECURITY_LOG_REFILL_US = const(60_000_000)  # and one more for each minute of pump time; the rest are counted
_NO_EVENT_MDAY = const(1_073_741_823)  # 2**30 - 1: "no event", beyond any pump time
_BACKLOG_WAIT_US = const(20_000)  # a dosing turn comes at least this often while issued steps wait for the hardware
_RESERVE_WINDOW_US = const(600_000_000)  # a reservation covers the steps due in the next 10 min
_RESERVE_MAX_STEPS = const(384)  # and at most this many: 20 uL in 52.083 nL steps, the most a cut may lose


class PumpApp:
    def __init__(self, board, hw):
        if not 0 < board.MAX_SLEEP_US <= MAX_ADVANCE_US:
            raise ValueError("board MAX_SLEEP_US must be in 1..2**29-1 us")
        self.board = board
        self.hw = hw
        self.clock = hw.clock
        self.motor = hw.motor
        # A driver that hands issued steps on to its hardware as room frees there (a PIO's FIFO,
        # an RMT channel): each dosing turn lets it, and comes soon while steps wait, or a stop
        # would leave them waiting (seen on the emulated Pico: 14 steps counted, never sent).
        self._motor_poll = getattr(hw.motor, "poll", None)
        self.monitors = Monitors(self, board, hw)
        self.timebase = Timebase(self.monitors.jump_limit_us)
        self.sched = DoseScheduler(board.STEP_VOLUME_PL)
        storage = getattr(hw, "storage", None)
        self.archive = None  # the therapy log in flash (archive.py), on a board with storage
        if storage is not None:
            from firmware.archive import Archive

            self.archive = Archive(storage)
        self.reset_state()
        self.default_library_version = self.library.version
        self.default_library_hash = self.library.hash
        self.staging = Staging()  # what the session in progress staged, between its commands
        self._event_us = None  # pump time of the next therapy event, or None
        self._ev_mday = _NO_EVENT_MDAY  # the same, two-word, for the hot path
        self._ev_us = 0
        self._max_sleep_us = min(board.MAX_SLEEP_US, US_PER_MDAY)
        self._last_ticks = self.clock.ticks_us()
        self.store = None
        if storage is not None:  # imported only here: a board without storage keeps their heap
            from firmware.store import Store

            self.store = Store(storage)
        self._reserve_left = 0  # steps reserved in the last save and not yet moved, 0.._RESERVE_MAX_STEPS
        self.credit = 0  # after a restart: steps to count as delivered without moving, 0.._RESERVE_MAX_STEPS
        self.record_kept = False  # a record the boot could not load now: no save may replace it
        self.auth = auth.Authenticator(hw.random_bytes)
        self._security_tokens = _SECURITY_LOG_BURST
        self._security_refill_us = 0
        self._security_unlogged = 0  # refusals not logged one by one since the last entry
        self.telemetry = None  # the telemetry stream (telemetry.py) while one runs
        self.leaving = False  # SERVICE: the dosing task ends, and run() returns to the board's REPL
        families = board.COMMAND_FAMILIES if hasattr(board, "COMMAND_FAMILIES") else FAMILIES
        if getattr(hw, "sim", False):
            families = families + ("sim",)
        self.commands = Commands(self, families, self.store is not None)
        self.link = Link(hw.serial, self.commands, self.auth, self.now_us, self._security_refusal, _pause, explain)
        call("firmware.boot", "boot", self)  # its code is needed once: forgotten after

    def reset_state(self):
        """What a restart restores (persist.py), as a first boot has it."""
        self.guard = DoseGuard(self.sched.step_pl)
        self.therapy = Therapy()
        self.library = default_library()
        self.log = eventlog.EventLog(self.archive)
        self.alarms = alarms.AlarmSet()
        self.guard_fluid = []  # the blend the guard was last configured for
        self.fill_nl = None  # reservoir volume at the last fill
        self.fill_steps = 0  # guard-delivered steps at that fill
        self.program_old_drugs = []  # the blend the running program was checked against
        self.program_unread = None  # why a restart could not read the saved program (persist.py), or None
        self.monitors.reset()

    # -- power cuts ---------------------------------------------------------------

    def save(self):
        if self.store is not None and not self.record_kept:
            from firmware import persist

            # What may move (or may have moved, before a cut) after now without
            # another save: the reservation, and a restart's credit not yet used.
            self.store.save(persist.sections(self, self._reserve_left + self.credit))
            self.log.archive_due()  # the record holds the ring: its waiting entries may go to flash now

    def settle(self):
        """Nothing more can move before a new reservation's save: the reservation is void, so
        a cut after the next save credits no step the motor did not move. A restart's unused
        credit stays: those steps may have moved before the cut, and the pump's time went back
        to the save, so dropping it would let the motor give them twice (the torture test's
        "over" check finds it)."""
        self._reserve_left = 0

    def _reserve(self, moving):
        """Reserve, in a save, the steps due in the next _RESERVE_WINDOW_US beyond
        the moving ones (already counted by the guard), so a cut never repeats them."""
        step_pl = self.sched.step_pl
        window = -(-self.sched.rate * _RESERVE_WINDOW_US // (US_PER_MDAY * step_pl))
        window = min(max(window, 1), _RESERVE_MAX_STEPS)
        self._reserve_left = window
        self.save()
        self._reserve_left = moving + window

    # -- dosing ---------------------------------------------------------------

    def tick(self):
        """Bring pump time up to date and issue due steps. Hot path: no allocation
        unless a therapy event or a guard refusal is due."""
        clock = self.clock
        now = clock.ticks_us()
        tb = self.timebase
        elapsed = clock.ticks_diff(now, self._last_ticks)
        if not tb.advance(elapsed):  # beyond the board's CLOCK_JUMP_US, or backwards: not pump time
            self.monitors.clock_jump(elapsed)
        self._last_ticks = now
        if tb.reached(self._ev_mday, self._ev_us):
            self.run_events()
        n = self.sched.poll(tb.mday, tb.us)
        if n:
            n = self._deliver(n)
        return n

    def us_since_tick(self):
        """Microseconds the board's clock has run since the last tick() set pump time, 0..2**29
        (a save to flash in between takes tens of ms). Hot path: no allocation."""
        clock = self.clock
        elapsed = clock.ticks_diff(clock.ticks_us(), self._last_ticks)
        return elapsed if 0 < elapsed <= MAX_ADVANCE_US else 0

    def _deliver(self, n):
        """Pass n due steps through the motor checks, the reservoir's empty mark
        and the guard to the motor; return how many the guard let through. Hot
        path: allocates only to save a new reservation, or when a fault, an
        alarm or a mark is reached."""
        mon = self.monitors
        motor_watch = mon.motor_watch
        n = motor_watch.gate(n)
        if not n:
            return 0
        empty = n >= mon.to_empty
        if empty:  # never past the empty volume
            n = mon.to_empty
        tb = self.timebase
        allowed = self.guard.permit(tb.mday, tb.us, n) if n else 0
        mon.count_down(allowed)
        moving = allowed
        if self.credit:  # after a restart: these may have moved before the cut
            skip = moving if moving < self.credit else self.credit
            self.credit -= skip
            moving -= skip
        if moving:
            if moving > self._reserve_left and self.store is not None:
                self._reserve(moving)
            self._reserve_left = self._reserve_left - moving if moving < self._reserve_left else 0
            self.motor.step(moving)
            motor_watch.moved(moving)
        if allowed < n:
            self.raise_alarm(codec.ALARM_DOSE_LIMIT, sentence(50, self.guard.tripped))  # dose limit: which one
        if empty and mon.to_empty <= 0:
            mon.reservoir_empty()
        return allowed

    @property
    def alarm(self):
        """The latched alarm of highest priority (codec.ALARM_*), ALARM_NONE if none."""
        return self.alarms.highest()

    def raise_alarm(self, code, text, at_us=None, active=False):
        """Latch an alarm (alarms.py: until its condition has cleared and it is
        acknowledged), log it, and, if it is one that forbids boluses, cancel
        any running or waiting bolus. Saves and returns True if it was not
        latched before (an alarm already latched is not logged again)."""
        now = self.timebase.total_us() if at_us is None else at_us
        if not self.alarms.raise_alarm(code, now, text, active):
            return False
        self.log_event(eventlog.EV_ALARM, text, at_us)
        if self.monitors.buzz is not None:
            self.monitors.buzz.set()
        if alarms.blocks_bolus(code) and self.therapy.bolus_kind != BOLUS_NONE:
            self.therapy.cancel_bolus()
            self.log_event(eventlog.EV_THERAPY, sentence(51), at_us)  # bolus cancelled by the alarm
            self.apply(self.timebase.total_us() if at_us is None else at_us)
        self.save()
        return True

    def clear_alarm(self, code, number):
        """The condition of an active alarm has gone: log it with pumpctl's sentence `number` (it
        stays latched until acknowledged, unless it already was). Saves if anything changed. The
        monitors call it at each look whose condition is fine: the text is made only if it clears."""
        if self.alarms.clear(code):
            self.log_event(eventlog.EV_ALARM_CLEAR, "{a%d}: %s" % (code, sentence(number)))
            self.save()

    def bolus_refusal(self):
        """Why no bolus may start now (an alarm that forbids one), or None."""
        code = self.alarms.bolus_blocker()
        if code == codec.ALARM_NONE:
            return None
        return sentence(52, code)  # no bolus while the alarm is active

    async def dosing(self):
        clock = self.clock
        while not self.leaving:
            await clock.sleep_us(self.tick_and_wait())

    def tick_and_wait(self):
        """One turn of the dosing task without its sleep: tick(), then return the
        microseconds until the next step or therapy event is due, at most the
        board's MAX_SLEEP_US. Hot path: no allocation when tick() makes none.
        (Also how a harness without an event loop runs the pump: tests, benchmarks.)"""
        tb = self.timebase
        self.tick()
        mon = self.monitors
        mon.turn()
        wait = self.sched.us_until_due(tb.mday, tb.us, self._max_sleep_us)
        poll = self._motor_poll
        if poll is not None:
            poll()
            if self.motor.backlog() and wait > _BACKLOG_WAIT_US:
                wait = _BACKLOG_WAIT_US
        wait = tb.wait_until(mon.next_mday, mon.next_us, wait)  # the monitor's next turn may come sooner
        return tb.wait_until(self._ev_mday, self._ev_us, wait)  # and so may a therapy event

    def run_events(self):
        """Carry out every therapy event due by now, each at its own exact time."""
        now = self.timebase.total_us()
        ev = self._event_us
        t = self.therapy
        while ev is not None and ev <= now:
            waiting = t.bolus_kind != BOLUS_NONE and t.bolus_rate == 0
            note = t.fire(ev)
            if note:
                self.log_event(eventlog.EV_THERAPY, note, ev)
            self.apply(ev, reschedule=False)
            if waiting and t.bolus_rate:
                self._admit_delayed_bolus(ev)
            nxt = t.next_event(ev)
            ev = nxt if nxt is None or nxt > ev else ev + 1
        self.set_event(ev)

    def _admit_delayed_bolus(self, at_us):
        """A delayed bolus starts: check it again against the guard, as the
        last 24 h stand now (its commit could see only the day after it)."""
        try:
            self.admit(self.therapy.fork(), self.timebase.total_us())
        except Refusal as e:
            self.therapy.cancel_bolus()
            self.apply(at_us, reschedule=False)
            self.log_event(eventlog.EV_THERAPY, sentence(53) + e.message, at_us)  # delayed bolus not started: why
            self.raise_alarm(codec.ALARM_DOSE_LIMIT, sentence(54), at_us)  # a delayed bolus would pass a limit

    def apply(self, at_us, reschedule=True):
        """Run the therapy's rate from pump time at_us (<= now) on: steps due at
        the old rate up to at_us are issued first, the partial step carries over."""
        self.sync_fluid()
        rate = self.therapy.rate_now(at_us)
        if rate > MAX_RATE_NL_PER_DAY:
            rate = MAX_RATE_NL_PER_DAY
        n = self.sched.set_rate(at_us // US_PER_MDAY, at_us % US_PER_MDAY, rate)
        if n:
            self._deliver(n)
        if not rate:  # delivery ended: the reservation settles in the save that records it
            self.settle()
        if reschedule:
            self.set_event(self.therapy.next_event(at_us))
        self.clock.wake()

    def set_event(self, ev):
        self._event_us = ev
        if ev is None:
            self._ev_mday = _NO_EVENT_MDAY
            self._ev_us = 0
        else:
            self._ev_mday = ev // US_PER_MDAY
            self._ev_us = ev % US_PER_MDAY

    def sync_fluid(self):
        fluid = self.therapy.fluid()
        if fluid != self.guard_fluid:
            self.guard.set_fluid(self.guard_limits(fluid))
            self.guard_fluid = list(fluid)

    def guard_limits(self, fluid, library=None):
        """The guard's (name, conc, daily, hourly, bolus) of each drug in fluid under library
        (the one in force if None); refused (Refusal) if it lacks one of them."""
        library = library or self.library
        out = [None] * len(fluid)  # a list filled in place: no generator's frame (an admission's garbage)
        for i in range(len(fluid)):
            name, conc = fluid[i]
            out[i] = library.get("drug", name).guard_limits(conc)
        return tuple(out)

    def run(self):
        tasks.run(self._main())

    async def _main(self):
        self.monitors.start()
        tasks.create_task(self.link.run())
        tasks.create_task(self.monitors.monitoring())
        if getattr(self.hw, "buzzer", None) is not None:
            tasks.create_task(self.monitors.tones())
        await self.dosing()  # returns only after SERVICE
        keep_fed = getattr(self.monitors.watchdog, "keep_fed", None)
        if keep_fed is not None:  # it cannot be stopped: fed by a timer while the REPL is flashed
            keep_fed()
        release = getattr(self.hw.serial, "release", None)
        if release is not None:  # the REPL takes the line back: Ctrl-C works again
            release()

    # -- the link's security ------------------------------------------------------

    def now_us(self):
        """Pump time now, for the link (sessions time out in pump time)."""
        self.tick()
        self.check_session()
        return self.timebase.total_us()

    def check_session(self):
        """Log a session that ended and drop what it staged."""
        a = self.auth
        a.expire(self.timebase.total_us())  # logged now, when the pump sees it: the log stays in time order
        why = a.take_ended()
        if why is not None:
            self._session_ended(why)

    def _session_ended(self, why):
        self.staging.drop("{t55}%s{t56}" % why)  # for COMMIT's refusal: its session ended (why); stage it again
        self.log_event(eventlog.EV_SESSION, sentence(57) + why)  # session ended: why

    def _security_refusal(self, text):
        """Log a refused authentication or command, a limited number in a row:
        a flood of bad frames must not push the therapy's history out of the log."""
        now = self.timebase.total_us()
        if now - self._security_refill_us >= _SECURITY_LOG_REFILL_US:
            gained = (now - self._security_refill_us) // _SECURITY_LOG_REFILL_US
            self._security_tokens = min(_SECURITY_LOG_BURST, self._security_tokens + gained)
            self._security_refill_us = now
        if self._security_tokens == 0:
            self._security_unlogged += 1
            return
        self._security_tokens -= 1
        if self._security_unlogged:  # the count first: a long reason is cut at the log's 100 characters
            text = sentence(58, self._security_unlogged) + text  # refused (+.. not logged): why
            self._security_unlogged = 0
        else:
            text = "refused: " + text
        self.log_event(eventlog.EV_SECURITY, text)

    def log_event(self, code, text, at_us=None):
        if at_us is None:
            tb = self.timebase
            mday, us = tb.mday, tb.us
        else:
            mday, us = at_us // US_PER_MDAY, at_us % US_PER_MDAY
        offset = self.therapy.clock_offset_us  # the device clock then, once it is set
        clock_s = None if offset is None else (mday * US_PER_MDAY + us + offset) // 1_000_000
        self.log.add(mday, us, code, text, clock_s)

    # -- programming ------------------------------------------------------------

    def admit(self, candidate, now, drugs=None, limits=None):
        """Refuse (Refusal) a therapy whose bolus is above the bolus hard limit,
        or whose deliveries from now on, added to what was delivered in the
        last 24 h and hour, would pass a guard window. drugs: the guard's fluid
        (guard_limits) when the candidate changes it, checked as if it had
        (admission.admit); limits: the guard's (day, hour, bolus) under another
        library (DoseGuard.limits_for)."""
        guard = self.guard
        tb = self.timebase
        guard.window_steps(tb.mday, tb.us)  # brings the buckets up to now
        step_pl = self.sched.step_pl
        bolus_steps = 0
        if candidate.bolus_kind != BOLUS_NONE:  # the bolus's size in steps, rounded up
            bolus_steps = -(-candidate.bolus_volume_nl * 1000 // step_pl)
        carried = self.sched.carried_u(tb.mday, tb.us)
        proj = admission.Projection(candidate, now, guard.bucket_end_us(), BUCKET_US, carried, step_pl * US_PER_MDAY)
        why = admission.admit(guard, tb.mday, tb.us, bolus_steps, proj, limits, drugs)
        if why == LIMIT_BOLUS:
            if limits is None:
                limits = guard.limits_for(drugs) if drugs is not None else (0, 0, guard.bolus_limit)
            raise Refusal(
                "bolus",
                sentence(59, bolus_steps, limits[2]),  # above the bolus hard limit: the guard refuses it
            )
        if why != LIMIT_NONE:
            raise Refusal(
                "program",
                sentence(60, why),  # with the last 24 h, this would pass the limit: the guard refuses it
            )

    def put_in_force(self, program, now):
        """Commit a checked program at pump time now (tick() was just called)."""
        old_fluid = self.therapy.fluid()
        self.program_old_drugs = list(self.therapy.drugs)
        self.therapy.commit(program, now)
        if program.fill_nl is not None:
            self.fill_nl = program.fill_nl
            self.fill_steps = self.guard.delivered()
            self.monitors.after_fill()
        else:
            self.monitors.set_marks()  # the levels are the program's
        self.apply(now)
        if self.therapy.fluid() != old_fluid:
            fluid = ", ".join("%s {k%d}" % d for d in self.therapy.fluid())  # pumpctl writes "10 mg/mL"
            self.log_event(eventlog.EV_PROGRAM, "fluid now " + (fluid or "no drug"))

    # -- commands ---------------------------------------------------------------

    def now_fields(self):
        """codec._PUMP_NOW: pump time, mode, rate, steps delivered."""
        self.tick()
        g = self.guard
        return (self.timebase.mday, self.timebase.us, self.mode(), self.sched.rate, g.delivered_hi, g.delivered_lo)

    def mode(self):
        p = self.therapy.program
        if p is None:
            return codec.MODE_STOPPED
        if p.basal_kind == BASAL_FLEX:
            return codec.MODE_FLEX
        if p.basal_kind == BASAL_CONTINUOUS:
            return codec.MODE_CONTINUOUS
        return codec.MODE_STOPPED

    def reservoir_nl(self):
        if self.fill_nl is None:
            return None
        used = (self.guard.delivered() - self.fill_steps) * self.sched.step_pl // 1000
        return max(self.fill_nl - used, 0)

    def set_step_volume(self, step_pl):
        """Run on a new volume per step (a calibration, or a restore of one)."""
        self.sched = DoseScheduler(step_pl)  # stopped: no partial step to carry
        self.guard.set_step_volume(step_pl)


def _pause(ms=0):
    return tasks.sleep_ms(ms)
