"""The event log's ring (firmware/eventlog.py): the lines of its entries lie back to back in one buffer made at
boot, so logging allocates nothing that stays on the heap, and a save writes the lines as they lie. It must
always hold the newest entries, whole and in order, at most CAPACITY of them, and as many as fit when they are
long; and what a save writes of it (its spans) must be exactly those lines, joined by newlines. Checked against
a model (the list of every line added) on CPython, and on the MicroPython unix port."""

import random

import pytest
from vms import run_unix

from firmware.eventlog import CAPACITY, LOG_BYTES, MAX_TEXT, EventLog, esc, unesc

# The longest line add() writes: two pump-time numbers, a code, and MAX_TEXT bytes escaped (each may double).
LONGEST_LINE = len("4294967295 86399999999 255 4294967295 ") + 2 * MAX_TEXT


def held(log):
    return [bytes(log.line(i)) for i in range(log.oldest(), log.count)]


def saved(log):
    """What a save writes of the log's entries (persist.py): its spans of the ring, one after another."""
    ring = bytes(log.ring())
    return b"".join(ring[start:end] for start, end in log.spans())


def check(log, lines):
    """The log holds the newest of lines, whole, in order, as many as it should, and saves exactly them."""
    kept = held(log)
    assert log.count == len(lines)
    assert kept == lines[len(lines) - len(kept) :]
    assert len(kept) <= CAPACITY
    # It drops an entry only for room: what it holds, with the newest left out, fills more than what is
    # lost at the top when the ring starts again at 0 (less than one longest line) would leave.
    if len(kept) < min(CAPACITY, len(lines)):
        dropped = lines[len(lines) - len(kept) - 1]
        assert sum(len(x) + 1 for x in kept) + len(dropped) + 1 > LOG_BYTES - LONGEST_LINE - 1
    assert saved(log) == b"\n".join(kept)


def texts(rng, n):
    """n texts of every kind add() takes: short, up to MAX_TEXT and past it, with characters it escapes."""
    out = []
    for _ in range(n):
        size = rng.choice([0, 5, 20, 40, 60, MAX_TEXT - 1, MAX_TEXT, MAX_TEXT + 30])
        alphabet = rng.choice(["session started: clinician ", "a\\b\tc\nd ", "café µg "])
        out.append("".join(rng.choice(alphabet) for _ in range(size)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_the_ring_holds_the_newest_entries_whole_and_in_order(seed):
    rng = random.Random(seed)
    log = EventLog()
    lines = []  # the model: every line add() made
    for i, text in enumerate(texts(rng, 1500)):
        mday, us, code = rng.randrange(0, 2**32), rng.randrange(0, 86_400_000_000), rng.randrange(1, 30)
        clock = rng.choice([None, rng.randrange(0, 2**32)])
        log.add(mday, us, code, text, clock)
        lines.append(bytes(log.line(log.count - 1)))
        assert log.get(log.count - 1)[:3] == (mday, us, code) and log.get(log.count - 1)[4] == clock
        if i % 7 == 0 or i > 1450:
            check(log, lines)


def test_short_entries_keep_capacity_of_them_and_long_ones_fewer():
    log = EventLog()
    for i in range(300):
        log.add(1, i, 13, "session ended: ended by the host")
    assert log.count - log.oldest() == CAPACITY
    long = EventLog()
    for _ in range(300):
        long.add(4294967295, 86_399_999_999, 2, "x" * MAX_TEXT)
    kept = long.count - long.oldest()
    n = len(long.line(299)) + 1  # a line and its newline: as many as fit, but for the top a wrap leaves
    assert LOG_BYTES // n - 1 <= kept <= LOG_BYTES // n < CAPACITY


def test_a_line_read_is_the_entry_and_a_line_gone_is_none():
    log = EventLog()
    log.add(3, 4, 5, "tab\there")
    assert log.get(0) == (3, 4, 5, "tab\there", None) and bytes(log.line(0)) == b"3 4 5 - tab\\there"
    log.add(3, 5, 5, "clock set", 1_717_223_400)
    assert log.get(1) == (3, 5, 5, "clock set", 1_717_223_400) and bytes(log.line(1)) == b"3 5 5 1717223400 clock set"
    for i in range(200):
        log.add(0, i, 13, "x")
    assert log.line(0) is None and log.get(0) is None and log.line(log.count) is None


RING_SCRIPT = """
from firmware.eventlog import EventLog, CAPACITY
import gc
log = EventLog()
lines = []
s = 1
for i in range(900):
    s = (s * 75 + 74) % 65537
    text = "e" * (s % 130)
    log.add(s, i, s % 30, text)
    lines.append(bytes(log.line(log.count - 1)))
kept = [bytes(log.line(i)) for i in range(log.oldest(), log.count)]
ring = bytes(log.ring())
saved = b"".join(ring[a:b] for a, b in log.spans())
print(kept == lines[len(lines) - len(kept):], saved == b"\\n".join(kept), len(kept) <= CAPACITY, len(kept) > 12)
gc.collect()
before = gc.mem_alloc()
for i in range(300):
    log.add(1, i, 13, "session ended: ended by the host")
gc.collect()
print("kept", gc.mem_alloc() - before)
"""


@pytest.mark.micropython
def test_the_ring_on_micropython_holds_the_newest_and_keeps_nothing_new_on_the_heap(tmp_path):
    script = tmp_path / "ring.py"
    script.write_text(RING_SCRIPT)
    out = run_unix(script).splitlines()
    assert out[0] == "True True True True", out
    assert out[1] == "kept 0", out  # 300 entries added: every byte they allocated was garbage


@pytest.mark.parametrize(
    "text",
    [
        "crc 0a1b2c3d: {i2,morphine,...}",  # nothing to escape: the bytes kept as they are
        "drug a\\b\tc",  # a backslash and a tab: escaped as a str's are
        "é" * 60,  # past MAX_TEXT bytes: cut on a character, as a str is
    ],
)
def test_an_entry_given_as_bytes_is_the_entry_its_text_would_be(text):
    """A program's log entries come as bytes copied from its saved rows: each is the line the same text
    as a str gives, whatever it holds."""
    as_str, as_bytes = EventLog(), EventLog()
    as_str.add(3, 4, 5, text, 1_700_000_000)
    as_bytes.add(3, 4, 5, bytearray(text.encode()), 1_700_000_000)
    assert held(as_bytes) == held(as_str)
    assert as_bytes.get(0)[3] == as_str.get(0)[3]


# Texts that mix what esc() escapes with characters of two and three UTF-8 bytes, a backslash before one of
# them and at the very end: unesc() works on the bytes (a str's characters would each be interned).
ESCAPED = ["café\\µg\tx\n漢\\字", "\\\\n is not \\n", "end\\", "\\é", "a\tb\nc", "no escape: 漢字"]


def test_an_escaped_text_comes_back_as_it_was():
    for text in ESCAPED:
        assert unesc(esc(text)) == text
    assert unesc("end\\") == "end\\" and unesc("\\é") == "é"  # as esc() never writes them: taken as they are


@pytest.mark.micropython
def test_an_escaped_text_comes_back_as_it_was_on_micropython(tmp_path):
    script = tmp_path / "esc.py"
    script.write_text(
        "from firmware.eventlog import esc, unesc\n"
        f"texts = {ESCAPED!r}\n"
        "print([unesc(esc(t)) == t for t in texts], unesc('end\\\\'), unesc('\\\\\\u00e9'))\n"
    )
    out = run_unix(script).strip()
    assert out == "%s end\\ é" % ([True] * len(ESCAPED)), out
