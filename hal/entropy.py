# The board's entropy source, for session nonces (firmware/auth.py).
#
# os.urandom on MicroPython: on rp2 it reads the ring oscillator's random bit
# (ROSC), on ESP32 the hardware RNG (true random while the radio is on, and
# seeded from it otherwise), on the unix port getrandom(2). A nonce need not
# be secret, only never repeat: 16 bytes from any of these will not.

import os


def random_bytes(n):
    return os.urandom(n)
