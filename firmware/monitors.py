# What watches over the pump (a part of app.PumpApp, pump.monitors): the
# reservoir, the battery, the motor, the clock and the tasks.
#
#   reservoir  counted: the volume at the last fill minus the steps delivered
#              since. Two marks in steps (to_low, to_empty) count down on the
#              dosing hot path, so the low alarm is raised at the very step
#              that reaches the low volume and no step goes past the empty
#              volume. Sensed: the monitor reads the reservoir sensor once a
#              minute and raises the disagreement alarm when it parts from the
#              counted volume by more than SENSOR_TOLERANCE_NL.
#   battery    read once a minute: its levels (ERI, critical, end of
#              service) in battery.py, a part of the monitors (.battery).
#   motor      before steps move: the stall line, the occlusion input, the
#              encoder, the driver. A stall, an occlusion or an unconfirmed
#              step HOLDS delivery: the steps that fall due are not moved and
#              are never made up (no bolus after a fault clears, GIP 1.10.7).
#              Recovery: an occlusion when its input clears; a stall or an
#              unconfirmed step when a probe of PROBE_STEPS steps (one a
#              minute, when a step is due) turns the head with the stall line
#              quiet and every pulse seen, as after an MRI scan. A driver
#              that does not respond is a motor fault: therapy stops for good.
#   clock      a tick gap beyond the board's CLOCK_JUMP_US (more than the
#              pump ever sleeps, plus margin) is a clock fault: the gap is not
#              counted as pump time (so it cannot turn into a burst of
#              catch-up steps), the motor halts, dosing goes on from there.
#   tasks      the monitoring task reports in each minute; the dosing task
#              feeds the hardware watchdog only while that report is fresh.
#              A monitoring task silent for MONITOR_DEADLINE_US raises the
#              watchdog alarm, stops dosing, and starves the watchdog, which
#              resets the board.
#   self-test  at power-on (boot.py, which runs it): what it found wrong
#              (self_test_problems) refuses any program that doses.
#
# Only the hot-path parts (marked) are allocation-free; the rest runs once a
# minute or on an event.
#
# It acts through the pump it watches (raise_alarm, log_event, apply, save,
# its therapy and guard); the pump's dosing turn asks it, step by step, what
# may move (gate, count_down, moved).

import asyncio

from firmware import codec, const, eventlog
from firmware.battery import Battery
from firmware.intmath import format_volume
from firmware.program import DEFAULT_EMPTY_NL, DEFAULT_LOW_NL
from firmware.timebase import US_PER_MDAY

MONITOR_PERIOD_US = 60_000_000  # the monitors run every minute of pump time (GIP 5.1: battery at least every 3 min)
MONITOR_DEADLINE_US = 3 * MONITOR_PERIOD_US  # a monitoring task silent this long has failed
PROBE_PERIOD_US = 60_000_000  # while a stall holds delivery, one probe a minute tests whether the motor turns
PROBE_STEPS = 2  # a probe's steps: 2, so an encoder that tolerates one pulse in flight still sees a miss
SENSOR_TOLERANCE_NL = 1_000_000  # the reservoir sensor may differ from the counted volume by 1 mL
SENSOR_DENSITY_MG_PER_ML = 1_000  # the drug solutions are aqueous: 1 mL weighs about 1 g
_SENSOR_TRIES = const(20)  # a sensor not ready: ask again every 10 ms, up to 200 ms (an HX711 at 10 SPS needs 100)
FAR_STEPS = 0x3FFFFFFF  # "no reservoir mark": more steps than any reservoir holds (a small int)
_ENCODER_RESTART_STEPS = const(0x10000000)  # the encoder count restarts before it nears 2**30 (small ints)
_MOTION_LEFT_MAX_US = const(0x10000000)  # the motion queued ahead is counted up to 2**28 us (74 min; small ints)
DEFAULT_CLOCK_JUMP_US = 60_000_000  # a board that does not say: a minute (a real board's watchdog bites in seconds)

_HOLD_NAMES = {
    codec.ALARM_STALL: "motor stall",
    codec.ALARM_OCCLUSION: "occlusion",
    codec.ALARM_STEP_UNCONFIRMED: "step not confirmed",
}


class Monitors:
    def __init__(self, pump, board, hw):
        self._pump = pump  # what the monitors watch over, and act on: its alarms, log, therapy
        self._stall = getattr(hw, "stall", None)
        self._occlusion = getattr(hw, "occlusion", None)
        self._encoder = getattr(hw, "encoder", None)
        self._motor_check = getattr(hw, "motor_check", None)
        self._reservoir_sensor = getattr(hw, "reservoir", None)
        self.watchdog = getattr(hw, "watchdog", None)
        # The reservoir's size (20 or 40 mL): the hardware's if it knows (a sim run with
        # --reservoir-ml), else the board's.
        self.reservoir_capacity_nl = getattr(hw, "reservoir_ml", getattr(board, "RESERVOIR_ML", 40)) * 1_000_000
        self.jump_limit_us = getattr(board, "CLOCK_JUMP_US", DEFAULT_CLOCK_JUMP_US)
        self.buzz = None  # asyncio.Event: the tones task looks again (made by run())
        self.tone_test = 0  # TONE_TEST (commands/alarms.py): the priority whose tone the test sounds next, 0: none
        self._monitor_wake = None  # asyncio.Event: the monitoring task's turn (made by run())
        self.inline_monitor = False  # a harness without an event loop: the dosing turn runs the monitor itself
        self._monitor_started = False  # the deadline counts only once the monitoring task has run
        self.next_mday = 0  # pump time the next monitor turn is due, two words for the hot path
        self.next_us = 0
        self._deadline_mday = 0  # the monitoring task must report in by then
        self._deadline_us = 0
        self._starving = False  # the watchdog is no longer fed: the board will reset
        self.enc_steps = 0  # steps given to the motor since the encoder's count restarted, < 2**29
        # Of those, the latest delivery's: they may still be moving, so they are not yet owed pulses.
        self.enc_inflight = 0
        # The motor makes one step every STEP_MOTION_US, queued behind those still moving, so a
        # catch-up batch (the steps due over a loop held up for a second) moves for longer than the
        # gap to the next delivery. The pump time the last step given to the motor finishes, two
        # words as the timebase: the steps still moving at a look are not owed pulses either.
        # 0 us (a board that does not say): only the latest delivery's are.
        self._step_motion_us = getattr(board, "STEP_MOTION_US", 0)
        self._motion_max_steps = _MOTION_LEFT_MAX_US // self._step_motion_us if self._step_motion_us else 0
        self.motion_end_mday = 0
        self.motion_end_us = 0  # 0 <= motion_end_us < US_PER_MDAY
        self.sensor_nl = None  # the reservoir sensor's last reading
        self._sensor_faults = []  # which monitors' sensors failed their last read
        self.battery = Battery(pump, getattr(hw, "battery", None), self)
        self.self_test_problems = []  # what the power-on self-test found wrong (boot.py): no dosing
        self.reset()

    def reset(self):
        """What a restart restores (persist.py TAG_MONITOR), as a first boot has it."""
        self.hold = codec.ALARM_NONE  # the motor fault holding delivery, or ALARM_NONE
        self._probe_at_us = 0  # pump us of the next recovery probe
        self._probed = False  # a whole probe moved since the hold began (or since the last failed one)
        self._probe_left = 0  # steps of the probe under way still to move
        self._held_steps = 0  # steps that fell due during the hold and were not moved
        self._hold_since_us = 0
        self.to_low = FAR_STEPS  # steps until the counted reservoir reaches the low volume (<= 0: reached)
        self.to_empty = FAR_STEPS  # and the empty volume

    def monitor_state(self):
        return {"hold": self.hold, "hold_since_us": self._hold_since_us, "held_steps": self._held_steps}

    def restore_monitor_state(self, fields):
        self.hold = fields.get("hold") or codec.ALARM_NONE
        self._hold_since_us = fields.get("hold_since_us") or 0
        self._held_steps = fields.get("held_steps") or 0

    # -- the reservoir ------------------------------------------------------------

    def levels(self):
        p = self._pump.therapy.program
        if p is None:
            return DEFAULT_LOW_NL, DEFAULT_EMPTY_NL
        return p.low_level(), p.empty_level()

    def set_marks(self):
        """Count the steps to the low and empty volumes afresh (a fill, a new program, a restore)."""
        if self._pump.fill_nl is None:
            self.to_low = self.to_empty = FAR_STEPS
            return
        low_nl, empty_nl = self.levels()
        since_fill = self._pump.guard.delivered() - self._pump.fill_steps
        step_pl = self._pump.sched.step_pl
        # The counted volume is fill - floor(steps * step_pl / 1000) nL: it is at
        # or below a level L once steps * step_pl >= (fill - L) * 1000.
        self.to_low = max(-(-(self._pump.fill_nl - low_nl) * 1000 // step_pl), 0) - since_fill
        self.to_empty = max(max(-(-(self._pump.fill_nl - empty_nl) * 1000 // step_pl), 0) - since_fill, 0)

    def after_fill(self):
        """A program with a fill line went in force: the reservoir alarms' conditions go if it is above them."""
        self.set_marks()
        if self.to_empty > 0:
            self._pump.clear_alarm(codec.ALARM_RESERVOIR_EMPTY, "refilled")
        if self.to_low > 0:
            self._pump.clear_alarm(codec.ALARM_RESERVOIR_LOW, "refilled")

    def low_in_us(self, now):
        """Pump time until the counted reservoir reaches the low volume at the running program, or None."""
        left = self._pump.reservoir_nl()
        if left is None:
            return None
        low_nl, _e = self.levels()
        if left <= low_nl:
            return 0
        return self._pump.empty_in_us(left - low_nl, now)

    def reservoir_low(self):
        left = self._pump.reservoir_nl()
        low_nl, empty_nl = self.levels()
        self._pump.raise_alarm(
            codec.ALARM_RESERVOIR_LOW,
            "low reservoir: %s left (low level %s): refill soon" % (format_volume(left), format_volume(low_nl)),
            active=True,
        )

    def reservoir_empty(self):
        """The counted reservoir reached the empty volume: stop (the step in motion finishes)."""
        now = self._pump.timebase.total_us()
        self._pump.therapy.stop(now)
        self._pump.apply(now)
        self._pump.log_event(eventlog.EV_STOP, "stopped: the reservoir reached its empty volume")
        self._pump.raise_alarm(
            codec.ALARM_RESERVOIR_EMPTY,
            "empty reservoir: %s left, delivery stopped; refill it" % format_volume(self._pump.reservoir_nl()),
            active=True,
        )


    # -- the motor -----------------------------------------------------------------

    def gate(self, n):
        """n steps are due: how many the motor's state lets move now (0 while a
        fault holds delivery, a probe's, or n). Hot path: no allocation unless a
        fault shows or clears."""
        fault = self._motor_fault_now()
        if fault or self.hold:
            return self._motor_gate(n, fault)
        return n

    def count_down(self, allowed):
        """allowed steps were counted as delivered: the reservoir's marks move
        (the low alarm at the very step that reaches the low volume). Hot path."""
        if self.to_empty != FAR_STEPS:
            self.to_empty -= allowed
            low_before = self.to_low
            self.to_low -= allowed
            if low_before > 0 >= self.to_low:
                self.reservoir_low()

    def moved(self, steps):
        """steps went to the motor: the encoder owes their pulses once they have moved. Hot path."""
        self.enc_steps += steps
        self.enc_inflight = steps
        if self._step_motion_us:
            if steps > self._motion_max_steps:
                steps = self._motion_max_steps
            # The steps start when they were given, which is later than pump time's tick (a
            # reservation's save came between), or behind the steps still moving.
            left = self._motion_left_us()
            since_tick_us = self._pump.us_since_tick()
            if left < since_tick_us:
                left = since_tick_us
            left += steps * self._step_motion_us
            if left > _MOTION_LEFT_MAX_US:
                left = _MOTION_LEFT_MAX_US
            tb = self._pump.timebase
            us = tb.us + left  # < 86.4e6 + 2**28 < 2**30
            self.motion_end_mday = tb.mday + us // US_PER_MDAY
            self.motion_end_us = us % US_PER_MDAY

    def _motion_left_us(self):
        """Pump time until the last step given to the motor finishes, 0..2**28 (0: none moving). Hot path."""
        tb = self._pump.timebase
        mdays = self.motion_end_mday - tb.mday  # <= 4: the end is at most 2**28 us ahead
        if mdays < 0:
            return 0
        left = mdays * US_PER_MDAY + self.motion_end_us - tb.us
        return left if left > 0 else 0

    def _steps_in_motion(self):
        """Of the steps given to the motor, how many may not have finished moving: the latest
        delivery's, or more while a batch's motion lasts. Hot path."""
        inflight = self.enc_inflight
        motion_us = self._step_motion_us
        if motion_us:
            moving = (self._motion_left_us() + motion_us - 1) // motion_us
            if moving > inflight:
                return moving
        return inflight

    def _count_afresh(self):
        """The encoder counts from now, with no step owed or moving (the motor halted, or every
        step so far confirmed)."""
        self._encoder.restart(0)
        self.enc_steps = 0
        self.enc_inflight = 0
        self.motion_end_mday = 0
        self.motion_end_us = 0

    def _motor_fault_now(self):
        """The motor fault the inputs show now (ALARM_*), or 0. Hot path: no allocation."""
        st = self._stall
        if st is not None and st.stalled():
            return codec.ALARM_STALL
        oc = self._occlusion
        if oc is not None and oc.occluded():
            return codec.ALARM_OCCLUSION
        en = self._encoder
        if en is not None and en.missing(self.enc_steps - self._steps_in_motion()):
            return codec.ALARM_STEP_UNCONFIRMED
        check = self._motor_check
        if check is not None and check() is not None:
            return codec.ALARM_MOTOR_FAULT
        return 0

    def _motor_gate(self, n, fault):
        """n steps are due while the motor shows fault (ALARM_*, or 0) or delivery
        is held: how many may move (0, a probe, or n once recovered)."""
        if self._probed and not fault:  # judge the whole probe once it has all moved
            if self._motion_left_us():
                self._held_steps += n
                return 0
            self.enc_inflight = 0  # a step interval has passed since it moved
            fault = self._motor_fault_now()
        if fault == codec.ALARM_MOTOR_FAULT:
            self.motor_failed()
            return 0
        now = self._pump.timebase.total_us()
        if not self.hold:
            if not fault:
                return n
            self._motor_hold(fault, now)
            return 0
        if not fault and (self._probed or self.hold == codec.ALARM_OCCLUSION):
            self._recover(now)
            return n
        if self._probe_left:  # a probe under way: its next steps, unless the fault shows already
            if fault:
                self._probe_left = 0
            else:
                take = n if n < self._probe_left else self._probe_left
                self._probe_left -= take
                self._probed = not self._probe_left  # judged at the next look, once it all moved
                self._held_steps += n - take
                return take
        elif self.hold != codec.ALARM_OCCLUSION and now >= self._probe_at_us:
            self._probe_at_us = now + PROBE_PERIOD_US
            # Forget the stalls seen before, count pulses afresh: the probe alone is judged.
            if self._stall is not None:
                self._stall.clear()
            if self._encoder is not None:
                self._count_afresh()
            if self._motor_fault_now() not in (codec.ALARM_STALL, codec.ALARM_OCCLUSION):
                self._probe_left = PROBE_STEPS  # the next due steps are the probe, one delivery or more
                self._probed = False
                return self._motor_gate(n, 0)
        elif fault:
            self._probed = False  # the probe did not turn the head
        self._held_steps += n
        return 0

    def _halt(self):
        """Stop the motor at once (the step in motion is cut off). The encoder
        counts afresh: the dropped steps are owed pulses that will never come."""
        self._pump.motor.halt()
        if self._encoder is not None:
            self._count_afresh()

    def _motor_hold(self, code, now):
        self._halt()
        self.hold = code
        self._hold_since_us = now
        self._held_steps = 0
        self._probed = False
        self._probe_left = 0
        self._probe_at_us = now + PROBE_PERIOD_US
        self._pump.settle()  # held: nothing moves until a probe, which reserves again
        how = "until the occlusion clears" if code == codec.ALARM_OCCLUSION else "until a probe step turns the motor"
        self._pump.log_event(eventlog.EV_FAULT, "%s: motor halted, delivery held %s" % (_HOLD_NAMES[code], how))
        self._pump.raise_alarm(code, _HOLD_NAMES[code] + ": delivery held", active=True)

    def _recover(self, now):
        code = self.hold
        self.hold = codec.ALARM_NONE
        held = self._held_steps
        held_nl = held * self._pump.sched.step_pl // 1000
        self._pump.log_event(
            eventlog.EV_RECOVERY,
            "%s over after %d s: delivery resumes; %d steps (%d nL) not made up"
            % (_HOLD_NAMES[code], (now - self._hold_since_us) // 1_000_000, held, held_nl),
        )
        self._pump.clear_alarm(code, "the motor turns again")

    def motor_failed(self):
        """The driver does not respond: stop at once and for good (the therapy stops)."""
        self._halt()
        now = self._pump.timebase.total_us()
        self._pump.therapy.stop(now)
        self._pump.apply(now)
        why = self._motor_check() if self._motor_check is not None else None
        self._pump.log_event(eventlog.EV_FAULT, "motor fault: stopped at once (%s)" % (why or "the driver failed"))
        self._pump.raise_alarm(codec.ALARM_MOTOR_FAULT, "motor fault", active=True)

    def _check_motor_idle(self, now):
        """The monitor's look at the motor between steps: a fault shows, a held
        occlusion clears, or a failed driver recovers (not expected)."""
        probe_moved = self._probed and not self._motion_left_us()
        if probe_moved:  # judge the whole probe: it has finished moving
            self.enc_inflight = 0
        fault = self._motor_fault_now()
        if fault == codec.ALARM_MOTOR_FAULT:
            if not self._pump.alarms.active(codec.ALARM_MOTOR_FAULT):
                self.motor_failed()
            return
        if self._pump.alarms.active(codec.ALARM_MOTOR_FAULT):
            self._pump.clear_alarm(codec.ALARM_MOTOR_FAULT, "the driver responds again; program the pump to resume")
        if self.hold:
            if not fault and (probe_moved or self.hold == codec.ALARM_OCCLUSION):
                self._recover(now)
        elif fault:
            self._motor_hold(fault, now)
        en = self._encoder
        if en is not None and self.enc_steps > _ENCODER_RESTART_STEPS and not en.missing(self.enc_steps):
            self._count_afresh()  # every step so far confirmed: the count stays a small int

    # -- the clock -----------------------------------------------------------------

    def clock_jump(self, elapsed_us):
        """The ticks jumped (elapsed_us beyond what the pump ever sleeps, or
        backwards): the gap is not pump time. Called from tick()."""
        self._halt()
        self._pump.log_event(
            eventlog.EV_FAULT,
            "clock jump of %d ms: not counted as pump time; motor halted, dosing goes on" % (elapsed_us // 1000),
        )
        self._pump.raise_alarm(codec.ALARM_CLOCK_JUMP, "clock jump of %d s" % (elapsed_us // 1_000_000))

    # -- the monitoring task and the watchdog ------------------------------------

    def turn(self):
        """Each dosing turn (after tick()): kick the monitor when due, check that
        it reports in, feed the watchdog. Hot path: no allocation unless the
        monitor is due or late."""
        tb = self._pump.timebase
        if tb.reached(self.next_mday, self.next_us):
            self._monitor_due()
        if self._starving:
            return
        if self._monitor_started and tb.reached(self._deadline_mday, self._deadline_us):
            self._monitor_late()
            return
        wdt = self.watchdog
        if wdt is not None:
            wdt.feed()

    def _monitor_due(self):
        at = self._pump.timebase.total_us() + MONITOR_PERIOD_US
        self.next_mday = at // US_PER_MDAY
        self.next_us = at % US_PER_MDAY
        if self._monitor_wake is not None:
            self._monitor_wake.set()
        elif self.inline_monitor:
            sensor = self._reservoir_sensor
            self.monitor_turn(sensor.volume_nl(SENSOR_DENSITY_MG_PER_ML) if sensor is not None else None)

    def _monitor_late(self):
        self._starving = True
        self._halt()
        now = self._pump.timebase.total_us()
        self._pump.therapy.stop(now)
        self._pump.apply(now)
        self._pump.log_event(
            eventlog.EV_FAULT, "monitoring task silent for %d s: dosing stopped" % (MONITOR_DEADLINE_US // 1_000_000)
        )
        self._pump.raise_alarm(codec.ALARM_WATCHDOG, "watchdog: a task stopped reporting in; the board will reset")

    async def monitoring(self):
        """The monitoring task: a turn each time the dosing task says one is due."""
        wake = self._monitor_wake
        sensor = self._reservoir_sensor
        while not self._pump.leaving:
            await wake.wait()
            wake.clear()
            reading = None
            if sensor is not None:
                for _ in range(_SENSOR_TRIES):
                    reading = sensor.volume_nl(SENSOR_DENSITY_MG_PER_ML)
                    if reading is not None:
                        break
                    await asyncio.sleep_ms(10)
                if reading is None:
                    self.sensor_fault("reservoir", "the reservoir sensor gave no reading in 200 ms")
                else:
                    self.sensor_ok("reservoir")
            self.monitor_turn(reading)

    def monitor_turn(self, reservoir_reading):
        """One look at everything watched; then report in."""
        self._pump.tick()
        now = self._pump.timebase.total_us()
        self._monitor_started = True
        self._check_motor_idle(now)
        self.battery.check(now)
        if reservoir_reading is not None:
            self._check_reservoir(reservoir_reading)
        at = now + MONITOR_DEADLINE_US
        self._deadline_mday = at // US_PER_MDAY
        self._deadline_us = at % US_PER_MDAY

    def sensor_fault(self, which, text):
        """A sensor (which: "reservoir", "battery") failed its read: the sensor fault alarm."""
        if which not in self._sensor_faults:
            self._sensor_faults.append(which)
        self._pump.raise_alarm(codec.ALARM_SENSOR_FAULT, "sensor fault: " + text, active=True)

    def sensor_ok(self, which):
        """The sensor read again: the alarm's condition ends with the last sensor's fault."""
        if which in self._sensor_faults:
            self._sensor_faults.remove(which)
            if not self._sensor_faults:
                self._pump.clear_alarm(codec.ALARM_SENSOR_FAULT, "the sensors answer again")

    def _check_reservoir(self, reading_nl):
        self.sensor_nl = reading_nl
        counted = self._pump.reservoir_nl()
        if counted is None:
            return
        apart = abs(reading_nl - counted)
        if apart > SENSOR_TOLERANCE_NL:
            self._pump.raise_alarm(
                codec.ALARM_SENSOR_DISAGREE,
                "reservoir sensor %s, counted %s: %s apart"
                % (format_volume(reading_nl), format_volume(counted), format_volume(apart)),
                active=True,
            )
        else:
            self._pump.clear_alarm(codec.ALARM_SENSOR_DISAGREE, "the sensor and the count agree again")

    def start_tone_test(self):
        """Sound each priority's tone once, low first, a second apart, unless an alarm's tone takes the
        speaker (the tones task plays both, so the buzzer has one owner)."""
        self.tone_test = codec.PRIORITY_LOW
        if self.buzz is not None:
            self.buzz.set()

    async def tones(self):
        """The buzzer: the highest latched priority's pattern, repeated, unless silenced; a tone test
        (TONE_TEST, commands/alarms.py) while none sounds."""
        pump = self._pump
        buzzer = pump.hw.buzzer
        wake = self.buzz
        while not pump.leaving:
            now = pump.timebase.total_us()
            prio = pump.alarms.sounding(now)
            wait_ms = 60_000
            if prio:
                self.tone_test = 0  # an alarm's tone ends a tone test
                await buzzer.play(prio)
                # Tones repeat (wall time) while an alarm is latched: high every 10 s (IEC 60601-1-8
                # allows a burst interval of 2.5-15 s), medium every 30 s, low every 2 min.
                wait_ms = (
                    10_000 if prio == codec.PRIORITY_HIGH else 30_000 if prio == codec.PRIORITY_MEDIUM else 120_000
                )
            elif self.tone_test:  # each priority's tone once, low first, a second apart
                prio = self.tone_test
                self.tone_test = prio + 1 if prio < codec.PRIORITY_HIGH else 0
                await buzzer.play(prio)
                wait_ms = 0 if pump.alarms.sounding(pump.timebase.total_us()) else 1_000
            else:
                silenced = pump.alarms.silenced_us(now)
                if silenced:  # pump time; on a board that is wall time
                    wait_ms = min(silenced // 1000 + 1, wait_ms)
            wake.clear()
            try:
                await asyncio.wait_for_ms(wake.wait(), wait_ms)
            except asyncio.TimeoutError:
                pass

    def start(self):
        """run(): the tasks' events, then the hardware watchdog (it cannot be stopped)."""
        self.buzz = asyncio.Event()
        self._monitor_wake = asyncio.Event()
        self._monitor_wake.set()  # a first look at once
        if self.watchdog is not None:
            self.watchdog.start()

    def dosing_refusal(self):
        """Why no program that doses may go in force now, or None."""
        if self.self_test_problems:
            return (
                "the power-on self-test failed (%s): the pump cannot dose until a restart passes it"
                % (self.self_test_problems[0])
            )
        if self._pump.alarms.active(codec.ALARM_BATTERY_EOS):
            return "the battery reached end of service: the pump cannot dose"
        if self._pump.alarms.active(codec.ALARM_MOTOR_FAULT):
            return "the motor driver does not respond: the pump cannot dose"
        return None
