# The event log: every programming change (with the library version in force),
# every bolus and refusal of a patient bolus, every alarm and clock change,
# every restart, and the sessions and security refusals, each with its pump
# time, the device clock then (once it is set), a code and a short text.
#
# Two retentions. The newest entries live in a small ring in RAM, saved with
# the rest of the pump's state at each durable point (persist.py). Before an
# entry that makes the record leaves the ring, it goes to the therapy log in
# flash (archive.py), which keeps months of them; sessions and security
# refusals (CHATTER) never go there, so no amount of them pushes a program
# commit out of the record. A board without storage keeps the ring only.
# Entries are numbered from the first boot on; an entry that has left both is
# gone, and a reader is told where the log now starts.
#
# Command and event path only (an entry's line is made, then copied into the ring).

from array import array

from firmware import const

CAPACITY = 32  # entries at most in the ring
MAX_TEXT = 100
# The entries' lines, back to back in one buffer made at boot: 64 bytes a line on average (most
# take 40-80), so it holds the last CAPACITY entries unless they are unusually long, and then
# as many of the last ones as fit. One block for the whole ring, because a line each, made as
# the entries come and spread over the heap as they go, fragmented a Pico's heap until a 1.1 KB
# block could no longer be found with 60 KB free (seen on an emulated Pico).
LOG_BYTES = const(2048)
# Entries the ring archives at a save once this many wait (batches, not a flash write each).
_ARCHIVE_BATCH = const(12)
_NL = const(10)

EV_BOOT = 1
EV_PROGRAM = 2  # a program was committed
EV_THERAPY = 3  # a change the running therapy made itself (flex day, bolus end, bridge done)
EV_BOLUS = 4  # a bolus started
EV_PATIENT_REFUSED = 5  # a patient bolus request was refused
EV_ALARM = 6
EV_ACK = 7
EV_CLOCK = 8
EV_LIBRARY = 9
EV_STOP = 10
EV_FAULT = 11
EV_RESTART = 12  # the pump resumed from its saved state after a restart
# Sessions and security refusals are kept in the ring but saved only with the
# next save: a flood of frames must not become a flood of flash writes.
EV_SESSION = 13  # a link session started or ended
EV_SECURITY = 14  # a refused authentication, or a command refused for its role (rate-limited)
EV_KEYS = 15  # keys provisioned or changed (saved at once)
EV_SERVICE = 16  # the firmware left for the board's REPL (a firmware update)
EV_ALARM_CLEAR = 17  # an alarm's condition cleared (it leaves once acknowledged)
EV_SELF_TEST = 18  # the power-on self-test: passed, or each problem it found
EV_REFILL = 19  # a refill: volume removed, expected and added
EV_SILENCE = 20  # the alarm tones were silenced (at most 2 min)
EV_RECOVERY = 21  # delivery resumed after a fault (the motor turned again, the occlusion cleared)
EV_BATTERY = 22  # battery milestones: ERI, critical, end of service
EV_CALIBRATION = 23  # a new volume per step (saved at once)
# Kept in the ring only: never archived.
CHATTER = (EV_SESSION, EV_SECURITY)


class EventLog:
    """Each entry is kept as the line the pump saves it as (persist.py's LOG
    section): b"mday us code clock text", clock the device clock in s ("-"
    until set), the text escaped (esc()), followed by a newline. The lines lie
    in order in one ring of LOG_BYTES, so the ring is at most two spans of it
    (spans()): a save writes them as they are, and a read parses the one line
    it reads. archive: the therapy log in flash (archive.Archive), or None."""

    def __init__(self, archive=None):
        self._buf = bytearray(LOG_BYTES)
        self._start = array("H", bytes(2 * CAPACITY))  # entry i's line starts at _start[i % CAPACITY]
        self._len = array("H", bytes(2 * CAPACITY))  # and is _len[i % CAPACITY] bytes long (newline not counted)
        self._code = bytearray(CAPACITY)  # and its code is _code[i % CAPACITY]
        self._end = 0  # where the next line goes
        self._wrap = 0  # where the lines above _end end, once the newest went back to the start
        self.archive = archive
        # Entries are numbered on from the archive's newest: no archived index is given again.
        start = 0 if archive is None else archive.end
        self.first = start  # the oldest entry still in the ring
        self.count = start  # entries logged since the first boot
        self.archived = start  # every entry below this that is not CHATTER is in the archive

    def add(self, mday, us, code, text="", clock_s=None):
        """Log an entry: text a str, or its UTF-8 bytes (a bytearray), kept as they are when they fit
        MAX_TEXT and have nothing to escape (a program's saved rows: no str made of them), else cut and
        escaped as a str is."""
        if isinstance(text, str):
            b = self._text(text)
        elif len(text) > MAX_TEXT or b"\\" in text or b"\t" in text or b"\n" in text:
            b = self._text(text.decode())
        else:
            b = text
        # The head as bytes and the text's bytes written after it: no line formatted as a str and encoded
        # again (about 0.2 KB of garbage an entry).
        if clock_s is None:
            head = b"%d %d %d - " % (mday, us, code)
        else:
            head = b"%d %d %d %d " % (mday, us, code, clock_s)
        self._put(head, code, b)

    def _text(self, text):
        """text's bytes as a line holds them: cut to MAX_TEXT bytes, escaped (esc)."""
        b = text.encode()
        if len(b) > MAX_TEXT:  # bytes: the link carries at most 100 bytes of text
            i = MAX_TEXT - 3
            while i and b[i] & 0xC0 == 0x80:  # not inside a character
                i -= 1
            text = b[:i].decode() + "..."
            b = text.encode()
        e = esc(text)
        if e is not text:  # (replace() gives the text itself when it has nothing to escape)
            b = e.encode()
        return b

    def _put(self, line, code, more=b""):
        """Append line and more (bytes-like, no newline) as the newest entry, dropping the oldest ones in
        its way."""
        n = len(line) + len(more)
        pos = self._end
        start = self._start
        if pos + n + 1 > LOG_BYTES:  # no room above: the lines above pos go, and the ring starts again at 0
            while self.count > self.first and start[self.first % CAPACITY] >= pos:
                self._drop_oldest()
            self._wrap = pos
            pos = 0
        while self.count > self.first:  # the oldest goes while it is in the way (or the ring holds CAPACITY)
            i = self.first % CAPACITY
            s = start[i]
            if self.count - self.first < CAPACITY and (s > pos + n or s + self._len[i] < pos):
                break
            self._drop_oldest()
        head = len(line)
        self._buf[pos : pos + head] = line
        self._buf[pos + head : pos + n] = more
        self._buf[pos + n] = _NL
        i = self.count % CAPACITY
        start[i] = pos
        self._len[i] = n
        self._code[i] = code
        self._end = pos + n + 1
        self.count += 1

    def _drop_oldest(self):
        """The oldest entry leaves the ring; one that makes the record is archived first (with every
        other waiting: the ring still holds them all, as nothing new is written yet)."""
        i = self.first
        if i >= self.archived and self.archive is not None and self._code[i % CAPACITY] not in CHATTER:
            self.archive_now()
        self.first = i + 1

    def waiting(self):
        """Entries in the ring not archived yet that make the record."""
        n = 0
        for i in range(max(self.first, self.archived), self.count):
            if self._code[i % CAPACITY] not in CHATTER:
                n += 1
        return n

    def archive_now(self):
        """Write every entry of the ring that makes the record and is not archived to the archive, as
        one batch. A storage error leaves them in the ring (they may then leave it unarchived)."""
        if self.archive is None:
            return
        batch = []
        for i in range(max(self.first, self.archived), self.count):
            if self._code[i % CAPACITY] not in CHATTER:
                batch.append((i, self.line(i)))
        if batch:
            try:
                self.archive.append(batch)
            except OSError:
                return
        self.archived = self.count

    def archive_due(self):
        """After a save (its record holds the ring): archive the waiting entries once they are a batch."""
        if self.archive is not None and self.waiting() >= _ARCHIVE_BATCH:
            self.archive_now()

    def oldest(self):
        """Index of the oldest entry held, in the ring or the archive."""
        a = None if self.archive is None else self.archive.oldest()
        return self.first if a is None or a > self.first else a

    def find(self, index):
        """The oldest entry held at or after index, as (index, mday, us, code, text, clock_s or None),
        or None if none is (index is not logged yet). From the ring if it holds it, else the archive."""
        if index < self.first and self.archive is not None:
            found = self.archive.find(index)
            if found is not None and found[0] < self.first:
                return (found[0],) + _parse(found[1])
        if index < self.first:
            index = self.first
        if index >= self.count:
            return None
        return (index,) + _parse(self.line(index))

    def get(self, index):
        """Entry number index as (mday, us, code, text, clock_s or None), or None if it has left the ring."""
        line = self.line(index)
        return None if line is None else _parse(line)

    def line(self, index):
        """Entry number index as its saved line (a memoryview of the ring: valid until the next entry),
        or None if it has left the ring."""
        if index >= self.count or index < self.first:
            return None
        i = index % CAPACITY
        s = self._start[i]
        return memoryview(self._buf)[s : s + self._len[i]]

    def spans(self):
        """The lines of every entry held, oldest first, joined by newlines: ((start, end), ...), one
        or two spans of the ring (the second from its start, where the newest went on)."""
        if self.count == self.first:
            return ()
        s = self._start[self.first % CAPACITY]
        last = (self.count - 1) % CAPACITY
        e = self._start[last] + self._len[last]
        if s <= self._start[last]:
            return ((s, e),)
        return ((s, self._wrap), (0, e))

    def ring(self):
        """The ring itself, for a save to write spans() of it as they are (persist.py)."""
        return self._buf


def _parse(line):
    """(mday, us, code, text, clock_s or None) of a line as add() writes it."""
    mday, us, code, clock, text = bytes(line).decode().split(" ", 4)
    return int(mday), int(us), int(code), unesc(text), None if clock == "-" else int(clock)


def esc(text):
    """Text on one line without tabs: backslash, newline and tab escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def unesc(text):
    """esc()'s text as it was. Byte by byte: each character a str gives (text[i]) is interned for good,
    so unescaping a host's text character by character made a name of each new character in it."""
    if "\\" not in text:
        return text
    raw = text.encode()  # UTF-8: a backslash byte is never part of another character
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b == 0x5C and i + 1 < n:  # "\\"
            b = raw[i + 1]
            out.append(0x0A if b == 0x6E else 0x09 if b == 0x74 else b)  # "\\n", "\\t", or the byte itself
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out).decode()
