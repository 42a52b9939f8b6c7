# The drug library's content hash and its review of changes (firmware/library.py,
# codec.library_hash): the same lines on CPython and both MicroPython VMs.
from firmware import codec
from firmware.druglib import DEFAULT_LIBRARY
from firmware.library import Library, changes, default_library, field_change

lib = default_library()
print("default %08x %08x" % (lib.hash, codec.library_hash(DEFAULT_LIBRARY)))
e = [list(x) for x in DEFAULT_LIBRARY]
e[0][3] = "30 mg/day"
e[0][5] = "2 mg/h"
e[0][2] = "9 mg/day"
e[1][9] = "30 min"
new = Library("site-2027.01", e)
print("raised %08x %d %d" % (new.hash, changes(lib, new)[0], changes(lib, new)[1]))
m = new.drugs["morphine"]
print("fields", [field_change(lib, m, f) for f in range(12)])
print("lockout", field_change(lib, new.drugs["hydromorphone"], 9))
same = Library("renamed", [[f for f in x] for x in DEFAULT_LIBRARY])
print("renamed %08x %d %d" % (same.hash, changes(lib, same)[0], changes(lib, same)[1]))
one = Library(
    "one",
    [
        DEFAULT_LIBRARY[0],
        ("newdrug", "1 mg/mL", "1 mg/day", "2 mg/day", "1 mg/h", "1 mg/h", "0 mg", "0 mg", "0 mg", "0 min", "0", "x"),
    ],
)
print("one", changes(lib, one), [field_change(lib, one.drugs["newdrug"], f) for f in range(12)])
print("utf8 %08x" % codec.library_hash([["a", "\u00b5g"], ["", "ab"]]))
