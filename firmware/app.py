# The pump application: wires the board's hardware to the therapy, the dose
# scheduler, the dose guard and the command link, as two asyncio tasks.
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
# reserved, the steps due in the next RESERVE_WINDOW_US (at most
# RESERVE_MAX_STEPS) are reserved in a save. After a restart the pump resumes
# at the pump time of its last save, and the steps reserved then count as
# delivered: they go through the guard but not the motor. So a cut can never
# add a step, and loses at most RESERVE_MAX_STEPS (20 uL at 52.083 nL a
# step) plus the partial step the scheduler held. Without a battery-backed
# clock the pump cannot know how long it was off: its program resumes where
# it stood at the save, and the restart alarm says so.
#
# The link (link.py, auth.py): reading needs no key; the patient bolus needs
# the patient's key or the clinician's; everything else that changes the
# pump needs the clinician's. A session that ends (timed out, ended, or
# replaced) drops what it staged, so a lost link never leaves half a change;
# the committed program doses on. A third task streams telemetry when asked.

import asyncio
import binascii
import gc
import sys

from firmware import alarms, auth, codec, eventlog
from firmware.errors import Refusal
from firmware.guard import BUCKET_US, LIMIT_BOLUS, LIMIT_NONE, DoseGuard
from firmware.intmath import format_volume
from firmware.lazy import parse_rate
from firmware.library import FIELD_NAMES, MAX_DRUGS, Library, changes, default_library, field_change
from firmware.link import Link
from firmware.program import BASAL_CONTINUOUS, BASAL_FLEX, parse_program
from firmware.program import BASAL_STOPPED as BASAL_STOPPED_KIND
from firmware.scheduler import MAX_RATE_NL_PER_DAY, MIN_RATE_NL_PER_DAY, STEP_RADIX, DoseScheduler
from firmware.therapy import BOLUS_NONE, BRIDGE, Projection, Therapy, time_to_deliver
from firmware.timebase import MAX_ADVANCE_US, US_PER_MDAY, Timebase
from firmware.watching import FAR_STEPS as _FAR_STEPS
from firmware.watching import Watching

FIRMWARE_VERSION = "0.3.0"

# The longest pump time one SIM_ADVANCE may ask for: 100 years.
_MAX_SIM_ADVANCE_S = 100 * 366 * 86_400
TELEMETRY_MIN_MS = 10  # the fastest telemetry stream: 100 samples/s
TELEMETRY_MAX_MS = 3_600_000
TELEMETRY_HOLD_MS = 10_000  # a stream stops when the host has sent nothing for this long (wall time)
_SECURITY_LOG_BURST = 10  # security refusals logged one by one, at most this many in a row,
_SECURITY_LOG_REFILL_US = 60_000_000  # and one more for each minute of pump time; the rest are counted
STAGED_TTL_US = 600_000_000  # an uncommitted program is dropped after 10 min (GIP 2.2.5)
# What committing a program does to a bolus, prime or bridge (_delivery_plan).
_DELIVERY_NONE = 0
_DELIVERY_KEEP = 1  # the same line as the one running or waiting: it goes on untouched
_DELIVERY_NEW = 2  # a new dose
_DELIVERY_CANCEL = 3  # the program leaves the running one out: it is cancelled
_NO_EVENT_MDAY = 1_073_741_823  # 2**30 - 1: "no event", beyond any pump time
_MAX_EMPTY_SCAN_DAYS = 400  # time-to-empty is reported up to this far ahead
RESERVE_WINDOW_US = 600_000_000  # a reservation covers the steps due in the next 10 min
RESERVE_MAX_STEPS = 384  # and at most this many: 20 uL in 52.083 nL steps, the most a cut may lose

# What restoring a record raises when the record itself is bad (a verified fact, the same at
# every boot); anything else (a MemoryError) is the board failing now, and the record is kept.
_BAD_RECORD = (ValueError, KeyError, IndexError, Refusal)

# Commands that change what a restart must know: their handlers save after
# they succeed (a refused command changed nothing).
_CHANGES_STATE = (
    codec.SET_RATE,
    codec.STOP,
    codec.CLOCK_SET,
    codec.ACK_ALARM,
    codec.COMMIT,
    codec.PATIENT_BOLUS,
    codec.LIB_COMMIT,
    codec.KEY_CHANGE,
    codec.SIM_FAULT,
    codec.SERVICE,
    codec.CALIBRATE,
)

# A calibration (CALIBRATE) may move the volume per step at most this far from
# the board's nominal one: further off means another head or tubing, or a
# weighing gone wrong, not a calibration.
CALIBRATION_MAX_DEVIATION_PPM = 200_000  # 20 %
# And the weighings behind it may spread (largest minus smallest over the
# mean) at most this much: the flow-accuracy requirement is 5 % (GIP 1.2.1),
# so the calibration under it must be tighter.
CALIBRATION_MAX_SPREAD_PPM = 20_000  # 2 %
# A new volume per step further than this from the one in force is stored only when
# confirmed (CALIBRATE confirm=CAL_CONFIRM) after the pump has shown it for the same weighings.
CALIBRATION_CONFIRM_CHANGE_PPM = 20_000  # 2 %
# The fluid weighed is bench water: its density in ug/mL, 0 to 45 degC (0.9902..0.99997 g/mL). A
# host can move the result through the density by at most this range, 1 %.
CALIBRATION_MIN_DENSITY = codec.CAL_MIN_DENSITY_UG_PER_ML  # 990_000
CALIBRATION_MAX_DENSITY = codec.CAL_MAX_DENSITY_UG_PER_ML  # 1_000_000
CALIBRATION_MAX_WEIGHINGS = 8
CALIBRATION_MIN_STEPS = 100  # fewer steps weigh too little to measure a volume per step
CALIBRATION_MAX_STEPS = 16_777_216  # 2**24 steps: about 870 mL at 52 nL, more than any reservoir


def _crc(lines, version):
    return binascii.crc32(("\n".join(lines) + "\n" + version).encode()) & 0xFFFFFFFF


class PumpApp(Watching):
    def __init__(self, board, hw):
        if not 0 < board.MAX_SLEEP_US <= MAX_ADVANCE_US:
            raise ValueError("board MAX_SLEEP_US must be in 1..2**29-1 us")
        self.board = board
        self.hw = hw
        self.clock = hw.clock
        self.motor = hw.motor
        self._init_watching(board, hw)
        self.timebase = Timebase(self._jump_limit_us)
        self.sched = DoseScheduler(board.STEP_VOLUME_PL)
        self._reset_state()
        self.default_library_version = self.library.version
        self.default_library_hash = self.library.hash
        self._staged_lines = []
        self._staged = None  # (Program, crc, expires pump us)
        self._weighings = []  # CAL_WEIGHING: (from_steps, to_steps, mass_ug), for CALIBRATE
        self._cal_shown = None  # (weighings, density) whose result CALIBRATE last showed (checked or refused)
        self._staged_dropped = ""  # why the last staged program was dropped with its session, for the refusal
        self._lib_fields = {}  # (drug, field) -> text, for LIB_STAGE
        self._lib_staged = None  # (Library, fields changed, hard limits raised, expires pump us), for LIB_COMMIT
        self._event_us = None  # pump time of the next therapy event, or None
        self._ev_mday = _NO_EVENT_MDAY  # the same, two-word, for the hot path
        self._ev_us = 0
        self._max_sleep_us = min(board.MAX_SLEEP_US, US_PER_MDAY)
        self._last_ticks = self.clock.ticks_us()
        storage = getattr(hw, "storage", None)
        self.store = None
        if storage is not None:  # imported only here: a board without storage keeps their heap
            from firmware.store import Store

            self.store = Store(storage)
        self._reserve_left = 0  # steps reserved in the last save and not yet moved, 0..RESERVE_MAX_STEPS
        self._credit = 0  # after a restart: steps to count as delivered without moving, 0..RESERVE_MAX_STEPS
        self._record_kept = False  # a record the boot could not load now: no save may replace it
        self.auth = auth.Authenticator(hw.random_bytes)
        self._key_store = None
        self._security_tokens = _SECURITY_LOG_BURST
        self._security_refill_us = 0
        self._security_unlogged = 0  # refusals not logged one by one since the last entry
        self.telemetry_ms = 0  # interval of the telemetry stream, 0 when off
        self.telemetry_sent = 0
        self.telemetry_dropped = 0
        self._telemetry_wake = None  # asyncio.Event, made by run()
        self._leaving = False  # SERVICE: the dosing task ends, and run() returns to the board's REPL
        handlers = {
            codec.HELLO: self._hello,
            codec.AUTH_BEGIN: self._auth_begin,
            codec.AUTH_PROVE: self._auth_prove,
            codec.AUTH_END: self._auth_end,
            codec.KEY_CHANGE: self._key_change,
            codec.TELEMETRY: self._telemetry,
            codec.STATUS: self._status,
            codec.THERAPY: self._therapy_status,
            codec.SET_RATE: self._set_rate,
            codec.STOP: self._stop,
            codec.CLOCK_SET: self._clock_set,
            codec.ACK_ALARM: self._ack_alarm,
            codec.SILENCE: self._silence,
            codec.ALARMS: self._alarms_read,
            codec.SERVICE: self._service,
            codec.CALIBRATE: self._calibrate,
            codec.CAL_WEIGHING: self._cal_weighing,
            codec.STAGE_LINE: self._stage_line,
            codec.STAGE: self._stage,
            codec.REVIEW: self._review,
            codec.COMMIT: self._commit,
            codec.DISCARD: self._discard,
            codec.PATIENT_BOLUS: self._patient_bolus,
            codec.LIB_FIELD: self._lib_field,
            codec.LIB_COMMIT: self._lib_commit,
            codec.LIB_GET: self._lib_get,
            codec.LIB_STAGE: self._lib_stage,
            codec.EVENT: self._event,
        }
        if getattr(hw, "sim", False):
            handlers[codec.SIM_ADVANCE] = self._sim_advance
            handlers[codec.SIM_STATE] = self._sim_state
            handlers[codec.SIM_FAULT] = self._sim_fault
        if self.store is not None:
            for msg in _CHANGES_STATE:
                if msg in handlers:
                    handlers[msg] = self._durable(handlers[msg])
        self.link = Link(hw.serial, handlers, self.auth, self._now_us, self._security_refusal, _pause)
        self._boot()
        self._load_keys()

    def _reset_state(self):
        """What a restart restores (persist.py), as a first boot has it."""
        self.guard = DoseGuard(self.sched.step_pl)
        self.therapy = Therapy()
        self.library = default_library()
        self.log = eventlog.EventLog()
        self.alarms = alarms.AlarmSet()
        self._fluid = []  # the blend the guard was last configured for
        self._fill_nl = None  # reservoir volume at the last fill
        self._fill_steps = 0  # guard-delivered steps at that fill
        self._program_old_drugs = []  # the blend the running program was parsed against
        self._reset_watch_state()

    # -- power cuts ---------------------------------------------------------------

    def _boot(self):
        """Resume from the last saved state if there is one, else start afresh.
        The power-on self-test runs before the boot's one save, which keeps its result."""
        record = None
        for attempt in (1, 2):  # what fails for want of memory now is tried once more after a collection
            try:
                record = self.store.load() if self.store is not None else None
                break
            except Exception as e:  # load skips a bad record: this is the board failing now, not the record
                if attempt == 2:
                    self._start_kept("storage not read", e)
                    return
                gc.collect()
        cause = getattr(self.hw, "reset_cause", None)
        cause = cause() if cause is not None else "power"
        if record is None:
            self._log_boot()
            if cause != "power":
                self._log(eventlog.EV_RESTART, "started after a %s reset, with no saved state" % cause)
            self._self_test(None)
            self._save()
            return
        from firmware import persist

        restored = (0, 0, 0)
        for attempt in (1, 2):
            try:
                restored = persist.restore(self, record[1])
                break
            except _BAD_RECORD as e:  # a record this firmware cannot use: a newer format, a program its library refuses
                self._start_stopped("stopped: saved state %d not restored (%s: %s)" % (record[0], type(e).__name__, e))
                return
            except Exception as e:  # not the record's fault (a MemoryError): it is kept for the next boot
                self._reset_state()  # restore() may have put back part of it
                if attempt == 2:
                    self._start_kept("saved state %d not loaded" % record[0], e)
                    return
                gc.collect()
        mday, us, reserved = restored
        tb = self.timebase
        tb.mday = mday
        tb.us = us
        now = tb.total_us()
        self._credit = reserved
        if cause != "power":
            self._log(eventlog.EV_RESTART, "the board started after a %s reset" % cause)
        self._log(
            eventlog.EV_RESTART,
            "firmware %s resumed at its last save; up to %d reserved steps (%d nL) may not have moved"
            % (FIRMWARE_VERSION, reserved, reserved * self.sched.step_pl // 1000)
            if reserved
            else "firmware %s resumed at its last save; no step was reserved" % FIRMWARE_VERSION,
        )
        self._apply(now)
        self._set_marks()
        self._self_test(None)
        if not self._raise_alarm(codec.ALARM_RESTART, "restart: resumed from the saved state", now):
            self._save()  # a restart alarm was restored: the restart's log entry still must be kept

    def _log_boot(self):
        self.log.add(0, 0, eventlog.EV_BOOT, "firmware %s, library %s" % (FIRMWARE_VERSION, self.library.version))

    def _start_stopped(self, why, storage_problem=None):
        """Start with nothing running and the restart alarm, keeping no part of a
        state that could not be restored whole. The pump stays stopped until
        programmed again; the unreadable record stays in its slot until the
        second save after this one."""
        self._reset_state()
        self._log_boot()
        self._self_test(storage_problem)
        self._log(eventlog.EV_RESTART, why)
        self._raise_alarm(codec.ALARM_RESTART, "restart: saved state lost, stopped")

    def _start_kept(self, what, e):
        """Start stopped, the saved record kept for the next boot: the board could not load it
        now (out of memory). The self-test fails, so nothing doses until a restart, and no
        save is made until then: a save would take the place of the record (store.py)."""
        self._record_kept = True
        self._reset_state()
        self._log_boot()
        what = "%s (%s)" % (what, type(e).__name__)
        self._self_test(what + ": restart the pump")
        self._log(eventlog.EV_RESTART, "stopped, saved state kept: %s: %s" % (what, e))
        self._raise_alarm(codec.ALARM_RESTART, "restart: saved state not loaded, stopped")

    def _durable(self, handler):
        """handler, then a save of the state it changed (not when it refused)."""

        def run(values):
            reply = handler(values)
            self._save()
            return reply

        return run

    def _save(self):
        if self.store is not None and not self._record_kept:
            from firmware import persist

            # What may move (or may have moved, before a cut) after now without
            # another save: the reservation, and a restart's credit not yet used.
            self.store.save(persist.sections(self, self._reserve_left + self._credit))

    def _settle(self):
        """Nothing more can move before a new reservation's save: the reservation is void, so
        a cut after the next save credits no step the motor did not move. A restart's unused
        credit stays: those steps may have moved before the cut, and the pump's time went back
        to the save, so dropping it would let the motor give them twice (the torture test's
        "over" check finds it)."""
        self._reserve_left = 0

    def _reserve(self, moving):
        """Reserve, in a save, the steps due in the next RESERVE_WINDOW_US beyond
        the moving ones (already counted by the guard), so a cut never repeats them."""
        step_pl = self.sched.step_pl
        window = -(-self.sched.rate * RESERVE_WINDOW_US // (US_PER_MDAY * step_pl))
        window = min(max(window, 1), RESERVE_MAX_STEPS)
        self._reserve_left = window
        self._save()
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
            self._clock_jump(elapsed)
        self._last_ticks = now
        if tb.reached(self._ev_mday, self._ev_us):
            self._run_events()
        n = self.sched.poll(tb.mday, tb.us)
        if n:
            n = self._deliver(n)
        return n

    def _deliver(self, n):
        """Pass n due steps through the motor checks, the reservoir's empty mark
        and the guard to the motor; return how many the guard let through. Hot
        path: allocates only to save a new reservation, or when a fault, an
        alarm or a mark is reached."""
        fault = self._motor_fault_now()
        if fault or self._hold:
            n = self._motor_gate(n, fault)
            if not n:
                return 0
        empty = n >= self._to_empty
        if empty:  # never past the empty volume
            n = self._to_empty
        tb = self.timebase
        allowed = self.guard.permit(tb.mday, tb.us, n) if n else 0
        if self._to_empty != _FAR_STEPS:
            self._to_empty -= allowed
            low_before = self._to_low
            self._to_low -= allowed
            if low_before > 0 >= self._to_low:
                self._reservoir_low()
        moving = allowed
        if self._credit:  # after a restart: these may have moved before the cut
            skip = moving if moving < self._credit else self._credit
            self._credit -= skip
            moving -= skip
        if moving:
            if moving > self._reserve_left and self.store is not None:
                self._reserve(moving)
            self._reserve_left = self._reserve_left - moving if moving < self._reserve_left else 0
            self.motor.step(moving)
            self._enc_steps += moving
            self._enc_inflight = moving
        if allowed < n:
            self._raise_alarm(codec.ALARM_DOSE_LIMIT, "dose limit: {l%d}" % self.guard.tripped)
        if empty and self._to_empty <= 0:
            self._reservoir_empty()
        return allowed

    @property
    def alarm(self):
        """The latched alarm of highest priority (codec.ALARM_*), ALARM_NONE if none."""
        return self.alarms.highest()

    def _raise_alarm(self, code, text, at_us=None, active=False):
        """Latch an alarm (alarms.py: until its condition has cleared and it is
        acknowledged), log it, and, if it is one that forbids boluses, cancel
        any running or waiting bolus. Saves and returns True if it was not
        latched before (an alarm already latched is not logged again)."""
        now = self.timebase.total_us() if at_us is None else at_us
        if not self.alarms.raise_alarm(code, now, text, active):
            return False
        self._log(eventlog.EV_ALARM, text, at_us)
        if self._buzz is not None:
            self._buzz.set()
        if alarms.blocks_bolus(code) and self.therapy.bolus_kind != BOLUS_NONE:
            self.therapy.cancel_bolus()
            self._log(eventlog.EV_THERAPY, "bolus cancelled by the alarm", at_us)
            self._apply(self.timebase.total_us() if at_us is None else at_us)
        self._save()
        return True

    def _clear_alarm(self, code, text):
        """The condition of an active alarm has gone: log it (it stays latched
        until acknowledged, unless it already was). Saves if anything changed."""
        if self.alarms.clear(code):
            self._log(eventlog.EV_ALARM_CLEAR, "{a%d}: %s" % (code, text))
            self._save()

    def _bolus_refusal(self):
        """Why no bolus may start now (an alarm that forbids one), or None."""
        code = self.alarms.bolus_blocker()
        if code == codec.ALARM_NONE:
            return None
        return "no bolus while an alarm is active ({a%d})" % code

    async def dosing(self):
        clock = self.clock
        while not self._leaving:
            await clock.sleep_us(self.tick_and_wait())

    def tick_and_wait(self):
        """One turn of the dosing task without its sleep: tick(), then return the
        microseconds until the next step or therapy event is due, at most the
        board's MAX_SLEEP_US. Hot path: no allocation when tick() makes none.
        (Also how a harness without an event loop runs the pump: tests, benchmarks.)"""
        tb = self.timebase
        self.tick()
        self._watch_turn()
        wait = self.sched.us_until_due(tb.mday, tb.us, self._max_sleep_us)
        wait = tb.wait_until(self._mon_mday, self._mon_us, wait)  # the monitor's next turn may come sooner
        return tb.wait_until(self._ev_mday, self._ev_us, wait)  # and so may a therapy event

    def _run_events(self):
        """Carry out every therapy event due by now, each at its own exact time."""
        now = self.timebase.total_us()
        ev = self._event_us
        t = self.therapy
        while ev is not None and ev <= now:
            waiting = t.bolus_kind != BOLUS_NONE and t.bolus_rate == 0
            note = t.fire(ev)
            if note:
                self._log(eventlog.EV_THERAPY, note, ev)
            self._apply(ev, reschedule=False)
            if waiting and t.bolus_rate:
                self._admit_delayed_bolus(ev)
            nxt = t.next_event(ev)
            ev = nxt if nxt is None or nxt > ev else ev + 1
        self._set_event(ev)

    def _admit_delayed_bolus(self, at_us):
        """A delayed bolus starts: check it again against the guard, as the
        last 24 h stand now (its commit could see only the day after it)."""
        try:
            self._admit(self.therapy.fork(), self.timebase.total_us())
        except Refusal as e:
            self.therapy.cancel_bolus()
            self._apply(at_us, reschedule=False)
            self._log(eventlog.EV_THERAPY, "delayed bolus not started: " + e.message, at_us)
            self._raise_alarm(codec.ALARM_DOSE_LIMIT, "dose limit: a delayed bolus would pass a limit", at_us)

    def _apply(self, at_us, reschedule=True):
        """Run the therapy's rate from pump time at_us (<= now) on: steps due at
        the old rate up to at_us are issued first, the partial step carries over."""
        self._sync_fluid()
        rate = self.therapy.rate_now(at_us)
        if rate > MAX_RATE_NL_PER_DAY:
            rate = MAX_RATE_NL_PER_DAY
        n = self.sched.set_rate(at_us // US_PER_MDAY, at_us % US_PER_MDAY, rate)
        if n:
            self._deliver(n)
        if not rate:  # delivery ended: the reservation settles in the save that records it
            self._settle()
        if reschedule:
            self._set_event(self.therapy.next_event(at_us))
        self.clock.wake()

    def _set_event(self, ev):
        self._event_us = ev
        if ev is None:
            self._ev_mday = _NO_EVENT_MDAY
            self._ev_us = 0
        else:
            self._ev_mday = ev // US_PER_MDAY
            self._ev_us = ev % US_PER_MDAY

    def _sync_fluid(self):
        fluid = self.therapy.fluid()
        if fluid != self._fluid:
            self.guard.set_fluid(self._guard_limits(fluid))
            self._fluid = list(fluid)

    def _guard_limits(self, fluid, library=None):
        """The guard's (name, conc, daily, hourly, bolus) of each drug in fluid under library
        (the one in force if None); refused (Refusal) if it lacks one of them."""
        library = library or self.library
        return tuple(library.get("drug", name).guard_limits(conc) for name, conc in fluid)

    def set_rate(self, rate_nl_per_day):
        """Program a plain continuous volume rate now (no drug in the pump); 0 stops."""
        lines = ["basal %d nL/day" % rate_nl_per_day] if rate_nl_per_day else ["stop"]
        self.tick()
        program = parse_program(lines, self.library, self.therapy.drugs)
        self._put_in_force(program, self.timebase.total_us())

    def run(self):
        asyncio.run(self._main())

    async def _main(self):
        self._telemetry_wake = asyncio.Event()
        self.start_watching()
        asyncio.create_task(self.link.run())
        asyncio.create_task(self.telemetry())
        asyncio.create_task(self.monitoring())
        if getattr(self.hw, "buzzer", None) is not None:
            asyncio.create_task(self.tones())
        await self.dosing()  # returns only after SERVICE
        keep_fed = getattr(self._watchdog, "keep_fed", None)
        if keep_fed is not None:  # it cannot be stopped: fed by a timer while the REPL is flashed
            keep_fed()
        release = getattr(self.hw.serial, "release", None)
        if release is not None:  # the REPL takes the line back: Ctrl-C works again
            release()

    # -- the link's security ------------------------------------------------------

    def _now_us(self):
        """Pump time now, for the link (sessions time out in pump time)."""
        self.tick()
        self._check_session()
        return self.timebase.total_us()

    def _check_session(self):
        """Log a session that ended and drop what it staged."""
        a = self.auth
        a.expire(self.timebase.total_us())  # logged now, when the pump sees it: the log stays in time order
        why = a.take_ended()
        if why is not None:
            self._session_ended(why)

    def _session_ended(self, why):
        if self._staged is not None or self._staged_lines:
            self._staged_dropped = ": its session ended (%s); stage it again" % why
        self._staged = None
        self._staged_lines = []
        self._lib_fields = {}
        self._lib_staged = None
        self._log(eventlog.EV_SESSION, "session ended: " + why)

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
            text = "refused (+%d not logged): %s" % (self._security_unlogged, text)
            self._security_unlogged = 0
        else:
            text = "refused: " + text
        self._log(eventlog.EV_SECURITY, text)

    def _load_keys(self):
        """Take keys from a provisioning file if one was written (then empty it),
        else from the key store. Without keys every session is refused."""
        st = getattr(self.hw, "key_storage", None)
        if st is None:
            return
        from firmware.store import Store

        self._key_store = Store(st, auth.KEY_SLOTS)
        n = st.size(auth.PROVISION_FILE)
        if n > 0:
            raw = bytearray(min(n, 256))
            st.read_into(auth.PROVISION_FILE, 0, raw)
            keys = auth.decode_keys(raw) if n <= 256 else None
            if keys is None:
                self._log(eventlog.EV_KEYS, "provisioning file not valid: ignored, keys unchanged")
            else:
                self._key_store.save(((auth.KEY_SECTION, auth.encode_keys(*keys)),))
                self._log(eventlog.EV_KEYS, "keys provisioned for device " + keys[0])
            st.begin(auth.PROVISION_FILE)  # emptied: provisioned once
            st.end()
        record = self._key_store.load()
        keys = auth.decode_keys(record[1].get(auth.KEY_SECTION)) if record is not None else None
        if keys is not None:
            self.auth.set_keys(*keys)
        else:
            self._log(eventlog.EV_KEYS, "no keys: reading only until the pump is provisioned")
        if n > 0 or keys is None:
            self._save()  # the log entry above is kept

    def _auth_begin(self, values):
        (role,) = values
        return (self.auth.begin(role, self._now_us()),)

    def _auth_prove(self, values):
        role, host_nonce, proof = values
        now = self._now_us()
        try:
            pump_proof = self.auth.prove(role, host_nonce, proof, now)
        except auth.AuthError as e:
            if self.auth.failures:
                e.message = "%s (%d failed in a row)" % (e.message, self.auth.failures)
            raise
        self._check_session()  # a session it replaced
        self._log(eventlog.EV_SESSION, "%s session started" % auth.ROLE_NAMES[role])
        return (pump_proof, auth.SESSION_TIMEOUT_US // 1_000_000)

    def _auth_end(self, values):
        self.auth.end("ended by the host")
        self._check_session()
        return ()

    def _key_change(self, values):
        role, masked = values
        if role != auth.ROLE_PATIENT and role != auth.ROLE_CLINICIAN:
            raise Refusal("role", "role %d does not exist: 1 is the patient, 2 the clinician" % role)
        if len(masked) != auth.KEY_BYTES:
            raise Refusal("masked_key", "the masked key must be %d bytes" % auth.KEY_BYTES)
        new_key = auth.xor_bytes(masked, auth.wrap_pad(self.auth.session_mac, role, self.link.seq))
        a = self.auth
        clinician = new_key if role == auth.ROLE_CLINICIAN else a.key(auth.ROLE_CLINICIAN)
        patient = new_key if role == auth.ROLE_PATIENT else a.key(auth.ROLE_PATIENT)
        if clinician == patient:
            raise Refusal("masked_key", "the clinician and patient keys must differ")
        if self._key_store is None:
            raise Refusal("masked_key", "this pump has nowhere to keep a new key")
        self._key_store.save(((auth.KEY_SECTION, auth.encode_keys(a.device_id, clinician, patient)),))
        a.set_keys(a.device_id, clinician, patient)
        self._log(eventlog.EV_KEYS, "%s key changed" % auth.ROLE_NAMES[role])
        return (role,)

    # -- telemetry ----------------------------------------------------------------

    def _telemetry(self, values):
        (interval_ms,) = values
        if interval_ms and not TELEMETRY_MIN_MS <= interval_ms <= TELEMETRY_MAX_MS:
            raise Refusal(
                "interval_ms",
                "interval %d ms is outside %d..%d ms (0 stops)" % (interval_ms, TELEMETRY_MIN_MS, TELEMETRY_MAX_MS),
            )
        if interval_ms and not self.telemetry_ms:
            self.telemetry_sent = 0
            self.telemetry_dropped = 0
        self.telemetry_ms = interval_ms
        if self._telemetry_wake is not None:
            self._telemetry_wake.set()
        return (interval_ms,)

    async def telemetry(self):
        """Send a sample every telemetry_ms of wall time (on deadlines, not a sleep
        after each sample, so the period does not stretch) while the host keeps the
        line alive. A sample the line cannot take now is dropped (counted), never
        waited for: the dosing task must not wait on a slow host."""
        import time

        serial = self.hw.serial
        link = self.link
        quiet_since = time.ticks_ms()
        due_ms = quiet_since  # the next sample is due then: deadlines, so its own work never stretches the period
        while True:
            if not self.telemetry_ms:
                self._telemetry_wake.clear()
                await self._telemetry_wake.wait()
                quiet_since = due_ms = time.ticks_ms()
                continue
            due_ms = time.ticks_add(due_ms, self.telemetry_ms)
            wait_ms = time.ticks_diff(due_ms, time.ticks_ms())
            if wait_ms < -self.telemetry_ms:  # more than a sample late (a long command): start afresh, no burst
                due_ms = time.ticks_ms()
            await asyncio.sleep_ms(wait_ms if wait_ms > 0 else 0)
            now_ms = time.ticks_ms()
            if link.host_seen:
                link.host_seen = False
                quiet_since = now_ms
            elif time.ticks_diff(now_ms, quiet_since) >= TELEMETRY_HOLD_MS:
                self.telemetry_ms = 0  # the host went away: stop talking to no one
                continue
            if not self.telemetry_ms:
                continue
            if serial.write_ready():
                link.send(codec.TELEMETRY_DATA, self.telemetry_sent & 0xFFFFFFFF, self._telemetry_sample())
                self.telemetry_sent += 1
            else:
                self.telemetry_dropped += 1

    def _telemetry_sample(self):
        now = self._now_fields()
        self._check_session()  # session_role: not one that has timed out
        tb = self.timebase
        reservoir = self._reservoir_nl()
        day_steps, hour_steps = self.guard.window_steps(tb.mday, tb.us)
        step_pl = self.sched.step_pl
        return now + (
            codec.NO_TIME if reservoir is None else reservoir,
            day_steps * step_pl // 1000,
            hour_steps * step_pl // 1000,
            self.alarm,
            self.auth.role,
            self.telemetry_dropped,
            self.alarms.mask,
            _u32(self.sensor_nl),
            codec.NO_PERMILLE if self.battery_permille is None else self.battery_permille,
        )

    def _log(self, code, text, at_us=None):
        if at_us is None:
            tb = self.timebase
            self.log.add(tb.mday, tb.us, code, text)
        else:
            self.log.add(at_us // US_PER_MDAY, at_us % US_PER_MDAY, code, text)

    # -- programming ------------------------------------------------------------

    def _admit(self, candidate, now, guard=None, limits=None):
        """Refuse (Refusal) a therapy whose bolus is above the bolus hard limit,
        or whose deliveries from now on, added to what was delivered in the
        last 24 h and hour, would pass a guard window. limits: the guard's
        (day, hour, bolus) under another library (DoseGuard.limits_for)."""
        guard = guard or self.guard
        tb = self.timebase
        guard.window_steps(tb.mday, tb.us)  # brings the buckets up to now
        step_pl = self.sched.step_pl
        bolus_steps = 0
        if candidate.bolus_kind != BOLUS_NONE:  # the bolus's size in steps, rounded up
            bolus_steps = -(-candidate.bolus_volume_nl * 1000 // step_pl)
        carried = self.sched.carried_u(tb.mday, tb.us)
        proj = Projection(candidate, now, guard.bucket_end_us(), BUCKET_US, carried, step_pl * US_PER_MDAY)
        why = guard.admit(tb.mday, tb.us, bolus_steps, proj, limits)
        if why == LIMIT_BOLUS:
            raise Refusal(
                "bolus",
                "the bolus of %d steps is above the bolus hard limit of %d steps; the dose guard refuses it"
                % (bolus_steps, guard.bolus_limit),
            )
        if why != LIMIT_NONE:
            raise Refusal(
                "program",
                "with what was delivered in the last 24 h, this would pass the {l%d}; the dose guard refuses it" % why,
            )

    def _put_in_force(self, program, now):
        """Commit a checked program at pump time now (tick() was just called)."""
        old_fluid = self.therapy.fluid()
        self._program_old_drugs = list(self.therapy.drugs)
        self.therapy.commit(program, now)
        if program.fill_nl is not None:
            self._fill_nl = program.fill_nl
            self._fill_steps = self.guard.delivered()
            self._after_fill()
        else:
            self._set_marks()  # the levels are the program's
        self._apply(now)
        if self.therapy.fluid() != old_fluid:
            self._log(eventlog.EV_PROGRAM, "fluid now " + ", ".join("%s %d ng/mL" % d for d in self.therapy.fluid()))

    # -- commands ---------------------------------------------------------------

    def _hello(self, values):
        impl = sys.implementation
        platform = "%s %s %s" % (impl.name, ".".join(str(v) for v in impl.version[:3]), sys.platform)
        return (
            codec.PROTOCOL_VERSION,
            FIRMWARE_VERSION,
            self.board.NAME,
            platform,
            self.auth.device_id,
            self.sched.step_pl,
            MIN_RATE_NL_PER_DAY,
            MAX_RATE_NL_PER_DAY,
        )

    def _now_fields(self):
        """codec._PUMP_NOW: pump time, mode, rate, steps delivered."""
        self.tick()
        g = self.guard
        return (self.timebase.mday, self.timebase.us, self._mode(), self.sched.rate, g.delivered_hi, g.delivered_lo)

    def _status(self, values):
        return self._now_fields() + (self.sched.step_pl,)

    def _mode(self):
        p = self.therapy.program
        if p is None:
            return codec.MODE_STOPPED
        if p.basal_kind == BASAL_FLEX:
            return codec.MODE_FLEX
        if p.basal_kind == BASAL_CONTINUOUS:
            return codec.MODE_CONTINUOUS
        return codec.MODE_STOPPED

    def _therapy_status(self, values):
        self.tick()
        tb = self.timebase
        now = tb.total_us()
        t = self.therapy
        step_pl = self.sched.step_pl
        day_steps, hour_steps = self.guard.window_steps(tb.mday, tb.us)
        bolus_left_s = 0
        if t.bolus_kind != BOLUS_NONE:
            bolus_left_s = -(-(t.bolus_end - now) // 1_000_000) if t.bolus_end > now else 0
        reservoir = self._reservoir_nl()
        empty_in = codec.NO_TIME
        if reservoir is not None:  # until delivery stops: at the empty volume
            s = self._empty_in_us(max(reservoir - self._levels()[1], 0), now)
            if s is not None and s // 1_000_000 < codec.NO_TIME:
                empty_in = s // 1_000_000
        clock = t.clock_us(now)
        p = t.program
        low_nl, empty_nl = self._levels()
        low_in = self.low_in_us(now)
        return (
            self._mode(),
            t.basal_rate(now),
            self.sched.rate,
            t.bolus_kind,
            t.bolus_rate if t.bolus_running(now) else 0,
            bolus_left_s,
            1 if t.bridge_drugs is not None else 0,
            codec.NO_TIME if reservoir is None else reservoir,
            empty_in,
            day_steps * step_pl // 1000,
            hour_steps * step_pl // 1000,
            min(self.guard.refused_steps, codec.NO_TIME),
            self.alarm,
            codec.NO_TIME if clock is None else (clock // 1_000_000) % (codec.NO_TIME + 1),
            _crc(p.lines, p.library_version) if p is not None else 0,
            self.library.version,
            self.alarms.mask,
            self.alarms.sounding(now),
            -(-self.alarms.silenced_us(now) // 1_000_000),
            1 if self._hold else 0,
            _u32(self.sensor_nl),
            _u32(None if low_in is None else low_in // 1_000_000),
            low_nl,
            empty_nl,
            codec.NO_PERMILLE if self.battery_permille is None else self.battery_permille,
            _u32(self.battery_days),
            self.library.hash,
        )

    def _reservoir_nl(self):
        if self._fill_nl is None:
            return None
        used = (self.guard.delivered() - self._fill_steps) * self.sched.step_pl // 1000
        return max(self._fill_nl - used, 0)

    def _empty_in_us(self, reservoir_nl, now):
        """Pump time until the running program (with any running bolus) has
        delivered reservoir_nl; None if it never will within the scan."""
        return time_to_deliver(self.therapy.fork(), reservoir_nl, now, _MAX_EMPTY_SCAN_DAYS * 86_400_000_000)

    def _set_rate(self, values):
        rate, rounded = parse_rate("rate", values[0])  # refuses before any change
        if self.therapy.drugs:
            raise Refusal(
                "rate", "the pump holds %s: program it with a dose in a programming session" % self.therapy.drugs[0][0]
            )
        if rate:
            why = self._dosing_refusal()
            if why is not None:
                raise Refusal("rate", why)
        self.set_rate(rate)
        self._log(eventlog.EV_PROGRAM, "rate set to %d nL/day" % rate)
        return (rate, 1 if rounded else 0, self.timebase.mday, self.timebase.us)

    def _stop(self, values):
        """A normal suspend: the step in progress finishes; any bolus is cancelled."""
        self.tick()
        now = self.timebase.total_us()
        t = self.therapy
        why = "stopped by command"
        if t.bolus_kind != BOLUS_NONE:
            why += "; " + self._cancelled("{b%d}" % t.bolus_kind, now)
        t.stop(now)
        self._apply(now)
        self._log(eventlog.EV_STOP, why)
        return (self.timebase.mday, self.timebase.us)

    def _refuse_unless_stopped(self, then):
        """Refuse (mode) unless nothing is dosing or waiting to dose: no rate, no bolus."""
        self.tick()
        mode = self._mode()
        if mode != codec.MODE_STOPPED or self.sched.rate or self.therapy.bolus_kind != BOLUS_NONE:
            raise Refusal(
                "mode",
                "the pump is {m%d}: stop it first (pumpctl stop), then %s" % (mode, then),
            )

    def _service(self, values):
        """Leave the pump program for the board's REPL, so it can be flashed. Only a stopped pump
        leaves: nothing is dosing or waiting to dose, so nothing is cut short. The reply goes out
        first; the state is saved (a durable command), and the dosing task ends at its next turn."""
        self._refuse_unless_stopped("ask again")
        self._settle()  # stopped already: nothing reserved goes into the save before the REPL
        self._log(eventlog.EV_SERVICE, "left for the board's REPL (service: a firmware update)")
        self._leaving = True
        self.clock.wake()
        return ()

    def _cal_weighing(self, values):
        """Stage one weighing for CALIBRATE: the pump's own delivered-step counts when the vessel
        was tared and when it was weighed (values it reported in STATUS), and the mass gained. The
        pump checks the steps are its own: made already (not beyond its count now), at least
        CALIBRATION_MIN_STEPS, and after the previous weighing's. It cannot check the mass."""
        index, from_hi, from_lo, to_hi, to_lo, mass_ug = values
        if index == 0:
            self._weighings = []
        w = self._weighings
        if index != len(w):
            raise Refusal("index", "weighing %d is out of order: the next is %d (0 starts afresh)" % (index, len(w)))
        if index >= CALIBRATION_MAX_WEIGHINGS:
            raise Refusal("index", "at most %d weighings" % CALIBRATION_MAX_WEIGHINGS)
        if from_lo >= STEP_RADIX or to_lo >= STEP_RADIX:
            raise Refusal("to_steps", "a step count's low word must be below %d" % STEP_RADIX)
        self.tick()
        start = from_hi * STEP_RADIX + from_lo
        end = to_hi * STEP_RADIX + to_lo
        made = self.guard.delivered()
        if end > made:
            raise Refusal("to_steps", "step count %d is beyond this pump's %d: weigh steps it has made" % (end, made))
        if w and start < w[-1][1]:
            raise Refusal("from_steps", "the steps from %d were weighed already (to %d)" % (start, w[-1][1]))
        steps = end - start
        if not CALIBRATION_MIN_STEPS <= steps <= CALIBRATION_MAX_STEPS:
            raise Refusal(
                "to_steps",
                "%d steps: weigh %d to %d steps" % (steps, CALIBRATION_MIN_STEPS, CALIBRATION_MAX_STEPS),
            )
        if not mass_ug:
            raise Refusal("mass_ug", "a mass of 0 ug: weigh what the steps dispensed")
        w.append((start, end, mass_ug))
        return (len(w), steps)

    def _calibrate(self, values):
        """A new volume per step, computed by the pump from the staged weighings (pumpctl
        calibrate): each weighing's mass_ug * 10**9 / (density * steps) pL, rounded to the nearest
        pL; their mean rounded to the nearest; the spread (largest - smallest) / mean and the change
        from the volume in force, in ppm rounded up. Only a stopped pump stores it; a change over
        CALIBRATION_CONFIRM_CHANGE_PPM only when confirmed. On storing, the reservoir count is
        re-based at the old volume, the guard's windows rescaled to the new steps (rounding up),
        the weighings and the result logged, and it is saved at once (a durable command)."""
        n, density, confirm = values
        self._refuse_unless_stopped("calibrate")
        w = self._weighings
        if confirm > codec.CAL_CHECK:
            raise Refusal("confirm", "confirm must be 0 (store), 1 (confirm a change) or 2 (check)")
        if n != len(w):
            raise Refusal("weighings", "%d weighings are staged, not %d: stage each with CAL_WEIGHING" % (len(w), n))
        if n < 2:
            raise Refusal("weighings", "a calibration needs at least 2 weighings (at two or more rates), not %d" % n)
        if not CALIBRATION_MIN_DENSITY <= density <= CALIBRATION_MAX_DENSITY:
            raise Refusal(
                "density_ug_per_ml",
                "%d ug/mL is not bench water: give %d..%d"
                % (density, CALIBRATION_MIN_DENSITY, CALIBRATION_MAX_DENSITY),
            )
        per_step = []
        for start, end, mass_ug in w:  # exact: mass * 10**9 pL/mL over density * steps, to the nearest pL
            den = density * (end - start)
            per_step.append((2 * mass_ug * 1_000_000_000 + den) // (2 * den))
        new = (2 * sum(per_step) + n) // (2 * n)
        spread = -(-(max(per_step) - min(per_step)) * 1_000_000 // new)
        nominal = self.board.STEP_VOLUME_PL
        if abs(new - nominal) * 1_000_000 > CALIBRATION_MAX_DEVIATION_PPM * nominal:
            raise Refusal(
                "step_volume_pl",
                "%d pL per step is more than %d %% from this board's %d pL: check the head and the tubing, "
                "then weigh again" % (new, CALIBRATION_MAX_DEVIATION_PPM // 10_000, nominal),
            )
        if spread > CALIBRATION_MAX_SPREAD_PPM:
            raise Refusal(
                "spread_ppm",
                "the weighings spread %d.%02d %%, more than %d %%: weigh again"
                % (spread // 10_000, spread // 100 % 100, CALIBRATION_MAX_SPREAD_PPM // 10_000),
            )
        previous = self.sched.step_pl
        change = -(-abs(new - previous) * 1_000_000 // previous)
        staged = (tuple(w), density)
        shown = self._cal_shown == staged  # the same weighings, staged again, still match
        if confirm != codec.CAL_CONFIRM:  # shown: checked, or refused for want of a confirmation
            self._cal_shown = staged
        if confirm == codec.CAL_CHECK:
            return (new, previous, spread, change, 0)
        if change > CALIBRATION_CONFIRM_CHANGE_PPM and not (confirm == codec.CAL_CONFIRM and shown):
            raise Refusal(
                "confirm",
                "%d pL per step, was %d pL: a change of %d.%02d %% needs confirming (confirm=1)"
                % (new, previous, change // 10_000, change // 100 % 100),
            )
        left = self._reservoir_nl()
        if left is not None:  # what the steps so far moved, at the volume they moved
            self._fill_nl = left
            self._fill_steps = self.guard.delivered()
        self._set_step_volume(new)
        self._apply(self.timebase.total_us())
        self._set_marks()
        for i in range(n):
            start, end, mass_ug = w[i]
            self._log(
                eventlog.EV_CALIBRATION,
                "weighing %d/%d: %d steps (%d..%d), %d ug, %d pL per step"
                % (i + 1, n, end - start, start, end, mass_ug, per_step[i]),
            )
        self._log(
            eventlog.EV_CALIBRATION,
            "step volume %d pL, was %d pL: %d weighings at %d ug/mL, spread %d ppm%s"
            % (new, previous, n, density, spread, ", confirmed" if change > CALIBRATION_CONFIRM_CHANGE_PPM else ""),
        )
        self._weighings = []
        self._cal_shown = None
        return (new, previous, spread, change, 1)

    def _set_step_volume(self, step_pl):
        """Run on a new volume per step (a calibration, or a restore of one)."""
        self.sched = DoseScheduler(step_pl)  # stopped: no partial step to carry
        self.guard.set_step_volume(step_pl)

    def _clock_set(self, values):
        (clock_s,) = values
        self.tick()
        now = self.timebase.total_us()
        self.therapy.set_clock(now, clock_s * 1_000_000)
        self._set_event(self.therapy.next_event(now))
        self._run_events()
        self.clock.wake()
        self._log(eventlog.EV_CLOCK, "clock set to %d s" % clock_s)
        return (clock_s,)

    def _ack_alarm(self, values):
        """Acknowledge one latched alarm (or every one: alarm 0). One whose
        condition has gone leaves the list; one still present stays, and sounds."""
        (code,) = values
        if code != codec.ALARM_NONE and not codec.alarm_priority(code):
            raise Refusal("alarm", "alarm %d does not exist" % code)
        if not self.alarms.count():
            raise Refusal("alarm", "no alarm to acknowledge")
        if code != codec.ALARM_NONE and not self.alarms.latched(code):
            raise Refusal("alarm", "the {a%d} alarm is not latched" % code)
        done = self.alarms.acknowledge(code)
        if not done:
            raise Refusal("alarm", "already acknowledged: it goes when its condition clears")
        for c in done:
            if c == codec.ALARM_DOSE_LIMIT:
                self.guard.clear_trip()
            still = " (its condition is still present: it stays until that clears)" if self.alarms.active(c) else ""
            self._log(eventlog.EV_ACK, "{a%d}%s" % (c, still))
        return (len(done), self.alarms.mask)

    def _silence(self, values):
        """Silence the tones for at most 2 min; the alarms stay latched."""
        self.tick()
        if not self.alarms.count():
            raise Refusal("alarm", "no alarm is sounding")
        seconds = self.alarms.silence(self.timebase.total_us())
        self._log(eventlog.EV_SILENCE, "tones silenced for %d s" % seconds)
        if self._buzz is not None:
            self._buzz.set()
        return (seconds,)

    def _alarms_read(self, values):
        (index,) = values
        a = self.alarms
        n = a.count()
        if index >= n:
            return (n, codec.ALARM_NONE, 0, 0, 0, 0, "")
        code, prio, state, raised_us, text = a.entry(index)
        return (n, code, prio, state, raised_us // US_PER_MDAY, raised_us % US_PER_MDAY, codec.clip(text))

    def _stage_line(self, values):
        index, line = values
        if index == 0:
            self._staged_lines = []
            self._staged = None
            self._staged_dropped = ""
        if index != len(self._staged_lines):
            raise Refusal(
                "index", "line %d is out of order; the pump expects line %d" % (index, len(self._staged_lines))
            )
        self._staged_lines.append(line)
        return (len(self._staged_lines),)

    def _stage(self, values):
        self.tick()
        now = self.timebase.total_us()
        program = parse_program(self._staged_lines, self.library, self.therapy.drugs, self.therapy.bridge_drugs)
        if (program.bolus is not None or program.prime is not None) and self._bolus_refusal():
            raise Refusal("bolus", self._bolus_refusal())
        verdict, note = self._delivery_plan(program, now)
        self._refuse_dosing(program)
        refill = self._refill_check(program)
        self._check_admission(program, now)
        crc = _crc(program.lines, program.library_version)
        rows = self._rows(program, verdict, note)
        self._staged = (program, crc, now + STAGED_TTL_US, refill, rows, verdict)
        return (len(rows), len(program.warnings), crc, STAGED_TTL_US // 1_000_000)

    def _delivery_plan(self, program, now):
        """What committing program does to a bolus, prime or bridge: (_DELIVERY_*, the
        review's note on it). One runs at a time: a different one while another runs
        or waits is refused (the intent of a second request is not clear), and so is
        leaving out a running bridge (its old blend stays in the path all the same)."""
        t = self.therapy
        line = program.delivery_line()
        kind = t.delivery()
        if kind == BOLUS_NONE:
            if line is None:
                return _DELIVERY_NONE, ""
            vol = program.bridge_nl if program.prime is None else program.prime[0]
            if program.bolus is not None:
                return _DELIVERY_NEW, "new dose: " + program.details[_index(program.details, line)][1]
            if program.prime is not None:
                return _DELIVERY_NEW, "new dose: " + format_volume(vol)
            return _DELIVERY_NEW, "new: %s of the old blend first, at the old dose" % format_volume(vol)
        name = "bridge" if kind == BRIDGE else "{b%d}" % kind
        left, total = t.delivery_left_nl(now)
        if t.bolus_kind != BOLUS_NONE and now < t.bolus_start:
            state = "waiting: starts in %d min" % -(-(t.bolus_start - now) // 60_000_000)
        else:
            state = "running: %s of %s left" % (format_volume(left), format_volume(total))
        if t.same_delivery(program):
            return _DELIVERY_KEEP, state + ", unchanged"
        if kind == BRIDGE:
            raise Refusal("bridge", "a bridge is %s; keep its line unchanged until it ends" % state)
        if line is not None:
            raise Refusal(
                line.split(" ", 1)[0],
                "a %s is %s; one at a time: wait, or drop its line to cancel it" % (name, state),
            )
        return _DELIVERY_CANCEL, self._cancelled(name, now)

    def _cancelled(self, name, now):
        """What a bolus, prime or bridge (name) cut short at now leaves undelivered, for the review and the log."""
        left, total = self.therapy.delivery_left_nl(now)
        return "%s cancelled: %s of %s not given" % (name, format_volume(left), format_volume(total))

    def _check_admission(self, program, now):
        if program.clock_needed() and self.therapy.clock_offset_us is None:
            raise Refusal("flex", "a flex schedule runs on the device clock: set the clock first")
        candidate = self.therapy.fork()
        candidate.commit(program, now)
        guard = self.guard
        if candidate.fluid() != self.therapy.fluid():
            guard = guard.fork()  # made here (20 chunks of 480 B), garbage after: no 9.6 KB kept live for it
            guard.set_fluid(self._guard_limits(candidate.fluid()))
        self._admit(candidate, now, guard)

    def _rows(self, program, verdict=_DELIVERY_NONE, note=""):
        """Review rows: each line beside what it means; a staged program's bolus, prime or
        bridge says whether it is a new dose or the running one unchanged (or cancelled)."""
        rows = list(program.details)
        if verdict == _DELIVERY_CANCEL:
            rows.append(("", note))
        elif verdict != _DELIVERY_NONE:
            i = _index(rows, program.delivery_line())
            rows[i] = (rows[i][0], note)
        for w in program.warnings:
            rows.append(("soft limit", w))
        return rows

    def _review(self, values):
        which, index = values
        if which == codec.REVIEW_RUNNING:
            program = self.therapy.program
            if program is None:
                rows = [("stop", "no program")]
            else:
                rows = self._rows(program)
        elif which == codec.REVIEW_STAGED:
            if self._staged is None:
                raise Refusal("which", "no program is staged")
            rows = self._staged[4]
        else:
            raise Refusal("which", "which must be 0 (running) or 1 (staged), not %d" % which)
        if index >= len(rows):
            raise Refusal("index", "row %d does not exist; there are %d" % (index, len(rows)))
        line, detail = rows[index]
        return (len(rows), codec.clip(line), codec.clip(detail))

    def _commit(self, values):
        crc, confirm = values
        self.tick()
        now = self.timebase.total_us()
        if self._staged is None:
            raise Refusal("program", "no program is staged" + self._staged_dropped)
        program, staged_crc, expires, refill, _rows, verdict = self._staged
        if now >= expires:
            self._staged = None
            raise Refusal("program", "the staged program expired after 10 min without a commit; stage it again")
        if crc != staged_crc:
            raise Refusal("program_crc", "program_crc %08x is not the staged program's %08x" % (crc, staged_crc))
        if program.warnings and confirm != 1:
            raise Refusal(
                "confirm_soft",
                "%d soft-limit warning(s) need confirm_soft=1: %s" % (len(program.warnings), program.warnings[0]),
            )
        if (program.bolus is not None or program.prime is not None) and self._bolus_refusal():
            raise Refusal("bolus", self._bolus_refusal())
        now_verdict, note = self._delivery_plan(program, now)
        if now_verdict != verdict and not (verdict == _DELIVERY_CANCEL and now_verdict == _DELIVERY_NONE):
            raise Refusal("program", "the running bolus ended since the review; stage the program again")
        self._refuse_dosing(program)
        self._check_admission(program, now)  # the last 24 h moved on since staging
        self._staged = None
        if refill is not None:
            self._log(eventlog.EV_REFILL, refill)
        self._put_in_force(program, now)
        self._log(  # a library commit drops a staged program: it was checked against the library in force
            eventlog.EV_PROGRAM,
            "crc %08x library %s hash %08x: %s"
            % (crc, program.library_version, self.library.hash, "; ".join(program.lines)),
        )
        if now_verdict == _DELIVERY_CANCEL:
            self._log(eventlog.EV_THERAPY, note)
        elif now_verdict != _DELIVERY_NONE:  # a new dose, or the same one going on
            self._log(eventlog.EV_THERAPY, "%s: %s" % (program.delivery_line().split(" ", 1)[0], note))
        self._log_reservoir_forecast(now)
        tb = self.timebase
        return (crc, tb.mday, tb.us)

    def _refuse_dosing(self, program):
        if program.basal_kind != BASAL_STOPPED_KIND or program.bolus is not None or program.prime is not None:
            why = self._dosing_refusal()
            if why is not None:
                raise Refusal("program", why)

    def _log_reservoir_forecast(self, now):
        """After a program change or a bolus: the counted reservoir and when it reaches the low volume."""
        left = self._reservoir_nl()
        if left is None:
            return
        low_in = self.low_in_us(now)
        when = (
            "not within 400 days"
            if low_in is None
            else "in %d.%d days" % (low_in // 86_400_000_000, low_in % 86_400_000_000 * 10 // 86_400_000_000)
        )
        self._log(eventlog.EV_THERAPY, "reservoir %s; low level %s" % (format_volume(left), when))

    def _discard(self, values):
        self._staged = None
        self._staged_lines = []
        return ()

    def _patient_bolus(self, values):
        self.tick()
        now = self.timebase.total_us()
        reason = self._bolus_refusal()
        if reason is None:
            reason = self.therapy.patient_refusal(now)
        if reason is None:
            candidate = self.therapy.fork()
            candidate.start_patient_bolus(now)
            try:
                self._admit(candidate, now)
            except Refusal as e:
                reason = e.message
        if reason is not None:
            self._log(eventlog.EV_PATIENT_REFUSED, reason)
            raise Refusal("patient-bolus", reason)
        self.therapy.start_patient_bolus(now)
        self._apply(now)
        t = self.therapy
        self._log(eventlog.EV_BOLUS, "patient bolus %d nL" % t.bolus_volume_nl)
        self._log_reservoir_forecast(now)
        return (t.bolus_volume_nl, -(-(t.bolus_end - now) // 1_000_000))

    def _lib_field(self, values):
        drug, field, text = values
        if drug >= MAX_DRUGS or field >= len(FIELD_NAMES):
            raise Refusal(
                "field", "drug %d field %d is outside %d drugs x %d fields" % (drug, field, MAX_DRUGS, len(FIELD_NAMES))
            )
        if drug == 0 and field == 0:
            self._lib_fields = {}
        self._lib_staged = None  # a staged library is checked again after any change of its fields
        self._lib_fields[(drug, field)] = text
        return (len(self._lib_fields),)

    def _lib_stage(self, values):
        """Check the staged fields as a library, beside the one in force; nothing changes yet."""
        version, drugs = values
        self._lib_staged = None
        entries = []
        for d in range(drugs):
            fields = []
            for f in range(len(FIELD_NAMES)):
                text = self._lib_fields.get((d, f))
                if text is None:
                    raise Refusal("library", "drug %d is missing field %s" % (d, FIELD_NAMES[f]))
                fields.append(text)
            entries.append(fields)
        library = Library(version, entries)
        entries = None
        self._lib_fields = {}  # in the Library now; the host sends them again to stage again
        if version == self.library.version:
            raise Refusal("version", "library %s is the version in force: give the new library a new version" % version)
        if version == self.default_library_version and library.hash != self.default_library_hash:
            raise Refusal("version", "%s is the factory library's version: give this library its own" % version)
        self._check_library(library)
        changed, raised = changes(self.library, library)
        self.tick()
        self._lib_staged = (library, changed, raised, self.timebase.total_us() + STAGED_TTL_US)
        return (library.hash, drugs, changed, raised, STAGED_TTL_US // 1_000_000)

    def _check_library(self, library):
        """Refuse a library under which the running therapy would not be admitted: its
        program's lines, the drugs in the reservoir, and its deliveries from now on with
        what was delivered in the last 24 h, checked by the dose guard against the new
        library's limits (without a copy of the guard: a board has no room for one).
        The refusal's field starts with "running "."""
        try:
            if self.therapy.program is not None:
                parse_program(self.therapy.program.lines, library, self.therapy.drugs, self.therapy.bridge_drugs)
            fluid = self.therapy.fluid()
            if fluid:  # each drug in the reservoir must be in it, and its limits must hold
                limits = self.guard.limits_for(self._guard_limits(fluid, library))
                self.tick()
                self._admit(self.therapy.fork(), self.timebase.total_us(), limits=limits)
        except Refusal as e:
            raise Refusal("running " + e.field, e.message) from None

    def _lib_commit(self, values):
        library_hash, confirm = values
        self.tick()
        if self._lib_staged is None:
            raise Refusal("library", "no library is staged")
        library, changed, raised, expires = self._lib_staged
        if self.timebase.total_us() >= expires:
            self._lib_staged = None
            raise Refusal("library", "the staged library expired after 10 min without a commit; stage it again")
        if library_hash != library.hash:
            raise Refusal(
                "library_hash", "library_hash %08x is not the staged library's %08x" % (library_hash, library.hash)
            )
        if raised and confirm != 1:
            raise Refusal("confirm_raise", "%d hard limit(s) raised need confirm_raise=1" % raised)
        self._check_library(library)  # the therapy and the last 24 h moved on since staging
        self.library = library
        self._lib_fields = {}
        self._lib_staged = None
        if self._staged is not None:  # it was checked against the old library
            self._staged = None
            self._staged_dropped = ": the library changed; stage it again"
        self._fluid = None  # reconfigure the guard with the new limits
        self._sync_fluid()
        self._log(
            eventlog.EV_LIBRARY,
            "library %s hash %08x: %d fields changed, %d hard limits raised"
            % (library.version, library.hash, changed, raised),
        )
        return (library.version, len(library.order), library.hash)

    def _lib_get(self, values):
        drug, field, which = values
        if which == codec.LIB_IN_FORCE:
            lib = self.library
        elif which == codec.LIB_STAGED:
            if self._lib_staged is None:
                raise Refusal("which", "no library is staged")
            lib = self._lib_staged[0]
        else:
            raise Refusal("which", "which must be 0 (in force) or 1 (staged), not %d" % which)
        if drug >= len(lib.order) or field >= len(FIELD_NAMES):
            raise Refusal(
                "drug", "drug %d field %d does not exist; the library has %d drugs" % (drug, field, len(lib.order))
            )
        d = lib.drugs[lib.order[drug]]
        change = field_change(self.library, d, field) if which == codec.LIB_STAGED else 0
        for name, _conc in self.therapy.fluid():
            if name == d.name:
                change |= codec.LIB_IN_USE
        return (lib.version, len(lib.order), d.text[field], change)

    def _event(self, values):
        """Entry `index`, or the oldest kept if that one has left the ring."""
        index = max(values[0], self.log.oldest())
        entry = self.log.get(index)
        if entry is None:
            raise Refusal("index", "event %d is not logged yet; the log holds %d events" % (values[0], self.log.count))
        mday, us, code, text = entry
        return (self.log.count, index, mday, us, code, text)

    def _sim_advance(self, values):
        seconds, micros = values
        if micros >= 1_000_000:
            raise Refusal("microseconds", "microseconds %d must be below 1000000" % micros)
        if seconds > _MAX_SIM_ADVANCE_S:
            raise Refusal("seconds", "seconds %d is more than 100 years" % seconds)
        self.tick()
        clock = self.clock
        clock.grant(seconds * 1_000_000 + micros)
        target = self.timebase.total_us() + clock.granted_us
        return (target // US_PER_MDAY, target % US_PER_MDAY)


def _index(rows, line):
    """Index of the review row of a program line."""
    for i in range(len(rows)):
        if rows[i][0] == line:
            return i
    raise ValueError(line)


def _u32(value):
    """A u32 field: NO_TIME for None, and never more than it."""
    return codec.NO_TIME if value is None or value >= codec.NO_TIME else max(value, 0)


def _pause(ms=0):
    return asyncio.sleep_ms(ms)
