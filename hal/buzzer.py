# Alarm tones on a piezo or magnetic buzzer driven by machine.PWM.
#
# Patterns after IEC 60601-1-8 (medical alarm systems), as commonly
# summarised: high priority two bursts of 5 pulses,
# medium priority 3 pulses, low priority 1 or 2 pulses. The standard's exact
# pulse and spacing ranges (and its high-priority burst of 10 pulses in a
# 3+2 rhythm) were not available here; the durations below are a reasonable
# reading of it (pulses of 150 ms, spacing of 100-200 ms, 880 Hz: within the
# 150..1000 Hz fundamental it asks for, and a square wave carries the
# harmonics) and must be checked against the standard before a submission.
#
# One pattern is a tuple of (on_ms, off_ms) pairs; play() sounds it once and
# always leaves the buzzer silent (duty 0), even when cancelled.

from firmware import const, tasks

LOW = const(1)
MEDIUM = const(2)
HIGH = const(3)

TONE_HZ = const(880)
_DUTY_ON = const(32768)  # 50 %: the loudest square wave

_P = 150  # pulse, ms
PATTERNS = {
    HIGH: ((_P, 100),) * 4 + ((_P, 400),) + ((_P, 100),) * 4 + ((_P, 0),),  # two bursts of 5
    MEDIUM: ((_P, 200),) * 2 + ((_P, 0),),  # 3 pulses
    LOW: ((_P, 200), (_P, 0)),  # 2 pulses
}
NAMES = {LOW: "low", MEDIUM: "medium", HIGH: "high"}


class Buzzer:
    def __init__(self, pwm, tone_hz=TONE_HZ):
        """pwm: a machine.PWM on the buzzer pin, built by the board."""
        if not 150 <= tone_hz <= 1000:
            raise ValueError("tone_hz must be 150..1000 Hz for an IEC 60601-1-8 alarm tone, not %r" % (tone_hz,))
        self._pwm = pwm
        self.tone_hz = tone_hz
        pwm.duty_u16(0)

    def silence(self):
        self._pwm.duty_u16(0)

    async def play(self, priority):
        """Sound one alarm pattern of priority LOW (1), MEDIUM (2) or HIGH (3)."""
        pattern = PATTERNS.get(priority)
        if pattern is None:
            raise ValueError("priority must be 1 (low), 2 (medium) or 3 (high) for the buzzer, not %r" % (priority,))
        pwm = self._pwm
        try:
            for on_ms, off_ms in pattern:
                pwm.freq(self.tone_hz)
                pwm.duty_u16(_DUTY_ON)
                await tasks.sleep_ms(on_ms)
                pwm.duty_u16(0)
                if off_ms:
                    await tasks.sleep_ms(off_ms)
        finally:
            pwm.duty_u16(0)
