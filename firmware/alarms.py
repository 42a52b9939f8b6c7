# The pump's alarms: several may be latched at once, each with its priority
# (codec.alarm_priority, after IEC 60601-1-8), the pump time it was raised,
# a short cause, and two flags:
#
#   active  its condition is present now (an empty reservoir, a stall). An
#           alarm for a one-off event (a restart, a dose-limit refusal, a
#           clock jump) is raised inactive: the event is over, the alarm
#           stays until acknowledged.
#   acked   a clinician acknowledged it.
#
# An alarm leaves the list only when its condition has cleared AND it was
# acknowledged, whichever comes last (GIP 3.2: alarms are never disabled for
# good). Acknowledging does not stop the tones: an alarm whose condition is
# still present keeps sounding. The tones (the highest priority latched) can
# be silenced for at most SILENCE_US; a newly raised alarm ends the silence.
#
# Core: no I/O. Pump times are the timebase's total microseconds (ints).
# Event path only: raising allocates an entry; the queries the dosing task
# asks every turn (mask, sounding) allocate nothing.

from firmware import codec, const

SILENCE_US = 120_000_000  # silencing lasts at most 2 min (GIP 3.2.1)

# The alarms that stop any bolus and refuse new ones (GIP 1.4.11: no bolus
# during an alarm or an error): every high-priority alarm, and a restart
# (the pump cannot know what happened while it was off). A low reservoir, an
# ERI, a sensor disagreement or a clock jump leave the basal and the boluses
# alone (the Open PCA cases: low reservoir warns, basal continues).

# Index of each field in an entry (a list, so flags can change in place).
_CODE = const(0)
_RAISED_US = const(1)
_TEXT = const(2)
_ACTIVE = const(3)
_ACKED = const(4)


def priority(code):
    return codec.alarm_priority(code)


def blocks_bolus(code):
    return priority(code) == codec.PRIORITY_HIGH or code == codec.ALARM_RESTART


class AlarmSet:
    def __init__(self):
        self._entries = []  # [code, raised_us, text, active, acked], in the order raised
        self.mask = 0  # bit 1 << code for every latched alarm
        self.silenced_until_us = 0  # no tone before this pump time (0: not silenced)

    def _find(self, code):
        for e in self._entries:
            if e[_CODE] == code:
                return e
        return None

    def raise_alarm(self, code, now_us, text, active=False):
        """Latch code (its condition present now if active). Returns True if it
        was not latched before: the caller logs it and sounds it."""
        e = self._find(code)
        if e is not None:
            if active:
                e[_ACTIVE] = True
            return False
        self._entries.append([code, now_us, text, active, False])
        self.mask |= 1 << code
        self.silenced_until_us = 0  # a new alarm condition sounds at once
        return True

    def clear(self, code):
        """The condition of code has gone. Returns True if it was active (the
        caller logs it); the alarm leaves the list if it was acknowledged."""
        e = self._find(code)
        if e is None or not e[_ACTIVE]:
            return False
        e[_ACTIVE] = False
        if e[_ACKED]:
            self._remove(e)
        return True

    def acknowledge(self, code=codec.ALARM_NONE):
        """Acknowledge code (ALARM_NONE: every latched alarm). Returns the codes
        acknowledged now; those whose condition has gone leave the list."""
        done = []
        for e in list(self._entries):
            if code != codec.ALARM_NONE and e[_CODE] != code:
                continue
            if not e[_ACKED]:
                e[_ACKED] = True
                done.append(e[_CODE])
            if not e[_ACTIVE]:
                self._remove(e)
        return done

    def _remove(self, e):
        self._entries.remove(e)
        self.mask &= ~(1 << e[_CODE])

    def latched(self, code):
        return bool(self.mask & (1 << code))

    def active(self, code):
        e = self._find(code)
        return e is not None and e[_ACTIVE]

    def count(self):
        return len(self._entries)

    def entry(self, index):
        """(code, priority, state bits, raised_us, text) of the index-th latched alarm, in the order raised."""
        code, raised_us, text, active, acked = self._entries[index]
        state = (codec.ALARM_STATE_ACTIVE if active else 0) | (codec.ALARM_STATE_ACKED if acked else 0)
        return code, priority(code), state, raised_us, text

    def highest(self):
        """The latched alarm of highest priority (the latest raised of those), ALARM_NONE if none."""
        best = codec.ALARM_NONE
        best_p = 0
        for e in self._entries:
            p = priority(e[_CODE])
            if p >= best_p:
                best = e[_CODE]
                best_p = p
        return best

    def bolus_blocker(self):
        """A latched alarm that forbids boluses (the latest of those), ALARM_NONE if none."""
        found = codec.ALARM_NONE
        for e in self._entries:
            if blocks_bolus(e[_CODE]):
                found = e[_CODE]
        return found

    def silence(self, now_us):
        """Silence the tones for SILENCE_US from now; returns the seconds. The
        alarms stay latched, and any alarm raised meanwhile sounds at once."""
        self.silenced_until_us = now_us + SILENCE_US
        return SILENCE_US // 1_000_000

    def silenced_us(self, now_us):
        left = self.silenced_until_us - now_us
        return left if left > 0 else 0

    def sounding(self, now_us):
        """The priority the tones sound at now: the highest latched, 0 if none or silenced.
        No allocation: asked by the buzzer every turn."""
        if not self.mask or self.silenced_until_us > now_us:
            return 0
        best = 0
        for e in self._entries:
            p = priority(e[_CODE])
            if p > best:
                best = p
        return best

    # -- saved with the state (persist.py) ----------------------------------------

    def saved(self):
        """One line per alarm: code raised_us active acked text."""
        return [
            "%d %d %d %d %s" % (e[_CODE], e[_RAISED_US], 1 if e[_ACTIVE] else 0, 1 if e[_ACKED] else 0, e[_TEXT])
            for e in self._entries
        ]
