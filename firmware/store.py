# A crash-safe record store: the pump's state survives a power cut.
#
# Two files (slots) take turns. A save writes a whole new record into the
# slot that does NOT hold the newest valid record, so however the write is
# cut short, the newest record already saved stays intact in the other slot;
# load() returns the newest record that was written to its end and whose
# CRC checks. A torn or corrupt slot is simply ignored.
#
# The record (one to a file, all integers little-endian):
#
#   offset  size  field
#   0       4     magic b"PST" and the format version (1): b"PST\x01"
#   4       4     seq: u32, 0 .. 2**30-1, one more (mod 2**30) than the record it replaces
#   8       ...   sections, one after another, each:
#                   1  tag, 1..255 (each tag at most once)
#                   2  length L, u16, 0..MAX_SECTION
#                   L  data
#   E       3     end: tag 0, length 0
#   E+3     4     CRC-32 (IEEE, as zlib.crc32) of bytes 0..E+2, u32
#
# The record is the whole file: it is valid only if the file ends exactly
# after the CRC. The CRC comes last, so a record is valid only if it was
# written to its end; a torn write (any prefix) fails the length checks or
# the CRC, and a CRC-32 catches every single flipped bit.
#
# Sequence numbers count saves modulo 2**30 and are compared as serial
# numbers (RFC 1982): a is newer than b if (a - b) mod 2**30 is in 1..2**29-1.
# The two slots always hold consecutive numbers (or one is invalid), so the
# count may wrap and saving never has to stop; and every seq is a small int
# on a 32-bit port. A seq field of 2**30 or more makes a record invalid.
#
# Limits: a section holds at most MAX_SECTION (16 KB) bytes; with 255 tags a
# record is at most 8 + 255 * (3 + 16384) + 7 bytes (4.2 MB). A save buffers
# none of it, and a load's check reads it CHUNK_BYTES bytes at a time.
#
# Memory. save() streams: each section's data is appended as it is, with
# the CRC computed incrementally (binascii.crc32(data, crc)); nothing is
# concatenated. A section may also be given as Pieces, written one after
# another, so a caller need not join what it already holds (the event log's
# lines, the guard's ring) into one big object first. load() first checks the newest slot in CHUNK_BYTES-byte reads
# into a preallocated buffer, and only if it is valid reads the sections
# into their own bytearrays (the only buffers it allocates: it returns
# them), checking the CRC again over what it returns; a section the caller
# gives arrays for (load()'s into: the guard's ring) goes into those through
# the buffer instead, and they are zeroed if no record is returned. Both allocate small
# transient objects besides (memoryview slices, a dict, a few ints): a CRC-32
# past 2**30 is a long int on a 32-bit port. Acceptable: saving and loading
# are not the dosing hot path. The reading is firmware/store_read.py, loaded
# for a load and forgotten after it (a running pump only saves).
#
# The store does no I/O of its own: it is given a storage driver (the
# interface in hal/__init__.py).

import binascii
import struct
from array import array

from firmware import const
from firmware.lazy import call

MAGIC = b"PST\x01"
MAX_SECTION = const(16384)  # bytes of data in one section
SEQ_MODULUS = const(0x40000000)  # 2**30: seq counts saves modulo this
_SEQ_MASK = const(0x3FFFFFFF)
_SEQ_HALF = const(0x20000000)
HEADER_BYTES = const(8)  # magic, seq
SECTION_BYTES = const(3)  # tag, length
TRAILER_BYTES = const(7)  # the end section (3) and the CRC (4)
MIN_RECORD_BYTES = const(15)  # HEADER_BYTES + TRAILER_BYTES: a record with no sections
CHUNK_BYTES = const(256)  # bytes read at a time while checking a record
_END = const(b"\x00\x00\x00")  # the end section: tag 0, length 0


class Pieces:
    """Section data in pieces, written one after another: n bytes in all. Each
    piece is bytes-like, or an array of u16 ("H"), written as its items, 2 bytes
    each little-endian, through the store's own buffer (the storage driver takes
    bytes only, and a copy of a big array is what this avoids)."""

    def __init__(self, n, pieces):
        self.n = n
        self.pieces = pieces

    def __len__(self):
        return self.n

    def __iter__(self):
        """The bytes as a save writes them, so bytes(pieces) is the section (allocates: not for a save)."""
        for piece in self.pieces:
            if isinstance(piece, array):
                for w in piece:
                    yield w & 0xFF
                    yield w >> 8
            else:
                yield from piece


def newer(a, b):
    """True if sequence number a is newer than b (serial-number order modulo 2**30)."""
    d = (a - b) & _SEQ_MASK
    return 0 < d < _SEQ_HALF


class Store:
    def __init__(self, storage, names=("state.0", "state.1")):
        if len(names) != 2 or names[0] == names[1]:
            raise ValueError("store: two different slot names are needed")
        self.storage = storage
        self.names = names
        self._buf = bytearray(CHUNK_BYTES)
        self._mv = memoryview(self._buf)
        self._head = bytearray(HEADER_BYTES)
        self._sec = bytearray(SECTION_BYTES)
        self._word = bytearray(4)  # the CRC, as a save writes it (and the byte order, _put_u16s)
        self._fill = 0  # bytes of the buffer a save has filled and not yet written
        self._crc = 0  # the CRC of what a save has written so far
        self._crc_done = False  # the buffer holds arrays' bytes, the CRC carried over them already
        self._tags = bytearray(32)  # a bit for each tag seen in one record
        # What the slots hold, once known: the slot of the newest valid record
        # (-1: neither is valid) and its seq. Unknown until a load() or a save()
        # has found out, and again after a save that did not finish.
        self._known = False
        self._slot = -1
        self._seq = 0

    # -- saving

    def save(self, sections):
        """Save a record of sections, a sequence of (tag, data) pairs (tag 1..255,
        each at most once; data bytes-like or Pieces, at most MAX_SECTION bytes), into the
        slot not holding the newest valid record. Returns its seq. Every section is
        checked before anything is written: a refusal (ValueError) changes nothing."""
        tags = self._tags
        clear_bits(tags)
        for tag, data in sections:
            if not (isinstance(tag, int) and 1 <= tag <= 255):
                raise ValueError("store: section tag %r is not in 1..255" % (tag,))
            n = len(data)
            if n > MAX_SECTION:
                raise ValueError(
                    "store: section %d is %d bytes, more than the limit of %d bytes" % (tag, n, MAX_SECTION)
                )
            if seen_tag(tags, tag):
                raise ValueError("store: section %d appears twice" % tag)
        if not self._known:
            call("firmware.store_read", "find_newest", self)
        if self._slot < 0:
            slot, seq = 0, 0
        else:
            slot, seq = 1 - self._slot, (self._seq + 1) & _SEQ_MASK
        name = self.names[slot]
        st = self.storage
        self._known = False  # until the record is complete: the slot is torn meanwhile
        st.begin(name)
        self._fill = 0
        self._crc = 0
        self._crc_done = False
        head = self._head
        head[0:4] = MAGIC
        struct.pack_into("<I", head, 4, seq)
        self._put(head)
        sec = self._sec
        for tag, data in sections:
            n = len(data)
            sec[0] = tag
            sec[1] = n & 0xFF
            sec[2] = n >> 8
            self._put(sec)
            if not n:
                continue
            if isinstance(data, Pieces):
                for piece in data.pieces:
                    if isinstance(piece, array):
                        self._put_u16s(piece)
                    else:
                        self._put(piece)
            else:
                self._put(data)
        self._put(_END)
        self._flush()
        word = self._word
        struct.pack_into("<I", word, 0, self._crc & 0xFFFFFFFF)
        st.append(word)
        st.end()
        self._slot = slot
        self._seq = seq
        self._known = True
        return seq

    # Writing goes through the CHUNK_BYTES-byte buffer: the small pieces of a record
    # (section heads, log lines) are gathered, so the storage and the CRC see
    # few calls (each CRC past 2**30 is a long int on a 32-bit port).

    def _put(self, data):
        n = len(data)
        if self._fill + n > CHUNK_BYTES or self._crc_done:
            self._flush()
            self._crc_done = False
        if n >= CHUNK_BYTES:  # a big one goes as it is
            self.storage.append(data)
            self._crc = binascii.crc32(data, self._crc)
            return
        fill = self._fill
        self._buf[fill : fill + n] = data
        self._fill = fill + n

    def _put_u16s(self, words):
        """Put an array of u16 as little-endian bytes. On a little-endian port (the boards', the
        hosts') those are the array's own bytes: the CRC runs over the array in one call, and the
        buffer carries its bytes on without (the guard's ring: 10 CRC calls, not 19, and each
        result past 2**30 is a long int on a 32-bit port)."""
        word = self._word
        struct.pack_into("@I", word, 0, 1)  # 1 in the port's own byte order
        if word[0] == 1:
            if not self._crc_done:
                self._flush()  # with the CRC of what came before
                self._crc_done = True
            self._crc = binascii.crc32(words, self._crc)
        buf = self._buf
        for i in range(len(words)):
            if self._fill + 2 > CHUNK_BYTES:
                self._flush()
            w = words[i]
            buf[self._fill] = w & 0xFF
            buf[self._fill + 1] = w >> 8
            self._fill += 2

    def _flush(self):
        fill = self._fill
        if fill:
            part = self._buf if fill == CHUNK_BYTES else self._mv[:fill]
            self.storage.append(part)
            if not self._crc_done:
                self._crc = binascii.crc32(part, self._crc)
            self._fill = 0

    # -- loading: firmware/store_read.py, loaded for the call (the boot's load, a save that
    # finds the slots unknown) and forgotten after it: the running pump does not hold that code.

    def load(self, into=None):
        """(seq, {tag: data}) of the newest valid record, or None if neither slot
        holds one. Each data is a bytearray of its own (bytes-like; equal to the
        bytes saved), allocated only once the record has been checked.

        into: {tag: Pieces of arrays of u16}, or None. A section of that tag and
        exactly that length is read into those arrays instead (its data is then
        the Pieces): the guard's 4.8 KB ring needs no bytearray and no copy. If
        no record is returned, they are left all zeros (not part of a record)."""
        return call("firmware.store_read", "load", self, into)


def clear_bits(bits):
    for i in range(len(bits)):
        bits[i] = 0


def seen_tag(bits, tag):
    """Mark tag in the bit set; True if it was already there."""
    i = tag >> 3
    m = 1 << (tag & 7)
    if bits[i] & m:
        return True
    bits[i] = bits[i] | m
    return False
