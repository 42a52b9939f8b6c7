# Step pulses from an RP2040 PIO state machine, Klipper style: Python queues
# integer segments (count, interval) and the PIO makes the pulses, so their
# timing depends on neither the interpreter nor the GC.
#
# The program (RP2040 datasheet, section 3.4, "Instruction Set"). One side-set
# pin, not optional, is STEP, so every instruction drives it: bit 12 is the
# side-set value and bits 11..8 the delay. A segment is one 32-bit word from
# the TX FIFO: count (1..65535) in bits 15..0, interval (1..16383) in bits
# 29..16 (so the word stays a small int on a 32-bit port, below 2**30).
#
#   addr  word    instruction                 side  what it does
#   0     0x80A0  pull block                  0     wait for a segment, STEP low (idle)
#   1     0x6030  out x, 16                   0     x = count; OSR keeps the interval (shift right)
#   2     0x1043  jmp x--, 3      (wrap_target) 1   STEP rises, and x counts the edge: atomically
#   3     0xB047  mov y, osr                  1     y = interval; STEP still high
#   4     0x0084  jmp y--, 4                  0     STEP low for interval + 1 cycles
#   5     0x0020  jmp !x, 0       (wrap)      0     segment done: pull the next; else wrap to 2
#
# Cycle count of one pulse (each instruction takes one cycle; no delays):
#   high = 2 cycles (addresses 2, 3)
#   low  = interval + 2 cycles inside a segment (interval + 1 at address 4, 1 at 5), and
#          interval + 4 after a segment's last pulse when the next segment is waiting (0, 1 too)
#   period = interval + 4 cycles. tests/hal/test_rp2_stepper.py runs these words on a cycle-counting
#   interpreter and checks exactly this.
# At SM_FREQ = 1 MHz (125 MHz system clock / 125: an integer divider, so no
# fractional-divider jitter) a cycle is 1 us: high 2 us, period = interval + 4 us,
# so interval = STEP_MOTION_US - 4 exactly, for STEP_MOTION_US in 5..16387 us.
# 2 us high meets the DRV8825's 1.9 us, the A4988's 1 us and the TMC2209's 100 ns.
#
# How halt() knows how many pulses were made. x is decremented in the same
# cycle as the STEP edge (address 2), so after sm.active(0) the steps of the
# running segment whose edge has not gone out are exactly x. halt() reads x and
# the OSR through exec'd "mov isr, x; push noblock" (the RX FIFO is otherwise
# unused, so it has room); an OSR above 0xFFFF means the segment was pulled but
# not yet split (frozen at address 1), and then all of its count is unstarted.
# The segments still in the TX FIFO (sm.tx_fifo() of them, the last ones put,
# kept in a 4-entry ring) and the backlog not yet put are unstarted too. A
# pulse cut short by the halt counts as made (its edge went out).
#
# Not blocking. step(n) adds n to a backlog and moves it into the FIFO, at
# most 65535 steps a word, while sm.tx_fifo() shows room (4 words, TX and RX
# unjoined): sm.put() is never called on a full FIFO, so it never waits. What
# does not fit stays in the backlog until the next step() or poll(). The board
# has its BoardClock call poll() at every sleep_us() of the dosing loop
# (boards/rp2_pico.py), so a backlog drains within one loop turn; with steps
# issued every few ms or slower and 2 ms of motion each, the FIFO never holds
# more than one segment anyway. step() and poll() allocate nothing.

from firmware import const
from hal.stepper import StepQueue, setup_pins

try:
    from typing import TYPE_CHECKING
except ImportError:  # MicroPython has no typing module
    TYPE_CHECKING = False
if TYPE_CHECKING:  # for pyright, the PIO mnemonics that the rp2.asm_pio decorator provides
    from rp2.asm_pio import *  # noqa: F403

SM_FREQ = const(1_000_000)  # state machine clock, Hz: 1 cycle = 1 us
HIGH_CYCLES = const(2)  # STEP high per pulse
OVERHEAD_CYCLES = const(4)  # period = interval + OVERHEAD_CYCLES
MIN_INTERVAL = const(1)  # the OSR test in halt() needs the interval bits non-zero
MAX_INTERVAL = const(16_383)  # keeps a segment word below 2**30
MAX_SEGMENT = const(0xFFFF)  # steps per FIFO word
FIFO_DEPTH = const(4)
_RING_MASK = const(3)

# The program as the words rp2.asm_pio assembles (0-based jump targets; the
# loader relocates them), checked against the assembler on the board by
# make_state_machine() and field by field in tests/hal/test_rp2_stepper.py.
PROGRAM_WORDS = (
    0x80A0,  # 0 pull block        side 0: PULL, bit 7 = 1 (pull), bit 6 IfEmpty 0, bit 5 Block 1
    0x6030,  # 1 out x, 16         side 0: OUT, dest 001 (X), bit count 16
    0x1043,  # 2 jmp x--, 3        side 1: JMP, side-set bit 12 = 1, cond 010 (X--), addr 3
    0xB047,  # 3 mov y, osr        side 1: MOV, side 1, dest 010 (Y), op 00, src 111 (OSR)
    0x0084,  # 4 jmp y--, 4        side 0: JMP, cond 100 (Y--), addr 4
    0x0020,  # 5 jmp !x, 0         side 0: JMP, cond 001 (!X), addr 0
)
WRAP_TARGET = const(2)
WRAP = const(5)

# Instructions halt() executes with sm.exec() (all side 0: they drive STEP low at once, and none stalls).
EXEC_MOV_ISR_X = const(0xA0C1)  # mov isr, x: MOV, dest 110 (ISR), src 001 (X)
EXEC_MOV_ISR_OSR = const(0xA0C7)  # mov isr, osr: src 111 (OSR)
EXEC_PUSH_NOBLOCK = const(0x8000)  # push noblock: PUSH, bit 7 = 0, IfFull 0, Block 0
EXEC_PULL_NOBLOCK = const(0x8080)  # pull noblock: drops one TX FIFO word into the OSR
EXEC_MOV_X_NULL = const(0xA023)  # mov x, null: dest 001 (X), src 011 (NULL)
EXEC_MOV_OSR_NULL = const(0xA0E3)  # mov osr, null: dest 111 (OSR), src 011 (NULL)

_program = None


def program():
    """The PIO program, assembled by rp2.asm_pio on first use (not at import)."""
    global _program
    if _program is None:
        import rp2

        @rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW, out_shiftdir=rp2.PIO.SHIFT_RIGHT)
        def step_pulses():
            label("segment")  # noqa: F405
            pull(block).side(0)  # noqa: F405
            out(x, 16).side(0)  # noqa: F405
            wrap_target()  # noqa: F405
            jmp(x_dec, "high").side(1)  # noqa: F405
            label("high")  # noqa: F405
            mov(y, osr).side(1)  # noqa: F405
            label("low")  # noqa: F405
            jmp(y_dec, "low").side(0)  # noqa: F405
            jmp(not_x, "segment").side(0)  # noqa: F405
            wrap()  # noqa: F405

        _program = step_pulses
    return _program


def make_state_machine(sm_id, step_pin):
    """The board's state machine sm_id running the program, STEP on step_pin (a machine.Pin)."""
    import rp2

    # rp2.asm_pio gives the list [instruction words, ...settings]; the stubs do not say it is a list.
    words = tuple(program()[0])  # pyright: ignore[reportIndexIssue]
    if words != PROGRAM_WORDS:
        raise RuntimeError("rp2 PIO step program: rp2.asm_pio assembled %r, not PROGRAM_WORDS" % (words,))
    prog = program()
    return rp2.StateMachine(sm_id, prog, freq=SM_FREQ, sideset_base=step_pin)


def interval_for(step_motion_us):
    """The interval word for a step period of step_motion_us: exactly STEP_MOTION_US - 4 cycles at 1 MHz."""
    cycles = step_motion_us * (SM_FREQ // 1_000_000)
    interval = cycles - OVERHEAD_CYCLES
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise ValueError(
            "step_motion_us must be %d..%d us for the rp2 PIO stepper, not %d"
            % (MIN_INTERVAL + OVERHEAD_CYCLES, MAX_INTERVAL + OVERHEAD_CYCLES, step_motion_us)
        )
    return interval


def segment_word(count, interval):
    """One TX FIFO word: count steps, interval in bits 29..16 (< 2**30)."""
    return interval << 16 | count


class PioStepper(StepQueue):
    """The motor interface of hal/__init__.py on an rp2 PIO state machine.

    sm: an rp2.StateMachine made by make_state_machine() (or a stand-in in a
    test); config: a hal.stepper.StepperConfig; dir_pin, enable_pin, ms_pins:
    machine.Pin outputs the board built (None/() where tied in hardware)."""

    NAME = "rp2 PIO stepper"

    def __init__(self, sm, config, dir_pin=None, enable_pin=None, ms_pins=(), sleep_us=None):
        StepQueue.__init__(self)
        interval = interval_for(config.step_motion_us)
        ns_per_cycle = 1_000_000_000 // SM_FREQ
        config.check_pulse(HIGH_CYCLES * ns_per_cycle, (interval + 2) * ns_per_cycle, "the rp2 PIO stepper")
        self.config = config
        self.interval = interval
        self._word_hi = interval << 16
        self._sm = sm
        self._ring = [0] * FIFO_DEPTH  # counts of the last FIFO_DEPTH segments put
        self._head = 0  # next ring slot
        setup_pins(config, dir_pin, enable_pin, ms_pins, 1, sleep_us)
        self._start()

    def _start(self):
        sm = self._sm
        sm.restart()  # back to address 0 (pull), shift counters cleared
        sm.exec(EXEC_MOV_X_NULL)
        sm.exec(EXEC_MOV_OSR_NULL)
        sm.active(1)

    def poll(self):
        """Move the backlog into the TX FIFO while it has room; never waits."""
        b = self._backlog
        if not b:
            return
        sm = self._sm
        ring = self._ring
        while b and sm.tx_fifo() < FIFO_DEPTH:
            c = b if b < MAX_SEGMENT else MAX_SEGMENT
            sm.put(self._word_hi | c)
            i = self._head
            ring[i] = c
            self._head = (i + 1) & _RING_MASK
            b -= c
        self._backlog = b

    def pending(self):
        """Steps issued whose STEP edge has surely not gone out: the backlog and
        the segments still in the FIFO (not the one running)."""
        k = self._backlog
        ring = self._ring
        i = self._head
        for _ in range(self._sm.tx_fifo()):
            i = (i - 1) & _RING_MASK
            k += ring[i]
        return k

    def halt(self):
        """Stop at once (a fault): no STEP edge after this, the queue dropped and counted."""
        sm = self._sm
        sm.active(0)
        sm.exec(EXEC_MOV_ISR_X)  # also drives STEP low (side 0) at once
        sm.exec(EXEC_PUSH_NOBLOCK)
        x = sm.get()
        sm.exec(EXEC_MOV_ISR_OSR)
        sm.exec(EXEC_PUSH_NOBLOCK)
        osr = sm.get()
        running = osr & MAX_SEGMENT if osr > MAX_SEGMENT else x
        k = self.pending() + running
        while sm.tx_fifo():
            sm.exec(EXEC_PULL_NOBLOCK)
        self._backlog = 0
        self._drop(k)
        self.halts += 1
        self._start()
