# Texts a host sends must not become interned names on the pump
# (tests/firmware/test_host_texts.py):
#
#   node tests/mp/run.mjs ROOT tests/mp/host_texts32.py bench/mp/heap32*.py bench/mp/program_items.py
#
# MicroPython interns a one-character str (a qstr, never freed) each time code
# indexes a str or iterates over it, for any character, CJK included. A pump that
# looked at a host's text character by character would so grow its table of names
# with every new character a host sent: a table whose next pool is 9 KB on a Pico,
# and which no restart of the firmware empties (only a reset of the board).
#
# Each round, as a clinician: a drug of the library staged under a name of new
# characters (LIB_DRUG, refused: not a drug name), a program naming a drug of new
# characters (STAGE_ITEM, then STAGE, refused: no such drug), and a site library
# committed under a version of new characters with a backslash in it (the log and
# the saved state keep it escaped); then a restart, which reads the log and the
# state back. Round 0, with characters of its own, loads every module these paths
# load; the rounds after it must add no name. Prints "NAMES round" and then
# micropython.qstr_info()'s pool line, for each round.

import gc

import micropython
from heap32_host import Host, Unmeasured
from heap32_pump import Counter, boot, make_hardware

ROUNDS = 4
CHARS = 12  # new characters in each text of a round (3 bytes each in UTF-8: under every field's limit)


def fresh(first):
    """CHARS characters from U+first on, made from their UTF-8 bytes (chr() would intern each)."""
    b = bytearray()
    for c in range(first, first + CHARS):
        b.append(0xE0 | c >> 12)
        b.append(0x80 | (c >> 6) & 0x3F)
        b.append(0x80 | c & 0x3F)
    return bytes(b).decode()


def send(host, msg_type, values):
    """One command, whatever the pump answers (its refusal is what this test provokes)."""
    host._build(msg_type, values)
    host._feed()
    host.serial.out = []
    yield


def library_version(host, version):
    """The library in force staged drug by drug under a new version, and committed."""
    from firmware import codec

    drugs = (yield from host.request(codec.LIB_GET, (0, codec.LIB_IN_FORCE)))[1]
    for d in range(drugs):
        drug = (yield from host.request(codec.LIB_GET, (d, codec.LIB_IN_FORCE)))[2:13]
        yield from host.request(codec.LIB_DRUG, [d] + drug)
    lib_hash = (yield from host.request(codec.LIB_STAGE, (version, drugs)))[0]
    yield from host.request(codec.LIB_COMMIT, (lib_hash, 0))


def steps():
    from firmware import auth, codec

    host = Host(Unmeasured(), Counter(7))
    app = boot(make_hardware())
    host.attach(app)
    first = 0x4E00
    for r in range(ROUNDS):
        name = fresh(first)
        drug = fresh(first + CHARS)
        version = "v\\" + fresh(first + 2 * CHARS)
        first += 3 * CHARS
        yield from host.authenticate(auth.ROLE_CLINICIAN)
        yield from send(host, codec.LIB_DRUG, [0, name] + [1] * codec.LIBRARY_LIMITS)
        yield from send(host, codec.STAGE_ITEM, (0, codec.ITEM_DRUG, drug, 0, 20_000_000, 0, 0, 0, 0, 0, 0))
        yield from send(host, codec.STAGE, ())
        yield from host.request(codec.DISCARD)
        yield from library_version(host, version)
        yield from host.end_session()
        # A power cut: the pump starts again from what it saved, its log and library read back.
        host.detach(app)
        app = None
        gc.collect()
        yield
        app = boot(make_hardware(provision=False))
        host.attach(app)
        if app.library.version != version:
            raise AssertionError("the library version did not come back: %r" % app.library.version)
        gc.collect()
        yield
        print("NAMES %d" % r)
        micropython.qstr_info()
    print("NAMES done")


RUN_MJS_STEPS = steps()
