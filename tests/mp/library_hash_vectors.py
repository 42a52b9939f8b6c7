# The drug library's content hash and its review of changes (firmware/library.py, commands/library.py,
# framing.library_hash): the same lines on CPython and both MicroPython VMs.
from firmware import framing
from firmware.commands.library import changes, drug_changes
from firmware.druglib import DEFAULT_NAMES, DEFAULT_NUMBERS
from firmware.library import DrugLimits, Library, default_library

lib = default_library()
default_drugs = [(DEFAULT_NAMES[i], DEFAULT_NUMBERS[i]) for i in range(len(DEFAULT_NAMES))]
print("default %08x %08x" % (lib.hash, framing.library_hash(default_drugs)))
e = [list(x) for x in DEFAULT_NUMBERS]
e[0][2] = 30_000_000  # morphine daily_hard 30 mg/day: raised
e[0][4] = 48_000_000  # rate_hard 2 mg/h: raised
e[0][1] = 9_000_000  # daily_soft 9 mg/day: changed, not raised
e[1][8] = 1800  # hydromorphone lockout 30 min: shorter, raised
new = Library("site-2027.01", [DrugLimits(DEFAULT_NAMES[i], e[i]) for i in range(len(e))])
print("raised %08x %d %d" % (new.hash, changes(lib, new)[0], changes(lib, new)[1]))
print("morphine %x %x" % drug_changes(lib, new.drugs["morphine"]))
print("lockout %x %x" % drug_changes(lib, new.drugs["hydromorphone"]))
same = Library("renamed", [DrugLimits(DEFAULT_NAMES[i], DEFAULT_NUMBERS[i]) for i in range(len(e))])
print("renamed %08x %d %d" % (same.hash, changes(lib, same)[0], changes(lib, same)[1]))
newdrug = (1_000_000, 1_000_000, 2_000_000, 24_000_000, 24_000_000, 0, 0, 0, 0, 0)
one = Library("one", [lib.drugs["morphine"], DrugLimits("newdrug", newdrug)])
print("one", changes(lib, one), "%x %x" % drug_changes(lib, one.drugs["newdrug"]))
print("utf8 %08x" % framing.library_hash([("\u00b5g", newdrug), ("", (0xFFFFFFFF,) * 10)]))
