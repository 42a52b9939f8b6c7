# The motor's watch, a part of the monitors (pump.monitors.motor_watch): before
# steps move, the stall line, the occlusion input, the encoder and the driver.
#
# A stall, an occlusion or an unconfirmed step HOLDS delivery: the steps that
# fall due are not moved and are never made up (no bolus after a fault clears,
# GIP 1.10.7). Recovery: an occlusion when its input clears; a stall or an
# unconfirmed step when a probe of _PROBE_STEPS steps (one a minute, when a
# step is due) turns the head with the stall line quiet and every pulse seen,
# as after an MRI scan. A driver that does not respond is a motor fault:
# therapy stops for good.
#
# The encoder owes a pulse for each step given to the motor once it has moved:
# the steps of the latest delivery, and those queued behind them while a
# catch-up batch still moves (the board's STEP_MOTION_US a step), are not owed
# yet.
#
# It acts through the pump it watches (raise_alarm, log_event, apply, settle,
# its motor and therapy); the pump's dosing turn asks it, step by step, what
# may move (gate, moved). Only those and what they call are on the hot path.

from firmware import codec, const, eventlog
from firmware.errors import sentence
from firmware.timebase import US_PER_MDAY

_PROBE_PERIOD_US = const(60_000_000)  # while a stall holds delivery, one probe a minute tests whether the motor turns
_PROBE_STEPS = const(2)  # a probe's steps: 2, so an encoder that tolerates one pulse in flight still sees a miss
_ENCODER_RESTART_STEPS = const(0x10000000)  # the encoder count restarts before it nears 2**30 (small ints)
_MOTION_LEFT_MAX_US = const(0x10000000)  # the motion queued ahead is counted up to 2**28 us (74 min; small ints)


class MotorWatch:
    def __init__(self, pump, board, hw):
        self._pump = pump  # what it watches over, and acts on: its motor, alarms, log, therapy
        self._stall = getattr(hw, "stall", None)
        self._occlusion = getattr(hw, "occlusion", None)
        self._encoder = getattr(hw, "encoder", None)
        self._motor_check = getattr(hw, "motor_check", None)
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
        self.reset()

    def reset(self):
        """What a restart restores (saved_state), as a first boot has it."""
        self.hold = codec.ALARM_NONE  # the motor fault holding delivery, or ALARM_NONE
        self._probe_at_us = 0  # pump us of the next recovery probe
        self._probed = False  # a whole probe moved since the hold began (or since the last failed one)
        self._probe_left = 0  # steps of the probe under way still to move
        self._held_steps = 0  # steps that fell due during the hold and were not moved
        self._hold_since_us = 0

    def saved_state(self):
        """What a restart needs (persist.py TAG_MONITOR): (the hold, since when, the steps it held)."""
        return self.hold, self._hold_since_us, self._held_steps

    def gate(self, n):
        """n steps are due: how many the motor's state lets move now (0 while a
        fault holds delivery, a probe's, or n). Hot path: no allocation unless a
        fault shows or clears."""
        fault = self._fault_now()
        if fault or self.hold:
            return self._gate(n, fault)
        return n

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

    def _fault_now(self):
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

    def _gate(self, n, fault):
        """n steps are due while the motor shows fault (ALARM_*, or 0) or delivery
        is held: how many may move (0, a probe, or n once recovered)."""
        if self._probed and not fault:  # judge the whole probe once it has all moved
            if self._motion_left_us():
                self._held_steps += n
                return 0
            self.enc_inflight = 0  # a step interval has passed since it moved
            fault = self._fault_now()
        if fault == codec.ALARM_MOTOR_FAULT:
            self.driver_failed()
            return 0
        now = self._pump.timebase.total_us()
        if not self.hold:
            if not fault:
                return n
            self._start_hold(fault, now)
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
            self._probe_at_us = now + _PROBE_PERIOD_US
            # Forget the stalls seen before, count pulses afresh: the probe alone is judged.
            if self._stall is not None:
                self._stall.clear()
            if self._encoder is not None:
                self._count_afresh()
            if self._fault_now() not in (codec.ALARM_STALL, codec.ALARM_OCCLUSION):
                self._probe_left = _PROBE_STEPS  # the next due steps are the probe, one delivery or more
                self._probed = False
                return self._gate(n, 0)
        elif fault:
            self._probed = False  # the probe did not turn the head
        self._held_steps += n
        return 0

    def halt(self):
        """Stop the motor at once (the step in motion is cut off). The encoder
        counts afresh: the dropped steps are owed pulses that will never come."""
        self._pump.motor.halt()
        if self._encoder is not None:
            self._count_afresh()

    def _start_hold(self, code, now):
        self.halt()
        self.hold = code
        self._hold_since_us = now
        self._held_steps = 0
        self._probed = False
        self._probe_left = 0
        self._probe_at_us = now + _PROBE_PERIOD_US
        self._pump.settle()  # held: nothing moves until a probe, which reserves again
        # The fault by its alarm's name ("{a11}"), then: motor halted, delivery held until the occlusion clears
        # (t30) or until a probe step turns the motor (t31); its alarm: delivery held (t32). pumpctl.sentences.
        how = sentence(30) if code == codec.ALARM_OCCLUSION else sentence(31)
        self._pump.log_event(eventlog.EV_FAULT, "{a%d}" % code + how)
        self._pump.raise_alarm(code, "{a%d}" % code + sentence(32), active=True)

    def _recover(self, now):
        code = self.hold
        self.hold = codec.ALARM_NONE
        held = self._held_steps
        held_nl = held * self._pump.sched.step_pl // 1000
        self._pump.log_event(
            eventlog.EV_RECOVERY,
            "{a%d}{t33|%d|%d|%d}"  # .. over after .. s: delivery resumes; .. steps (.. nL) not made up
            % (code, (now - self._hold_since_us) // 1_000_000, held, held_nl),
        )
        self._pump.clear_alarm(code, 34)  # the motor turns again

    def driver_failed(self):
        """The driver does not respond: stop at once and for good (the therapy stops)."""
        self.halt()
        now = self._pump.timebase.total_us()
        self._pump.therapy.stop(now)
        self._pump.apply(now)
        why = self._motor_check() if self._motor_check is not None else None
        # motor fault: stopped at once (why)
        self._pump.log_event(eventlog.EV_FAULT, sentence(35) + (why or sentence(36)) + ")")
        self._pump.raise_alarm(codec.ALARM_MOTOR_FAULT, "motor fault", active=True)

    def check_idle(self, now):
        """The monitor's look at the motor between steps: a fault shows, a held
        occlusion clears, or a failed driver recovers (not expected)."""
        probe_moved = self._probed and not self._motion_left_us()
        if probe_moved:  # judge the whole probe: it has finished moving
            self.enc_inflight = 0
        fault = self._fault_now()
        if fault == codec.ALARM_MOTOR_FAULT:
            if not self._pump.alarms.active(codec.ALARM_MOTOR_FAULT):
                self.driver_failed()
            return
        if self._pump.alarms.active(codec.ALARM_MOTOR_FAULT):
            self._pump.clear_alarm(codec.ALARM_MOTOR_FAULT, 37)  # program the pump to resume
        if self.hold:
            if not fault and (probe_moved or self.hold == codec.ALARM_OCCLUSION):
                self._recover(now)
        elif fault:
            self._start_hold(fault, now)
        en = self._encoder
        if en is not None and self.enc_steps > _ENCODER_RESTART_STEPS and not en.missing(self.enc_steps):
            self._count_afresh()  # every step so far confirmed: the count stays a small int
