# Prints the codec's frames for fixed inputs.
# Run on CPython, the unix port and the 32-bit MicroPython: the output must
# be identical, byte for byte, or the two ends of the link would disagree.
import binascii

import schema

from firmware import auth, codec, framing, keyring


def hexs(b):
    return binascii.hexlify(b).decode()


SESSION = auth.Hmac(bytes(range(32)))

for msg_type in sorted(schema.FIELDS):
    for is_reply in (False, True):
        fields = schema.reply_fields(msg_type) if is_reply else schema.request_fields(msg_type)
        values = []
        for i, (_name, kind) in enumerate(fields):
            if kind == "s":
                values.append("v%d µL" % i)
            elif kind == "y":
                values.append(bytes(range(i, i + 16)))
            else:
                values.append({"B": 0xA5, "H": 0xBEEF, "I": 0xDEADBEEF}[kind] - i)
        payload = schema.encode_fields(fields, values)
        kind = msg_type | (codec.REPLY if is_reply else 0)
        for session in (None, SESSION):  # plain, and with a session MAC
            wire = framing.encode_frame(kind, 0x12345678 + msg_type, payload, session)
            dec = framing.FrameDecoder()
            got = None
            for b in wire:
                if dec.feed(b):
                    got = dec.frame()
            back = schema.decode_fields(fields, got[2])
            mac_ok = session is None or got[3] == session.digest(got[4])[: auth.MAC_BYTES]
            verdict = "ok" if back == values and mac_ok else "MISMATCH"
            print(msg_type, "reply" if is_reply else "request", hexs(wire), verdict)

# The session handshake's values, from fixed keys and nonces.
key, pump_nonce, host_nonce = bytes(range(32)), bytes(range(16)), bytes(range(16, 32))
for role in (auth.ROLE_PATIENT, auth.ROLE_CLINICIAN):
    print("proof", role, hexs(auth.proof(key, role, pump_nonce, host_nonce)))
    print("pump proof", role, hexs(auth.pump_proof(key, role, pump_nonce, host_nonce)))
    print("session key", role, hexs(auth.session_key(key, role, pump_nonce, host_nonce)))
    print("wrap pad", role, hexs(keyring.wrap_pad(SESSION, role, 0xFEDCBA98)))
print("key record", hexs(keyring.encode_keys("pump-1", key, bytes(32))))

for damaged in (b"\x01\x00", b"\x05\x01\x02\x00", bytes([3, 1, 2, 0]), b"\xff" * 300 + b"\x00"):
    dec = framing.FrameDecoder()
    for b in damaged:
        if dec.feed(b):
            try:
                print("accepted", dec.frame())
            except framing.FrameError as e:
                print("refused", e.code, e.message)

# Text fields that are not UTF-8, some of which MicroPython's own decode() takes.
for raw in (b"0\xc0\xae5 mL/day", b"\xc0\x80", b"\xe0\x81\xa8", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff", b"\xc3"):
    try:
        print("accepted", schema.decode_fields((("line", "s"),), bytes((len(raw),)) + raw))
    except framing.FrameError as e:
        print("refused", e.code, e.message)
