# Raspberry Pi Pico (RP2040): step pulses from PIO, the USB CDC link on
# stdin/stdout, files on the flash filesystem (littlefs) in /pump.
#
# Wiring (GPn = the Pico's GPIO n; physical pin in brackets):
#
#   signal              Pico            to
#   STEP                GP2  [4]        driver STEP   (PIO side-set pin)
#   DIR                 GP3  [5]        driver DIR
#   ENABLE              GP4  [6]        driver EN/nENBL, active low: add a 10 k pull-up to 3V3 so the driver
#                                       stays off while the RP2040's pads still pull down, before boot
#   MS1 / MS2 / MS3     GP5 / GP6 / GP7 [7, 9, 10]   microstep straps (TMC2209: MS1, MS2 only; GP7 unused)
#   HX711 DOUT          GP8  [11]       HX711 DOUT (input)
#   HX711 PD_SCK        GP9  [12]       HX711 PD_SCK
#   I2C0 SDA / SCL      GP20 / GP21 [26, 27]  MAX17048 SDA / SCL (4.7 k pull-ups to 3V3 if the module has none)
#   battery ADC         GP26 [31] ADC0  midpoint of a 100 k / 100 k divider from the cell (+); 3V3 reference
#   buzzer              GP15 [20]       buzzer (through a transistor for a magnetic one), PWM
#   DIAG                GP10 [14]       TMC2209 DIAG: StallGuard's stall output (hal/stall.py)
#   GND                 [3, 8, ...]     driver, HX711, gauge and divider ground
#
# Not wired: no encoder on the pump head and no occlusion input (pressure sensor or motor load), so
# hw.encoder and hw.occlusion are None; the motor's only feedback is the TMC2209's DIAG line
# (hw.stall, and hw.motor_check() at power-on).
#
# The driver's logic supply VDD is the Pico's 3V3 [36]; its motor supply is
# separate (VMOT, with a 47-100 uF capacitor at the driver).

NAME = "rp2_pico"

# What mpy-cross compiles this board's modules for (-march): the RP2040's Cortex-M0+.
MPY_ARCH = "armv6m"

# Calibrated volume per motor step: from the bench calibration of the pump
# head on this board (pumpctl bench). Until calibrated it is the simulator's
# 52.083 nL (a head moving 62.5 uL per 1200 steps), which a real head will
# not match: calibrate before dosing anything.
STEP_VOLUME_PL = 52_083

# One step's period (STEP pulse plus the rest before the next): 2 ms, as on
# the sim; the PIO makes it exactly (hal/rp2_stepper.py: interval 1996).
STEP_MOTION_US = 2_000

# The dosing loop wakes at least this often, to poll the motor and serve the link.
MAX_SLEEP_US = 50_000

RESERVOIR_ML = 20

DRIVER = "TMC2209"
MICROSTEPS = 16

PINS = {
    "step": 2,
    "dir": 3,
    "enable": 4,
    "ms1": 5,
    "ms2": 6,
    "ms3": 7,
    "hx711_dout": 8,
    "hx711_sck": 9,
    "i2c_sda": 20,
    "i2c_scl": 21,
    "battery_adc": 26,
    "buzzer": 15,
    "diag": 10,  # TMC2209 DIAG (StallGuard): high on a stall
}
I2C_BUS = 0
PIO_SM = 0
BATTERY_DIVIDER_OHM = (100_000, 100_000)  # top, bottom
WATCHDOG_MS = 8_000


class Hardware:
    def __init__(self, storage_dir="/pump", loadcell_cal=None):
        """loadcell_cal: (offset, counts, mg) from hal.board_common.loadcell_calibration(), or None."""
        from hal import parts, parts_rp2
        from hal.board_clock import BoardClock
        from hal.board_common import add_common_parts, microstep_pins
        from hal.rp2_stepper import PioStepper
        from hal.stepper import StepperConfig
        from hal.watchdog import Watchdog

        p = PINS
        self.motor = PioStepper(
            parts_rp2.rp2_step_machine(PIO_SM, p["step"]),
            StepperConfig(DRIVER, MICROSTEPS, STEP_MOTION_US),
            dir_pin=parts.pin_out(p["dir"]),
            enable_pin=parts.pin_out(p["enable"], 1),  # off until configured
            ms_pins=microstep_pins(parts, p, DRIVER, MICROSTEPS),
            sleep_us=parts.sleep_us(),
        )
        self.clock = BoardClock(parts.rtc(), idle=self.motor.poll)
        add_common_parts(self, parts, p, storage_dir, I2C_BUS, BATTERY_DIVIDER_OHM, loadcell_cal=loadcell_cal)
        # Not started: the firmware starts it (it cannot be stopped). In service mode a virtual timer feeds it.
        self.watchdog = Watchdog(WATCHDOG_MS, make_timer=lambda: parts.timer(-1))


def make(options):
    """Build the board's hardware from the command line's options (pump.json's args):
    hal/board_common.hardware_options() reads them (--storage, the load cell's calibration)."""
    from hal.board_common import hardware_options

    return Hardware(**hardware_options(options))
