"""Test doubles of the hardware the real-board drivers (hal/) drive, recording what was driven: pins,
the HX711's serial side, an I2C bus, an ADC, a PWM, the RTC, the ESP32's RMT channel, the RP2040's PIO
state machine (a cycle-counting interpreter of exactly the step program's instructions), and hal.parts
as a whole (FakeParts, for the board files). Each driver's tests (tests/hal/test_<driver>.py) use them."""

from firmware.scheduler import STEP_RADIX
from hal import rp2_stepper as rp


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


class AutoChip(HX711Chip):
    def rise(self):
        super().rise()
        if self.pulses[-1] == 25:
            self.end_read()


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


class ADC:
    def __init__(self, raw):
        self.raw = raw

    def read_u16(self):
        return self.raw


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


class PWM:
    def __init__(self):
        self.calls = []

    def freq(self, f):
        self.calls.append(("freq", f))

    def duty_u16(self, d):
        self.calls.append(("duty", d))


class RTC:
    def __init__(self, dt):
        self.dt = dt

    def datetime(self, dt=None):
        if dt is None:
            return self.dt
        self.dt = dt


def total(m):
    return m.steps_hi * STEP_RADIX + m.steps_lo


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
