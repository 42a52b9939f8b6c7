# What watches over the pump (a part of app.PumpApp, pump.monitors): the
# reservoir, the battery, the motor, the clock and the tasks.
#
#   reservoir  counted: the volume at the last fill minus the steps delivered
#              since. Two marks in steps (to_low, to_empty) count down on the
#              dosing hot path, so the low alarm is raised at the very step
#              that reaches the low volume and no step goes past the empty
#              volume. Sensed: the monitor reads the reservoir sensor once a
#              minute and raises the disagreement alarm when it parts from the
#              counted volume by more than _SENSOR_TOLERANCE_NL.
#   battery    read once a minute: its levels (ERI, critical, end of
#              service) in battery.py, a part of the monitors (.battery).
#   motor      before steps move: the stall line, the occlusion input, the
#              encoder, the driver; a fault holds delivery until a probe
#              turns the motor (motor_watch.py, a part of the monitors:
#              .motor_watch).
#   clock      a tick gap beyond the board's CLOCK_JUMP_US (more than the
#              pump ever sleeps, plus margin) is a clock fault: the gap is not
#              counted as pump time (so it cannot turn into a burst of
#              catch-up steps), the motor halts, dosing goes on from there.
#   tasks      the monitoring task reports in each minute; the dosing task
#              feeds the hardware watchdog only while that report is fresh.
#              A monitoring task silent for _MONITOR_DEADLINE_US raises the
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
# may move (motor_watch.gate, count_down, motor_watch.moved).

from firmware import codec, const, eventlog, tasks
from firmware.battery import Battery
from firmware.errors import sentence
from firmware.motor_watch import MotorWatch
from firmware.program import DEFAULT_EMPTY_NL, DEFAULT_LOW_NL
from firmware.timebase import US_PER_MDAY

# The monitors run every minute of pump time (GIP 5.1: battery at least every 3 min).
_MONITOR_PERIOD_US = const(60_000_000)
_MONITOR_DEADLINE_US = const(180_000_000)  # a monitoring task silent this long (3 periods) has failed
_SENSOR_TOLERANCE_NL = const(1_000_000)  # the reservoir sensor may differ from the counted volume by 1 mL
_SENSOR_DENSITY_MG_PER_ML = const(1_000)  # the drug solutions are aqueous: 1 mL weighs about 1 g
_SENSOR_TRIES = const(20)  # a sensor not ready: ask again every 10 ms, up to 200 ms (an HX711 at 10 SPS needs 100)
MAX_EMPTY_SCAN_DAYS = const(400)  # the reservoir's low and empty times are forecast up to this far ahead
_FAR_STEPS = const(0x3FFFFFFF)  # "no reservoir mark": more steps than any reservoir holds (a small int)
# A board that does not say its CLOCK_JUMP_US: a minute (a real board's watchdog bites in seconds).
_DEFAULT_CLOCK_JUMP_US = const(60_000_000)


class Monitors:
    def __init__(self, pump, board, hw):
        self._pump = pump  # what the monitors watch over, and act on: its alarms, log, therapy
        self._reservoir_sensor = getattr(hw, "reservoir", None)
        self.watchdog = getattr(hw, "watchdog", None)
        # The reservoir's size (20 or 40 mL): the hardware's if it knows (a sim run with
        # --reservoir-ml), else the board's.
        self.reservoir_capacity_nl = getattr(hw, "reservoir_ml", getattr(board, "RESERVOIR_ML", 40)) * 1_000_000
        self.jump_limit_us = getattr(board, "CLOCK_JUMP_US", _DEFAULT_CLOCK_JUMP_US)
        self.buzz = None  # tasks.Event: the tones task looks again (made by run())
        self.tone_test = 0  # TONE_TEST (commands/alarms.py): the priority whose tone the test sounds next, 0: none
        self._monitor_wake = None  # tasks.Event: the monitoring task's turn (made by run())
        self.inline_monitor = False  # a harness without an event loop: the dosing turn runs the monitor itself
        self._monitor_started = False  # the deadline counts only once the monitoring task has run
        self.next_mday = 0  # pump time the next monitor turn is due, two words for the hot path
        self.next_us = 0
        self._deadline_mday = 0  # the monitoring task must report in by then
        self._deadline_us = 0
        self._starving = False  # the watchdog is no longer fed: the board will reset
        self.sensor_nl = None  # the reservoir sensor's last reading
        self._sensor_faults = []  # which monitors' sensors failed their last read
        self.battery = Battery(pump, getattr(hw, "battery", None), self)
        self.motor_watch = MotorWatch(pump, board, hw)
        self.self_test_problems = []  # what the power-on self-test found wrong (boot.py): no dosing
        self.reset()

    def reset(self):
        """What a restart restores (persist.py TAG_MONITOR), as a first boot has it."""
        self.motor_watch.reset()
        self.to_low = _FAR_STEPS  # steps until the counted reservoir reaches the low volume (<= 0: reached)
        self.to_empty = _FAR_STEPS  # and the empty volume

    # -- the reservoir ------------------------------------------------------------

    def levels(self):
        p = self._pump.therapy.program
        if p is None:
            return DEFAULT_LOW_NL, DEFAULT_EMPTY_NL
        return p.low_level(), p.empty_level()

    def set_marks(self):
        """Count the steps to the low and empty volumes afresh (a fill, a new program, a restore)."""
        if self._pump.fill_nl is None:
            self.to_low = self.to_empty = _FAR_STEPS
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
            self._pump.clear_alarm(codec.ALARM_RESERVOIR_EMPTY, 17)  # refilled
        if self.to_low > 0:
            self._pump.clear_alarm(codec.ALARM_RESERVOIR_LOW, 17)  # refilled

    def reservoir_low(self):
        left = self._pump.reservoir_nl()
        low_nl, empty_nl = self.levels()
        self._pump.raise_alarm(
            codec.ALARM_RESERVOIR_LOW,
            sentence(2, left, low_nl),  # low reservoir: left, the low level (pumpctl.sentences)
            active=True,
        )

    def reservoir_empty(self):
        """The counted reservoir reached the empty volume: stop (the step in motion finishes)."""
        now = self._pump.timebase.total_us()
        self._pump.therapy.stop(now)
        self._pump.apply(now)
        self._pump.log_event(eventlog.EV_STOP, sentence(1))  # stopped: the reservoir reached its empty volume
        self._pump.raise_alarm(
            codec.ALARM_RESERVOIR_EMPTY,
            sentence(3, self._pump.reservoir_nl()),  # empty reservoir: what is left
            active=True,
        )

    def count_down(self, allowed):
        """allowed steps were counted as delivered: the reservoir's marks move
        (the low alarm at the very step that reaches the low volume). Hot path."""
        if self.to_empty != _FAR_STEPS:
            self.to_empty -= allowed
            low_before = self.to_low
            self.to_low -= allowed
            if low_before > 0 >= self.to_low:
                self.reservoir_low()

    # -- the clock -----------------------------------------------------------------

    def clock_jump(self, elapsed_us):
        """The ticks jumped (elapsed_us beyond what the pump ever sleeps, or
        backwards): the gap is not pump time. Called from tick()."""
        self.motor_watch.halt()
        self._pump.log_event(
            eventlog.EV_FAULT,
            sentence(4, elapsed_us // 1000),  # clock jump of .. ms: not counted as pump time
        )
        self._pump.raise_alarm(codec.ALARM_CLOCK_JUMP, sentence(5, elapsed_us // 1_000_000))

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
        at = self._pump.timebase.total_us() + _MONITOR_PERIOD_US
        self.next_mday = at // US_PER_MDAY
        self.next_us = at % US_PER_MDAY
        if self._monitor_wake is not None:
            self._monitor_wake.set()
        elif self.inline_monitor:
            sensor = self._reservoir_sensor
            self.monitor_turn(sensor.volume_nl(_SENSOR_DENSITY_MG_PER_ML) if sensor is not None else None)

    def _monitor_late(self):
        self._starving = True
        self.motor_watch.halt()
        now = self._pump.timebase.total_us()
        self._pump.therapy.stop(now)
        self._pump.apply(now)
        self._pump.log_event(
            eventlog.EV_FAULT,
            sentence(6, _MONITOR_DEADLINE_US // 1_000_000),  # monitoring task silent: dosing stopped
        )
        self._pump.raise_alarm(codec.ALARM_WATCHDOG, sentence(7))  # watchdog: the board will reset

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
                    reading = sensor.volume_nl(_SENSOR_DENSITY_MG_PER_ML)
                    if reading is not None:
                        break
                    await tasks.sleep_ms(10)
                if reading is None:
                    self.sensor_fault("reservoir", sentence(8))  # no reading in 200 ms
                else:
                    self.sensor_ok("reservoir")
            self.monitor_turn(reading)

    def monitor_turn(self, reservoir_reading):
        """One look at everything watched; then report in."""
        self._pump.tick()
        now = self._pump.timebase.total_us()
        self._monitor_started = True
        self.motor_watch.check_idle(now)
        self.battery.check(now)
        if reservoir_reading is not None:
            self._check_reservoir(reservoir_reading)
        at = now + _MONITOR_DEADLINE_US
        self._deadline_mday = at // US_PER_MDAY
        self._deadline_us = at % US_PER_MDAY

    def sensor_fault(self, which, text):
        """A sensor (which: "reservoir", "battery") failed its read: the sensor fault alarm."""
        if which not in self._sensor_faults:
            self._sensor_faults.append(which)
        self._pump.raise_alarm(codec.ALARM_SENSOR_FAULT, sentence(9) + text, active=True)  # sensor fault: why

    def sensor_ok(self, which):
        """The sensor read again: the alarm's condition ends with the last sensor's fault."""
        if which in self._sensor_faults:
            self._sensor_faults.remove(which)
            if not self._sensor_faults:
                self._pump.clear_alarm(codec.ALARM_SENSOR_FAULT, 10)  # the sensors answer again

    def _check_reservoir(self, reading_nl):
        self.sensor_nl = reading_nl
        counted = self._pump.reservoir_nl()
        if counted is None:
            return
        apart = abs(reading_nl - counted)
        if apart > _SENSOR_TOLERANCE_NL:
            self._pump.raise_alarm(
                codec.ALARM_SENSOR_DISAGREE,
                sentence(11, reading_nl, counted, apart),  # the sensor, the count, how far apart
                active=True,
            )
        else:
            self._pump.clear_alarm(codec.ALARM_SENSOR_DISAGREE, 12)  # the sensor and the count agree again

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
            await wake.wait(wait_ms)

    def start(self):
        """run(): the tasks' events, then the hardware watchdog (it cannot be stopped)."""
        self.buzz = tasks.Event()
        self._monitor_wake = tasks.Event()
        self._monitor_wake.set()  # a first look at once
        if self.watchdog is not None:
            self.watchdog.start()

    def dosing_refusal(self):
        """Why no program that doses may go in force now, or None."""
        if self.self_test_problems:
            return "{t13}%s{t14}" % self.self_test_problems[0]  # the self-test failed (its finding)
        if self._pump.alarms.active(codec.ALARM_BATTERY_EOS):
            return sentence(15)  # battery end of service
        if self._pump.alarms.active(codec.ALARM_MOTOR_FAULT):
            return sentence(16)  # the motor driver does not respond
        return None
