"""A site library across a restart: the record keeps its numbers (LIBRARY_LIMITS: the version, then each drug's
name and numbers as LIB_DRUG carries them), and a restart takes them as they are, loading no parser. A record
written while the pump held a library as text (its texts, and the numbers it read from them) is still read, from
the names of the one and the numbers of the other; a record with the texts only is refused as a bad record. Either
way the pump holds the very limits it held before the cut, and refuses what they refuse."""

import sys

import pytest
from programs import lines_of, parse_program
from pumpctl.library_file import parse_entry
from test_boot_memory import HOUR, Board, storage_of

from firmware import codec, framing, persist, program
from firmware import restore as restore_module
from firmware.druglib import DEFAULT_LIBRARY
from firmware.errors import Refusal
from firmware.eventlog import esc
from firmware.library import DrugLimits, Library
from firmware.store import Store

# A site library, as its file has it: the factory's morphine with a lower daily hard limit, and fentanyl as it is.
MORPHINE = list(DEFAULT_LIBRARY[0])
MORPHINE[2] = "4 mg/day"  # daily_soft
MORPHINE[3] = "5 mg/day"  # daily_hard
MORPHINE[11] = "site\tpharmacy, 2027"  # a source note with a tab: the pump never holds it
SITE = [MORPHINE, list(DEFAULT_LIBRARY[2])]
SITE_DRUGS = [parse_entry(e) for e in SITE]  # what pumpctl sends
VERSION = "site-3"
PROGRAM = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 3 mg/day"]
TOO_MUCH = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 6 mg/day"]

# The modules that read or write text: none is loaded by a boot or a restart.
PARSERS = (
    "firmware.program_check",
    "firmware.library_text",
    "pumpctl.library_file",
)


def refuse_to_load(monkeypatch, owner, parser):
    """Refuse, in owner (a module that loads parsers through lazy.call), to load the module parser."""
    real = owner.call

    def call(module, name, *args):
        if module == parser:
            raise AssertionError("the restart loaded " + parser)
        return real(module, name, *args)

    monkeypatch.setattr(owner, "call", call)


def parsers_refused(monkeypatch):
    """Make every text module (PARSERS) unloadable: an import of one raises ImportError, whoever asks."""
    for name in PARSERS:
        package, _, attr = name.rpartition(".")
        monkeypatch.setitem(sys.modules, name, None)  # "import x" of a None entry raises ImportError
        if package in sys.modules:
            monkeypatch.delattr(sys.modules[package], attr, raising=False)  # nor "from package import x"


def held(lib):
    return [(name, lib.drugs[name].numbers) for name in lib.order]


def record_of(files):
    return Store(storage_of(files)).load()[1]


def booted_from(files, change):
    """The app a boot from files makes after change(record) was written back as the newest record (by hand)."""
    storage = storage_of(files)
    store = Store(storage)
    _seq, record = store.load()
    change(record)
    store.save(sorted((tag, bytes(data)) for tag, data in record.items()))
    return Board(storage).app


def log_texts(app):
    return [app.log.get(i)[3] for i in range(app.log.oldest(), app.log.count)]


@pytest.fixture(scope="module")
def saved():
    """A pump that runs a program under a site library, saved: its storage files and its library's hash."""
    storage = storage_of({})
    board = Board(storage)
    app = board.app
    app.library = Library(VERSION, [DrugLimits(name, numbers) for name, numbers in SITE_DRUGS])
    app.put_in_force(parse_program(PROGRAM, app.library, [], None), app.timebase.total_us())
    board.advance(HOUR)
    app.save()
    return {k: bytes(v) for k, v in storage.files.items()}, app.library.hash


def test_the_record_keeps_the_site_library_as_its_numbers(saved):
    files, lib_hash = saved
    record = record_of(files)
    assert bytes(record[persist.TAG_LIBRARY_LIMITS]).decode().split("\n") == [
        "site-3",
        "morphine,20000000,4000000,5000000,21984000,39000000,500000,1000000,200000,3600,4",
        "fentanyl,10000000,500000,1000000,1099992,2200008,25000,50000,0,0,0",
    ]
    assert persist.TAG_LIBRARY not in record and persist.TAG_LIBRARY_NUMBERS not in record
    assert b"format 5\n" in bytes(record[persist.TAG_META])
    assert lib_hash == framing.library_hash(SITE_DRUGS)


def test_the_factory_library_is_not_saved():
    storage = storage_of({})
    Board(storage).app.save()
    record = record_of({k: bytes(v) for k, v in storage.files.items()})
    assert persist.TAG_LIBRARY_LIMITS not in record and persist.TAG_LIBRARY not in record


def test_a_restart_holds_the_same_library_and_loads_no_parser(saved, monkeypatch):
    files, lib_hash = saved
    real_restore = restore_module.restore
    restored = []

    def restore(app, record):
        with monkeypatch.context() as m:
            parsers_refused(m)
            refuse_to_load(m, program, "firmware.program_check")
            refuse_to_load(m, program, "firmware.program_check")
            restored.append(True)
            return real_restore(app, record)

    monkeypatch.setattr(restore_module, "restore", restore)
    app = Board(storage_of(files)).app
    assert restored == [True]
    assert held(app.library) == SITE_DRUGS
    assert app.library.hash == lib_hash and app.library.version == VERSION
    assert lines_of(app.therapy.program) == PROGRAM
    assert app.alarm == codec.ALARM_RESTART  # the record was restored, not refused
    with pytest.raises(Refusal, match="above the hard limit of 5 mg/day"):
        parse_program(TOO_MUCH, app.library, [], None)


def test_a_restarted_library_is_saved_again_as_it_was(saved):
    files, _lib_hash = saved
    storage = storage_of(files)
    Board(storage).app.save()
    again = record_of({k: bytes(v) for k, v in storage.files.items()})
    assert bytes(again[persist.TAG_LIBRARY_LIMITS]) == bytes(record_of(files)[persist.TAG_LIBRARY_LIMITS])


def test_a_version_with_a_tab_and_a_newline_comes_back_as_it_was():
    storage = storage_of({})
    app = Board(storage).app
    app.library = Library("site\t3\nµ\\n", [DrugLimits(name, numbers) for name, numbers in SITE_DRUGS])
    app.save()
    restored = Board(storage_of({k: bytes(v) for k, v in storage.files.items()})).app
    assert restored.library.version == "site\t3\nµ\\n"
    assert held(restored.library) == SITE_DRUGS


# --- records written while the pump held a library as text ------------------------------------------------------------


def old_sections(record, numbers=True):
    """Make record one written while the library was text (format 2): TAG_LIBRARY, each drug's 12 texts escaped and
    tab-separated after the version; TAG_LIBRARY_NUMBERS, the firmware's version and the library's text hash, then
    each drug's numbers with the lockout in us."""
    del record[persist.TAG_LIBRARY_LIMITS]
    record[persist.TAG_META] = bytes(record[persist.TAG_META]).replace(b"format %d\n" % persist.FORMAT, b"format 2\n")
    lines = bytes(record[persist.TAG_LOG]).split(b"\n")  # log lines had no device clock then
    record[persist.TAG_LOG] = b"\n".join(
        lines[:1] + [b" ".join(ln.split(b" ", 4)[:3] + ln.split(b" ", 4)[4:]) for ln in lines[1:]]
    )
    texts = [esc(VERSION)] + ["\t".join(esc(f) for f in e) for e in SITE]
    record[persist.TAG_LIBRARY] = "\n".join(texts).encode()
    if numbers:
        rows = ["0.2.9 1234567"]  # another firmware, a hash of the texts: neither is used
        for _name, n in SITE_DRUGS:
            rows.append(",".join(str(v) for v in (*n[:8], n[8] * 1_000_000, n[9])))
        record[persist.TAG_LIBRARY_NUMBERS] = "\n".join(rows).encode()


def test_a_record_written_while_the_library_was_text_is_read_from_its_names_and_numbers(saved):
    files, lib_hash = saved
    app = booted_from(files, old_sections)
    assert held(app.library) == SITE_DRUGS  # the lockout back in s
    assert app.library.drugs["morphine"].patient_lockout_min_us == HOUR
    assert app.library.version == VERSION and app.library.hash == lib_hash  # the numbers' hash, not the texts'
    assert lines_of(app.therapy.program) == PROGRAM
    assert app.alarm == codec.ALARM_RESTART
    with pytest.raises(Refusal, match="above the hard limit of 5 mg/day"):
        parse_program(TOO_MUCH, app.library, [], None)
    # its next save writes the library as numbers
    app.save()
    record = record_of({k: bytes(v) for k, v in app.store.storage.files.items()})
    assert bytes(record[persist.TAG_LIBRARY_LIMITS]) == bytes(record_of(files)[persist.TAG_LIBRARY_LIMITS])
    assert persist.TAG_LIBRARY not in record and persist.TAG_LIBRARY_NUMBERS not in record


def test_an_old_lockout_of_a_part_second_is_read_longer_never_shorter(saved):
    """The old record kept the lockout in us; the pump now holds whole seconds. A lockout between two seconds
    becomes the next whole second: a shorter one would let a patient bolus come sooner than the site allowed."""
    files, _lib_hash = saved

    def part_second(record):
        old_sections(record)
        rows = bytes(record[persist.TAG_LIBRARY_NUMBERS]).decode().split("\n")
        cells = rows[1].split(",")
        cells[8] = str(int(cells[8]) + 1)  # morphine's lockout 1 us past the hour
        rows[1] = ",".join(cells)
        record[persist.TAG_LIBRARY_NUMBERS] = "\n".join(rows).encode()

    app = booted_from(files, part_second)
    assert app.library.drugs["morphine"].patient_lockout_min_us == HOUR + 1_000_000


def test_a_record_of_the_library_as_text_only_is_a_bad_record(saved):
    files, _lib_hash = saved
    app = booted_from(files, lambda record: old_sections(record, numbers=False))
    assert any("not restored (ValueError: a library saved as text only" in t for t in log_texts(app))
    assert app.library.version == "default-2026.11"  # not the site's, and not a guess at it
    assert app.therapy.program is None  # stopped: nothing runs under limits it cannot hold
    assert app.alarm == codec.ALARM_RESTART


def test_old_sections_that_disagree_are_a_bad_record(saved):
    files, _lib_hash = saved

    def one_row_short(record):
        old_sections(record)
        record[persist.TAG_LIBRARY_NUMBERS] = bytes(record[persist.TAG_LIBRARY_NUMBERS]).rsplit(b"\n", 1)[0]

    app = booted_from(files, one_row_short)
    assert any("not restored (ValueError: a library of 2 drugs with 1 lines" in t for t in log_texts(app))
    assert app.therapy.program is None


@pytest.mark.parametrize(
    "row",
    [
        "morphine,20000000,4000000,5000000,21984000,39000000,500000,1000000,200000,3600",  # nine numbers
        "morphine,20000000,4000000,5000000,21984000,39000000,500000,1000000,200000,3600,4,0",  # eleven
        "morphine,20000000,4000000,5 mg/day,21984000,39000000,500000,1000000,200000,3600,4",  # a text
    ],
)
def test_saved_numbers_of_the_wrong_shape_are_a_bad_record(saved, row):
    files, _lib_hash = saved

    def change(record):
        rows = bytes(record[persist.TAG_LIBRARY_LIMITS]).decode().split("\n")
        rows[1] = row
        record[persist.TAG_LIBRARY_LIMITS] = "\n".join(rows).encode()

    app = booted_from(files, change)
    assert any("not restored (ValueError:" in t for t in log_texts(app)), log_texts(app)
    assert app.library.version == "default-2026.11" and app.therapy.program is None
    with pytest.raises(ValueError):
        DrugLimits("morphine", [1, 2, 3])


def test_the_written_out_formats_match_what_they_stand_for():
    """persist's and the alarms family's formats are literal const()s (no global name on the board):
    a site library line has codec.LIBRARY_LIMITS numbers, and THERAPY's forecasts scan as far as the
    monitors' MAX_EMPTY_SCAN_DAYS."""
    from firmware.commands import alarms
    from firmware.monitors import MAX_EMPTY_SCAN_DAYS

    assert persist._LIBRARY_NUMBERS == ",%d" * codec.LIBRARY_LIMITS
    assert alarms._SCAN_US == MAX_EMPTY_SCAN_DAYS * 86_400_000_000
    keys = [line.split(" ")[0] for line in persist._META.split("\n")]
    assert keys[:3] == ["format", "mday", "us"] and len(keys) == len(set(keys)) == persist._META.count("%s")
    from firmware.therapy import INT_STATE, OPTIONAL_INT_STATE

    keys = [line.split(" ")[0] for line in persist._THERAPY.split("\n")]
    assert keys == [*INT_STATE, *OPTIONAL_INT_STATE, "drugs", "bridge_drugs", "patient_times"]
    assert persist._THERAPY.count("%s") == len(keys)
