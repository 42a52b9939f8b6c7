"""The event log's two retentions (firmware/eventlog.py, firmware/archive.py): the newest entries in a small RAM
ring, every entry that makes the record (all but sessions and security refusals) in the therapy log in flash.
Checked against a model (every entry ever added) through saves, restarts from the last save's ring, torn appends
and the oldest file leaving; on CPython over an in-memory storage and on the MicroPython unix port over files."""

import random
import sys

import pytest
from vms import MP_DIR, run_unix

from firmware import archive, restore
from firmware.archive import Archive
from firmware.eventlog import CAPACITY, CHATTER, EV_PROGRAM, EV_SESSION, EventLog

sys.path.insert(0, str(MP_DIR))
from mem_storage import MemStorage  # noqa: E402  (tests/mp: shared with the MicroPython runs)


class Pump:
    """The log as the pump holds it: a ring, the archive on storage, and the record of the last save."""

    def __init__(self, storage):
        self.storage = storage
        self.log = EventLog(Archive(storage))
        self.record = None  # (count, [lines]) of the ring at the last save

    def save(self):
        log = self.log
        self.record = (log.count, [bytes(log.line(i)) for i in range(log.first, log.count)])
        log.archive_due()

    def restart(self):
        """A power cut: a new log on the same storage, its ring put back from the last save (persist.py)."""
        self.log = EventLog(Archive(self.storage))
        if self.record is not None:
            count, lines = self.record
            self.log.count = self.log.first = count - len(lines)
            for line in lines:
                restore.put_line(self.log, memoryview(line))
            restore.after_restore(self.log)


def texts(rng):
    return rng.choice(["clinician session started", "program 1a2b3c4d: basal 2 mg/day", "x" * rng.randrange(0, 100)])


def held(log, since=0):
    """Every entry the log gives from index since on, as EVENT reads them: {index: line}."""
    out = {}
    i = since
    while True:
        found = log.find(i)
        if found is None:
            return out
        out[found[0]] = found[1:]
        i = found[0] + 1


@pytest.mark.parametrize("seed", range(4))
def test_every_entry_that_makes_the_record_stays_readable_through_saves_and_restarts(seed):
    rng = random.Random(seed)
    pump = Pump(MemStorage())
    model = {}  # index -> the entry as added: (mday, us, code, text, clock)
    saved_upto = 0  # entries below this were in a saved record (or archived)
    for step in range(1500):
        r = rng.random()
        if r < 0.8:
            code = EV_SESSION if rng.random() < 0.6 else rng.choice([EV_PROGRAM, 3, 4, 6, 8])
            entry = (step, rng.randrange(86_400_000), code, texts(rng), rng.choice([None, 1_717_223_400 + step]))
            model[pump.log.count] = entry
            pump.log.add(*entry)
        elif r < 0.95:
            pump.save()
            saved_upto = pump.log.count
        else:
            before = pump.log.count
            pump.restart()
            # Entries after the last save are gone unless archived: the count goes on above the record or the archive.
            for i in range(saved_upto, before):
                if i >= pump.log.count or (i in model and held(pump.log, i).get(i) is None):
                    model.pop(i, None)
            saved_upto = pump.log.count
    log = pump.log
    got = held(log)
    oldest = log.oldest()
    assert min(got) == oldest
    for i, entry in model.items():
        if i < oldest:
            continue
        if entry[2] in CHATTER and i < log.first:
            assert i not in got  # sessions leave with the ring
            continue
        mday, us, code, text, clock = got[i]
        assert (mday, us, code, text, clock) == entry, i
    assert all(i in model for i in got)  # nothing held that was not added, and no index given twice
    therapy = [i for i, e in model.items() if e[2] not in CHATTER]
    assert therapy and all(i in got for i in therapy)  # 1,500 steps fit the archive whole


def test_a_flood_of_sessions_never_pushes_a_program_out():
    pump = Pump(MemStorage())
    pump.log.add(0, 0, EV_PROGRAM, "program 0badf00d: basal 2 mg/day")
    pump.save()
    for i in range(5000):
        pump.log.add(1, i, EV_SESSION, "clinician session started")
        if i % 50 == 0:
            pump.save()
    got = held(pump.log)
    assert got[0][3] == "program 0badf00d: basal 2 mg/day"
    sessions = [i for i in got if i]
    assert len(sessions) <= CAPACITY and sessions == list(range(pump.log.count - len(sessions), pump.log.count))
    assert sum(len(f) for f in pump.storage.files.values() if f) < 100  # sessions never reached flash


def test_the_oldest_file_leaves_when_the_archive_is_full_and_the_rest_stay_in_order():
    storage = MemStorage()
    pump = Pump(storage)
    n = 0
    while len([f for f in storage.files if f.startswith("log.")]) < archive.FILES or n < 6000:
        pump.log.add(n, 0, EV_PROGRAM, "program %08x: basal %d uL/day" % (n, n % 997))
        n += 1
        if n % 20 == 0:
            pump.save()
    got = held(pump.log)
    oldest = pump.log.oldest()
    assert min(got) == oldest > 0  # the first entries have left
    assert list(got) == list(range(oldest, pump.log.count))  # none missing above it
    assert all(got[i][3] == "program %08x: basal %d uL/day" % (i, i % 997) for i in got)
    kept_bytes = sum(len(storage.files[f]) for f in storage.files if f.startswith("log."))
    assert (archive.FILES - 1) * archive.FILE_BYTES * 0.9 < kept_bytes <= archive.FILES * archive.FILE_BYTES
    assert pump.log.find(0)[0] == oldest  # EVENT 0 gives where the log now starts


@pytest.mark.parametrize("cut", [1, 3, 5, 12, 21])  # the last entry is 22 bytes
def test_a_torn_append_loses_only_its_own_entry_and_the_next_batch_starts_a_new_file(cut):
    storage = MemStorage()
    pump = Pump(storage)
    for i in range(30):
        pump.log.add(i, 0, EV_PROGRAM, "entry %d" % i)
    pump.log.archive_now()
    name = "log.0"
    whole = len(storage.files[name])
    storage.files[name] = storage.files[name][: whole - cut]  # a power cut tore the last entry
    restarted = Archive(storage)
    assert restarted.end == 29  # entry 29 is torn: 0..28 are archived
    assert restarted.find(28)[0] == 28 and restarted.find(29) is None
    log = EventLog(restarted)
    assert log.count == 29  # numbered on from the archive: 29 is given again, to a new entry
    log.add(99, 0, EV_PROGRAM, "after the cut")
    log.archive_now()
    assert sorted(f for f in storage.files if f.startswith("log.")) == ["log.0", "log.1"]
    assert bytes(restarted.find(29)[1]).endswith(b"after the cut")
    assert bytes(restarted.find(0)[1]).endswith(b"entry 0")


def test_a_board_without_storage_keeps_the_ring_only():
    log = EventLog()
    for i in range(100):
        log.add(0, i, EV_PROGRAM, "program %d" % i)
    assert log.oldest() == log.first > 0 and log.find(0)[0] == log.first
    assert log.find(log.count) is None


RUN = """
import gc, os, sys
sys.path.insert(0, "tests/mp")
from firmware.archive import Archive
from firmware.eventlog import EventLog, EV_PROGRAM, EV_SESSION
from hal.file_storage import FileStorage

d = sys.argv[1]
log = EventLog(Archive(FileStorage(d)))
for i in range(600):
    log.add(i, 0, EV_SESSION if i % 3 else EV_PROGRAM, "entry %d" % i)
    if i % 25 == 0:
        log.archive_due()
log.archive_now()
again = EventLog(Archive(FileStorage(d)))  # a restart: the ring is gone, the archive is read back
ok = True
for i in range(0, 600, 3):
    found = again.archive.find(i)
    ok = ok and found is not None and found[0] == i and bytes(found[1]).endswith(b"entry %d" % i)
print("archived", ok, again.count >= 597)
gc.collect()
before = gc.mem_alloc()
for i in range(600, 900):
    log.add(i, 0, EV_PROGRAM, "entry %d" % i)
gc.collect()
print("kept", gc.mem_alloc() - before)
"""


@pytest.mark.micropython
def test_the_archive_on_micropython_files_reads_back_after_a_restart_and_keeps_nothing_on_the_heap(tmp_path):
    script = tmp_path / "archive_run.py"
    script.write_text(RUN)
    folder = tmp_path / "flash"
    folder.mkdir()
    out = run_unix(script, args=(str(folder),)).splitlines()
    assert out[0] == "archived True True", out
    assert out[1] == "kept 0", out  # 300 entries and their archive batches: all garbage


def test_the_longest_line_the_log_can_make_fits_the_length_byte_and_reads_back_whole():
    """n (one byte) is the index and the line: the longest line is 38 bytes of numbers and a text of 100 bytes
    whose every character is escaped (200), 238 in all."""
    storage = MemStorage()
    log = EventLog(Archive(storage))
    log.add(2**32 - 1, 86_399_999_999, 255, "\n" * 100, 2**32 - 1)
    longest = bytes(log.line(0))
    assert len(longest) == 238
    log.add(1, 3, EV_PROGRAM, "after it")
    log.archive_now()
    restarted = Archive(storage)
    assert restarted.end == 2 and bytes(restarted.find(0)[1]) == longest
    assert bytes(restarted.find(1)[1]).endswith(b"after it")
