# A real board's monitors (hal/__init__.py, "The monitors") on the unix port: boards/<NAME>.py built
# against the stand-ins of tests/mp/board_standins.py, with an HX711 on its load-cell pins that has
# one conversion ready, and the DIAG line at a level the script sets.
#
#   micropython board_monitors.py BOARD STORAGE_DIR   (run in a flashed root: firmware_check reads it)
#
# Prints one JSON line (tests/hal/test_board_monitors.py reads it).
import json
import sys

import board_standins

BOARD, STORAGE = sys.argv[1], sys.argv[2]
board_standins.install(BOARD)
board = __import__("boards." + BOARD, None, None, ("NAME",), 0)
PINS = board.PINS


class HX711Chip:
    """The HX711's serial side (its datasheet, as hal/hx711.py): DOUT low while a conversion waits;
    each PD_SCK rising edge shifts out the next bit, MSB first; after the 24 data bits and the gain
    pulses (25 for gain 128) DOUT stays high until the next conversion."""

    def __init__(self):
        self.words = []
        self.sck = 0
        self.bit = -1

    def value(self, n, v=None):
        if n == PINS["hx711_dout"]:
            if self.bit == -1:
                return 0 if self.words else 1
            if self.bit < 24:
                return (self.words[0] >> (23 - self.bit)) & 1
            return 1
        if v is None:
            return self.sck
        if v and not self.sck:
            self.bit += 1
            if self.bit == 24:  # the 25th pulse: gain 128 next; this conversion is read
                self.words.pop(0)
                self.bit = -1
        self.sck = v


class Level:
    def __init__(self, level):
        self.level = level

    def value(self, n, v=None):
        if v is None:
            return self.level
        self.level = v


chip = HX711Chip()
diag = Level(0)
board_standins.MODELS[PINS["hx711_sck"]] = chip
board_standins.MODELS[PINS["hx711_dout"]] = chip
board_standins.MODELS[PINS["diag"]] = diag

out = {}
plain = board.make({"storage": STORAGE})
out["plain"] = [plain.reservoir is None, plain.loadcell is not None, plain.encoder, plain.occlusion]

options = {"storage": STORAGE, "loadcell-offset": "-1200", "loadcell-counts": "41230", "loadcell-mg": "100000"}
hw = board.make(options)
out["calibrated"] = [hw.reservoir is hw.loadcell, hw.loadcell.offset, hw.loadcell.cal_counts, hw.loadcell.cal_mg]
volumes = [hw.reservoir.volume_nl(998)]  # no conversion ready: None
chip.words.append((-1200 + 8246) & 0xFFFFFF)  # 8246 counts above the tare: 20_000 mg
volumes.append(hw.reservoir.volume_nl(998))
volumes.append(hw.reservoir.volume_nl(998))  # read: none ready again
out["volumes"] = volumes

refused = []
for name, value in (("loadcell-offset", "8388608"), ("loadcell-counts", "12.5"), ("loadcell-mg", "1_000")):
    bad = dict(options)
    bad[name] = value
    try:
        board.make(bad)
        refused.append(None)
    except ValueError as e:
        refused.append(str(e))
partial = {"storage": STORAGE, "loadcell-mg": "100000"}
try:
    board.make(partial)
    refused.append(None)
except ValueError as e:
    refused.append(str(e))
out["refused"] = refused

causes = []
for value in range(7):
    board_standins.RESET[0] = value
    causes.append(hw.reset_cause())
out["reset_causes"] = causes

checks = [hw.motor_check()]
diag.level = 1  # the driver raises DIAG after the board was built
checks.append(hw.motor_check())
diag.level = 0
checks.append(hw.motor_check())
out["motor_checks"] = checks

out["running"] = hw.clock.running()  # the unix port's real time.ticks_us
hw.clock.ticks_us = lambda: 12345  # a counter that has stopped
out["stopped"] = hw.clock.running()

out["firmware_check"] = hw.firmware_check()
out["manifest_kept"] = "hal.manifest" in sys.modules  # the self-test's code is not kept
print(json.dumps(out))
