# The host link over the board's stdin/stdout. On a MicroPython board that is
# the USB CDC serial port; on the simulator it is a pty. Binary frames may
# hold 0x03, so Ctrl-C must not interrupt the firmware (kbd_intr(-1)).
#
# Reads never block the dosing task: read_byte() awaits readability through
# asyncio, and one byte is read at a time because a larger read blocks until
# the whole buffer is full.

import asyncio
import select
import sys

import micropython


class StdioSerial:
    def __init__(self):
        micropython.kbd_intr(-1)
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._reader = asyncio.StreamReader(self._in)
        self._poll = select.poll()
        self._poll.register(self._in, select.POLLIN)
        self._out_poll = select.poll()
        self._out_poll.register(self._out, select.POLLOUT)
        self._byte = bytearray(1)

    async def read_byte(self):
        """Wait for the next byte from the host and return it (0..255)."""
        while True:
            try:
                data = await self._reader.read(1)
            except OSError:  # no host on the line (a pty with no reader)
                data = b""
            if data:
                return data[0]
            await asyncio.sleep_ms(100)  # closed for now: look again later

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
