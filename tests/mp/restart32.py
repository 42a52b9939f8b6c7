# A restart from a full record on the 32-bit webassembly MicroPython (tests/firmware/test_restart_vms.py):
# a pump doses, fills its event log past the ring and saves; a new PumpApp on the same storage
# resumes from it. Prints what the restart allocated (this VM collects only between calls, so
# gc.mem_alloc() grows by every byte allocated inside this one) and whether the state came back.

import gc

from heap32_pump import make_hardware
from rate_now import rate_now

from boards import sim as board
from firmware import eventlog
from firmware.app import PumpApp


def state(app):
    log = app.log
    ints, _departed, ring = app.guard.saved_state()
    return log.first, log.count, ints, bytes(ring)  # the ring in RAM (the archive holds the boot's entries)


app = PumpApp(board, make_hardware(True))  # the sim board's parts as the heap bench builds them; keys provisioned
rate_now(app, 5_000_000)
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
app = PumpApp(board, make_hardware(False))  # the keys from the key store, as a flashed board's
used = gc.mem_alloc() - start
after = state(app)
kept = [app.log.line(i) for i in range(after[0], before[1])]  # the restart's own entries pushed some out
same = kept == lines[len(lines) - len(kept) :]
print("restored", same, len(kept) > 20, after[1] > before[1], after[2:] == before[2:])
print("steps", sum(1 for b in before[3] if b))
print("alloc", used)
