# Reading the store's records back (store.py has the format): which slot holds the newest
# valid record, and its sections.
#
# Loaded for a call and forgotten after it (lazy.call, lazy.TRANSIENT): a record is read at a
# boot (the state, the keys), and a save looks for the newest slot only when it does not know it
# (a store just made, a save cut short by an error). The running pump saves often and reads
# never, so it does not hold this code.
#
# Memory, as store.py says: a slot is checked in CHUNK_BYTES reads into the store's own buffer;
# only a record that checks is read again, into bytearrays of its own (or the arrays of into).

import binascii
import struct

from firmware.store import (
    CHUNK_BYTES,
    HEADER_BYTES,
    MAGIC,
    MAX_SECTION,
    MIN_RECORD_BYTES,
    SECTION_BYTES,
    TRAILER_BYTES,
    clear_bits,
    newer,
    seen_tag,
)


def load(store, into):
    """Store.load: (seq, {tag: data}) of store's newest valid record, or None; into: {tag: Pieces
    of arrays of u16} read into in place (zeroed if no record is returned), or None."""
    names = store.names
    for slot in _candidates(store):
        seq = _walk(store, names[slot], None, None)
        if seq < 0:
            continue
        sections = {}
        if _walk(store, names[slot], sections, into) == seq:  # read anew, and checked again
            store._slot = slot
            store._seq = seq
            store._known = True
            return seq, sections
        _zero(into)  # read in part from a record that no longer checks
    store._slot = -1
    store._known = True
    return None


def find_newest(store):
    """Find the slot of store's newest valid record (-1: none) and its seq, checking CRCs."""
    store._slot = -1
    for slot in _candidates(store):
        seq = _walk(store, store.names[slot], None, None)
        if seq >= 0:
            store._slot = slot
            store._seq = seq
            break
    store._known = True


def _candidates(store):
    """The slots whose header looks valid, newest seq first."""
    st = store.storage
    names = store.names
    s0 = _peek(store, names[0], st.size(names[0]))
    s1 = _peek(store, names[1], st.size(names[1]))
    if s0 < 0:
        return () if s1 < 0 else (1,)
    if s1 < 0:
        return (0,)
    return (1, 0) if newer(s1, s0) else (0, 1)


def _peek(store, name, size):
    """The seq in the header of file name (size bytes long), or -1 if the header is not a record's."""
    head = store._head
    if size < MIN_RECORD_BYTES or store.storage.read_into(name, 0, head) != HEADER_BYTES:
        return -1
    for i in range(4):
        if head[i] != MAGIC[i]:
            return -1
    if head[7] >= 0x40:  # seq >= 2**30
        return -1
    return head[4] | head[5] << 8 | head[6] << 16 | head[7] << 24


def _walk(store, name, sections, into):
    """Go through file name's record: its header, each section's tag and length, its
    bytes and the CRC over all of them; its seq if every check holds, else -1.
    sections None: only check, through the buffer (no allocation); a dict: read each
    section into it too, a bytearray of its own or, for a tag of into of that length,
    into its Pieces (_read_u16s)."""
    st = store.storage
    size = st.size(name)
    seq = _peek(store, name, size)
    if seq < 0:
        return -1
    crc = binascii.crc32(store._head)
    sec = store._sec
    tags = store._tags
    clear_bits(tags)
    pos = HEADER_BYTES
    while True:
        if st.read_into(name, pos, sec) != SECTION_BYTES:
            return -1
        crc = binascii.crc32(sec, crc)
        pos += SECTION_BYTES
        tag = sec[0]
        n = sec[1] | sec[2] << 8
        if tag == 0:
            if n:
                return -1
            break
        if n > MAX_SECTION or pos + n + TRAILER_BYTES > size or seen_tag(tags, tag):
            return -1
        if sections is None:
            crc = _crc_over(store, name, pos, n, crc)
        else:
            dest = into.get(tag) if into else None
            if dest is not None and len(dest) == n and not n & 1:
                crc = _read_u16s(store, name, pos, n, dest.pieces, crc)
            else:
                dest = bytearray(n)
                if n and st.read_into(name, pos, dest) != n:
                    return -1
                crc = binascii.crc32(dest, crc)
            sections[tag] = dest
        if crc < 0:
            return -1
        pos += n
    return seq if _crc_ends(store, name, pos, size, crc) else -1


def _crc_over(store, name, pos, n, crc):
    """The CRC carried on over n bytes of file name at pos, read through the buffer; -1 if short."""
    buf = store._buf
    end = pos + n
    while end - pos >= CHUNK_BYTES:
        if store.storage.read_into(name, pos, buf) != CHUNK_BYTES:
            return -1
        crc = binascii.crc32(buf, crc)
        pos += CHUNK_BYTES
    if pos < end:
        part = store._mv[: end - pos]
        if store.storage.read_into(name, pos, part) != end - pos:
            return -1
        crc = binascii.crc32(part, crc)
    return crc


def _read_u16s(store, name, pos, n, arrays, crc):
    """Read n bytes of file name at pos into arrays (of u16, little-endian, one after
    another) through the buffer; return the CRC carried on over them, or -1 if short."""
    buf = store._buf
    k = 0  # the array being filled, and its next item
    j = 0
    end = pos + n
    while pos < end:
        m = end - pos if end - pos < CHUNK_BYTES else CHUNK_BYTES
        part = buf if m == CHUNK_BYTES else store._mv[:m]
        if store.storage.read_into(name, pos, part) != m:
            return -1
        crc = binascii.crc32(part, crc)
        for i in range(0, m, 2):
            while j == len(arrays[k]):
                k += 1
                j = 0
            arrays[k][j] = buf[i] | buf[i + 1] << 8
            j += 1
        pos += m
    return crc


def _crc_ends(store, name, pos, size, crc):
    """True if the CRC stored at pos equals crc and ends the file."""
    if pos + 4 != size:
        return False
    word = store._mv[:4]
    if store.storage.read_into(name, pos, word) != 4:
        return False
    return struct.unpack_from("<I", word)[0] == crc & 0xFFFFFFFF


def _zero(into):
    """Zero the arrays of load()'s into."""
    if into:
        for dest in into.values():
            for a in dest.pieces:
                for i in range(len(a)):
                    a[i] = 0
