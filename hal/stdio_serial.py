# The host link over the board's stdin/stdout. On a MicroPython board that is
# the USB CDC serial port; on the simulator it is a pty. Binary frames may
# hold 0x03, so Ctrl-C must not interrupt the firmware (kbd_intr(-1)).
#
# Reads never block the dosing task: read_byte() awaits readability through
# the pump's task loop (firmware/tasks.py), and one byte is read at a time
# because a larger read blocks until the whole buffer is full.

import select
import sys

import micropython

from firmware import tasks


class StdioSerial:
    def __init__(self):
        micropython.kbd_intr(-1)
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(self._in, select.POLLIN)
        self._out_poll = select.poll()
        self._out_poll.register(self._out, select.POLLOUT)
        self._byte = bytearray(1)

    async def read_byte(self):
        """Wait for the next byte from the host and return it (0..255)."""
        while True:
            await tasks.readable(self._in)
            try:
                got = self._in.readinto(self._byte)
            except OSError:  # no host on the line (a pty with no reader)
                got = 0
            if got == 1:
                return self._byte[0]
            await tasks.sleep_ms(100)  # closed for now: look again later

    def read_ready(self):
        """Return the next byte if one is already waiting, else -1."""
        for _ in self._poll.ipoll(0):
            try:
                if self._in.readinto(self._byte) == 1:
                    return self._byte[0]
            except OSError:
                pass
        return -1

    def write(self, data):
        self._out.write(data)

    def release(self):
        """The firmware leaves (SERVICE): give the line back to the REPL, Ctrl-C included."""
        micropython.kbd_intr(3)

    def write_ready(self):
        """True if the line can take a frame now without making the writer wait
        (the host is reading); telemetry is dropped rather than block dosing."""
        for _ in self._out_poll.ipoll(0):
            return True
        return False
