# Prints the codec's frames and the units parser's answers for fixed inputs.
# Run on CPython, the unix port and the 32-bit MicroPython: the output must
# be identical, byte for byte, or the two ends of the link would disagree.
import binascii

from firmware import codec
from firmware.errors import Refusal
from firmware.units import parse_rate


def hexs(b):
    return binascii.hexlify(b).decode()


for msg_type in sorted(codec.FIELDS):
    for is_reply in (False, True):
        fields = codec.reply_fields(msg_type) if is_reply else codec.request_fields(msg_type)
        values = []
        for i, (_name, kind) in enumerate(fields):
            if kind == "s":
                values.append("v%d µL" % i)
            else:
                values.append({"B": 0xA5, "H": 0xBEEF, "I": 0xDEADBEEF}[kind] - i)
        payload = codec.encode_fields(fields, values)
        wire = codec.encode_frame(msg_type | (codec.REPLY if is_reply else 0), 0x1234 + msg_type, payload)
        dec = codec.FrameDecoder()
        got = None
        for b in wire:
            if dec.feed(b):
                got = dec.frame()
        back = codec.decode_fields(fields, got[2])
        print(msg_type, "reply" if is_reply else "request", hexs(wire), "ok" if back == values else "MISMATCH")

for damaged in (b"\x01\x00", b"\x05\x01\x02\x00", bytes([3, 1, 2, 0]), b"\xff" * 300 + b"\x00"):
    dec = codec.FrameDecoder()
    for b in damaged:
        if dec.feed(b):
            try:
                print("accepted", dec.frame())
            except codec.FrameError as e:
                print("refused", e.code, e.message)

for text in (
    "0.5 mL/day",
    "10 mL/h",
    "1 µL/h",
    "0.3333333 uL/min",
    "12 mL/h",
    "5 mg/day",
    ".5 mL/h",
    "1,5 mL/h",
    "0 mL/h",
):
    try:
        print(text, parse_rate("rate", text))
    except Refusal as e:
        print(text, "refused", e.field, e.message)
