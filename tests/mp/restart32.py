# A restart from a full record on the 32-bit webassembly MicroPython (tests/test_restart_vms.py):
# a pump doses, fills its event log past the ring and saves; a new PumpApp on the same storage
# resumes from it. Prints what the restart allocated (this VM collects only between calls, so
# gc.mem_alloc() grows by every byte allocated inside this one) and whether the state came back.

import gc
import os

from boards import sim as board
from firmware import eventlog
from firmware.app import PumpApp
from hal.file_storage import FileStorage
from hal.sim.clock import SimClock
from hal.sim.motor import SimStepper

STORAGE_DIR = "/pump"


class Serial:
    def __init__(self):
        self.out = []

    async def read_byte(self):
        return -1

    def read_ready(self):
        return -1

    def write(self, data):
        self.out.append(bytes(data))

    def write_ready(self):
        return True


class Faults:
    def schedule(self, kind, delay_us, value):
        pass


class Hardware:
    def __init__(self):
        self.faults = Faults()
        self.clock = SimClock(0)
        self.motor = SimStepper(board.STEP_VOLUME_PL, self.clock, board.STEP_MOTION_US)
        self.serial = Serial()
        self.random_bytes = lambda n: bytes(n)
        self.sim = True
        self.storage = FileStorage(STORAGE_DIR)


def state(app):
    log = app.log
    ints, _departed, ring = app.guard.saved_state()
    return log.oldest(), log.count, ints, bytes(ring)


try:
    os.mkdir(STORAGE_DIR)
except OSError:
    pass
app = PumpApp(board, Hardware())
app.set_rate(5_000_000)
for _ in range(120):  # an hour of dosing, in 30 s turns: buckets of the guard's ring filled
    app.tick()
    app.clock.advance(30_000_000)
app.tick()
for i in range(eventlog.CAPACITY + 10):  # the ring full; a few entries escaped or not ASCII
    text = "session %d ended\tcaf\u00e9 \\ok" if i % 16 == 0 else "session %d ended"
    app.log_event(eventlog.EV_SESSION, text % i)
app.save()
before = state(app)
lines = [app.log.line(i) for i in range(before[0], before[1])]
app = None
start = gc.mem_alloc()
app = PumpApp(board, Hardware())
used = gc.mem_alloc() - start
after = state(app)
kept = [app.log.line(i) for i in range(after[0], before[1])]  # the restart's own entries pushed some out
same = kept == lines[len(lines) - len(kept) :]
print("restored", same, len(kept) > 100, after[1] > before[1], after[2:] == before[2:])
print("steps", sum(1 for b in before[3] if b))
print("alloc", used)
