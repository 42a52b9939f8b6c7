# The board files' one way to the hardware: they may not import machine,
# rp2 or esp32 themselves (tests/tree/test_layers.py), so they build their pins,
# buses and peripherals through these, and inject them into the drivers.
# Everything is imported when called, never at import time, so a board file
# (and this) can be read on CPython. What only one port has lives beside it,
# in hal/parts_rp2.py and hal/parts_esp32.py, so each board loads (and is
# type-checked against) only what its own port offers.


def pin_out(n, value=0):
    from machine import Pin

    return Pin(n, Pin.OUT, value=value)


def pin_in(n, pull=None):
    from machine import Pin

    if pull is None:
        return Pin(n, Pin.IN)
    return Pin(n, Pin.IN, pull)


def irq_edges():
    """(Pin.IRQ_RISING, Pin.IRQ_FALLING), for drivers that count edges (hal/stall.py)."""
    from machine import Pin

    return Pin.IRQ_RISING, Pin.IRQ_FALLING


def i2c(bus, sda, scl, freq=100_000):
    from machine import I2C, Pin

    return I2C(bus, sda=Pin(sda), scl=Pin(scl), freq=freq)


def adc(n, atten=None):
    from machine import ADC, Pin

    a = ADC(Pin(n))
    if atten is not None:  # ESP32: e.g. ADC.ATTN_11DB for about 0..3.1 V
        a.atten(getattr(ADC, atten))
    return a


def pwm(n):
    from machine import PWM, Pin

    p = PWM(Pin(n))
    p.duty_u16(0)
    return p


def timer(n):
    """A machine.Timer: n is -1 for a virtual (software) timer on rp2, 0..3 for an ESP32's hardware ones."""
    from machine import Timer

    return Timer(n)


def rtc():
    from machine import RTC

    return RTC()


def irq_guard():
    """(disable_irq, enable_irq) of machine, for bit-banged timing (hal/hx711.py)."""
    import machine

    return machine.disable_irq, machine.enable_irq


def sleep_us():
    import time

    return time.sleep_us


# machine.reset_cause()'s constants, by what they mean to the pump. The ports name different sets:
#   rp2    PWRON_RESET (1), WDT_RESET (3) only. reset_cause() is WDT_RESET whenever the watchdog's
#          REASON register is set (pico-sdk watchdog_caused_reboot()), and machine.reset() itself
#          reboots through the watchdog (watchdog_reboot()), so a machine.reset() -- the one that
#          `pumpctl flash` ends with -- reads "watchdog" too; power-on and the RUN pin read PWRON_RESET
#          (MicroPython ports/rp2/modmachine.c, mp_machine_reset_cause; read, not run on a Pico).
#   esp32  PWRON_RESET 1, HARD_RESET 2 (the EN pin), WDT_RESET 3, DEEPSLEEP_RESET 4, SOFT_RESET 5
#          (esp_restart(), which machine.reset() calls); 0 for a cause it does not map (SDIO ...).
#          Seen in an older ports/esp32/modmachine.c (rtc_get_reset_reason), which also counts a
#          brown-out as WDT_RESET; how today's port (esp_reset_reason()) sorts brown-outs and panics
#          was NOT verified here.
# A wake from deep sleep restarts the program while power stayed on, as a reset does (the pump
# never sleeps, so it means someone else's code did): "reset". A soft reset (Ctrl-D) restarts no
# chip: reset_cause() then still says why the chip last started.
_RESET_CAUSES = (
    ("PWRON_RESET", "power"),
    ("WDT_RESET", "watchdog"),
    ("HARD_RESET", "reset"),
    ("SOFT_RESET", "reset"),
    ("DEEPSLEEP_RESET", "reset"),
)


def reset_cause_name(machine):
    """machine.reset_cause() as "power", "watchdog", "reset" or "unknown", by the constants this port
    has (getattr: a constant, or a reset_cause(), that the port lacks never raises)."""
    read = getattr(machine, "reset_cause", None)
    if read is None:
        return "unknown"
    cause = read()
    for name, meaning in _RESET_CAUSES:
        value = getattr(machine, name, None)
        if value is not None and cause == value:
            return meaning
    return "unknown"


def reset_cause():
    """Why the board last started (hal/__init__.py: reset_cause())."""
    import machine

    return reset_cause_name(machine)


def find_i2c(bus, address):
    """True if a device answers at address on the bus."""
    try:
        return address in bus.scan()
    except OSError:
        return False
