"""The host's view of the wire's messages. firmware/codec.py keeps every message's fields as one
bytes table (codec.MESSAGES) that the pump walks where it lies; the lists and dicts here are built
from it for the host, so none of them is on the pump's heap:

    request_fields(t), reply_fields(t)  a message's fields as ((name, kind), ...)
    FIELDS        {type: (request fields, reply fields)} of every message
    ROLE_NEEDED   {command: the role it needs} of each command that needs one
    ALARM_PRIORITY {alarm: its priority}
    SIZES         {kind: bytes} of the integer field kinds
    encode_fields, decode_fields  a payload packed or unpacked by such a list

Written for MicroPython too (no f-strings, no typing): the tests that run on the MicroPython VMs
import it beside the firmware (tests/vms.py)."""

from firmware import codec, framing

SIZES = {"B": 1, "H": 2, "I": 4}


def _fields(span):
    text = codec.MESSAGES[span >> 16 : span & 0xFFFF].decode()
    return tuple((f[: f.index(":")], f[f.index(":") + 1 :]) for f in text.split())


def request_fields(msg_type):
    """Fields of msg_type's request, ((name, kind), ...); KeyError if it is no message."""
    return _fields(codec.span(msg_type, False))


def reply_fields(msg_type):
    """Fields of the reply to msg_type (or of ERROR, TELEMETRY_DATA themselves)."""
    return _fields(codec.span(msg_type, True))


def message_types():
    """Every message type, in the order of codec.MESSAGES."""
    out = []
    table = codec.MESSAGES
    p = 0
    while p < len(table):
        out.append(table[p])
        p = table.find(b"\n", p + 2) + 1  # past the type byte, which may be a "\n" (AUTH_END)
    return out


def _spec(fields):
    """[(name, kind), ...] as the fields of a record: b"name:kind name:kind ..."."""
    return " ".join(name + ":" + kind for name, kind in fields).encode()


def encode_fields(fields, values):
    """Pack values (in the order of fields, [(name, kind), ...]) into a payload; framing.FrameError
    if one does not fit its field."""
    spec = _spec(fields)
    return framing.encode_spec(spec, 0, len(spec), values)


def decode_fields(fields, payload):
    """Unpack a payload into a list of values; framing.FrameError if it does not fit."""
    spec = _spec(fields)
    return framing.decode_spec(spec, 0, len(spec), payload)


FIELDS = {t: (request_fields(t), reply_fields(t)) for t in message_types()}
ROLE_NEEDED = {t: codec.role_needed(t) for t in message_types() if codec.role_needed(t)}
ALARM_PRIORITY = {c: codec.alarm_priority(c) for c in range(1, 256) if codec.alarm_priority(c)}
