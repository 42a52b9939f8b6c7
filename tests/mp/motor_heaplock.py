# The motor model (hal/sim/stepper.py) on the sim clock (hal/sim/clock.py),
# driven through many tick wraps by steps, halts and clock jumps, with the
# heap locked: step(), in_motion(), halt() and the clock's advance() must
# allocate nothing, so every value stays a small int (on the 32-bit VM a long
# int would allocate and raise). Prints each operation and the counts after
# it; the test replays them on an exact model in unbounded integers.
#
# The motor keeps a tally file (the step total that survives a kill), written
# at every step and halt under the lock too: the file named by the first
# argument (unix port), else motor_tally in the working directory (the 32-bit
# VM's in-memory filesystem). The last line prints what the file holds.
import sys

from heaplock import heap_lock_works, lock, unlock

try:
    from hal.sim.clock import SimClock
    from hal.sim.stepper import SimStepper
    from hal.sim.tally import Tally
except ImportError:  # the 32-bit VM: the three files are copied into /lib
    from clock import SimClock
    from stepper import SimStepper
    from tally import Tally

MOTION_US = 2_000
N = 20_000
OP_ADVANCE = 0
OP_STEP = 1
OP_HALT = 2

# The operations, drawn before the lock (a 16-bit LCG: small ints everywhere).
ops = []
args = []
x = 12_345
for _ in range(N):
    x = (x * 75 + 74) % 65_537
    r = x & 63
    x = (x * 75 + 74) % 65_537
    if r < 30:  # mostly short gaps, around the motion time
        ops.append(OP_ADVANCE)
        args.append(x % 5_000)
    elif r < 33:  # sometimes minutes, up to the clock's largest jump: many wraps
        ops.append(OP_ADVANCE)
        args.append(x * 4_096)  # < 2**28
    elif r < 61:
        ops.append(OP_STEP)
        args.append(x % 5)  # 0..4 steps at once
    else:
        ops.append(OP_HALT)
        args.append(0)

clock = SimClock(0)
tally_path = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else "motor_tally"
motor = SimStepper(52_083, clock, MOTION_US, Tally(tally_path))
start = clock.ticks_us()
steps_hi = [0] * N
steps_lo = [0] * N
moving = [0] * N
dropped = [0] * N
halts = [0] * N
wraps = [0] * N
ticks = [0] * N

i = op = 0  # module globals: bound before the lock, so the loop adds no name to the globals dict
lock()
try:
    for i in range(N):
        op = ops[i]
        if op == OP_ADVANCE:
            clock.advance(args[i])
        elif op == OP_STEP:
            motor.step(args[i])
        else:
            motor.halt()
        steps_hi[i] = motor.steps_hi
        steps_lo[i] = motor.steps_lo
        moving[i] = motor.in_motion()
        dropped[i] = motor.dropped
        halts[i] = motor.halts
        wraps[i] = clock.wraps
        ticks[i] = clock.ticks_us()
finally:
    unlock()

print("heap_lock", heap_lock_works(), "motion", MOTION_US, "start", start)
for i in range(N):
    print(ops[i], args[i], steps_hi[i], steps_lo[i], moving[i], dropped[i], halts[i], wraps[i], ticks[i])
with open(tally_path, "rb") as f:
    print("tally", f.read().decode().strip())
