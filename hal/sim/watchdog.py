# The simulated hardware watchdog: once started it cannot be stopped, and
# unless fed within timeout_us of PUMP time it resets the board. Pump time,
# not wall time: at speed 0 the sim runs years in seconds, and waits without
# any time passing while no time is granted, so it bites only when time
# actually passes (checked at the clock's stop, hal/sim/clock.py: the fault
# plan, hal/sim/faults.py, arms the stop at the bite time whenever the
# watchdog is fed, and the clock never jumps past it).
#
# A clock-jump fault (FAULT_CLOCK_JUMP) moves the tick counter, not the
# watchdog's own oscillator: postpone() pushes the bite time on by the jump,
# so a jump alone never makes it bite.
#
# The bite. It writes the text "watchdog" to RESET_CAUSE_FILE in the storage
# folder (if the board has one), then hal/sim/file_storage.power_cut(): the process
# is SIGKILLed as a reset would end it. The marker stands for a chip's reset
# reason register (rp2 WATCHDOG_REASON, ESP32 esp_reset_reason()), which a
# reset leaves readable and which is not the flash the pump keeps its files
# in: so it is written with plain file I/O, not through the storage driver and
# its power-cut counter (--cut-after-bytes does not count it, and it does not
# disturb a file being written). read_reset_cause() reads it (and removes it)
# at the next boot.

import os

from firmware import const

_TICKS_MASK = const(0x3FFFFFFF)
_COUNT_MAX = const(0x3FFFFFFF)
RESET_CAUSE_FILE = "reset_cause"
WATCHDOG_CAUSE = "watchdog"


def read_reset_cause(directory):
    """Why the board last started: "watchdog" if the marker is in directory (it is removed: read
    once), else "power" (a first start or a power cut; also with no storage, directory None)."""
    if directory is None:
        return "power"
    path = directory + "/" + RESET_CAUSE_FILE
    try:
        with open(path) as f:
            cause = f.read()
    except OSError:
        return "power"
    os.remove(path)
    return WATCHDOG_CAUSE if cause == WATCHDOG_CAUSE else "power"


class SimWatchdog:
    def __init__(self, clock, plan, timeout_us, directory=None):
        """clock: the hal/sim/clock.SimClock; plan: the hal/sim/faults.FaultPlan that keeps the
        clock's stop; timeout_us: 1..2**30-1 of pump time; directory: where the reset marker goes."""
        if not 0 < timeout_us <= _TICKS_MASK:
            raise ValueError("watchdog timeout must be 1..%d us of pump time, not %r" % (_TICKS_MASK, timeout_us))
        self._clock = clock
        self._plan = plan
        self.timeout_us = timeout_us
        self.directory = directory
        self.feeds = 0  # feeds of the started watchdog (before start() a feed does nothing), saturating
        self.bites = 0  # 1 once it bit (seen only where power_cut() does not end the process: tests)
        self._started = False
        self.bite_w = 0  # the pump time (wraps, ticks) it bites at, once started
        self.bite_t = 0
        plan.set_watchdog(self)

    @property
    def started(self):
        return self._started

    def _bite_from_now(self, us):
        """The bite time: now + us (< 2**30), as (wraps, ticks). No allocation."""
        clock = self._clock
        t = clock.ticks_us()  # first: at speed N reading the ticks may wrap them
        w = clock.wraps
        room = _TICKS_MASK - t
        if us > room:
            self.bite_w = w + 1
            self.bite_t = us - room - 1
        else:
            self.bite_w = w
            self.bite_t = t + us

    def start(self):
        """Start it: it cannot be stopped afterwards; feed() it or the board resets."""
        if not self._started:
            self._started = True
            self._bite_from_now(self.timeout_us)
            self._plan.rearm()

    def keep_fed(self):
        """Service mode (hal/watchdog.Watchdog.keep_fed): nothing to do here. This watchdog
        counts pump time, which stands still once the firmware has left for the REPL."""
        return False

    def feed(self):
        """Push the bite to timeout_us from now (nothing before start()). No allocation."""
        if not self._started:
            return
        if self.feeds < _COUNT_MAX:
            self.feeds += 1
        self._bite_from_now(self.timeout_us)
        self._plan.rearm()

    def postpone(self, us):
        """The tick counter jumps by us (0..2**30-1): the watchdog's own clock saw none of it."""
        if not self._started:
            return
        room = _TICKS_MASK - self.bite_t
        if us > room:
            self.bite_w += 1
            self.bite_t = us - room - 1
        else:
            self.bite_t += us
        self._plan.rearm()

    def bite(self):
        """Reset the board: leave the marker, then end the process as a reset does."""
        self._started = False  # spent (only matters where power_cut() returns: a test's stand-in)
        self.bites += 1
        if self.directory is not None:
            with open(self.directory + "/" + RESET_CAUSE_FILE, "w") as f:
                f.write(WATCHDOG_CAUSE)
        from hal.sim.file_storage import power_cut

        power_cut()
