# The simulated buzzer: it records what it was asked to sound (SIM_STATE reads
# plays and priority) and sounds nothing. hal/buzzer.Buzzer plays its pattern
# over wall-clock milliseconds; the sim's time is pump time, which may run a
# million times faster, so the sim plays no pattern: play() only yields once
# to the other tasks, as a pattern's first await would.

from firmware import const, tasks

_COUNT_MAX = const(0x3FFFFFFF)  # counts saturate below 2**30


class SimBuzzer:
    def __init__(self):
        self.plays = 0  # alarm patterns played since boot, saturating
        self.priority = 0  # the priority of the last one (0: none yet)
        self.silences = 0  # silence() calls, saturating

    def silence(self):
        if self.silences < _COUNT_MAX:
            self.silences += 1

    async def play(self, priority):
        """Sound one alarm pattern of priority 1 (low), 2 (medium) or 3 (high): recorded, not sounded."""
        if priority not in (1, 2, 3):
            raise ValueError("priority must be 1 (low), 2 (medium) or 3 (high) for the buzzer, not %r" % (priority,))
        if self.plays < _COUNT_MAX:
            self.plays += 1
        self.priority = priority
        await tasks.sleep_ms(0)
