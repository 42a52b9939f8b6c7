# ESP32 DevKit (ESP32-WROOM-32): step pulses from the RMT, the USB-UART link
# on stdin/stdout, files on the flash filesystem in /pump.
#
# Wiring (GPIOn; avoids the strapping pins 0, 2, 5, 12, 15, the flash pins
# 6-11, and ADC2, which the radio takes):
#
#   signal              ESP32           to
#   STEP                GPIO26          driver STEP   (RMT channel 0)
#   DIR                 GPIO27          driver DIR
#   ENABLE              GPIO25          driver EN/nENBL, active low: add a 10 k pull-up to 3V3 so the driver
#                                       stays off through reset and boot
#   MS1 / MS2 / MS3     GPIO32 / GPIO33 / GPIO13   microstep straps
#   HX711 DOUT          GPIO34          HX711 DOUT (input-only pin)
#   HX711 PD_SCK        GPIO4           HX711 PD_SCK
#   I2C SDA / SCL       GPIO21 / GPIO22 MAX17048 SDA / SCL (4.7 k pull-ups to 3V3 if the module has none)
#   battery ADC         GPIO35 (ADC1_CH7, input-only)  midpoint of a 100 k / 100 k divider from the cell (+)
#   buzzer              GPIO23          buzzer (through a transistor for a magnetic one), LEDC PWM
#   DIAG                GPIO14          TMC2209 DIAG: StallGuard's stall output (hal/stall.py)
#   GND                 GND             driver, HX711, gauge and divider ground
#
# Not wired: no encoder on the pump head and no occlusion input (pressure sensor or motor load), so
# hw.encoder and hw.occlusion are None. DIAG exists only on a TMC2209: with the A4988 below
# (DRIVER) GPIO14 is left unconnected and hw.motor_check() cannot see the driver (always None).

NAME = "esp32_devkit"

# What mpy-cross compiles this board's modules for (-march): the ESP32's Xtensa LX6, windowed ABI.
MPY_ARCH = "xtensawin"

# Calibrated volume per motor step: from the bench calibration of the pump
# head on this board (pumpctl bench); until then the simulator's 52.083 nL,
# which a real head will not match: calibrate before dosing anything.
STEP_VOLUME_PL = 52_083

# One step's period: 2 ms, made by the RMT in 1 us ticks (hal/esp32_stepper.py).
STEP_MOTION_US = 2_000

# The dosing loop wakes at least this often, to poll the motor and serve the link.
MAX_SLEEP_US = 50_000

RESERVOIR_ML = 20

DRIVER = "A4988"
MICROSTEPS = 16

PINS = {
    "step": 26,
    "dir": 27,
    "enable": 25,
    "ms1": 32,
    "ms2": 33,
    "ms3": 13,
    "hx711_dout": 34,
    "hx711_sck": 4,
    "i2c_sda": 21,
    "i2c_scl": 22,
    "battery_adc": 35,
    "buzzer": 23,
    "diag": 14,  # TMC2209 DIAG (StallGuard): high on a stall
}
I2C_BUS = 0
RMT_CHANNEL = 0
RMT_CLOCK_DIV = 80  # 80 MHz APB / 80: 1 us ticks
BATTERY_DIVIDER_OHM = (100_000, 100_000)
BATTERY_ADC_VREF_MV = 3100  # read_u16 full scale at 11 dB attenuation, about 3.1 V: calibrate per board
# The ESP32's watchdog accepts much longer timeouts than the RP2040's; keep the same order of magnitude.
WATCHDOG_MS = 8_000
WATCHDOG_MAX_MS = 60_000


class Hardware:
    def __init__(self, storage_dir="/pump", loadcell_cal=None):
        """loadcell_cal: (offset, counts, mg) from hal.board_common.loadcell_calibration(), or None."""
        from hal import parts, parts_esp32
        from hal.board_clock import BoardClock
        from hal.board_common import add_common_parts, microstep_pins
        from hal.esp32_stepper import RmtStepper
        from hal.stepper import StepperConfig
        from hal.watchdog import Watchdog

        p = PINS
        self.clock = BoardClock(parts.rtc())
        self.motor = RmtStepper(
            parts_esp32.esp32_rmt_factory(RMT_CHANNEL, p["step"], RMT_CLOCK_DIV),
            StepperConfig(DRIVER, MICROSTEPS, STEP_MOTION_US),
            self.clock,
            clock_div=RMT_CLOCK_DIV,
            dir_pin=parts.pin_out(p["dir"]),
            enable_pin=parts.pin_out(p["enable"], 1),  # off until configured
            ms_pins=microstep_pins(parts, p, DRIVER, MICROSTEPS),
            sleep_us=parts.sleep_us(),
        )
        self.clock.idle = self.motor.poll
        add_common_parts(
            self, parts, p, storage_dir, I2C_BUS, BATTERY_DIVIDER_OHM, "ATTN_11DB", BATTERY_ADC_VREF_MV, loadcell_cal
        )
        # Not started (it cannot be stopped). In service mode hardware timer 0 feeds it.
        self.watchdog = Watchdog(WATCHDOG_MS, WATCHDOG_MAX_MS, "an ESP32", make_timer=lambda: parts.timer(0))


def make(options):
    """Build the board's hardware from the command line's options (pump.json's args):
    hal/board_common.hardware_options() reads them (--storage, the load cell's calibration)."""
    from hal.board_common import hardware_options

    return Hardware(**hardware_options(options))
