# Fuzzes the wire decoder in-process, as the firmware runs it: random and
# mutated byte streams (seeded, so a run is repeatable) go byte by byte into
# framing.FrameDecoder, every completed frame through frame() and every decoded
# payload through decode_fields() for its command. Checks, and prints figures
# for tests/e2e/test_fuzz_link.py:
#
#   - nothing but FrameError is ever raised;
#   - after any garbage, a delimiter and a valid frame decode to that frame;
#   - feed() allocates nothing, whatever it is fed: every byte of every stream
#     is fed with the heap locked, including runs of a megabyte with no
#     delimiter (the decoder's buffer is fixed);
#   - what frame() allocates does not grow with the length of its input, and
#     the heap holds no more after the run than before it.
#
#   micropython decoder_fuzz.py STREAMS SEED [LONG_RUN_BYTES]
#
# Without arguments (the webassembly VM has no argv) the values come from a
# module decoder_fuzz_args, if given, else the defaults below.
import gc
import random
import sys

import schema
from heaplock import heap_lock_works, lock, unlock

from firmware import auth, codec, framing
from firmware.framing import FrameDecoder, FrameError

STREAMS = 2000
SEED = 1
LONG_RUN = 1_000_000
args = sys.argv[1:] if len(sys.argv) > 1 else []
if args:
    STREAMS = int(args[0])
    SEED = int(args[1])
    if len(args) > 2:
        LONG_RUN = int(args[2])
else:
    try:
        import decoder_fuzz_args

        STREAMS = decoder_fuzz_args.STREAMS
        SEED = decoder_fuzz_args.SEED
        LONG_RUN = decoder_fuzz_args.LONG_RUN
    except ImportError:
        pass

random.seed(SEED)
LOCKED = heap_lock_works()
SESSION = auth.Hmac(bytes(range(32)))


def rnd(n):
    """0..n-1"""
    return random.randrange(n) if n > 0 else 0


def rbytes(n, nonzero=False):
    out = bytearray(n)
    for i in range(n):
        b = random.getrandbits(8)
        out[i] = (b or 1) if nonzero else b
    return bytes(out)


def example_values(fields, longest):
    values = []
    for _name, kind in fields:
        if kind == "s":
            values.append(("", "basal 1 mL/day", "µL", "x" * longest)[rnd(4)])
        elif kind == "y":
            values.append(rbytes(rnd(longest + 1)))
        else:
            values.append(random.getrandbits({"B": 8, "H": 16, "I": 32}[kind]))
    return values


# The corpus: a valid request and a valid reply of every message, plain and with a MAC.
corpus = []
for msg_type in sorted(schema.FIELDS):
    for is_reply in (False, True):
        fields = schema.reply_fields(msg_type) if is_reply else schema.request_fields(msg_type)
        try:
            payload = schema.encode_fields(fields, example_values(fields, framing.MAX_STRING))
        except FrameError:  # too long for one payload: shorter strings
            payload = schema.encode_fields(fields, example_values(fields, 16))
        kind = msg_type | codec.REPLY if is_reply else msg_type
        for session in (None, SESSION):
            seq = random.getrandbits(32)
            corpus.append((kind, seq, payload, framing.encode_frame(kind, seq, payload, session)[:-1]))


def crc_fixed(raw):
    """The decoded frame raw (a bytearray) with its last 4 bytes made its CRC again."""
    import binascii

    crc = binascii.crc32(bytes(raw[:-4])) & 0xFFFFFFFF
    for k in range(4):
        raw[len(raw) - 4 + k] = (crc >> (8 * k)) & 0xFF
    return raw


def mutate_frame(wire):
    """A structurally plausible variant: decode, change a header field or the payload, fix the CRC, encode."""
    raw = framing.cobs_decode(wire, len(wire))
    if raw is None or len(raw) < 12:
        return wire
    op = rnd(7)
    if op == 0:
        raw[1] = random.getrandbits(8)  # type
    elif op == 1:
        raw[3 + rnd(4)] = random.getrandbits(8)  # seq
    elif op == 2:
        raw[7] = random.getrandbits(8)  # length, not the length
    elif op == 3:
        raw[2] = random.getrandbits(8)  # flags
    elif op == 4:
        raw[0] = random.getrandbits(8)  # version
    elif op == 5 and len(raw) > 12:
        raw[8 + rnd(len(raw) - 12)] = random.getrandbits(8)  # a payload (or MAC) byte
    else:  # a random payload of a random length, the length byte made to match
        n = rnd(framing.MAX_PAYLOAD + 1)
        body = bytearray(raw[:8]) + rbytes(n) + bytearray(4)
        body[2] = 0
        body[7] = n
        raw = body
    if rnd(8):
        raw = crc_fixed(raw)
    return framing.cobs_encode(raw)


def mutate(wire):
    """Damage a COBS-encoded frame (no delimiter) the way a line or an attacker might."""
    data = bytearray(wire)
    for _ in range(1 + rnd(3)):
        op = rnd(11)
        n = len(data)
        if op == 0 and n:
            for _ in range(1 + rnd(4)):
                data[rnd(n)] ^= 1 << rnd(8)  # bit flips
        elif op == 1:
            data[rnd(n + 1) : rnd(n + 1)] = bytes((random.getrandbits(8),))  # insert (maybe a 0x00)
        elif op == 2 and n:
            i = rnd(n)
            data[i : i + 1 + rnd(4)] = b""  # delete
        elif op == 3:
            data = data[: rnd(n + 1)]  # truncate
        elif op == 4:
            other = corpus[rnd(len(corpus))][3]
            data = data[: rnd(n + 1)] + other[rnd(len(other) + 1) :]  # splice two frames
        elif op == 5:
            data = data + b"\x00" + data  # duplicate (a replay)
        elif op == 6:
            data += rbytes(rnd(40))  # junk after
        elif op == 7:
            data = rbytes(rnd(40)) + data  # junk before
        elif op == 8:
            data = data + rbytes(max(0, framing.MAX_ENCODED - n) + 1 + rnd(400), nonzero=True)  # oversize
        elif op == 9 and n:
            data = bytearray(mutate_frame(bytes(data))) if framing.cobs_decode(data, n) is not None else data
        else:
            raw = framing.cobs_decode(data, n)
            if raw is not None:
                data = raw  # not COBS-encoded at all: zeros inside
        data = bytearray(data)
    return bytes(data)


def stream():
    kind = rnd(10)
    wire = corpus[rnd(len(corpus))][3]
    if kind == 0:
        return rbytes(rnd(600))  # byte soup, zeros and all
    if kind == 1:
        return rbytes(rnd(600), nonzero=True)
    if kind < 5:  # a header field or the payload changed, the CRC usually right: deeper checks
        wire = mutate_frame(wire)
        return mutate(wire) if rnd(2) else wire
    return mutate(wire)


stats = {"frames": 0, "fields_ok": 0, "fields_refused": 0, "bytes": 0}
refused = {}
buf = bytearray(1)


def take(dec, out):
    """frame() of a completed frame (heap unlocked); its payload through decode_fields."""
    try:
        frame = dec.frame()
    except FrameError as e:
        refused[e.code] = refused.get(e.code, 0) + 1
        out.append(None)
        return
    except Exception as e:
        raise AssertionError("frame() raised %s: %s" % (type(e).__name__, e)) from None
    stats["frames"] += 1
    out.append(frame)
    msg_type = frame[0] & 0x7F if frame[0] & codec.REPLY else frame[0]
    if msg_type not in schema.FIELDS:
        return
    for fields in schema.FIELDS[msg_type]:
        try:
            schema.decode_fields(fields, frame[2])
            stats["fields_ok"] += 1
        except FrameError:
            stats["fields_refused"] += 1
        except Exception as e:
            raise AssertionError("decode_fields raised %s: %s" % (type(e).__name__, e)) from None


def feed(dec, data, out):
    """Feed data byte by byte with the heap locked (feed must not allocate); unlocked for frame()."""
    n = len(data)
    i = 0
    lock()
    try:
        while i < n:
            if dec.feed(data[i]):
                unlock()
                try:
                    take(dec, out)
                finally:
                    lock()
            i += 1
    finally:
        unlock()
    stats["bytes"] += n


def run_streams(dec):
    """STREAMS streams, each followed by a delimiter and a valid frame; returns how many of those came out whole."""
    resynced = 0
    for s in range(STREAMS):
        data = stream()
        out = []
        try:
            feed(dec, data, out)
            # Garbage, then a delimiter and a valid frame: that frame must come out whole.
            kind, seq, payload, wire = corpus[rnd(len(corpus))]
            out = []
            feed(dec, b"\x00" + wire + b"\x00", out)
        except MemoryError:
            raise AssertionError("the decoder allocated with the heap locked, stream %d" % s) from None
        except AssertionError as e:
            raise AssertionError("stream %d (%s): %s" % (s, bytes(data).hex(), e)) from None
        if out and out[-1] is not None and out[-1][:3] == (kind, seq, payload):
            resynced += 1
        else:
            print("NOT RESYNCED", s, bytes(data).hex(), out)
    return resynced


dec = FrameDecoder()
gc.collect()
heap_before = gc.mem_free()
resynced = run_streams(dec)
gc.collect()
heap_after = gc.mem_free()

# What frame() allocates, by the length of the frame it is given: a frame of n
# bytes (n > MAX_ENCODED: discarded unread) fed with the heap locked, then
# frame() with the collector off, measured by gc.mem_alloc().
alloc = []
for n in (1, 12, 100, framing.MAX_ENCODED, framing.MAX_ENCODED + 1, 10_000, LONG_RUN):
    worst = 0
    for trial in range(3):
        data = bytes(((trial + i) % 255) + 1 for i in range(min(n, 1000)))
        tail = data[: n % len(data)]
        lock()
        try:
            for _ in range(n // len(data)):
                for b in data:
                    dec.feed(b)
            for b in tail:
                dec.feed(b)
        except MemoryError:
            unlock()
            raise AssertionError("feed() allocated with the heap locked after %d bytes" % n) from None
        unlock()
        gc.collect()
        gc.disable()
        a0 = gc.mem_alloc()
        dec.feed(0)
        try:
            dec.frame()
        except FrameError:
            pass
        a1 = gc.mem_alloc()
        gc.enable()
        worst = max(worst, a1 - a0)
    alloc.append((n, worst))
gc.collect()
heap_end = gc.mem_free()
gc.collect()
a0 = gc.mem_alloc()
spare = FrameDecoder()
gc.collect()
footprint = gc.mem_alloc() - a0
del spare

print("heap_lock", LOCKED)
print("streams", STREAMS, "bytes", stats["bytes"], "frames", stats["frames"], "resynced", resynced)
print("refused", " ".join("%d:%d" % (k, refused[k]) for k in sorted(refused)))
print("fields ok", stats["fields_ok"], "refused", stats["fields_refused"])
print("alloc", " ".join("%d:%d" % na for na in alloc))
print("heap", heap_before, heap_after, heap_end)  # free: at the start, after the streams, at the end
print("decoder", footprint)  # bytes one FrameDecoder takes
