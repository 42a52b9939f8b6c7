# What every real board builds the same way from its pin map (boards/rp2_pico.py,
# boards/esp32_devkit.py): the microstep straps, the USB serial link, the flash
# filesystem, the load cell, the battery monitor, the buzzer, the stall line and
# the monitors of hal/__init__.py. A board file keeps what differs: its pins, its
# constants, its step driver and its watchdog. `parts` is hal.parts (or the tests'
# stand-in for it).
#
# The load cell is the reservoir sensor only once it is calibrated: its offset
# and its counts-per-mass ratio come from the board's options (pump.json's args,
# strings: see loadcell_calibration()). An uncalibrated HX711 reads raw counts as
# if they were milligrams, which the firmware would compare with the volume it
# counted and raise a false "sensor disagrees" alarm: so without a calibration
# hw.reservoir is None (no sensor) and the raw driver stays reachable as hw.loadcell.

from firmware import const

# The HX711's result is 24-bit two's complement (hal/hx711.py): a tare offset outside it is a typo.
_RAW_MIN = const(-0x800000)
_RAW_MAX = const(0x7FFFFF)
_LIMIT = const(0x1FFFFFFF)  # 2**29 - 1: HX711.set_calibration's bound on counts and mg
# mass_mg = (raw - offset) * mg // counts, with |raw - offset| < 2**24, must stay below 2**30 mg
# (firmware/intmath.muldiv makes no long int then): so mg / counts below 2**6. A real reservoir cell is
# far below it (a 1 kg, 1 mV/V cell at gain 128 gives about 1 count per mg; estimated).
_MAX_MG_PER_COUNT = const(64)

# The pump.json options of the load-cell calibration, as given on the command line (--NAME VALUE).
LOADCELL_OFFSET = "loadcell-offset"  # counts the HX711 reads with the empty reservoir in place (tare)
LOADCELL_COUNTS = "loadcell-counts"  # the calibration: this many counts above the offset ...
LOADCELL_MG = "loadcell-mg"  # ... for this many mg on the cell (a reference mass)
LOADCELL_OPTIONS = (LOADCELL_OFFSET, LOADCELL_COUNTS, LOADCELL_MG)

DIAG_FAULT = "stepper driver reports a fault (DIAG active)"


def microstep_pins(parts, pins, driver, microsteps):
    """The output pins of the straps the driver uses for its microstep setting (MS1.., in order)."""
    from hal.stepper import DRIVERS

    straps = len(DRIVERS[driver][4][microsteps])
    return tuple(parts.pin_out(pins[k]) for k in ("ms1", "ms2", "ms3")[:straps])


def int_option(options, name, low, high, unit):
    """options[name] (a string, or an int) as an int in low..high; ValueError naming the option."""
    text = str(options[name]).strip()
    digits = text[1:] if text[:1] == "-" else text
    if not digits or not digits.isdigit():  # int() would take "1_000" on CPython, maybe not on a board
        raise ValueError("--%s must be a whole number of %s, %d..%d, not %r" % (name, unit, low, high, options[name]))
    value = int(text)
    if not low <= value <= high:
        raise ValueError("--%s must be %d..%d %s, not %d" % (name, low, high, unit, value))
    return value


def hardware_options(options):
    """A real board's Hardware() keywords from its command-line options (pump.json's args), all strings:

    --storage DIR           keep the pump's files and keys in folder DIR of the flash filesystem
                            (default /pump)
    --loadcell-offset N     the HX711's reading, in counts, with the empty reservoir in place (tare)
    --loadcell-counts N     the calibration ratio: N counts above the offset ...
    --loadcell-mg M         ... for M mg on the cell (a reference mass)

    The three load-cell options go together; without them the board has no reservoir sensor
    (hw.reservoir is None; the raw HX711 is hw.loadcell, e.g. to take the readings that calibrate it).
    """
    return {"storage_dir": options.get("storage", "/pump"), "loadcell_cal": loadcell_calibration(options)}


def loadcell_calibration(options):
    """(offset counts, cal counts, cal mg) from the board's options, or None if none of the three is
    given (an uncalibrated load cell: no reservoir sensor). ValueError naming the option for a bad or
    missing value: a calibration given in part is a mistake, never a reason to guess."""
    given = [name for name in LOADCELL_OPTIONS if name in options]
    if not given:
        return None
    missing = [name for name in LOADCELL_OPTIONS if name not in options]
    if missing:
        raise ValueError(
            "the load cell calibration needs --%s too (--%s, --%s and --%s go together)"
            % (" and --".join(missing), LOADCELL_OFFSET, LOADCELL_COUNTS, LOADCELL_MG)
        )
    offset = int_option(options, LOADCELL_OFFSET, _RAW_MIN, _RAW_MAX, "HX711 counts")
    counts = int_option(options, LOADCELL_COUNTS, 1, _LIMIT, "HX711 counts")
    mg = int_option(options, LOADCELL_MG, 1, _LIMIT, "mg")
    if mg // _MAX_MG_PER_COUNT >= counts:  # mg >= 64 * counts, without the product (a long int on a board)
        raise ValueError(
            "--%s %d per --%s %d is %d mg per count or more: it must be below that (are the two swapped?)"
            % (LOADCELL_MG, mg, LOADCELL_COUNTS, counts, _MAX_MG_PER_COUNT)
        )
    return offset, counts, mg


def add_common_parts(
    hw, parts, pins, storage_dir, i2c_bus, divider_ohm, adc_atten=None, adc_vref_mv=3300, loadcell_cal=None
):
    """Give hw the parts every board has (hal/__init__.py's interfaces, and the monitors). hw.motor
    must be built already (motor_check follows its driver); loadcell_cal: loadcell_calibration()'s
    result (None: no reservoir sensor)."""
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
    hw.reservoir = None
    if loadcell_cal is not None:
        offset, counts, mg = loadcell_cal
        hw.loadcell.offset = offset
        hw.loadcell.set_calibration(counts, mg)
        hw.reservoir = hw.loadcell  # volume_nl(density): None until DOUT says a conversion is ready
    hw.battery = battery(parts, pins, i2c_bus, divider_ohm, adc_atten, adc_vref_mv)
    hw.buzzer = Buzzer(parts.pwm(pins["buzzer"]))
    from hal.stepper import FAULT_OUTPUT_DRIVERS

    # Read by fault detection; only a driver with a fault output has a DIAG line to watch (an
    # unconnected input could float high and raise false stall alarms).
    hw.stall = None
    if hw.motor.config.driver in FAULT_OUTPUT_DRIVERS:
        hw.stall = StallInput(parts.pin_in(pins["diag"]), *parts.irq_edges())
    hw.encoder = None  # no encoder on the pump head is wired
    hw.occlusion = None  # no pressure sensor or motor-load input is wired
    hw.reset_cause = reset_cause(parts)
    hw.firmware_check = firmware_check
    hw.motor_check = motor_check(hw.motor.config.driver, hw.stall)


def reset_cause(parts):
    """hw.reset_cause(): parts.reset_cause() when asked (machine.reset_cause() and the port's
    constants, hal/parts.py), not when the board is built."""

    def read():
        return parts.reset_cause()

    return read


def firmware_check():
    """hw.firmware_check(): the flashed files against their manifest. `pumpctl flash` writes both at
    the filesystem root, the folder main.py runs in (host/pumpctl/flash.py), hence the root ""."""
    from hal.manifest import check_once

    return check_once("")


def motor_check(driver, stall):
    """hw.motor_check() for this driver: with a fault output (a TMC2209's DIAG, hal/stepper.py) the
    reason while the line is active, else None; for a driver without feedback (A4988, DRV8825)
    always None, because nothing on the board can tell whether such a driver answers. The driver is
    enabled (ENN low) once the motor is built (hal/stepper.setup_pins), and a TMC2209 keeps DIAG high
    on an error until ENN goes high, so an error at power-on is still showing when this is asked."""
    from hal.stepper import FAULT_OUTPUT_DRIVERS

    if driver not in FAULT_OUTPUT_DRIVERS or stall is None:

        def blind():
            return None

        return blind

    def check():
        return DIAG_FAULT if stall.active_now() else None

    return check


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
