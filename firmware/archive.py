# The therapy log in flash: the event log's entries that make the record
# (everything but sessions and security refusals, eventlog.CHATTER), kept for
# months off the heap. The event log (eventlog.py) keeps its newest entries in
# RAM, saved with each record; before a kept entry leaves that ring, it comes
# here, in batches.
#
# Files. FILES files, "log.0" .. "log.31", used in turn: the newest grows by
# appends up to FILE_BYTES (a flash block of littlefs), then the next one is
# started afresh, which drops the oldest FILE_BYTES of the log. So the archive
# holds FILES - 1 to FILES files of entries: 124-128 KB of flash, about 2,000
# entries (60 bytes each): half a year at ten therapy events a day. A file is
# a run of entries, each
#     n (1 byte: the bytes that follow, 5..255)  index (u32 LE)  line (n - 4 bytes)
# the line as the event log keeps it ("mday us code clock text", eventlog.py).
# Indices rise through a file and from each file to the next.
#
# Power cuts. Until the storage's end() returns, an append may leave any prefix
# of the batch (hal/__init__.py): a file's last entry may be torn. Reading a
# file stops at the first entry that does not fit in it; if the newest file
# ends so, the next batch starts the next file (a torn entry is never followed
# by good ones in the same file). A batch whose end() returned is durable.
#
# RAM: two arrays of FILES u32 (the first and last index in each file) and a
# 5-byte header: about 400 bytes, whatever the log holds. Command and event path
# only (a read or an append allocates a little: a read, the line it returns).

from array import array

from firmware import const

FILES = const(32)
FILE_BYTES = const(4096)
_NONE = const(0x3FFFFFFF)  # no entry (an index no log reaches: 2**30 - 1)
_HEAD = const(5)  # n, then the index; n is one byte and a line at most 238 (eventlog: 38 of numbers, 200 of
# text escaped from 100), so n = 4 + the line always fits


def _name(f):
    return "log.%d" % f


class Archive:
    def __init__(self, storage):
        self.storage = storage
        self._first = array("I", [_NONE] * FILES)  # index of each file's first entry, _NONE if it holds none
        self._last = array("I", [_NONE] * FILES)
        self._head = bytearray(_HEAD)
        self._cur = 0  # the newest file
        self._torn = False  # the newest file ends in a torn entry: the next batch starts another
        self._at = (-1, 0, 0)  # (file, offset, index) of the entry read last: a reader goes on from there
        self.end = 0  # one above the newest entry archived (0: none)
        newest = -1
        for f in range(FILES):
            torn = self._scan(f)
            last = self._last[f]
            if last != _NONE and last >= newest:
                newest = last
                self._cur = f
                self._torn = torn
        if newest >= 0:
            self.end = newest + 1

    def _scan(self, f):
        """Read file f's entries for its first and last index; True if it ends in a torn entry."""
        name = _name(f)
        size = self.storage.size(name)
        pos = 0
        head = self._head
        while pos < size:
            if self.storage.read_into(name, pos, head) < _HEAD or head[0] < _HEAD or pos + 1 + head[0] > size:
                return True
            index = _u32(head)
            if self._first[f] == _NONE:
                self._first[f] = index
            self._last[f] = index
            pos += 1 + head[0]
        return False

    def oldest(self):
        """The index of the oldest entry archived, or None."""
        best = None
        for f in range(FILES):
            first = self._first[f]
            if first != _NONE and (best is None or first < best):
                best = first
        return best

    def append(self, entries):
        """Write entries, a list of (index, line) in rising index above every one archived, as one
        batch: in the newest file if they fit, else in the next one, started afresh."""
        need = 0
        for _index, line in entries:
            need += _HEAD + len(line)  # n, the index, the line
        st = self.storage
        f = self._cur
        size = st.size(_name(f))
        if self._torn or size < 0 or size + need > FILE_BYTES or self._first[f] == _NONE:
            if self._first[f] != _NONE or self._torn:
                f = (f + 1) % FILES
            self._first[f] = self._last[f] = _NONE
            if self._at[0] == f:
                self._at = (-1, 0, 0)
            self._cur = f
            self._torn = False
            st.begin(_name(f))  # truncated: the oldest file's entries leave the log
        else:
            st.extend(_name(f))
        head = self._head
        for index, line in entries:
            head[0] = _HEAD - 1 + len(line)
            for i in range(4):
                head[1 + i] = (index >> (8 * i)) & 0xFF
            st.append(head)
            st.append(line)
        st.end()
        if self._first[f] == _NONE:
            self._first[f] = entries[0][0]
        self._last[f] = entries[-1][0]
        self.end = entries[-1][0] + 1

    def find(self, index):
        """(index, line) of the oldest entry archived at or after index, or None. The line is a
        bytearray of its own (made for the read: a buffer kept for it was 0.3 KB for the pump's life)."""
        for k in range(1, FILES + 1):  # from the oldest file to the newest
            f = (self._cur + k) % FILES
            last = self._last[f]
            if last == _NONE or last < index:
                continue
            name = _name(f)
            pos = 0
            at_f, at_pos, at_index = self._at
            if at_f == f and at_index <= index:
                pos = at_pos  # a reader going on from the entry it read last
            size = self.storage.size(name)
            head = self._head
            while pos < size:
                if self.storage.read_into(name, pos, head) < _HEAD or head[0] < _HEAD:
                    break
                n = head[0] - (_HEAD - 1)
                got = _u32(head)
                if got >= index:
                    line = bytearray(n)
                    if self.storage.read_into(name, pos + _HEAD, line) < n:
                        break
                    self._at = (f, pos, got)
                    return got, line
                pos += 1 + head[0]
        return None


def _u32(head):
    return head[1] | head[2] << 8 | head[3] << 16 | head[4] << 24
