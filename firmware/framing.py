# Framing: a message as bytes on the link, shared unchanged by the firmware
# (MicroPython) and the host (CPython). What a message says (its type, its
# fields, the role it needs) is codec.py; here its fields are packed into a
# payload by its record in codec.MESSAGES, the payload goes in a frame, and
# FrameDecoder finds the frames in a stream of bytes.
#
# A frame, before encoding:
#
#   offset  size  field
#   0       1     protocol version (codec.PROTOCOL_VERSION)
#   1       1     message type (a command, command | REPLY, ERROR or TELEMETRY_DATA)
#   2       1     flags: FLAG_MAC if the frame carries a session MAC
#   3       4     sequence number, u32 little-endian; a reply echoes its request's
#   7       1     payload length L, 0..MAX_PAYLOAD
#   8       L     payload: the message's fields, in the order of its record in codec.MESSAGES
#   8+L     M     with FLAG_MAC: the first M = auth.MAC_BYTES (16) bytes of
#                 HMAC-SHA256(session key, bytes 0..8+L-1) (auth.py); else M = 0
#   8+L+M   4     CRC-32 (IEEE, as zlib.crc32) of bytes 0..8+L+M-1, little-endian
#
# On the wire each frame is COBS-encoded and ends with one 0x00 byte, so a
# receiver finds the next frame after any garbage and never waits on a length
# that was corrupted. Field kinds: B u8, H u16, I u32 (little-endian), s a
# string of at most MAX_STRING UTF-8 bytes after a u8 length, y raw bytes (at
# most MAX_STRING) after a u8 length.
#
# The CRC finds line noise; the MAC, which only a holder of the session key
# can make, finds forgery. Inside a session the sequence number must rise
# with every frame, which refuses a replayed one.
#
# The link path may allocate (it is not the dosing hot path), but every buffer
# has a fixed bound: a frame longer than MAX_ENCODED is discarded unread.

import binascii
import struct

from firmware import auth, codec, const
from firmware.errors import sentence

MAX_PAYLOAD = const(240)
MAX_STRING = const(100)
_HEADER = const(8)
_CRC = const(4)
FLAG_MAC = const(0x01)
MAX_FRAME = const(268)  # _HEADER + MAX_PAYLOAD + auth.MAC_BYTES + _CRC
MAX_ENCODED = const(270)  # COBS adds one byte per 254, plus one
MAX_SEQ = const(0xFFFFFFFF)


class FrameError(Exception):
    """A frame or payload refused (here or by the link); `code` is a codec.ERR_* value."""

    def __init__(self, code, message, seq=0, version=0):
        super().__init__(message)
        self.code = code
        self.message = message
        self.seq = seq
        self.version = version  # ERR_BAD_VERSION: the protocol version the frame came in


# -- fields ------------------------------------------------------------------
# A list of fields is walked where it lies: in codec.MESSAGES for the pump (no object per
# field), one byte a field, its kind; the host makes such a spec from its [(name, kind), ...]
# (host/pumpctl/schema.py). A field that does not fit is named by a token "{f%d}" of
# msg_type << 8 | its place in the list (msg_type: its message's type, a reply's with REPLY set;
# 0 where the caller knows no type), which pumpctl words.

_B = const(0x42)  # b"B"
_H = const(0x48)  # b"H"
_I = const(0x49)  # b"I"
_S = const(0x73)  # b"s"
_Y = const(0x79)  # b"y"


def _size(kind):
    """Bytes of an integer kind."""
    if kind == _B:
        return 1
    if kind == _H:
        return 2
    if kind == _I:
        return 4
    raise ValueError(sentence(135, kind))  # no field kind K (pumpctl.sentences: every text below)


def encode_reply(msg_type, values):
    """Pack the values of msg_type's reply (or of ERROR, TELEMETRY_DATA) into a payload."""
    at = codec.span(msg_type, True)
    return encode_spec(codec.MESSAGES, at >> 16, at & 0xFFFF, values, msg_type | codec.REPLY)


def decode_request(msg_type, payload):
    """Unpack the payload of a msg_type request into a list of values; FrameError if it does not fit."""
    at = codec.span(msg_type, False)
    return decode_spec(codec.MESSAGES, at >> 16, at & 0xFFFF, payload, msg_type)


def encode_spec(spec, i, end, values, msg_type=0):
    """Pack values by the fields in spec[i:end] (their kinds; msg_type names a field that does not
    fit, above). Two passes: each field checked and the payload's length counted, then the fields
    packed into one buffer of that length (a bytearray grown a byte at a time left its smaller
    copies behind, and shifting a u32 past 2**30, a long int on a 32-bit port, made another at
    each byte: about 1 KB for THERAPY's reply)."""
    n = 0
    for k in range(end - i):
        kind = spec[i + k]
        v = values[k]
        if kind == _S or kind == _Y:
            size = len(v.encode() if kind == _S else v)
            if size > MAX_STRING:
                raise FrameError(codec.ERR_MALFORMED, sentence(120, msg_type << 8 | k, MAX_STRING))
            n += 1 + size
        else:
            size = _size(kind)
            if not 0 <= v <= (0xFF if size == 1 else 0xFFFF if size == 2 else 0xFFFFFFFF):
                raise FrameError(codec.ERR_MALFORMED, sentence(121, msg_type << 8 | k, v, chr(kind)))
            n += size
    if n > MAX_PAYLOAD:
        raise FrameError(codec.ERR_MALFORMED, sentence(122, MAX_PAYLOAD))
    out = bytearray(n)
    o = 0
    for k in range(end - i):
        kind = spec[i + k]
        v = values[k]
        if kind == _S or kind == _Y:
            raw = v.encode() if kind == _S else v
            size = len(raw)
            out[o] = size
            out[o + 1 : o + 1 + size] = raw
            o += 1 + size
        elif kind == _B:
            out[o] = v
            o += 1
        else:
            struct.pack_into("<H" if kind == _H else "<I", out, o, v)
            o += _size(kind)
    return bytes(out)


def decode_spec(spec, i, end, payload, msg_type=0):
    """Unpack a payload by the fields in spec[i:end] (their kinds; msg_type names a field that does
    not fit, above)."""
    values = []
    pos = 0
    n_payload = len(payload)
    for k in range(end - i):
        kind = spec[i + k]
        if kind == _S or kind == _Y:
            if pos >= n_payload:
                raise FrameError(codec.ERR_MALFORMED, sentence(123, msg_type << 8 | k))
            n = payload[pos]
            pos += 1
            if n > MAX_STRING:
                raise FrameError(codec.ERR_MALFORMED, sentence(124, msg_type << 8 | k, MAX_STRING))
            if pos + n > n_payload:
                raise FrameError(codec.ERR_MALFORMED, sentence(125, msg_type << 8 | k))
            raw = bytes(payload[pos : pos + n])
            if kind == _Y:
                values.append(raw)
            else:
                if not _is_utf8(raw):
                    raise FrameError(codec.ERR_MALFORMED, sentence(126, msg_type << 8 | k))
                values.append(raw.decode())
            pos += n
        else:
            size = _size(kind)
            if pos + size > n_payload:
                raise FrameError(codec.ERR_MALFORMED, sentence(123, msg_type << 8 | k))
            v = 0
            for b in range(size - 1, -1, -1):
                v = (v << 8) | payload[pos + b]
            values.append(v)
            pos += size
    if pos != n_payload:
        raise FrameError(codec.ERR_MALFORMED, sentence(127, n_payload - pos))
    return values


def _is_utf8(raw):
    """True if raw is well-formed UTF-8 (RFC 3629), as CPython decodes it.

    MicroPython's decode() also takes overlong forms ("\\xc0\\xae" for "."),
    surrogates and code points past U+10FFFF: text the host refuses, which
    parts of the firmware would read as other characters, and which the pump
    would echo in refusals the host cannot read."""
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b < 0x80:
            i += 1
            continue
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= b <= 0xDF:
            k = 1
        elif 0xE0 <= b <= 0xEF:
            k = 2
            if b == 0xE0:
                lo = 0xA0  # shorter forms are overlong
            elif b == 0xED:
                hi = 0x9F  # beyond: the surrogates U+D800..U+DFFF
        elif 0xF0 <= b <= 0xF4:
            k = 3
            if b == 0xF0:
                lo = 0x90
            elif b == 0xF4:
                hi = 0x8F  # beyond: past U+10FFFF
        else:
            return False  # a continuation byte, an overlong lead (C0, C1) or F5..FF
        if i + k >= n or not lo <= raw[i + 1] <= hi:
            return False
        for j in range(i + 2, i + k + 1):
            if not 0x80 <= raw[j] <= 0xBF:
                return False
        i += k + 1
    return True


def clip(text, max_bytes=MAX_STRING):
    """Shorten text to at most max_bytes of UTF-8, never splitting a character."""
    while len(text.encode()) > max_bytes:
        text = text[:-1]
    return text


# ERROR's field name is short (a request field, a program line's keyword): at most this many bytes, so
# that the code, it and the two parts of the message fit a frame's payload.
_ERROR_FIELD = const(32)


def error_values(code, field, message):
    """ERROR's values for a refusal: the message in its two parts, 100 bytes each (message, more)."""
    first = clip(message)
    return (code, clip(field, _ERROR_FIELD), first, clip(message[len(first) :]))


# -- frames --------------------------------------------------------------------


def encode_frame(msg_type, seq, payload=b"", session_mac=None, version=codec.PROTOCOL_VERSION):
    """Build one wire frame: COBS(header + payload [+ MAC] + CRC) + 0x00.

    session_mac: an auth.Hmac holding the session key, to authenticate the
    frame (FLAG_MAC), or None for a frame without a MAC. version: the protocol
    version it is of (another only for the ERROR that refuses an older one's frame)."""
    n_payload = len(payload)
    if n_payload > MAX_PAYLOAD:
        raise FrameError(codec.ERR_MALFORMED, sentence(122, MAX_PAYLOAD))
    if not 0 <= seq <= MAX_SEQ:
        raise FrameError(codec.ERR_MALFORMED, sentence(128, seq))
    body = _HEADER + n_payload
    mac_len = 0 if session_mac is None else auth.MAC_BYTES
    raw = bytearray(body + mac_len + _CRC)
    raw[0] = version
    raw[1] = msg_type
    raw[2] = 0 if session_mac is None else FLAG_MAC
    for k in range(4):
        raw[3 + k] = (seq >> (8 * k)) & 0xFF
    raw[7] = n_payload
    raw[_HEADER:body] = payload
    if session_mac is not None:
        raw[body : body + auth.MAC_BYTES] = session_mac.digest(memoryview(raw)[:body])[: auth.MAC_BYTES]
    n = body + mac_len
    # The CRC (a u32, a long int on a 32-bit port when past 2**30) packed as it is: shifting a long
    # int makes another, 256 B for the four bytes. COBS straight into the frame with its delimiter,
    # made bytes once: not a slice, a copy of it and the frame again with the 0x00 (3 frames' bytes).
    struct.pack_into("<I", raw, n, binascii.crc32(memoryview(raw)[:n]))
    out = bytearray(len(raw) + len(raw) // 254 + 2)
    o = _cobs(raw, out)
    return bytes(memoryview(out)[: o + 1])  # out[o] is 0: the delimiter


def decode_frame(raw):
    """Check a COBS-decoded frame; return (msg_type, seq, payload, mac, signed).

    mac is the frame's MAC (bytes) and signed the bytes it covers, or both
    None for a frame without one: checking a MAC is the receiver's part
    (auth.py), as only it knows the session key.

    Raises FrameError: ERR_BAD_FRAME for a wrong length or checksum (nothing
    in it can be trusted, so seq is 0), ERR_BAD_VERSION for a protocol this
    pump does not speak, ERR_MALFORMED for unknown flags (seq is kept for
    both so the sender can match the refusal).
    """
    n = len(raw)
    if n < _HEADER + _CRC:
        raise FrameError(codec.ERR_BAD_FRAME, sentence(129, n))
    length = raw[7]
    flags = raw[2]
    mac_len = auth.MAC_BYTES if flags & FLAG_MAC else 0
    if length > MAX_PAYLOAD or n != _HEADER + length + mac_len + _CRC:
        raise FrameError(codec.ERR_BAD_FRAME, sentence(130, n))
    body = _HEADER + length
    end = body + mac_len
    # The CRC unpacked whole, not shifted a byte at a time (a u32 past 2**30 is a long int on a
    # 32-bit port, and each shift or or of one makes another); crc32 gives it unsigned already.
    mv = memoryview(raw)
    if struct.unpack_from("<I", raw, end)[0] != binascii.crc32(mv[:end]):
        raise FrameError(codec.ERR_BAD_FRAME, sentence(131))
    seq = raw[3] | raw[4] << 8 | raw[5] << 16 | raw[6] << 24
    if raw[0] != codec.PROTOCOL_VERSION:
        raise FrameError(
            codec.ERR_BAD_VERSION,
            "protocol version %d is not supported; this side speaks %d" % (raw[0], codec.PROTOCOL_VERSION),
            seq,
            raw[0],
        )
    if flags & ~FLAG_MAC:
        raise FrameError(codec.ERR_MALFORMED, sentence(132, "%02x" % flags), seq)
    if not mac_len:  # each part copied once, from a view (a slice of a bytearray is a copy too)
        return raw[1], seq, bytes(mv[_HEADER:body]), None, None
    return raw[1], seq, bytes(mv[_HEADER:body]), bytes(mv[body:end]), bytes(mv[:body])


def cobs_encode(data):
    """Consistent Overhead Byte Stuffing: the result holds no 0x00 byte."""
    out = bytearray(len(data) + len(data) // 254 + 1)
    return bytes(memoryview(out)[: _cobs(data, out)])


def _cobs(data, out):
    """COBS-encode data into out (zeros, at least len(data) + len(data) // 254 + 1 bytes); return
    the length of the encoding."""
    code_pos = 0
    code = 1
    o = 1
    for b in data:
        if b:
            out[o] = b
            o += 1
            code += 1
        if not b or code == 0xFF:
            out[code_pos] = code
            code_pos = o
            o += 1
            code = 1
    out[code_pos] = code
    return o


def cobs_decode(data, n):
    """Decode the first n bytes of data; return a bytearray, or None if invalid."""
    out = bytearray(n)
    i = 0
    o = 0
    while i < n:
        code = data[i]  # 1 + the number of data bytes before the next zero
        if code == 0:
            return None
        i += 1
        end = i + code - 1
        if end > n:
            return None
        while i < end:
            b = data[i]
            if b == 0:
                return None
            out[o] = b
            o += 1
            i += 1
        if code < 0xFF and i < n:
            out[o] = 0
            o += 1
    return out[:o]


class FrameDecoder:
    """Collects bytes into frames, with a fixed buffer; shared by both sides.

    feed(byte) returns True when a delimiter ends a frame; then frame()
    returns (msg_type, seq, payload, mac, signed) as decode_frame does, or
    raises FrameError. Runs of
    delimiters are ignored, so a sender may start with 0x00 to flush
    whatever garbage the receiver holds.
    """

    def __init__(self):
        self._buf = bytearray(MAX_ENCODED)
        self._n = 0
        self._overflow = False
        self._ready = 0  # length of the completed frame, or -1 if too long

    def feed(self, byte):
        if byte:
            if self._n < MAX_ENCODED:
                self._buf[self._n] = byte
                self._n += 1
            else:
                self._overflow = True
            return False
        if self._overflow:
            self._ready = -1
        elif self._n:
            self._ready = self._n
        else:
            return False  # an empty frame: just a delimiter
        self._n = 0
        self._overflow = False
        return True

    def frame(self):
        n = self._ready
        self._ready = 0
        if n < 0:
            raise FrameError(codec.ERR_TOO_LONG, sentence(133, MAX_ENCODED))
        raw = cobs_decode(self._buf, n)
        if raw is None:
            raise FrameError(codec.ERR_BAD_FRAME, sentence(134))
        return decode_frame(raw)


# -- the CRC-32s that name a library and a program -----------------------------


def library_hash(drugs):
    """The content hash of a library: CRC-32 over each drug, in order, as its name's UTF-8
    bytes after a u8 length, then its codec.LIBRARY_LIMITS numbers as u32 little-endian (the
    version is not in it). drugs: (name, numbers) pairs, numbers as LIB_DRUG carries them."""
    crc = 0
    # One buffer for all the drugs, a drug's bytes in one CRC call: each result past 2**30 is a long
    # int on a 32-bit port (three calls a drug made about 1.3 KB of garbage for the factory's 8 drugs).
    raw = bytearray(1 + 255 + 4 * codec.LIBRARY_LIMITS)
    mv = memoryview(raw)
    for name, numbers in drugs:
        b = name.encode()
        n = len(b)
        raw[0] = n  # a name of more than 255 bytes: ValueError (LIB_DRUG's names are at most 40)
        raw[1 : 1 + n] = b
        at = 1 + n
        for i in range(codec.LIBRARY_LIMITS):
            v = numbers[i]
            for k in range(4):
                raw[at] = (v >> (8 * k)) & 0xFF
                at += 1
        crc = binascii.crc32(mv[:at], crc)
    return crc & 0xFFFFFFFF


def program_crc(items, version):
    """The CRC-32 that names a program (STAGE, COMMIT, THERAPY): its items as the pump understood them
    (REVIEW's, in order), each as the text "item,dose_kind,amount,start_min,duration_s,duration_us,
    then_s,then_us,count,drug" (its nine numbers in decimal, the drug's name last, as it is) followed by
    a newline, then the version of the library it was checked with. The host computes it too, from the
    rows it reviewed (a program staged by another session)."""
    crc = 0
    for text in items:
        crc = binascii.crc32((text + "\n").encode(), crc)
    return binascii.crc32(version.encode(), crc) & 0xFFFFFFFF
