# The motor's tally (sim only: boards/sim.py --tally FILE). The motor's
# counts (hal/sim/stepper.py) die with the process, but a power-cut test needs
# what the motor moved over all the lives of the firmware. With a Tally, the
# motor keeps its running total of steps issued (steps_hi, steps_lo: issued,
# less those halts dropped) in FILE, rewritten in place at offset 0 as one
# fixed-width record of 22 bytes:
#
#   HHHHHHHHHH LLLLLLLLLL\n     two decimal words, zero-padded to 10 digits:
#                               total = hi * STEP_RADIX (2**29) + lo
#
# The motor writes the new total BEFORE it queues the steps of a step() call,
# and after a halt() drops steps, so after a SIGKILL at any instant the file
# holds at least what the motor was ever told to move in that life: an upper
# bound of the fluid out, conservative for an over-delivery check. Each write
# is a seek and one write(2) of 22 bytes from a preallocated buffer: no
# allocation (the motor's step() runs on the dosing hot path) and no fsync (a
# killed process's writes are in the kernel's page cache: this models the
# motor, not the storage). The file starts at 0 when the Tally is made.
#
# A module of its own, imported only when a tally is asked for, so a sim
# without one carries none of it in its heap.

from firmware.scheduler import STEP_RADIX  # 2**29: the radix of the motor's two-word count

RECORD = 22  # bytes: "%010d %010d\n" % (hi, lo)


class Tally:
    """The motor's running step total in a file that outlives the process (see the header)."""

    def __init__(self, path):
        self._buf = bytearray(b"0000000000 0000000000\n")
        # Unbuffered: on MicroPython's unix port write() is a write(2) anyway; on CPython too with buffering=0.
        self._file = open(path, "wb", buffering=0)
        self.write(0, 0)

    def write(self, hi, lo):
        """Rewrite the record with the total hi * STEP_RADIX + lo (0 <= hi, lo < 10**10). No allocation."""
        buf = self._buf
        i = 9
        while i >= 0:
            buf[i] = 48 + hi % 10
            hi //= 10
            i -= 1
        i = 20
        while i >= 11:
            buf[i] = 48 + lo % 10
            lo //= 10
            i -= 1
        f = self._file
        f.seek(0)
        f.write(buf)

    def close(self):
        self._file.close()


def read_tally(path):
    """The total a tally file holds (host side), read until two reads agree: a live motor rewrites
    the record in place, and a read caught mid-rewrite could mix two totals."""
    while (total := _read_once(path)) != _read_once(path):
        pass
    return total


def _read_once(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) != RECORD or data[10:11] != b" " or data[21:22] != b"\n":
        raise ValueError("tally %s: not a %d-byte record: %r" % (path, RECORD, data))
    return int(data[0:10]) * STEP_RADIX + int(data[11:21])
