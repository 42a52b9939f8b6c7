# Import, use, forget: a program's checks are on the pump's heap only while
# they check.
#
# Building a program from the items a host sent and checking it (program_items.py,
# program_check.py: pumpctl reads what a person typed, the pump keeps no parser)
# is work of a command, and the running pump needs none of it: it holds only the
# checked values. A
# module stays on the heap for as long as sys.modules (or its package) names
# it, or any function of it is alive (a function's globals are its module's).
# So call() imports a parser for one call and then forgets the text modules
# (TRANSIENT) that call brought in: once the call returns they are garbage. A
# module of the running pump that a call happens to import first stays. A call
# made inside another finds its modules already loaded and leaves them to the
# outer one, so one programming step imports each parser once.
#
# What a call returns must hold no function or class of a forgotten module:
# Program (program.py), DrugLimits and Library (library.py) and Refusal
# (errors.py) are in modules that stay.
#
# Command path only: an import allocates, and a collection comes before it.

import gc
import sys

# The modules that are only ever loaded for a call (and the factory library's text, the boot, a saved
# record's restore and its reading, the reservoir's forecast, and the guard's rewrites of its records at a
# restore or a calibration).
TRANSIENT = (
    "firmware.program_items",
    "firmware.program_check",
    "firmware.program_write",
    "firmware.program_rows",
    "firmware.program_saved",
    "firmware.druglib",
    "firmware.boot",
    "firmware.restore",
    "firmware.forecast",
    "firmware.guard_records",
    "firmware.keyring",
    "firmware.library_check",
    "firmware.store_read",
)


def call(module, name, *args):
    """module.name(*args), with module imported for the call and forgotten after it."""
    before = loaded()
    if module not in sys.modules:
        # A collection first: loading a module needs blocks of a few KB (a long
        # function's bytecode), which a heap full of a command's garbage may lack
        # even when a collection in the middle of the import frees plenty.
        gc.collect()
    try:
        return getattr(__import__(module, None, None, (name,)), name)(*args)
    finally:
        forget(before)


def loaded():
    """Which TRANSIENT modules are loaded now: bit i for TRANSIENT[i] (a small int, where a copy of
    sys.modules' names was a 0.3 KB tuple a call)."""
    bits = 0
    for i in range(len(TRANSIENT)):
        if TRANSIENT[i] in sys.modules:
            bits |= 1 << i
    return bits


def forget(before):
    """Forget the TRANSIENT modules imported since loaded() gave before."""
    for i in range(len(TRANSIENT)):
        key = TRANSIENT[i]
        if not before >> i & 1 and key in sys.modules:
            drop(key)


def drop(key):
    """Forget module key ("firmware.boot", "hal.manifest"): out of sys.modules, and out of its package,
    which an import binds it in too, so that its code can be collected (imported again if asked for)."""
    sys.modules.pop(key, None)
    dot = key.rfind(".")
    package = sys.modules.get(key[:dot])
    name = key[dot + 1 :]
    if package is not None and hasattr(package, name):
        delattr(package, name)


def values(module, *names):
    """The values module.name of each name, with module imported for the look and forgotten after."""
    before = loaded()
    if module not in sys.modules:
        gc.collect()
    try:
        m = __import__(module, None, None, names)
        return tuple(getattr(m, name) for name in names)
    finally:
        forget(before)
