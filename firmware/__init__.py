# The firmware package. It holds one name, const, which every module of firmware/, hal/ and
# boards/ imports (`from firmware import const`) instead of repeating the fallback below:
# imports go boards -> hal -> firmware (tests/tree/test_layers.py), so each layer may import it.
#
# On MicroPython const() is folded by the compiler (and mpy-cross) by its name alone, wherever
# the name was imported from: `_X = const(5)` becomes the literal 5 at each use and, the name
# being private, no global (`X = const(5)` keeps its global, for importers). tests/tree/test_const.py
# checks both on the unix port. On CPython const() is only a marker: it returns its argument.
#
# Nothing else goes here: a board loads this file first for every module.

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:  # CPython (the host, host-side unit tests): const() is only a marker there

    def const(x):
        return x
