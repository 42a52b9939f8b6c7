"""The crash-safe record store (firmware/store.py) on CPython, over an
in-memory storage driver (tests/mp/mem_storage.py) and the file driver
(hal/file_storage.py). The same store runs on both MicroPython VMs in
tests/firmware/test_store_vms.py, where the power cuts are real process deaths."""

import struct
import sys
import tracemalloc
import zlib

import pytest
from vms import MP_DIR

from firmware.store import MAGIC, MAX_SECTION, SEQ_MODULUS, Store, newer
from hal.file_storage import FileStorage

sys.path.insert(0, str(MP_DIR))
from mem_storage import MemStorage  # noqa: E402  (tests/mp: shared with the VM scripts)

NAMES = ("state.0", "state.1")


def encode(seq, sections):
    """The record format as firmware/store.py documents it, written independently."""
    body = MAGIC + struct.pack("<I", seq)
    for tag, data in sections:
        body += struct.pack("<BH", tag, len(data)) + bytes(data)
    body += b"\x00\x00\x00"
    return body + struct.pack("<I", zlib.crc32(body))


def data(n, seed):
    return bytes((i * 131 + seed * 7 + (i >> 8)) & 0xFF for i in range(n))


def as_dict(sections):
    return {tag: bytes(d) for tag, d in sections}


def loaded(storage):
    """What a fresh Store (a fresh boot) loads: (seq, {tag: bytes}) or None."""
    got = Store(storage).load()
    if got is None:
        return None
    seq, sections = got
    assert all(isinstance(d, bytearray) for d in sections.values())
    return seq, {tag: bytes(d) for tag, d in sections.items()}


def copy(storage, **kwargs):
    other = MemStorage(**kwargs)
    other.files = {name: bytearray(f) for name, f in storage.files.items()}
    return other


# Records that cross the 256-byte chunks of the check in every way: an empty
# section, one shorter than a chunk, one of exactly a chunk, one longer.
A = [(1, data(10, 1)), (2, data(300, 2))]
B = [(1, data(12, 3)), (2, data(0, 4)), (3, data(256, 5)), (250, data(301, 6))]
C = [(7, data(40, 7))]


def test_the_record_is_byte_for_byte_the_documented_format():
    st = MemStorage()
    store = Store(st)
    assert store.save(A) == 0
    assert store.save(B) == 1
    assert st.files == {"state.0": encode(0, A), "state.1": encode(1, B)}


def test_a_round_trip_gives_back_every_section_of_any_size_and_type():
    sections = [
        (1, b""),
        (2, b"\x00"),
        (3, bytearray(data(255, 1))),
        (4, memoryview(data(256, 2))),
        (5, data(257, 3)),
        (255, data(MAX_SECTION, 4)),
    ]
    st = MemStorage()
    assert Store(st).save(sections) == 0
    assert loaded(st) == (0, as_dict(sections))


def test_the_newest_record_wins_and_the_slots_take_turns():
    st = MemStorage()
    store = Store(st)
    records = [[(1, data(i * 37, i)), (2, data(5, i))] for i in range(6)]
    for i, record in enumerate(records):
        assert store.save(record) == i
        assert loaded(st) == (i, as_dict(record))
        assert store.load() is not None
    assert st.writes == ["state.0", "state.1"] * 3
    # A new Store (a reboot) that saves without loading first continues the count
    # in the slot not holding the newest record.
    assert Store(st).save(C) == 6
    assert st.writes[-1] == "state.0"
    assert loaded(st) == (6, as_dict(C))
    assert st.files["state.1"] == encode(5, records[5])


def test_other_slot_names():
    st = MemStorage()
    store = Store(st, ("a", "b"))
    store.save(A)
    store.save(B)
    assert sorted(st.files) == ["a", "b"]
    assert Store(st, ("a", "b")).load()[0] == 1
    assert Store(st).load() is None
    with pytest.raises(ValueError):
        Store(st, ("a", "a"))


@pytest.mark.parametrize("truncate", [True, False], ids=["truncating", "in-place"])
@pytest.mark.parametrize("earlier", [1, 2], ids=["over-an-empty-slot", "over-an-older-record"])
def test_a_save_cut_after_any_byte_leaves_the_previous_record(earlier, truncate):
    """Every prefix of the new record (k = 0 .. all but its last byte) leaves
    exactly the previous record; the whole of it gives the new one. The slot
    being written is empty (the second save) or holds an older, longer record
    (the third). `in-place`: a storage that does not truncate, so the torn slot
    holds the new record's prefix followed by the old record's tail."""
    before = MemStorage()
    store = Store(before)
    if earlier == 2:
        store.save(B)  # longer than A: its tail outlasts a torn A
    store.save(A)
    prev_seq = earlier - 1
    new = encode(earlier, C + B)
    target = NAMES[earlier % 2]
    for k in range(len(new) + 1):
        st = copy(before, cut_after=k, truncate=truncate)
        Store(st).save(C + B)
        assert st.appended == len(new)
        written = st.files[target]
        if truncate:
            assert written == new[:k]
        else:
            assert written[:k] == new[:k]
        if k < len(new):
            assert loaded(st) == (prev_seq, as_dict(A)), k
        else:
            assert loaded(st) == (earlier, as_dict(C + B))


def test_a_save_that_fails_midway_is_redone_in_the_same_slot():
    """A storage error part-way (the write raises) leaves the older record, and
    the next save goes into the torn slot again, never over the valid one."""

    class Failing(MemStorage):
        def __init__(self, fail_at):
            super().__init__()
            self.fail_at = fail_at

        def append(self, data):
            if self.fail_at is not None and self.appended + len(data) > self.fail_at:
                raise OSError("storage full")
            super().append(data)

    st = Failing(None)
    store = Store(st)
    store.save(A)
    store.save(B)
    st.fail_at = st.appended + 20
    with pytest.raises(OSError):
        store.save(C)
    assert loaded(st) == (1, as_dict(B))
    st.fail_at = None
    st._name = None  # the failed write was never ended
    assert store.save(A) == 2
    assert st.writes[-2:] == ["state.0", "state.0"]
    assert st.files["state.1"] == encode(1, B)
    assert loaded(st) == (2, as_dict(A))


def test_a_single_flipped_bit_anywhere_makes_its_slot_ignored():
    st = MemStorage()
    store = Store(st)
    store.save(A)
    store.save(B)
    for name, want in (("state.1", (0, as_dict(A))), ("state.0", (1, as_dict(B)))):
        f = st.files[name]
        for bit in range(len(f) * 8):
            f[bit >> 3] ^= 1 << (bit & 7)
            assert loaded(st) == want, (name, bit)
            f[bit >> 3] ^= 1 << (bit & 7)
    assert loaded(st) == (1, as_dict(B))


def test_a_corrupt_newest_slot_is_the_one_the_next_save_overwrites():
    st = MemStorage()
    store = Store(st)
    store.save(A)
    store.save(B)
    st.files["state.1"][100] ^= 0x10
    fresh = Store(st)
    assert fresh.save(C) == 1  # one more than the newest valid record, A's 0
    assert st.writes[-1] == "state.1"
    assert st.files["state.0"] == encode(0, A)
    assert loaded(st) == (1, as_dict(C))


@pytest.mark.parametrize(
    "files",
    [
        {},
        {"state.0": b"", "state.1": b""},
        {"state.0": b"\xff" * 64, "state.1": bytes(64)},
        {"state.0": encode(0, A)[:-1], "state.1": encode(1, B)[:-1]},  # both torn at the last byte
        {"state.0": encode(0, A) + b"\x00"},  # a byte after the CRC
        {"state.0": encode(0, A)[:14]},  # shorter than any record
        {"state.1": MAGIC},
    ],
    ids=["missing", "empty", "garbage", "torn", "trailing-byte", "short", "magic-only"],
)
def test_no_valid_slot_loads_nothing_and_the_next_save_starts_afresh(files):
    st = MemStorage()
    st.files = {name: bytearray(f) for name, f in files.items()}
    store = Store(st)
    assert store.load() is None
    assert store.save(C) == 0
    assert st.writes == ["state.0"]
    assert loaded(st) == (0, as_dict(C))


@pytest.mark.parametrize(
    "record",
    [
        b"PST\x02" + encode(0, A)[4:],  # another format version
        encode(SEQ_MODULUS, A),  # seq past 2**30
        encode(0, [(1, b"a"), (1, b"b")]),  # a tag twice
        encode(0, [(1, data(MAX_SECTION + 1, 1))]),  # a section past the limit
    ],
    ids=["version", "seq", "duplicate-tag", "oversize"],
)
def test_a_record_with_a_good_crc_but_a_bad_field_is_ignored(record):
    if record[:4] == b"PST\x02":  # keep the CRC right over the changed magic
        record = record[:-4] + struct.pack("<I", zlib.crc32(record[:-4]))
    st = MemStorage()
    st.files = {"state.0": bytearray(record)}
    assert Store(st).load() is None
    st.files["state.1"] = bytearray(encode(0, C))
    assert loaded(st) == (0, as_dict(C))


@pytest.mark.parametrize("after", [b"", b"x"], ids=["crc-next", "a-byte-then-crc"])
def test_an_end_section_with_a_length_is_ignored(after):
    body = MAGIC + struct.pack("<I", 0) + b"\x00\x01\x00" + after
    st = MemStorage()
    st.files = {"state.0": bytearray(body + struct.pack("<I", zlib.crc32(body)))}
    assert Store(st).load() is None


def test_sequence_numbers_wrap_at_2_to_the_30_and_compare_as_serial_numbers():
    assert newer(1, 0) and not newer(0, 1) and not newer(5, 5)
    assert newer(0, SEQ_MODULUS - 1) and not newer(SEQ_MODULUS - 1, 0)
    assert newer(3, SEQ_MODULUS - 2)
    st = MemStorage()
    st.files = {"state.0": bytearray(encode(SEQ_MODULUS - 2, A)), "state.1": bytearray(encode(SEQ_MODULUS - 1, B))}
    assert loaded(st) == (SEQ_MODULUS - 1, as_dict(B))
    store = Store(st)
    assert store.save(C) == 0
    assert st.writes == ["state.0"]
    assert loaded(st) == (0, as_dict(C))
    assert store.save(A) == 1
    assert loaded(st) == (1, as_dict(A))
    # The older record wins over a torn newer one across the wrap too.
    st.files["state.1"] = st.files["state.1"][:-1]
    assert loaded(st) == (0, as_dict(C))


def test_an_oversize_section_is_refused_with_its_tag_size_and_the_limit_and_nothing_is_written():
    st = MemStorage()
    store = Store(st)
    store.save(A)
    before = {name: bytes(f) for name, f in st.files.items()}
    with pytest.raises(ValueError, match=r"^store: section 9 is 16385 bytes, more than the limit of 16384 bytes$"):
        store.save([(1, b"ok"), (9, bytes(MAX_SECTION + 1))])
    assert st.writes == ["state.0"]
    assert {name: bytes(f) for name, f in st.files.items()} == before
    assert store.save([(9, bytes(MAX_SECTION))]) == 1  # exactly the limit is fine


@pytest.mark.parametrize(
    "sections, message",
    [
        ([(0, b"x")], r"tag 0 is not in 1\.\.255"),
        ([(256, b"x")], r"tag 256 is not in 1\.\.255"),
        ([(-1, b"x")], r"tag -1 is not in 1\.\.255"),
        ([("a", b"x")], r"tag 'a' is not in 1\.\.255"),
        ([(3, b"x"), (4, b""), (3, b"y")], r"section 3 appears twice"),
    ],
)
def test_bad_tags_are_refused_before_anything_is_written(sections, message):
    st = MemStorage()
    with pytest.raises(ValueError, match=message):
        Store(st).save(sections)
    assert st.writes == [] and st.files == {}


def test_load_allocates_no_buffer_for_a_record_that_fails_its_check():
    """The newest slot holds 32 KB of sections with a bad CRC; the older one a
    small valid record. load() must check before it allocates: it may not
    hold memory anywhere near the size of the bad record's sections."""
    big = [(1, data(MAX_SECTION, 1)), (2, data(MAX_SECTION, 2))]
    st = MemStorage()
    store = Store(st)
    store.save(C)
    store.save(big)
    st.files["state.1"][-1] ^= 1
    import firmware.store_read  # noqa: F401  (the reading's code loaded first: not what is measured here)

    tracemalloc.start()
    try:
        got = Store(st).load()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got[0] == 0
    assert peak < 4096, peak


def ring_of(words):
    """A Pieces of arrays of u16 as the guard's ring is (firmware/guard.py), words long, all zeros."""
    from array import array

    from firmware.store import Pieces

    return Pieces(2 * words, [array("H", bytes(2 * 12)) for _ in range(words // 12)])


def test_load_into_arrays_reads_that_section_into_them_as_a_save_of_them_wrote_it():
    src = ring_of(36)
    for k, a in enumerate(src.pieces):
        for i in range(len(a)):
            a[i] = (k * 1000 + i) * 40_503 & 0xFFFF  # both bytes of each, and past 2**15
    st = MemStorage()
    Store(st).save([(1, data(10, 1)), (5, src), (6, data(300, 2))])
    into = ring_of(36)
    seq, sections = Store(st).load({5: into})
    assert sections[5] is into and bytes(into) == bytes(src)
    assert bytes(sections[1]) == data(10, 1) and bytes(sections[6]) == data(300, 2)
    # a section of another length is read as it always is, and the arrays stay as they were
    other = ring_of(24)
    seq, sections = Store(st).load({5: other})
    assert isinstance(sections[5], bytearray) and bytes(sections[5]) == bytes(src)
    assert bytes(other) == bytes(2 * 24)


def test_load_into_arrays_leaves_them_zero_when_no_record_is_returned():
    class Changing(MemStorage):
        """A slot that changes (a bit of its data flips) once its check has read its CRC, before it is read."""

        flipped = False

        def read_into(self, name, offset, buf):
            n = super().read_into(name, offset, buf)
            if not self.flipped and offset + len(buf) == len(self.files[name]):
                self.files[name][20] ^= 1
                self.flipped = True
            return n

    st = Changing()
    Store(st).save([(5, data(72, 3))])
    into = ring_of(36)
    assert Store(st).load({5: into}) is None
    assert st.flipped
    assert bytes(into) == bytes(2 * 36)


# -- the file driver (hal/file_storage.py) on CPython


def test_file_storage_creates_its_folder_and_reports_missing_files(tmp_path):
    fs = FileStorage(str(tmp_path / "flash"))
    assert (tmp_path / "flash").is_dir()
    assert fs.size("nope") == -1
    assert fs.read_into("nope", 0, bytearray(4)) == 0
    FileStorage(str(tmp_path / "flash"))  # an existing folder is fine


def test_file_storage_writes_reads_and_truncates(tmp_path):
    fs = FileStorage(str(tmp_path))
    fs.begin("f")
    fs.append(b"hello ")
    fs.append(bytearray(b"wide "))
    fs.append(memoryview(b"world!!")[:5])
    fs.end()
    assert (tmp_path / "f").read_bytes() == b"hello wide world"
    assert fs.size("f") == 16
    buf = bytearray(5)
    assert fs.read_into("f", 6, buf) == 5 and buf == b"wide "
    assert fs.read_into("f", 13, buf) == 3 and buf[:3] == b"rld"
    assert fs.read_into("f", 16, buf) == 0
    assert fs.read_into("f", 99, buf) == 0
    view = memoryview(buf)[1:3]
    assert fs.read_into("f", 0, view) == 2 and buf[1:3] == b"he"
    # Rewriting truncates at once, and reads after it see the new contents.
    fs.begin("f")
    assert fs.size("f") == 0
    fs.append(b"xy")
    fs.end()
    assert fs.read_into("f", 0, buf) == 2 and buf[:2] == b"xy"
    fs.begin("g")
    with pytest.raises(OSError, match="already being written"):
        fs.begin("f")
    fs.end()


def test_the_store_over_files_survives_a_new_driver(tmp_path):
    store = Store(FileStorage(str(tmp_path)))
    store.save(A)
    store.save(B)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.0", "state.1"]
    assert (tmp_path / "state.1").read_bytes() == encode(1, B)
    got = Store(FileStorage(str(tmp_path))).load()
    assert got[0] == 1 and {t: bytes(d) for t, d in got[1].items()} == as_dict(B)
