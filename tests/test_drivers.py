"""The real-board drivers (hal/), on CPython with fake pins and buses that
record what was driven: the HX711's clocking and decode, the MAX17048's
registers, the battery divider and curve, the rp2 PIO step program (its
16-bit words decoded against the RP2040 datasheet layout and run on a
cycle-counting interpreter), the segment feed and halt accounting, the RMT
pulse tuples, the configuration errors, and the board files. The hot paths
also run once on the MicroPython unix port under a heap lock
(tests/mp/drivers_heaplock.py)."""

import ast
import asyncio
import datetime
import importlib
import random
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from vms import MP_DIR, run_unix

from firmware.intmath import muldiv
from firmware.scheduler import STEP_RADIX
from hal import rp2_stepper as rp
from hal.battery_adc import LIION_CURVE, DividerBattery, soc_from_curve
from hal.board_clock import BoardClock, civil_from_days, days_from_civil
from hal.esp32_stepper import RmtStepper, burst, pulse_ticks
from hal.hx711 import HX711, decode
from hal.max17048 import MAX17048
from hal.stepper import StepperConfig
from hal.watchdog import Watchdog

ROOT = Path(__file__).resolve().parent.parent


# -- fakes -------------------------------------------------------------------


class Pin:
    def __init__(self, level=0):
        self.level = level
        self.history = []
        self.irq_handler = None
        self.irq_trigger = None

    def irq(self, handler=None, trigger=None):
        self.irq_handler = handler
        self.irq_trigger = trigger

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v
        self.history.append(v)


class HX711Chip:
    """The HX711's serial side: DOUT low when a conversion is ready; each PD_SCK
    rising edge shifts out the next bit, MSB first; after the 24th bit DOUT
    goes high until the next conversion. Counts the pulses of each read."""

    def __init__(self, words):
        self.words = list(words)
        self.sck = _ChipClock(self)
        self.dout = _ChipData(self)
        self.pulses = []  # pulses per read
        self._bit = -1
        self._n = 0

    def rise(self):
        if self._bit == -1:
            assert self.words, "read with no conversion ready"
            self._word = self.words.pop(0)
            self.pulses.append(0)
        self.pulses[-1] += 1
        self._bit += 1

    def level(self):
        if self._bit == -1:
            return 0 if self.words else 1
        if self._bit < 24:
            return (self._word >> (23 - self._bit)) & 1
        return 1

    def end_read(self):
        self._bit = -1


class _ChipClock(Pin):
    def __init__(self, chip):
        super().__init__()
        self.chip = chip

    def value(self, v=None):
        if v is None:
            return self.level
        if v and not self.level:
            self.chip.rise()
        self.level = v
        self.history.append(v)


class _ChipData:
    def __init__(self, chip):
        self.chip = chip

    def value(self):
        return self.chip.level()


def hx711_reading(words, gain=128):
    chip = HX711Chip(words)
    hx = HX711(chip.sck, chip.dout, gain)
    return chip, hx


def read(chip, hx):
    v = hx.read_raw()
    chip.end_read()
    return v


# -- HX711 --------------------------------------------------------------------


@pytest.mark.parametrize("gain,pulses", [(128, 25), (32, 26), (64, 27)])
def test_hx711_clocks_24_bits_then_the_pulses_that_pick_the_next_gain(gain, pulses):
    chip, hx = hx711_reading([0x123456], gain)
    assert read(chip, hx) == 0x123456  # MSB first: any other order gives another number
    assert chip.pulses == [pulses]
    assert chip.sck.history[0] == 0  # __init__ drives PD_SCK low (powered up)
    assert chip.sck.history[1:] == [1, 0] * pulses and chip.sck.level == 0


def test_hx711_reads_nothing_until_dout_is_low():
    chip, hx = hx711_reading([])
    assert not hx.ready() and hx.read_raw() is None and chip.sck.history == [0]


def test_hx711_bit_order_is_msb_first():
    chip, hx = hx711_reading([0x800001, 0x000001])
    assert read(chip, hx) == decode(0x800001) == -8388607
    assert read(chip, hx) == 1


@pytest.mark.parametrize(
    "word,value", [(0x800000, -8388608), (0x7FFFFF, 8388607), (0xFFFFFF, -1), (0x000000, 0), (0x000001, 1)]
)
def test_hx711_twos_complement(word, value):
    assert decode(word) == value
    chip, hx = hx711_reading([word])
    assert read(chip, hx) == value and hx.raw == value


def test_hx711_gain_is_checked():
    with pytest.raises(
        ValueError,
        match=r"gain must be 128 \(channel A\), 64 \(channel A\) or 32 \(channel B\) "
        r"for an HX711, not 100",
    ):
        HX711(Pin(), Pin(), 100)


class AutoChip(HX711Chip):
    def rise(self):
        super().rise()
        if self.pulses[-1] == 25:
            self.end_read()


def test_hx711_tare_discards_the_first_reading_and_averages_exactly():
    chip = AutoChip([0x7FFFFF, 100, 101, 103, 0xFFFFF0])  # 0xFFFFF0 = -16
    hx = HX711(chip.sck, chip.dout)
    assert hx.tare(4, sleep_ms=lambda ms: None) == (100 + 101 + 103 - 16) // 4 == 72
    assert hx.offset == 72


def test_hx711_tare_times_out_with_a_clear_error():
    chip = AutoChip([])
    hx = HX711(chip.sck, chip.dout)
    with pytest.raises(OSError, match="no conversion within 5 ms"):
        hx.tare(2, timeout_ms=5, sleep_ms=lambda ms: None)


def test_hx711_calibration_and_mass_and_volume_in_integers():
    chip = AutoChip([1000 + 41_230] * 4)
    hx = HX711(chip.sck, chip.dout)
    hx.offset = 1000
    assert hx.calibrate(100_000, samples=4, sleep_ms=lambda ms: None) == 41_230
    assert (hx.cal_counts, hx.cal_mg) == (41_230, 100_000)
    for d in (0, 1, 412, -412, 41_230, -8_000_000, 8_000_000, 123_457):
        exact = Fraction(d * 100_000, 41_230)
        got = hx.mass_from_raw(1000 + d)
        assert got == (int(exact) if exact >= 0 else -int(-exact))  # toward zero
    assert hx.mass_from_raw(1000 + 412) == 999
    chip.words = [1000 + 8_246]  # 20_000 mg
    assert hx.volume_nl(998) == 20_000 * 1_000_000 // 998 == 20_040_080
    with pytest.raises(ValueError, match="calibration counts must be"):
        hx.set_calibration(0, 1)


def test_muldiv_is_floor_of_the_exact_product_over_the_divisor():
    rng = random.Random(5)
    for _ in range(3000):
        d = rng.randrange(1, 2**29)
        a = rng.randrange(0, 2**30)
        b = rng.randrange(0, 2**30)
        if a * b // d >= 2**30:
            continue
        assert muldiv(a, b, d) == a * b // d
    assert muldiv(2**30 - 1, 1, 1) == 2**30 - 1


# -- MAX17048 -----------------------------------------------------------------


class I2C:
    def __init__(self, regs, address=0x36):
        self.regs = dict(regs)
        self.address = address
        self.writes = []

    def readfrom_mem_into(self, addr, reg, buf):
        assert addr == self.address and len(buf) == 2
        v = self.regs[reg]
        buf[0] = v >> 8
        buf[1] = v & 0xFF

    def writeto_mem(self, addr, reg, buf):
        self.writes.append((addr, reg, bytes(buf)))
        self.regs[reg] = buf[0] << 8 | buf[1]

    def scan(self):
        return [self.address]


@pytest.mark.parametrize(
    "raw,mv",
    [(0xD000, 4160), (0xCFFF, 4159), (0xB400, 3600), (0, 0), (0xFFFF, 5119), (1, 0), (13, 1)],
)
def test_max17048_vcell_is_78_125_uv_per_lsb(raw, mv):
    assert MAX17048(I2C({0x02: raw})).voltage_mv() == mv == int(Fraction(raw * 78125, 10**6))


@pytest.mark.parametrize("raw,tenths", [(0x5A80, 905), (0x6400, 1000), (0x6480, 1005), (0x0019, 0), (0x001A, 1)])
def test_max17048_soc_is_1_256_percent_per_lsb(raw, tenths):
    gauge = MAX17048(I2C({0x04: raw}))
    assert gauge.soc_tenths() == tenths == int(Fraction(raw * 10, 256))
    assert gauge.soc_permille() == min(tenths, 1000)


def test_max17048_reads_into_one_buffer_and_writes_its_commands():
    bus = I2C({0x08: 0x0012, 0x0C: 0x971C, 0x02: 0xD000})
    gauge = MAX17048(bus)
    buf = gauge._buf
    assert gauge.check() == 0x0012 and gauge.voltage_mv() == 4160 and gauge._buf is buf
    gauge.quick_start()
    assert bus.writes[-1] == (0x36, 0x06, b"\x40\x00")
    assert gauge.rcomp() == 0x97
    gauge.set_rcomp(0x60)
    assert bus.writes[-1] == (0x36, 0x0C, b"\x60\x1c")  # the low byte (alert bits) kept
    with pytest.raises(ValueError, match="RCOMP must be 0..255 for a MAX17048, not 300"):
        gauge.set_rcomp(300)
    with pytest.raises(OSError, match="no MAX17048 at I2C address 0x36: VERSION reads 0x0000"):
        MAX17048(I2C({0x08: 0})).check()


# -- battery divider ----------------------------------------------------------


class ADC:
    def __init__(self, raw):
        self.raw = raw

    def read_u16(self):
        return self.raw


@pytest.mark.parametrize("rt,rb,vref", [(100_000, 100_000, 3300), (1_000_000, 330_000, 3300), (200, 100, 3100)])
def test_divider_voltage_is_exact_floor(rt, rb, vref):
    adc = ADC(0)
    bat = DividerBattery(adc, rt, rb, vref)
    for raw in (0, 1, 12_345, 40_000, 65_534, 65_535):
        adc.raw = raw
        assert bat.voltage_mv() == raw * vref * (rt + rb) // (65535 * rb)
    adc.raw = 65_535
    assert DividerBattery(adc, 100_000, 100_000).voltage_mv() == 6600


def test_divider_refuses_resistor_values_it_cannot_keep_small():
    with pytest.raises(ValueError, match="coarser unit"):
        DividerBattery(ADC(0), 1_000_003, 999_983)


def test_curve_interpolates_at_and_between_points_and_clamps():
    for mv, p in LIION_CURVE:
        assert soc_from_curve(LIION_CURVE, mv) == p
    assert soc_from_curve(LIION_CURVE, 3855) == 500 + 15 * 100 // 30 == 550
    assert soc_from_curve(LIION_CURVE, 3611) == 50 + 1 * 50 // 80 == 50
    assert soc_from_curve(LIION_CURVE, 3000) == 0 and soc_from_curve(LIION_CURVE, 4300) == 1000
    adc = ADC(0)
    bat = DividerBattery(adc, 100_000, 100_000)
    adc.raw = 3855 * 65535 // 6600 + 1  # just above 3855 mV at the pin x 2
    assert bat.voltage_mv() == 3855 and bat.soc_permille() == 550
    with pytest.raises(ValueError, match="rise in mV"):
        DividerBattery(adc, 1, 1, curve=((4000, 0), (3900, 100)))


# -- stepper configuration ----------------------------------------------------


def test_stepper_config_errors_name_the_chip():
    with pytest.raises(ValueError, match=r"^microsteps must be one of 1, 2, 4, 8, 16 for an A4988, not 3$"):
        StepperConfig("A4988", 3, 2000)
    with pytest.raises(ValueError, match=r"^microsteps must be one of 8, 16, 32, 64 for a TMC2209, not 4$"):
        StepperConfig("TMC2209", 4, 2000)
    with pytest.raises(ValueError, match="must be one of A4988, DRV8825, TMC2209, not 'L298'"):
        StepperConfig("L298", 1, 2000)
    with pytest.raises(
        ValueError,
        match="step_motion_us 3 us is too short for a DRV8825: one step needs at least 1900 ns high plus 1900 ns low",
    ):
        StepperConfig("DRV8825", 32, 3)
    c = StepperConfig("DRV8825", 32, 4)
    assert c.ms_levels == (1, 0, 1) and c.dir_setup_ns == 650
    with pytest.raises(
        ValueError, match="STEP high time 1000 ns from a timer is too short for a DRV8825: it needs at least 1900 ns"
    ):
        c.check_pulse(1000, 5000, "a timer")
    with pytest.raises(ValueError, match="STEP low time 100 ns"):
        c.check_pulse(2000, 100, "a timer")


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


# -- the PIO program: a cycle-counting interpreter of exactly these instructions --

M32 = 0xFFFFFFFF


class PioSM:
    """An RP2040 state machine running a program of JMP, PULL, PUSH, OUT and MOV
    (the instructions above), one side-set pin (bit 12), 4-deep FIFOs. Also the
    rp2.StateMachine methods PioStepper uses; put() on a full FIFO fails the test
    (the driver must never block)."""

    def __init__(self, words=rp.PROGRAM_WORDS, wrap_target=rp.WRAP_TARGET, wrap=rp.WRAP):
        self.prog = words
        self.wrap_target = wrap_target
        self.wrap = wrap
        self.pc = 0
        self.x = self.y = self.isr = 0
        self.osr = 0xDEAD  # not cleared by a restart: the driver must clear it
        self.tx = []
        self.rx = []
        self.enabled = False
        self.pin = 0
        self.levels = []  # the STEP level of every cycle run
        self.edges = 0
        self.delay = 0

    # rp2.StateMachine
    def put(self, word):
        assert len(self.tx) < 4, "put() on a full TX FIFO would block"
        assert 0 <= word < 2**30
        self.tx.append(word)

    def tx_fifo(self):
        return len(self.tx)

    def rx_fifo(self):
        return len(self.rx)

    def get(self):
        assert self.rx, "get() on an empty RX FIFO would block"
        return self.rx.pop(0)

    def active(self, v=None):
        if v is not None:
            self.enabled = bool(v)
        return self.enabled

    def restart(self):
        self.isr = 0
        self.delay = 0
        self.pc = 0  # MicroPython's restart() also jumps to the program's start

    def exec(self, word):
        assert isinstance(word, int)
        stalled = self._execute(word, executing_exec=True)
        assert not stalled, "an exec'd instruction must not stall"

    # the machine
    def _side(self, word):
        level = word >> 12 & 1
        if level and not self.pin:
            self.edges += 1
        self.pin = level

    def _src(self, s):
        return {1: self.x, 2: self.y, 3: 0, 6: self.isr, 7: self.osr}[s]

    def _set(self, d, v):
        v &= M32
        if d == 1:
            self.x = v
        elif d == 2:
            self.y = v
        elif d == 6:
            self.isr = v
        elif d == 7:
            self.osr = v
        elif d != 3:
            raise AssertionError("destination %d not modelled" % d)

    def _execute(self, word, executing_exec=False):
        """Run one instruction; return True if it stalled. Sets self.pc for program instructions."""
        self._side(word)
        op = word >> 13
        nxt = None
        if op == 0:
            cond, addr = word >> 5 & 7, word & 0x1F
            if cond == 0:
                take = True
            elif cond == 1:
                take = self.x == 0
            elif cond == 2:
                take = self.x != 0
                self.x = (self.x - 1) & M32
            elif cond == 3:
                take = self.y == 0
            elif cond == 4:
                take = self.y != 0
                self.y = (self.y - 1) & M32
            else:
                raise AssertionError("jmp condition %d not modelled" % cond)
            if take:
                nxt = addr
        elif op == 4:
            if word >> 7 & 1:  # PULL
                if self.tx:
                    self.osr = self.tx.pop(0)
                elif word >> 5 & 1:
                    return True  # block: stall
                else:
                    self.osr = self.x
            else:  # PUSH (noblock: the RX FIFO has room in every use here)
                assert len(self.rx) < 4
                self.rx.append(self.isr)
                self.isr = 0
        elif op == 3:  # OUT, shifting right
            count = word & 0x1F or 32
            self._set(word >> 5 & 7, self.osr & ((1 << count) - 1))
            self.osr >>= count
        elif op == 5:
            assert word >> 3 & 3 == 0
            self._set(word >> 5 & 7, self._src(word & 7))
        else:
            raise AssertionError("opcode %d not modelled" % op)
        if not executing_exec:
            if nxt is None:
                nxt = self.wrap_target if self.pc == self.wrap else self.pc + 1
            self.pc = nxt
            self.delay = word >> 8 & 0xF
        return False

    def cycle(self):
        if not self.enabled:
            self.levels.append(self.pin)
            return
        if self.delay:
            self.delay -= 1
        else:
            self._execute(self.prog[self.pc])
        self.levels.append(self.pin)

    def run(self, n):
        for _ in range(n):
            self.cycle()


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


def total(m):
    return m.steps_hi * STEP_RADIX + m.steps_lo


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


# -- ESP32 RMT ------------------------------------------------------------------


class RMT:
    made = 0

    def __init__(self):
        RMT.made += 1
        self.busy = False
        self.writes = []
        self.deinited = False

    def wait_done(self, timeout=None):
        assert timeout == 0, "wait_done must not block"
        return not self.busy

    def write_pulses(self, durations, data):
        assert not self.busy, "write_pulses would wait for the previous burst"
        self.writes.append((durations, data))
        self.busy = True

    def deinit(self):
        self.deinited = True


class Clock:
    def __init__(self):
        self.t = 1000

    def ticks_us(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b


def test_rmt_pulse_timing_in_ticks():
    assert pulse_ticks(2_000, 80) == (2, 1_998)  # 1 us ticks
    assert pulse_ticks(2_000, 8) == (20, 19_980)  # 100 ns ticks
    assert pulse_ticks(3, 1) == (160, 80)  # 12.5 ns ticks: 2 us high rounded up, the rest low
    with pytest.raises(ValueError, match="not a whole number of RMT ticks"):
        pulse_ticks(2_001, 7)
    with pytest.raises(ValueError, match="does not fit the ESP32 RMT at clock_div 1"):
        pulse_ticks(2_000, 1)
    assert burst(2, 1_998, 3) == (2, 1_998, 2, 1_998, 2, 1_998)


def test_rmt_stepper_writes_prebuilt_bursts_and_never_waits():
    RMT.made = 0
    clock = Clock()
    rmts = []

    def factory():
        rmts.append(RMT())
        return rmts[-1]

    m = RmtStepper(factory, StepperConfig("A4988", 16, 2_000), clock, 80, ms_pins=(Pin(), Pin(), Pin()))
    m.step(3)
    assert rmts[0].writes == [((2, 1_998) * 3, 1)]
    assert rmts[0].writes[0][0] is m._bursts[2]  # built once, not per call
    m.step(10)  # busy: waits in the backlog
    assert len(rmts[0].writes) == 1 and m.pending() == 10
    rmts[0].busy = False
    m.poll()
    assert rmts[0].writes[-1] == ((2, 1_998) * 8, 1) and m.pending() == 2
    clock.t += 2_500  # pulses 0 and 1 of the 8 have begun (at 0 and 2000 us)
    m.halt()
    assert m.dropped == 8 - 2 + 2 and total(m) == 3 + 2
    assert rmts[0].deinited and len(rmts) == 2 and m.halts == 1


# -- watchdog, buzzer, clock -----------------------------------------------------


def test_watchdog_refuses_a_timeout_the_rp2_cannot_hold_and_starts_only_when_asked():
    with pytest.raises(ValueError, match=r"^watchdog timeout must be 1..8388 ms on an rp2, not 10000$"):
        Watchdog(10_000)
    made = []

    class WDT:
        fed = 0

        def feed(self):
            WDT.fed += 1

    w = Watchdog(8_388, make_wdt=lambda ms: made.append(ms) or WDT())
    w.feed()  # not started: nothing
    assert not w.started and made == []
    w.start()
    w.start()
    w.feed()
    assert made == [8_388] and WDT.fed == 1 and w.started


def test_in_service_mode_a_timer_feeds_the_watchdog_at_half_its_timeout():
    class WDT:
        fed = 0

        def feed(self):
            WDT.fed += 1

    class Timer:
        PERIODIC = 1
        made = []

        def __init__(self):
            Timer.made.append(self)

        def init(self, period, mode, callback):
            self.period, self.mode, self.callback = period, mode, callback

    w = Watchdog(8_388, make_wdt=lambda ms: WDT(), make_timer=Timer)
    assert w.keep_fed() is False and Timer.made == []  # never started: nothing to keep fed
    w.start()
    assert w.keep_fed() is True and WDT.fed == 1  # fed at once, then by the timer
    [timer] = Timer.made
    assert (timer.period, timer.mode) == (4_194, Timer.PERIODIC)
    # held by the module, which the REPL keeps, not only by the pump's objects, which go (firmware/main.py)
    assert sys.modules[Watchdog.__module__]._service_timer is timer
    for _ in range(3):
        timer.callback(timer)
    assert WDT.fed == 4
    assert w.keep_fed() is False and len(Timer.made) == 1  # one timer, however often asked
    untimed = Watchdog(100, make_wdt=lambda ms: WDT())
    untimed.start()
    assert untimed.keep_fed() is False  # a board without a timer: the REPL has the timeout to finish


class PWM:
    def __init__(self):
        self.calls = []

    def freq(self, f):
        self.calls.append(("freq", f))

    def duty_u16(self, d):
        self.calls.append(("duty", d))


class _Aio:
    TimeoutError = asyncio.TimeoutError

    def __init__(self):
        self.slept = []

    async def sleep_ms(self, ms):
        self.slept.append(ms)


@pytest.mark.parametrize("priority,pulses", [(3, 10), (2, 3), (1, 2)])
def test_buzzer_patterns(monkeypatch, priority, pulses):
    import hal.buzzer as bz

    aio = _Aio()
    monkeypatch.setattr(bz, "asyncio", aio)
    pwm = PWM()
    b = bz.Buzzer(pwm)
    asyncio.run(b.play(priority))
    assert pwm.calls.count(("duty", 32768)) == pulses and pwm.calls[-1] == ("duty", 0)
    assert ("freq", 880) in pwm.calls
    if priority == 3:  # two bursts of 5: a longer gap between them
        gaps = [ms for ms in aio.slept if ms != 150]
        assert gaps == [100] * 4 + [400] + [100] * 4
    with pytest.raises(ValueError, match=r"priority must be 1 \(low\), 2 \(medium\) or 3 \(high\) for the buzzer"):
        asyncio.run(b.play(4))


class RTC:
    def __init__(self, dt):
        self.dt = dt

    def datetime(self, dt=None):
        if dt is None:
            return self.dt
        self.dt = dt


def test_rtc_seconds_since_1970_both_ways():
    for days in (0, 1, 59, 60, 365, 10_957, 11_016, 20_000, 47_482, 2 * 146_097 - 1000):
        d = datetime.date(1970, 1, 1) + datetime.timedelta(days=days)
        assert days_from_civil(d.year, d.month, d.day) == days
        assert civil_from_days(days) == (d.year, d.month, d.day)
    clock = BoardClock(RTC((2026, 3, 1, 6, 12, 34, 56, 0)), ticks_us=lambda: 0, ticks_diff=lambda a, b: a - b)
    expect = int((datetime.datetime(2026, 3, 1, 12, 34, 56) - datetime.datetime(1970, 1, 1)).total_seconds())
    assert clock.rtc_seconds() == expect
    clock.set_rtc_seconds(expect + 86_400 * 30 + 1)
    assert clock._rtc.dt == (2026, 3, 31, 1, 12, 34, 57, 0)  # a Tuesday: weekday 1 (0 = Monday)
    with pytest.raises(ValueError, match="RTC time must be 1970..2099"):
        clock.set_rtc_seconds(-1)
    assert BoardClock(None, ticks_us=int, ticks_diff=int).rtc_seconds() is None


# -- boards ---------------------------------------------------------------------

BOARDS = ["rp2_pico", "esp32_devkit"]


@pytest.mark.parametrize("name", BOARDS)
def test_board_pins_are_each_used_once_and_constants_are_sane(name):
    board = importlib.import_module("boards." + name)
    pins = list(board.PINS.values())
    assert len(pins) == len(set(pins)), board.PINS
    assert {"step", "dir", "enable", "hx711_dout", "hx711_sck", "i2c_sda", "i2c_scl", "battery_adc", "buzzer"} <= set(
        board.PINS
    )
    assert board.MPY_ARCH == {"rp2_pico": "armv6m", "esp32_devkit": "xtensawin"}[name]
    assert board.STEP_VOLUME_PL == 52_083 and 0 < board.MAX_SLEEP_US <= 2**29 - 1
    StepperConfig(board.DRIVER, board.MICROSTEPS, board.STEP_MOTION_US)


class FakeParts:
    """hal.parts with no hardware: records what the board built."""

    def __init__(self, with_gauge):
        self.built = []
        self.with_gauge = with_gauge

    def pin_out(self, n, value=0):
        self.built.append(("out", n))
        return Pin(value)

    def pin_in(self, n, pull=None):
        self.built.append(("in", n))
        return Pin(1)

    def i2c(self, bus, sda, scl, freq=100_000):
        self.built.append(("i2c", sda, scl))
        return I2C({0x08: 0x0012, 0x02: 0xD000, 0x04: 0x5A80})

    def find_i2c(self, bus, address):
        return self.with_gauge

    def adc(self, n, atten=None):
        self.built.append(("adc", n))
        return ADC(40_000)

    def pwm(self, n):
        self.built.append(("pwm", n))
        return PWM()

    def rtc(self):
        return RTC((2026, 1, 1, 3, 0, 0, 0, 0))

    def irq_guard(self):
        return (lambda: 0), (lambda s: None)

    def irq_edges(self):
        return "rising", "falling"

    def sleep_us(self):
        return lambda us: None

    def rp2_step_machine(self, sm_id, step):
        self.built.append(("pio", sm_id, step))
        return PioSM()

    def esp32_rmt_factory(self, channel, step, clock_div):
        self.built.append(("rmt", channel, step, clock_div))
        return RMT


@pytest.mark.parametrize("name", BOARDS)
@pytest.mark.parametrize("with_gauge", [True, False])
def test_board_make_builds_the_hardware_from_injected_parts(monkeypatch, tmp_path, name, with_gauge):
    import sys
    import types

    import hal

    fake_mp = types.ModuleType("micropython")  # stdio_serial imports it (kbd_intr) at its top
    fake_mp.const = lambda x: x
    fake_mp.kbd_intr = lambda c: None
    monkeypatch.setitem(sys.modules, "micropython", fake_mp)
    import hal.stdio_serial

    board = importlib.import_module("boards." + name)
    parts = FakeParts(with_gauge)
    for module in ("parts", "parts_rp2", "parts_esp32"):  # the fake serves all three
        monkeypatch.setattr(hal, module, parts, raising=False)
        monkeypatch.setitem(sys.modules, "hal." + module, parts)
    monkeypatch.setattr(hal.stdio_serial, "StdioSerial", lambda: "serial")
    import hal.board_clock

    monkeypatch.setattr(hal.board_clock, "_ticks_us", lambda: 0)  # CPython's time has no ticks
    monkeypatch.setattr(hal.board_clock, "_ticks_diff", lambda a, b: a - b)
    hw = board.make({"storage": str(tmp_path / "pump")})
    assert hw.serial == "serial" and hw.sim is False
    assert hw.storage is hw.key_storage and (tmp_path / "pump").is_dir()
    assert hw.clock.idle == hw.motor.poll
    assert not hw.watchdog.started
    vref = getattr(board, "BATTERY_ADC_VREF_MV", 3300)
    assert hw.battery.voltage_mv() == (4160 if with_gauge else 40_000 * vref * 2 // 65535)
    assert len(hw.random_bytes(16)) == 16
    hw.motor.step(1)
    assert total(hw.motor) == 1
    used = [b[1] for b in parts.built if b[0] in ("out", "in", "adc", "pwm")]
    used += [b[2] for b in parts.built if b[0] in ("pio", "rmt")]
    assert len(used) == len(set(used))


# -- the hot paths on MicroPython, heap locked ------------------------------------


@pytest.mark.micropython
def test_driver_hot_paths_allocate_nothing_on_the_unix_port():
    out = run_unix(MP_DIR / "drivers_heaplock.py")
    assert out.strip().splitlines()[-1] == "ok", out


# -- stall feedback -------------------------------------------------------------------------------


def test_a_stall_line_latches_until_cleared_and_its_irq_only_counts():
    from hal.stall import StallInput

    pin = Pin(0)
    stall = StallInput(pin, "rising", "falling")
    assert pin.irq_trigger == "rising" and not stall.stalled()
    pin.irq_handler(pin)  # DIAG pulsed high and fell again before anyone looked
    assert stall.stalled() and stall.events == 1
    stall.clear()
    assert not stall.stalled()
    pin.level = 1  # held high now: stalled, even with no edge counted
    assert stall.stalled()
    low = StallInput(Pin(1), "rising", "falling", active_high=False)
    assert not low.stalled() and low._pin.irq_trigger == "falling"


def test_an_encoder_reports_the_pulses_the_steps_owe_and_did_not_see():
    from hal.stall import EncoderInput

    pin = Pin(0)
    enc = EncoderInput(pin, "rising", steps_per_pulse=8, tolerance_pulses=1)
    enc.restart(1000)
    for _ in range(10):
        pin.irq_handler(pin)
    assert enc.missing(1000 + 8 * 11) == 0  # 11 owed, 10 seen: within the tolerance of one
    assert enc.missing(1000 + 8 * 12) == 1
    assert enc.missing(1000 + 8 * 12 + 7) == 1  # a part-pulse is not owed yet
    enc.restart(2000)
    assert enc.pulses == 0 and enc.missing(2000 + 8 * 3) == 2
    with pytest.raises(ValueError, match="steps_per_pulse must be at least 1 motor step per encoder pulse"):
        EncoderInput(Pin(0), "rising", steps_per_pulse=0)
