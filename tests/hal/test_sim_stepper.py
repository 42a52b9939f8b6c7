"""The simulated motor: a step takes the board's motion time; a halt (a fault)
drops every step not finished, the one cut mid-motion included; a normal
suspend, which just issues no more steps, lets them finish. Checked on CPython
against a stand-in clock, and on both MicroPython VMs with the real sim clock
under a heap lock, against an exact model."""

import pytest
from vms import MP_DIR, ROOT, run_unix, run_wasm32

import boards.sim as board
from firmware.scheduler import MAX_RATE_NL_PER_DAY, STEP_RADIX, US_PER_MDAY
from hal.sim.stepper import MAX_QUEUE_US, SimStepper
from hal.sim.tally import Tally, read_tally

M = 2_000  # motion time used below
TICKS = 1 << 30  # the sim clock's ticks wrap here


class Clock:
    """The part of hal/sim/clock.SimClock the motor reads: wrapping ticks and their wraps."""

    def __init__(self, ticks=TICKS - 5_000):
        self.ticks = ticks
        self.wraps = 0

    def ticks_us(self):
        return self.ticks

    def advance(self, us):
        t = self.ticks + us
        self.wraps += t // TICKS
        self.ticks = t % TICKS


def motor(clock=None, motion=M):
    clock = clock or Clock()
    return SimStepper(52_083, clock, motion), clock


def counts(m):
    return m.steps_hi * STEP_RADIX + m.steps_lo, m.in_motion(), m.dropped, m.halts


def test_the_board_motor_keeps_up_with_the_fastest_rate():
    # One step every step_pl / max_rate of pump time at 10 mL/h: 18.75 ms.
    fastest_interval_us = board.STEP_VOLUME_PL * US_PER_MDAY / MAX_RATE_NL_PER_DAY
    assert board.STEP_MOTION_US * 5 < fastest_interval_us
    assert board.STEP_MOTION_US == 2_000


def test_a_step_is_in_motion_for_the_motion_time_then_finished():
    m, clock = motor()
    m.step(1)
    assert counts(m) == (1, 1, 0, 0)
    clock.advance(M - 1)
    assert m.in_motion() == 1
    clock.advance(1)  # finishing exactly now counts as finished
    assert counts(m) == (1, 0, 0, 0)


def test_steps_queue_behind_those_still_moving_across_the_tick_wrap():
    m, clock = motor(Clock(TICKS - 3_000))
    m.step(2)  # moving until +4000, past the wrap at +3000
    clock.advance(1_500)
    m.step(3)  # behind the two: until +10_000
    assert m.in_motion() == 5  # the first is still moving at +1500
    clock.advance(2_000)  # +3500: the wrap passed, the first finished at +2000
    assert clock.wraps == 1 and m.in_motion() == 4
    clock.advance(6_499)  # +9999
    assert m.in_motion() == 1
    clock.advance(1)
    assert counts(m) == (5, 0, 0, 0)


def test_a_halt_drops_the_step_in_motion_and_the_queue_and_nothing_after():
    m, clock = motor()
    m.step(1)
    clock.advance(M)  # finished
    m.step(3)
    clock.advance(M // 2)  # the first of three is half way
    m.halt()
    assert counts(m) == (1, 0, 3, 1)  # the partial step counts as dropped, not made
    clock.advance(10 * M)
    assert counts(m) == (1, 0, 3, 1)
    m.step(1)  # the drive runs again when steps come (after the alarm is cleared)
    clock.advance(M)
    assert counts(m) == (2, 0, 3, 1)


def test_a_halt_with_nothing_in_motion_drops_nothing():
    m, clock = motor()
    m.step(2)
    clock.advance(2 * M)  # the second finishes exactly now
    m.halt()
    assert counts(m) == (2, 0, 0, 1)


def test_a_step_issued_at_the_halt_instant_is_dropped():
    m, clock = motor()
    m.step(1)
    m.halt()
    assert counts(m) == (0, 0, 1, 1)


def test_without_a_halt_every_issued_step_finishes():
    m, clock = motor()
    m.step(4)
    clock.advance(M + 1)
    assert counts(m) == (4, 3, 0, 0)  # a normal suspend: issue nothing more
    clock.advance(3 * M)
    assert counts(m) == (4, 0, 0, 0)


def test_a_long_idle_time_over_many_wraps_leaves_the_motor_idle():
    m, clock = motor()
    m.step(1)  # until +2000
    for _ in range(8):  # two whole wraps of the ticks, in the clock's largest jumps
        clock.advance(1 << 28)
    clock.advance(1_000)  # the ticks alone would say: 1000 us into that step's motion
    assert clock.wraps == 2 and m.in_motion() == 0
    m.halt()
    assert counts(m) == (1, 0, 0, 1)


def test_the_step_total_carries_into_the_high_word_and_a_halt_borrows_back():
    m, clock = motor(motion=1)
    m.steps_lo = STEP_RADIX - 1
    m.step(2)
    assert (m.steps_hi, m.steps_lo) == (1, 1)
    m.halt()  # both still queued: one moving, one behind
    assert (m.steps_hi, m.steps_lo, m.dropped) == (0, STEP_RADIX - 1, 2)


def test_more_motion_than_the_queue_holds_is_a_model_error():
    m, clock = motor()
    m.step(MAX_QUEUE_US // M)
    with pytest.raises(ValueError, match="MAX_QUEUE_US"):
        m.step(1)
    assert m.in_motion() == MAX_QUEUE_US // M


def test_a_motion_time_must_be_positive():
    with pytest.raises(ValueError):
        SimStepper(52_083, Clock(), 0)


# -- the tally: the motor's total in a file that outlives the process ----------


def test_the_tally_file_holds_the_total_issued_after_every_step_and_halt(tmp_path):
    path = tmp_path / "tally"
    m = SimStepper(52_083, Clock(), M, Tally(str(path)))
    assert path.read_bytes() == b"0000000000 0000000000\n" and read_tally(path) == 0
    m.step(3)
    assert read_tally(path) == 3
    m.step(0)
    assert read_tally(path) == 3
    m.halt()  # all three still queued: dropped, and the file follows
    assert read_tally(path) == 0 and m.dropped == 3
    m.steps_lo = STEP_RADIX - 1  # the two words, as the motor counts
    m.step(2)
    assert path.read_bytes() == b"0000000001 0000000001\n" and read_tally(path) == STEP_RADIX + 1


def test_a_step_the_motor_refuses_leaves_the_tally_alone(tmp_path):
    path = tmp_path / "tally"
    m = SimStepper(52_083, Clock(), M, Tally(str(path)))
    m.step(MAX_QUEUE_US // M)
    with pytest.raises(ValueError, match="MAX_QUEUE_US"):
        m.step(1)
    assert read_tally(path) == MAX_QUEUE_US // M


def test_a_damaged_tally_file_is_refused(tmp_path):
    path = tmp_path / "tally"
    path.write_bytes(b"12\n")
    with pytest.raises(ValueError, match="22-byte"):
        read_tally(path)


# -- on MicroPython, with the real sim clock and the heap locked ---------------

SCRIPT = MP_DIR / "motor_heaplock.py"


def check_transcript(out, expect_heap_lock):
    lines = out.splitlines()
    tally = lines.pop().split()
    head = lines[0].split()
    assert head[:2] == ["heap_lock", str(expect_heap_lock)]
    motion, start = int(head[3]), int(head[5])
    now = end = steps = dropped = halts = 0  # exact model: pump time since start, unbounded ints
    wrapped = 0
    kinds = set()
    for line in lines[1:]:
        op, arg, hi, lo, moving, got_dropped, got_halts, wraps, ticks = map(int, line.split())
        if op == 0:
            now += arg
        elif op == 1:
            end = max(now, end) + arg * motion
            steps += arg
        else:
            k = -(-max(0, end - now) // motion)
            steps -= k
            dropped += k
            halts += 1
            end = min(end, now)
            kinds.add("halt-dropped" if k else "halt-idle")
        expect_moving = -(-max(0, end - now) // motion)
        if expect_moving:
            kinds.add("moving")
        assert wraps * TICKS + ticks == start + now
        assert (hi * STEP_RADIX + lo, moving, got_dropped, got_halts) == (steps, expect_moving, dropped, halts), line
        wrapped = wraps
    assert len(lines) == 20_001
    # The tally file, written at every step and halt under the heap lock, holds the final total.
    assert tally[0] == "tally" and len(tally[1]) == len(tally[2]) == 10
    assert int(tally[1]) * STEP_RADIX + int(tally[2]) == steps
    assert wrapped > 10 and kinds == {"halt-dropped", "halt-idle", "moving"} and dropped > 100


@pytest.mark.micropython
def test_motor_model_is_exact_and_allocates_nothing_on_the_unix_port(tmp_path):
    check_transcript(run_unix(SCRIPT, args=(str(tmp_path / "tally"),)), expect_heap_lock=True)


@pytest.mark.micropython32
def test_motor_model_is_exact_with_small_ints_on_32bit_micropython():
    out = run_wasm32(SCRIPT, *(ROOT / "hal" / "sim" / name for name in ("clock.py", "stepper.py", "tally.py")))
    check_transcript(out, expect_heap_lock=True)
