# What a board does when the pump firmware cannot start (a MemoryError while
# importing, a driver that raised, a corrupt module): the motor stays off and
# the link still answers, so the host is told why in words instead of meeting
# silence. Every request is refused with ERR_NOT_STARTED and the reason; only
# SERVICE is obeyed, without a key, so the board can be flashed (nothing doses
# on a board in this state, and its REPL is what a flasher needs).
#
# It reads the stdio link byte by byte with blocking reads (no asyncio: the
# fewer modules it needs, the likelier it runs in what memory is left).

import sys

import micropython

from firmware import codec, framing


def serve(why):
    """Answer frames until SERVICE; why: the reason (its first 200 bytes go on the wire)."""
    micropython.kbd_intr(-1)  # frames may hold 0x03
    read = sys.stdin.buffer.read
    write = sys.stdout.buffer.write
    reason = framing.error_values(codec.ERR_NOT_STARTED, "boot", why)
    decoder = framing.FrameDecoder()
    while True:
        b = read(1)
        if not b:
            return  # the line closed (a simulator whose host went away)
        if not decoder.feed(b[0]):
            continue
        seq = 0
        msg_type = 0
        try:
            msg_type, seq, _payload, _mac, _signed = decoder.frame()
        except framing.FrameError as e:
            seq = e.seq or 0
        if msg_type == codec.SERVICE:
            write(framing.encode_frame(codec.SERVICE | codec.REPLY, seq, b""))
            micropython.kbd_intr(3)  # the REPL takes the line back
            return
        payload = framing.encode_reply(codec.ERROR, reason)
        write(framing.encode_frame(codec.ERROR, seq, payload))
