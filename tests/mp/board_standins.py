# Stand-ins, on the unix port, for what a real board's hal/parts*.py reach and cannot be real here:
# the modules `machine`, `rp2` and `esp32`, with just what the drivers use. Shared by
# tests/mp/board_boot.py (the firmware dosing on each board's drivers) and tests/mp/board_monitors.py
# (the boards' monitors).
#
#   import board_standins
#   board_standins.install("rp2_pico")   # before the board file is imported
#
# A test steers them through three module-level tables:
#   RESET[0]    what machine.reset_cause() returns
#   LEVELS      pin number -> the level an input reads once built (default: the value it was built with)
#   MODELS      pin number -> a chip on that pin: value(n, v) is called for every Pin.value() on it
import sys

RESET = [1]
LEVELS = {}
MODELS = {}


class Pin:
    OUT = 1
    IN = 0
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, n, mode=0, pull=None, value=0):
        self.n = n
        self.level = LEVELS.get(n, value)
        self.handler = None

    def value(self, v=None):
        model = MODELS.get(self.n)
        if model is not None:
            return model.value(self.n, v)
        if v is None:
            return self.level
        self.level = v

    def irq(self, handler=None, trigger=None):
        self.handler = handler


class I2C:
    def __init__(self, *args, **kwargs):
        pass

    def scan(self):
        return []  # no fuel gauge: the board falls back to its divider


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin):
        pass

    def atten(self, a):
        pass

    def read_u16(self):
        return 40_000


class PWM:
    def __init__(self, pin):
        pass

    def freq(self, f=None):
        return 0

    def duty_u16(self, d=None):
        return 0


class RTC:
    def datetime(self, t=None):
        return (2026, 12, 1, 1, 12, 0, 0, 0)


class WDT:
    def __init__(self, timeout=0):
        pass

    def feed(self):
        pass


class machine:  # a module stand-in (MicroPython makes no module objects at run time): import reads its attributes
    Pin = Pin
    I2C = I2C
    ADC = ADC
    PWM = PWM
    RTC = RTC
    WDT = WDT

    @staticmethod
    def disable_irq():
        return 0

    @staticmethod
    def enable_irq(state):
        pass

    @staticmethod
    def reset_cause():
        return RESET[0]


class machine_rp2(machine):
    # What MicroPython's rp2 port defines (ports/rp2/modmachine.c): no HARD_, SOFT_ or DEEPSLEEP_RESET.
    PWRON_RESET = 1
    WDT_RESET = 3


class machine_esp32(machine):
    # The esp32 port's five (ports/esp32/modmachine.c).
    PWRON_RESET = 1
    HARD_RESET = 2
    WDT_RESET = 3
    DEEPSLEEP_RESET = 4
    SOFT_RESET = 5


class StateMachine:
    """rp2.StateMachine as the driver uses it; the PIO makes each queued word's pulses at once."""

    def __init__(self, sm_id, prog, freq=0, sideset_base=None):
        self.pulses = 0
        self.words = []

    def active(self, v=None):
        return 1

    def restart(self):
        pass

    def exec(self, instruction):
        pass

    def get(self):
        return 0

    def tx_fifo(self):
        return 0  # drained as soon as put: the PIO keeps up with 2 ms steps

    def put(self, word):
        self.pulses += word & 0xFFFF
        self.words.append(word >> 16)


def asm_pio(**settings):
    def assemble(_program):
        from hal.rp2_stepper import PROGRAM_WORDS

        return [list(PROGRAM_WORDS)]  # what the real assembler gives (tests/hal/test_rp2_stepper.py checks it)

    return assemble


class PIO:
    OUT_LOW = 0
    SHIFT_RIGHT = 1


class rp2:
    StateMachine = StateMachine
    asm_pio = staticmethod(asm_pio)
    PIO = PIO


class RMT:
    """esp32.RMT as the driver uses it: each burst is done at once."""

    made = []

    def __init__(self, channel, pin=None, clock_div=80, idle_level=False):
        self.pulses = 0
        self.durations = None
        RMT.made.append(self)

    def wait_done(self, timeout=0):
        return True

    def write_pulses(self, durations, data=True):
        self.pulses += len(durations) // 2
        self.durations = durations

    def deinit(self):
        pass


class esp32:
    RMT = RMT


def install(board):
    """Put the stand-ins in sys.modules, `machine` with the reset constants of the board's port."""
    sys.modules["machine"] = machine_rp2 if board == "rp2_pico" else machine_esp32
    sys.modules["rp2"] = rp2
    sys.modules["esp32"] = esp32
