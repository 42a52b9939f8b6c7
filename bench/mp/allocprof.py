# Where a command's garbage comes from (bench/alloc_profile.py): each function of the firmware's
# modules (and each method of their classes) wrapped to note, per kind of operation of
# bench/mp/heap32.py, the most it allocated in one call, its callees included (gc.mem_alloc()
# before and after: this VM collects only between steps, so nothing is freed inside a call).
#
# Present only when bench/alloc_profile.py passes it to the VM beside heap32.py, which then calls
# install() after its imports and report() at the end. The wrappers allocate too (a tuple of the
# arguments and a dict per call), so functions called thousands of times in one operation (the
# projection's, the codec's) are left unwrapped: their callers' figures still include them.

import gc
import sys

_SKIP_MODULES = ("firmware.scheduler", "firmware.timebase", "firmware.intmath", "firmware.auth", "firmware.codec")
_SKIP_CLASSES = ("Projection", "Therapy", "Program", "FrameDecoder", "Pieces", "Timebase", "DoseScheduler")
_SKIP_FUNCTIONS = ("largest_ratio", "has_drug", "gcd", "_strength_ratio", "bucket")  # and methods of these names

_stats = [None]
_most = {}  # kind of operation -> {function: most bytes one call allocated}


def _note(name, n):
    op = _stats[0].op
    table = _most.get(op)
    if table is None:
        table = _most[op] = {}
    if n > table.get(name, 0):
        table[name] = n


def _wrap(f, name):
    def wrapper(*args, **kwargs):
        before = gc.mem_alloc()
        try:
            return f(*args, **kwargs)
        finally:
            _note(name, gc.mem_alloc() - before)

    return wrapper


def install(stats):
    """Wrap every function and method of the firmware's loaded modules; stats.op names the operation."""
    _stats[0] = stats
    function = type(install)
    modules = [
        (name, m)
        for name, m in sys.modules.items()
        if name.startswith("firmware") and name not in _SKIP_MODULES and m is not sys.modules[__name__]
    ]
    wrapped = {}
    for mname, m in modules:
        for key in dir(m):
            v = getattr(m, key)
            # named by the module that defines it, not one that imported it (its globals are that module's)
            mine = getattr(v, "__globals__", None) is getattr(m, "__dict__", 0)
            if type(v) is function and key not in _SKIP_FUNCTIONS and id(v) not in wrapped and mine:
                wrapped[id(v)] = (v, _wrap(v, mname.split(".")[-1] + "." + key))
            elif isinstance(v, type) and key not in _SKIP_CLASSES:
                for attr in list(v.__dict__):
                    method = v.__dict__[attr]
                    if type(method) is function and attr not in _SKIP_FUNCTIONS:
                        setattr(v, attr, _wrap(method, key + "." + attr))
    for _mname, m in modules:  # every module's name for a function: `from x import f` binds it too
        for key in dir(m):
            entry = wrapped.get(id(getattr(m, key)))
            if entry is not None and entry[0] is getattr(m, key):
                setattr(m, key, entry[1])
    # A command family's module is imported when one of its commands comes and forgotten when another
    # family's does (firmware/commands/__init__.py): its functions are wrapped at each import, named
    # commands.FAMILY.function (a handler itself is called through its row, which holds it unwrapped:
    # Link._serve_frame stands for it).
    commands = sys.modules["firmware.commands"]
    load = commands._load

    def load_wrapped(name):
        m = load(name)
        for key in dir(m):
            v = getattr(m, key)
            if type(v) is function and getattr(v, "__globals__", None) is m.__dict__:
                setattr(m, key, _wrap(v, "commands." + name + "." + key))
        return m

    commands._load = load_wrapped


def report(ops, most=60):
    """Print, for each kind of operation in ops, its functions by the most one call allocated
    (bench/alloc_profile.py --most shows fewer)."""
    for op in ops:
        table = _most.get(op, {})
        ranked = sorted(table.items(), key=lambda kv: -kv[1])[:most]
        print("ALLOCPROF %s\t%s" % (op, " ".join("%s=%d" % kv for kv in ranked)))
