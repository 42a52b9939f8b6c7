# The event log: a fixed ring of the most recent events, each with its pump
# time, a code and a short text. It holds every programming change (with the
# library version in force), every bolus and refusal of a patient bolus,
# every alarm and clock change, and every restart. It is saved with the rest of
# the pump's state at each durable point (persist.py).
#
# Command and event path only (an entry's line is made, then copied into the ring).

from array import array

from firmware import const

CAPACITY = 128  # entries at most
MAX_TEXT = 100
# The entries' lines, back to back in one buffer made at boot: 64 bytes a line on average (most
# take 40-80), so it holds the last CAPACITY entries unless they are unusually long, and then
# as many of the last ones as fit. One block for the whole log, because a line each, made as
# the entries come and spread over the heap as they go, fragmented a Pico's heap until a 1.1 KB
# block could no longer be found with 60 KB free (the emulated Pico, issue 19).
LOG_BYTES = const(8192)
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


class EventLog:
    """Each entry is kept as the line the pump saves it as (persist.py's LOG
    section): b"mday us code text", the text escaped (esc()), followed by a
    newline. The lines lie in order in one ring of LOG_BYTES, so the whole log
    is at most two spans of it (spans()): a save writes them as they are, and a
    read parses the one line it reads."""

    def __init__(self):
        self._buf = bytearray(LOG_BYTES)
        self._start = array("H", bytes(2 * CAPACITY))  # entry i's line starts at _start[i % CAPACITY]
        self._len = array("H", bytes(2 * CAPACITY))  # and is _len[i % CAPACITY] bytes long (newline not counted)
        self._end = 0  # where the next line goes
        self._wrap = 0  # where the lines above _end end, once the newest went back to the start
        self.first = 0  # the oldest entry still in the ring
        self.count = 0  # events logged since boot

    def add(self, mday, us, code, text=""):
        b = text.encode()
        if len(b) > MAX_TEXT:  # bytes: the link carries at most 100 bytes of text
            i = MAX_TEXT - 3
            while i and b[i] & 0xC0 == 0x80:  # not inside a character
                i -= 1
            text = b[:i].decode() + "..."
        self._put(("%d %d %d %s" % (mday, us, code, esc(text))).encode())

    def _put(self, line):
        """Append line (bytes-like, no newline) as the newest entry, dropping the oldest ones in its way."""
        n = len(line)
        pos = self._end
        start = self._start
        if pos + n + 1 > LOG_BYTES:  # no room above: the lines above pos go, and the ring starts again at 0
            while self.count > self.first and start[self.first % CAPACITY] >= pos:
                self.first += 1
            self._wrap = pos
            pos = 0
        while self.count > self.first:  # the oldest goes while it is in the way (or the ring holds CAPACITY)
            i = self.first % CAPACITY
            s = start[i]
            if self.count - self.first < CAPACITY and (s > pos + n or s + self._len[i] < pos):
                break
            self.first += 1
        self._buf[pos : pos + n] = line
        self._buf[pos + n] = _NL
        i = self.count % CAPACITY
        start[i] = pos
        self._len[i] = n
        self._end = pos + n + 1
        self.count += 1

    def oldest(self):
        """Index of the oldest entry still in the ring."""
        return self.first

    def get(self, index):
        """Entry number index (0 = first since boot) as (mday, us, code, text), or None if it has left the ring."""
        line = self.line(index)
        if line is None:
            return None
        mday, us, code, text = bytes(line).decode().split(" ", 3)
        return int(mday), int(us), int(code), unesc(text)

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

    def put_line(self, line):
        """Add an entry from its saved line (bytes-like: a restore of a LOG section's line).
        A line as add() writes it (_plain) is copied as it is; any other is read and written
        again by add(), as it always was."""
        if _plain(line):
            self._put(line)
            return
        mday, us, code, text = bytes(line).decode().split(" ", 3)
        self.add(int(mday), int(us), int(code), unesc(text))


def _plain(line):
    """True if add() would write line's entry again as the same bytes: three decimal numbers
    without a sign or leading zero, a space after each, then at most MAX_TEXT bytes of ASCII
    text with no backslash or tab (nothing esc() changes). Reads the bytes in place."""
    n = len(line)
    i = 0
    for _ in range(3):
        start = i
        while i < n and 0x30 <= line[i] <= 0x39:
            i += 1
        if i == start or i == n or line[i] != 0x20 or (line[start] == 0x30 and i - start > 1):
            return False
        i += 1
    if n - i > MAX_TEXT:
        return False
    while i < n:
        c = line[i]
        if c >= 0x80 or c == 0x5C or c == 0x09:  # not ASCII, a backslash, a tab
            return False
        i += 1
    return True


def esc(text):
    """Text on one line without tabs: backslash, newline and tab escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def unesc(text):
    if "\\" not in text:
        return text
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            out.append("\n" if nxt == "n" else "\t" if nxt == "t" else nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)
