# The baseline for bench/link_bench.py: the cheapest possible "pump" on the
# same VM and the same pty. It reads its stdin a byte at a time, as the
# firmware's link does (hal/stdio_serial.py), and answers every frame (bytes
# up to a 0x00) with REPLY_LEN bytes ending in 0x00, doing nothing else.
#
#   micropython bench/mp/echo.py REPLY_LEN
#
# No raw mode here: the launcher already made the pty raw, as for the firmware.

import sys

reply = b"\x01" * (int(sys.argv[1]) - 1) + b"\x00"
stdin = sys.stdin.buffer
stdout = sys.stdout.buffer
byte = bytearray(1)
# pumpctl.sim.Simulator waits for this line on stderr before it hands out the port.
sys.stderr.write("pump ready: echo, reply %d bytes\n" % len(reply))
while stdin.readinto(byte) == 1:
    if byte[0] == 0:
        stdout.write(reply)
        stdout.flush()
