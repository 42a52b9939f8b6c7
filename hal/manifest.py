# The power-on self-test's firmware check: every file named in the manifest
# that `pumpctl flash` wrote (host/pumpctl/flash.py: `sha256sum` lines,
# "<64 hex>  <path>") is hashed again and compared. File I/O, so it lives in
# hal/; the firmware core only sees the list of problems.
#
# Boot path only: reads the manifest a line at a time and each file in 512-byte
# chunks into one buffer (a board has little RAM, and at boot it is in pieces:
# the whole manifest read at once, 4.5 KB, stopped the Pico's boot), allocates a
# few strings per file. A board's self-test calls check_once(), which forgets this
# module after the check: the running pump does not keep its code (1 KB of heap
# with the .mpy files in RAM).

from firmware.lazy import drop

MANIFEST_FILE = "manifest.sha256"
_MAX_PROBLEMS = 8  # enough to say what is wrong; the rest are counted


def _sha256_hex(path, buf):
    import binascii
    import hashlib

    h = hashlib.sha256()
    view = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return binascii.hexlify(h.digest()).decode()


def check_once(root=""):
    """check(root), then this module forgotten (imported again if asked for again)."""
    try:
        return check(root)
    finally:
        drop(__name__)


def check(root=""):
    """The problems found (a list of short texts, [] if every file matches), or
    None if root holds no manifest (a simulator run from the source tree)."""
    prefix = root + "/" if root and not root.endswith("/") else root
    try:
        manifest = open(prefix + MANIFEST_FILE)
    except OSError:
        return None
    problems = []
    extra = 0
    buf = bytearray(512)
    checked = 0
    with manifest:
        while True:
            line = manifest.readline()
            if not line:
                break
            line = line.rstrip("\n")
            if not line.strip():
                continue
            digest, _, name = line.partition("  ")
            if len(digest) != 64 or not name:
                why = "manifest line not understood: " + line[:40]
            else:
                try:
                    got = _sha256_hex(prefix + name, buf)
                    why = None if got == digest.lower() else name + " differs from the manifest"
                except OSError:
                    why = name + " is missing"
                checked += 1
            if why is not None:
                if len(problems) < _MAX_PROBLEMS:
                    problems.append(why)
                else:
                    extra += 1
    if not checked and not problems:
        problems.append("the manifest names no file")
    if extra:
        problems.append("and %d more" % extra)
    return problems
