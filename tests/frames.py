"""Frames built by hand, to send the pump what the codec never would."""

import zlib

from firmware import framing


def raw_frame(version, msg_type, seq, payload=b"", flags=0, mac=b""):
    """A frame with any header, a correct length and checksum, COBS-encoded."""
    return seal(bytes([version, msg_type, flags]) + seq.to_bytes(4, "little") + bytes([len(payload)]) + payload + mac)


def seal(body):
    """Any frame body (header, payload, MAC) with a correct CRC, COBS-encoded and delimited."""
    return framing.cobs_encode(body + zlib.crc32(body).to_bytes(4, "little")) + b"\x00"
