"""A restart's garbage: the record is read and put back in place, not copied section by section.

On the 32-bit webassembly MicroPython (tests/mp/restart32.py), a pump with a full event log and an hour of the
guard's history saves, and a new PumpApp resumes from the record: it must put back the log and the guard whole
and allocate less than RESTART_BOUND bytes in doing so (it allocated 166,608 when it copied the log's text,
the ring's bytes and the library's sections; 118,992 since, and 123,664 with the keys read from the
key store, as a flashed board's are; 97,680 once the record kept the running program's values, so a
restart no longer loads the program parser, on 2026-12-06; 103,696 on 2026-12-07, then 113,088 once the code only a
boot, a restore or one command family needs left the modules a running pump keeps: a restart imports those
again, the boot's and restore's modules and every family to read its rows, and drops them, where the resident
modules it finds loaded cost it nothing; 110,880 before and 75,632 after the boot read the families' codes from
commands._ROUTES instead of importing every family, 2026-12-07 evening). And the log's lines come back as add() writes
them, whether a line is taken as it is (restore.put_line's plain lines) or read and written again."""

import pytest
from vms import MP_DIR, ROOT, run_wasm32

from firmware import eventlog, restore
from firmware.eventlog import EventLog, unesc

RESTART_BOUND = 90_000


@pytest.mark.micropython32
def test_a_restart_from_a_full_record_on_32bit_micropython_allocates_under_its_bound():
    out = run_wasm32(
        MP_DIR / "restart32.py", ROOT / "bench" / "mp" / "heap32_pump.py", MP_DIR / "rate_now.py"
    ).splitlines()
    assert out[0] == "restored True True True True", out
    assert int(out[1].split()[1]) > 0  # the guard's ring held steps
    word, used = out[2].split()
    assert word == "alloc" and int(used) < RESTART_BOUND, out


LINES = [
    b"0 0 1 - firmware 1.0, library default",
    b"12 345 13 1717223400 session ended",
    b"3 86399999 6 4294967295 " + b"x" * eventlog.MAX_TEXT,  # the longest plain text
    b"3 5 6 - " + b"x" * (eventlog.MAX_TEXT + 1),  # longer: cut as add() cuts it
    b"1 2 3 - tab\\there \\\\ and\\nnewline",  # escaped
    b"1 2 3 7 caf\xc3\xa9",  # not ASCII
    b"1 2 3 - raw\ttab",  # add() escapes it
    b"01 2 3 - leading zero",
    b"1 +2 3 - signed",
    b"1 2 3 007 leading zeros in the clock",
    b"1 2 3 - ",  # no text
    b"0 0 0 0 x",
]


def _clock(text):
    return None if text == "-" else int(text)


@pytest.mark.parametrize("line", LINES)
def test_a_restored_log_line_is_what_add_writes_for_it(line):
    mday, us, code, clock, text = line.decode().split(" ", 4)
    expected = EventLog()
    expected.add(int(mday), int(us), int(code), unesc(text), _clock(clock))
    log = EventLog()
    section = bytearray(b"\n" + line + b"\n")
    restore.put_line(log, memoryview(section)[1:-1])  # as a restore gives it: a view of its section
    assert log.count == 1 and log.line(0) == expected.line(0)
    assert log.line(0).obj is log.ring()  # copied into the log's own ring: the section is not kept
    section[1:-1] = b"x" * len(line)
    assert log.line(0) == expected.line(0)


@pytest.mark.parametrize(
    "line", [b"", b"1 2 3", b"1 2 3 -", b"1 2 x - text", b"1 2 3 x text", b"1  2 3 - x", b"\xff 2 3 - x"]
)
def test_a_log_line_add_could_not_have_written_is_refused(line):
    with pytest.raises(ValueError):  # a bad record: the pump starts stopped without it (boot.py)
        restore.put_line(EventLog(), memoryview(line))


@pytest.mark.parametrize("line", [b"0 0 1 firmware 1.0, library default", b"1 2 3 tab\\there", b"1 2 3 "])
def test_a_log_line_of_a_record_before_the_device_clock_reads_with_none(line):
    mday, us, code, text = line.decode().split(" ", 3)
    log = EventLog()
    restore.put_line(log, memoryview(line), clock=False)  # a record of format 3 or before
    assert log.get(0) == (int(mday), int(us), int(code), unesc(text), None)
