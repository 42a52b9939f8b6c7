# The board files' one way to the hardware: they may not import machine,
# rp2 or esp32 themselves (tests/test_layers.py), so they build their pins,
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


def find_i2c(bus, address):
    """True if a device answers at address on the bus."""
    try:
        return address in bus.scan()
    except OSError:
        return False
