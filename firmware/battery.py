# The battery, as the monitors watch it (pump.monitors.battery): read once a
# minute (the mean of 4 readings, GIP 5.1), the life left estimated from the
# drain since the first reading after boot, and the three levels acted on:
#
#   ERI      the life left below _BATTERY_ERI_MARGIN_DAYS, or, before a drain is
#            known, the charge at _BATTERY_ERI_PERMILLE (medium: plan the
#            replacement)
#   low      the charge at _BATTERY_LOW_PERMILLE (high)
#   EOS      end of service at BATTERY_EOS_PERMILLE: the state saved, dosing
#            stops (high)
#
# A charge back above a level (a new cell, a charged one) clears its alarm's
# condition. Runs once a minute, off the hot path.

from firmware import codec, const, eventlog
from firmware.errors import sentence

# ERI when the estimated life left falls below 90 days (SynchroMed: stops 90 days on).
_BATTERY_ERI_MARGIN_DAYS = const(90)
_BATTERY_ERI_PERMILLE = const(100)  # or, before a drain is known, at 10 % charge
_BATTERY_LOW_PERMILLE = const(30)  # critical low battery at 3 %
# end of service at 1 %: dosing stops, the state saved; public: the boot's self-test (boot.py) looks for it too
BATTERY_EOS_PERMILLE = const(10)
_BATTERY_READS = const(4)  # readings averaged per check (GIP 5.1)
_DRAIN_MIN_PERMILLE = const(10)  # a drain estimate needs at least 1 % of charge used since the reference reading
_US_PER_DAY = const(86_400_000_000)  # a long int on a 32-bit port: once a minute, off the hot path


class Battery:
    def __init__(self, pump, gauge, sensors):
        """gauge: the board's battery (soc_permille()), or None; sensors: what records a
        sensor's fault and its end (the monitors' sensor_fault, sensor_ok)."""
        self._pump = pump
        self.gauge = gauge
        self._sensors = sensors
        self.permille = None  # the last check's charge, 0..1000
        self.days = None  # estimated life left, whole days
        self._ref = None  # (pump us, permille) of the first reading: the drain's reference

    def check(self, now):
        """Read the charge and act on its levels (the monitor's turn)."""
        gauge = self.gauge
        if gauge is None:
            return
        try:
            total = 0
            for _ in range(_BATTERY_READS):
                total += gauge.soc_permille()
        except OSError as e:  # a bus error; any other exception is a firmware fault and ends the task
            self._sensors.sensor_fault("battery", sentence(20) + str(e))  # battery monitor: the bus error
            return
        self._sensors.sensor_ok("battery")
        soc = total // _BATTERY_READS
        self.permille = soc
        ref = self._ref
        if ref is None or soc > ref[1]:  # first reading, or a new cell
            self._ref = (now, soc)
            self.days = None
        elif ref[1] - soc >= _DRAIN_MIN_PERMILLE and now > ref[0]:
            # life left = charge left / drain per day, the drain measured since the reference
            self.days = soc * (now - ref[0]) // ((ref[1] - soc) * _US_PER_DAY)
        self._act(soc, self.days, now)

    def _act(self, soc, days, now):
        pump = self._pump
        if soc > _BATTERY_LOW_PERMILLE:
            pump.clear_alarm(codec.ALARM_BATTERY_LOW, 21)  # above the critical level again
        if soc > BATTERY_EOS_PERMILLE:
            pump.clear_alarm(codec.ALARM_BATTERY_EOS, 22)  # above end of service again
        if soc > _BATTERY_ERI_PERMILLE and (days is None or days >= _BATTERY_ERI_MARGIN_DAYS):
            pump.clear_alarm(codec.ALARM_BATTERY_ERI, 23)  # life left above the margin again
        if soc <= BATTERY_EOS_PERMILLE:
            if not pump.alarms.active(codec.ALARM_BATTERY_EOS):
                pump.save()  # the state first, while the cell still can
                pump.therapy.stop(now)
                pump.apply(now)
                pump.log_event(eventlog.EV_BATTERY, sentence(24, soc))
                pump.raise_alarm(codec.ALARM_BATTERY_EOS, sentence(25), active=True)  # replace the pump
        if soc <= _BATTERY_LOW_PERMILLE:
            pump.raise_alarm(codec.ALARM_BATTERY_LOW, sentence(26, soc), active=True)
        if (days is not None and days < _BATTERY_ERI_MARGIN_DAYS) or soc <= _BATTERY_ERI_PERMILLE:
            left = "?" if days is None else days
            if pump.raise_alarm(
                codec.ALARM_BATTERY_ERI,
                sentence(27, soc, left),
                active=True,
            ):
                pump.log_event(eventlog.EV_BATTERY, sentence(28, soc, left))
