"""A site library across a restart (issue 19): the record keeps the numbers this firmware parsed from the
library's text, and a restart by the same firmware takes them without loading the parsers (their bytecode and a
re-read of every field were most of a restart's garbage); a record from another firmware version, or one without
the numbers, is read from its text again. Either way the pump holds the very limits it held before the cut, and
refuses what they refuse."""

import pytest
from test_boot_memory import HOUR, Board, storage_of

from firmware import library, persist
from firmware.druglib import DEFAULT_LIBRARY
from firmware.errors import Refusal
from firmware.library import NUMBERS, Library
from firmware.program import parse_program
from firmware.store import Store

# A site library: the factory's morphine with a lower daily hard limit, and baclofen as it is.
MORPHINE = list(DEFAULT_LIBRARY[0])
MORPHINE[2] = "4 mg/day"  # daily_soft
MORPHINE[3] = "5 mg/day"  # daily_hard
SITE = [MORPHINE, list(DEFAULT_LIBRARY[2])]
PROGRAM = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 3 mg/day"]


def limits(lib):
    return [(name, lib.drugs[name].text, [getattr(lib.drugs[name], a) for a in NUMBERS]) for name in lib.order]


@pytest.fixture(scope="module")
def saved():
    """A pump that runs a program under a site library, saved: its storage files and its library's limits."""
    storage = storage_of({})
    board = Board(storage)
    app = board.app
    app.library = Library("site-3", SITE)
    app.put_in_force(parse_program(PROGRAM, app.library, [], None), app.timebase.total_us())
    board.advance(HOUR)
    app.save()
    return {k: bytes(v) for k, v in storage.files.items()}, limits(app.library), app.library.hash


def refuse_to_load(monkeypatch, owner, parser):
    """Refuse, in owner (a module that loads parsers through lazy.call), to load the module parser."""
    real = owner.call

    def call(module, name, *args):
        if module == parser:
            raise AssertionError("the restart loaded " + parser)
        return real(module, name, *args)

    monkeypatch.setattr(owner, "call", call)


def no_parsers(monkeypatch):
    """Refuse to load the library's parsers (lazy.call of library_text)."""
    refuse_to_load(monkeypatch, library, "firmware.library_text")


def test_the_record_keeps_the_numbers_this_firmware_parsed(saved):
    files, held, lib_hash = saved
    record = Store(storage_of(files)).load()[1]
    rows = bytes(record[persist.TAG_LIBRARY_NUMBERS]).decode().split("\n")
    assert rows[0] == "%s %d" % (persist._firmware_version(), lib_hash)
    assert [[int(v) for v in row.split(",")] for row in rows[1:]] == [numbers for _n, _t, numbers in held]
    assert held[0][2][NUMBERS.index("daily_hard_ng")] == 5_000_000  # the site's limit, in ng


def test_a_restart_by_the_same_firmware_takes_the_numbers_without_the_parsers(saved, monkeypatch):
    files, held, lib_hash = saved
    real_restore = persist.restore

    def restore(app, record):
        with monkeypatch.context() as m:
            no_parsers(m)
            return real_restore(app, record)

    monkeypatch.setattr(persist, "restore", restore)
    app = Board(storage_of(files)).app
    assert limits(app.library) == held
    assert app.library.hash == lib_hash and app.library.version == "site-3"
    assert app.therapy.program.lines == PROGRAM  # checked again, against the library restored
    assert app.alarm  # the restart alarm: the record was restored, not refused


@pytest.mark.parametrize("how", ["another firmware", "no numbers"])
def test_a_record_without_this_firmwares_numbers_is_read_from_its_text(saved, monkeypatch, how):
    files, held, lib_hash = saved
    real_load = Store.load

    def load(store, *args):
        seq, record = real_load(store, *args)
        if how == "no numbers":
            del record[persist.TAG_LIBRARY_NUMBERS]
        else:
            text = bytes(record[persist.TAG_LIBRARY_NUMBERS])
            # numbers another firmware parsed: never taken, even where they differ from this one's reading
            other = text.replace(b",5000000,", b",9000000,").replace(persist._firmware_version().encode(), b"0.0.1")
            other = other.replace(b" %d\n" % lib_hash, b" 1\n")  # nor its hash
            assert b",9000000," in other
            record[persist.TAG_LIBRARY_NUMBERS] = other
        return seq, record

    monkeypatch.setattr(Store, "load", load)
    app = Board(storage_of(files)).app
    assert limits(app.library) == held
    assert app.library.hash == lib_hash
    with pytest.raises(Refusal, match="above the hard limit of 5 mg/day"):
        parse_program(["drug morphine 20 mg/mL", "fill 20 mL", "basal 6 mg/day"], app.library, [], None)


def test_saved_numbers_of_the_wrong_shape_are_a_bad_record():
    with pytest.raises(ValueError):
        library.DrugLimits(list(DEFAULT_LIBRARY[0]), [1, 2, 3])
