"""hal/rp2_stepper.py: the PIO step program (its 16-bit words decoded against the RP2040 datasheet
layout and run on a cycle-counting interpreter, tests/hal_fakes.py PioSM), the segment feed and the
halt accounting."""

import ast
from pathlib import Path

import pytest
from hal_fakes import Pin, PioSM, total

from hal import rp2_stepper as rp
from hal.stepper import StepperConfig

ROOT = Path(__file__).resolve().parents[2]


# -- the PIO program: encoding -------------------------------------------------

OPS = {0: "JMP", 1: "WAIT", 2: "IN", 3: "OUT", 4: "PUSH/PULL", 5: "MOV", 6: "IRQ", 7: "SET"}


def fields(word):
    """Decode a word per RP2040 datasheet 3.4 with one non-optional side-set bit."""
    op = word >> 13
    f = {"op": OPS[op], "side": word >> 12 & 1, "delay": word >> 8 & 0xF}
    if op == 0:
        f.update(cond=word >> 5 & 7, addr=word & 0x1F)
    elif op == 3:
        f.update(dest=word >> 5 & 7, count=word & 0x1F or 32)
    elif op == 4:
        f.update(pull=word >> 7 & 1, if_=word >> 6 & 1, block=word >> 5 & 1, zero=word & 0x1F)
    elif op == 5:
        f.update(dest=word >> 5 & 7, mov_op=word >> 3 & 3, src=word & 7)
    return f


def test_the_pio_words_decode_to_the_documented_program():
    w = [fields(x) for x in rp.PROGRAM_WORDS]
    assert w[0] == {"op": "PUSH/PULL", "side": 0, "delay": 0, "pull": 1, "if_": 0, "block": 1, "zero": 0}
    assert w[1] == {"op": "OUT", "side": 0, "delay": 0, "dest": 1, "count": 16}  # out x, 16
    assert w[2] == {"op": "JMP", "side": 1, "delay": 0, "cond": 2, "addr": 3}  # jmp x--, 3 side 1
    assert w[3] == {"op": "MOV", "side": 1, "delay": 0, "dest": 2, "mov_op": 0, "src": 7}  # mov y, osr side 1
    assert w[4] == {"op": "JMP", "side": 0, "delay": 0, "cond": 4, "addr": 4}  # jmp y--, 4
    assert w[5] == {"op": "JMP", "side": 0, "delay": 0, "cond": 1, "addr": 0}  # jmp !x, 0
    assert fields(rp.EXEC_MOV_ISR_X) == {"op": "MOV", "side": 0, "delay": 0, "dest": 6, "mov_op": 0, "src": 1}
    assert fields(rp.EXEC_MOV_ISR_OSR)["src"] == 7 and fields(rp.EXEC_MOV_ISR_OSR)["dest"] == 6
    assert fields(rp.EXEC_PUSH_NOBLOCK) == {
        "op": "PUSH/PULL",
        "side": 0,
        "delay": 0,
        "pull": 0,
        "if_": 0,
        "block": 0,
        "zero": 0,
    }
    assert fields(rp.EXEC_PULL_NOBLOCK)["pull"] == 1 and fields(rp.EXEC_PULL_NOBLOCK)["block"] == 0
    assert fields(rp.EXEC_MOV_X_NULL) == {"op": "MOV", "side": 0, "delay": 0, "dest": 1, "mov_op": 0, "src": 3}
    assert fields(rp.EXEC_MOV_OSR_NULL)["dest"] == 7 and fields(rp.EXEC_MOV_OSR_NULL)["src"] == 3


def test_the_asm_pio_source_spells_the_same_program():
    """The @rp2.asm_pio body, read as source, has the mnemonics the words encode, in order."""
    tree = ast.parse((ROOT / "hal" / "rp2_stepper.py").read_text())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "step_pulses")
    calls = [ast.unparse(s.value) for s in fn.body]
    assert calls == [
        "label('segment')",
        "pull(block).side(0)",
        "out(x, 16).side(0)",
        "wrap_target()",
        "jmp(x_dec, 'high').side(1)",
        "label('high')",
        "mov(y, osr).side(1)",
        "label('low')",
        "jmp(y_dec, 'low').side(0)",
        "jmp(not_x, 'segment').side(0)",
        "wrap()",
    ]


def runs(levels):
    """[(level, length), ...] of the level sequence."""
    out = []
    for v in levels:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return [tuple(r) for r in out]


@pytest.mark.parametrize("interval", [1, 2, 7, 1996])
def test_an_interval_word_gives_the_high_and_low_times_claimed(interval):
    sm = PioSM()
    sm.osr = 0
    sm.enabled = True
    sm.put(rp.segment_word(3, interval))
    sm.put(rp.segment_word(2, interval))
    sm.run(12 * (interval + 4) + 20)
    r = runs(sm.levels)
    assert r[0] == (0, 2)  # pull, out
    highs = [n for v, n in r if v == 1]
    lows = [n for v, n in r[1:-1] if v == 0]
    assert highs == [rp.HIGH_CYCLES] * 5 == [2] * 5
    # inside a segment: interval + 2; between the segments: interval + 4 (jmp !x, pull, out)
    assert lows == [interval + 2, interval + 2, interval + 4, interval + 2]
    assert sm.edges == 5 and sm.pc == 0 and not sm.tx  # stalled at pull, STEP low
    assert r[-1][0] == 0


def test_the_interval_word_comes_from_step_motion_us_exactly():
    assert rp.interval_for(2_000) == 1_996  # period = interval + 4 cycles of 1 us
    assert rp.interval_for(5) == 1 and rp.interval_for(16_387) == 16_383
    for bad in (4, 16_388):
        with pytest.raises(
            ValueError, match="step_motion_us must be 5..16387 us for the rp2 PIO stepper, not %d" % bad
        ):
            rp.interval_for(bad)
    assert rp.segment_word(65_535, 16_383) < 2**30


def pio_stepper(step_motion_us=8):
    sm = PioSM()
    config = StepperConfig("TMC2209", 16, step_motion_us)
    ms = (Pin(), Pin())
    d, en = Pin(), Pin(1)
    motor = rp.PioStepper(sm, config, dir_pin=d, enable_pin=en, ms_pins=ms)
    assert (ms[0].level, ms[1].level, d.level, en.level) == (1, 1, 1, 0)
    return motor, sm


def test_step_puts_segment_words_and_never_blocks_on_a_full_fifo():
    m, sm = pio_stepper(2_000)
    assert sm.x == 0 and sm.osr == 0 and sm.enabled  # cleared and started
    m.step(0)
    assert sm.tx == []
    m.step(3)
    assert sm.tx == [1_996 << 16 | 3]
    for _ in range(4):
        m.step(1)  # the FIFO fills: the fifth waits in the backlog
    assert len(sm.tx) == 4 and m.pending() == 7 and total(m) == 7
    m.poll()  # still full: nothing happens, nothing blocks
    assert len(sm.tx) == 4
    sm.run(3)  # the PIO pulls the first segment
    m.poll()
    assert sm.tx == [1_996 << 16 | 1] * 4 and m.pending() == 4
    sm.run(7 * 2_000)  # all seven are made
    assert sm.edges == 7 and sm.tx == [] and m.pending() == 0
    m.step(140_000)  # more than one word holds: split at 65535
    assert sm.tx == [1_996 << 16 | 65_535, 1_996 << 16 | 65_535, 1_996 << 16 | 8_930]
    assert total(m) == 140_007 and m.dropped == 0


def test_a_big_step_splits_into_full_words():
    m, sm = pio_stepper()
    m.step(65_535 * 2 + 5)
    assert sm.tx == [4 << 16 | 65_535, 4 << 16 | 65_535, 4 << 16 | 5]


@pytest.mark.parametrize("start", range(0, 130))
def test_halt_at_any_cycle_drops_exactly_the_steps_whose_edge_has_not_gone_out(start):
    m, sm = pio_stepper(8)  # period 8 cycles: interval 4
    m.step(3)
    m.step(2)
    sm.run(start % 11)
    m.step(4)
    sm.run(start)
    edges = sm.edges
    m.halt()
    assert sm.pin == 0  # STEP low at once
    assert total(m) == edges and m.dropped == 9 - edges and m.halts == 1
    assert sm.tx == [] and sm.pc == 0 and sm.x == 0 and sm.osr == 0 and sm.enabled
    sm.run(200)
    assert sm.edges == edges  # nothing moves after a halt
    m.step(2)
    sm.run(200)
    assert sm.edges == edges + 2 and total(m) == edges + 2
