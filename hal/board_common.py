# What every real board builds the same way from its pin map (boards/rp2_pico.py,
# boards/esp32_devkit.py): the microstep straps, the USB serial link, the flash
# filesystem, the load cell, the battery monitor, the buzzer and the stall line.
# A board file keeps what differs: its pins, its constants, its step driver and
# its watchdog. `parts` is hal.parts (or the tests' stand-in for it).


def microstep_pins(parts, pins, driver, microsteps):
    """The output pins of the straps the driver uses for its microstep setting (MS1.., in order)."""
    from hal.stepper import DRIVERS

    straps = len(DRIVERS[driver][4][microsteps])
    return tuple(parts.pin_out(pins[k]) for k in ("ms1", "ms2", "ms3")[:straps])


def add_common_parts(hw, parts, pins, storage_dir, i2c_bus, divider_ohm, adc_atten=None, adc_vref_mv=3300):
    """Give hw the parts every board has (hal/__init__.py's interfaces, and the monitors)."""
    from hal.buzzer import Buzzer
    from hal.entropy import random_bytes
    from hal.file_storage import FileStorage
    from hal.hx711 import HX711
    from hal.stall import StallInput
    from hal.stdio_serial import StdioSerial

    hw.serial = StdioSerial()  # USB CDC (or the USB-UART) is stdin/stdout on MicroPython
    hw.random_bytes = random_bytes
    hw.sim = False
    hw.storage = FileStorage(storage_dir)
    hw.key_storage = hw.storage
    disable_irq, enable_irq = parts.irq_guard()
    hw.loadcell = HX711(
        parts.pin_out(pins["hx711_sck"]), parts.pin_in(pins["hx711_dout"]), 128, disable_irq, enable_irq
    )
    hw.battery = battery(parts, pins, i2c_bus, divider_ohm, adc_atten, adc_vref_mv)
    hw.buzzer = Buzzer(parts.pwm(pins["buzzer"]))
    hw.stall = StallInput(parts.pin_in(pins["diag"]), *parts.irq_edges())  # read by fault detection


def battery(parts, pins, i2c_bus, divider_ohm, adc_atten=None, adc_vref_mv=3300):
    """The MAX17048 fuel gauge if one answers on the I2C bus, else the cell's voltage divider."""
    from hal.max17048 import ADDRESS, MAX17048

    bus = parts.i2c(i2c_bus, pins["i2c_sda"], pins["i2c_scl"])
    if parts.find_i2c(bus, ADDRESS):
        gauge = MAX17048(bus)
        gauge.check()
        return gauge
    from hal.battery_adc import DividerBattery

    adc = parts.adc(pins["battery_adc"]) if adc_atten is None else parts.adc(pins["battery_adc"], adc_atten)
    return DividerBattery(adc, divider_ohm[0], divider_ohm[1], adc_vref_mv)
