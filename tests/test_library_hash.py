"""The drug library's content hash (codec.library_hash) and the pump's review of a new
library beside the one in force (library.changes, library.field_change): what is a change,
what raises a hard limit; the same on CPython and both MicroPython VMs, and the same hash
on the host as on the pump."""

import binascii
import os
import subprocess
import sys

import pytest
from vms import MP_DIR, ROOT, run_unix, run_wasm32

from firmware import codec
from firmware.druglib import DEFAULT_LIBRARY
from firmware.errors import Refusal
from firmware.library import Library, changes, default_library, field_change

SCRIPT = MP_DIR / "library_hash_vectors.py"
CH, RAISED = codec.LIB_CHANGED, codec.LIB_RAISED


def reference_hash(entries):
    """The hash as docs/protocol.md defines it, written again with zlib's CRC over one buffer."""
    import zlib

    data = b""
    for fields in entries:
        for text in fields:
            b = text.encode("utf-8")
            data += len(b).to_bytes(2, "little") + b
    return zlib.crc32(data)


def edited(changes_by_drug, version="site-2027.01"):
    e = [list(x) for x in DEFAULT_LIBRARY]
    for (d, f), text in changes_by_drug.items():
        e[d][f] = text
    return Library(version, e)


def test_the_hash_is_a_crc32_of_each_field_with_its_length_and_not_of_the_version():
    lib = default_library()
    assert lib.hash == codec.library_hash(DEFAULT_LIBRARY) == reference_hash(DEFAULT_LIBRARY)
    assert Library("another name", DEFAULT_LIBRARY).hash == lib.hash  # the version is not content
    # the length prefix: moving text from one field to the next changes the hash
    assert codec.library_hash([["ab", "c"]]) != codec.library_hash([["a", "bc"]])
    assert codec.library_hash([["\u00b5g"]]) == binascii.crc32(b"\x03\x00" + "\u00b5g".encode())


def test_any_change_of_any_field_changes_the_hash():
    texts = [
        {(0, 3): "30 mg/day"},
        {(0, 3): "15.0 mg/day"},  # the same limit written another way: another text, another hash
        {(7, 3): "1999 mcg/day"},
        {(0, 11): DEFAULT_LIBRARY[0][11] + " "},
    ]
    hashes = {default_library().hash} | {edited(t).hash for t in texts}
    assert len(hashes) == 1 + len(texts)


def test_raising_morphines_hard_limits_counts_two_fields_changed_two_raised():
    old = default_library()
    new = edited({(0, 3): "30 mg/day", (0, 5): "2 mg/h"})
    assert changes(old, new) == (2, 2)
    m = new.drugs["morphine"]
    assert [field_change(old, m, f) for f in range(12)] == [0, 0, 0, CH | RAISED, 0, CH | RAISED] + [0] * 6


def test_lowering_a_hard_limit_or_changing_a_soft_one_is_a_change_not_a_raise():
    old = default_library()
    new = edited({(0, 3): "12 mg/day", (0, 2): "11 mg/day", (0, 1): "10 mg/mL", (0, 9): "2 h"})
    assert changes(old, new) == (4, 0)
    assert field_change(old, new.drugs["morphine"], 2) == CH  # a soft limit raised needs no confirm_raise
    # the same value written another way is a change of text, not of the limit
    assert field_change(old, edited({(0, 3): "15000 mcg/day"}).drugs["morphine"], 3) == CH


def test_a_shorter_lockout_or_more_patient_boluses_loosen_a_limit():
    old = default_library()
    new = edited({(1, 9): "30 min", (1, 10): "6", (1, 8): "0.05 mg"})
    d = new.drugs["hydromorphone"]
    assert [field_change(old, d, f) for f in (8, 9, 10)] == [CH | RAISED] * 3
    # patient limits of a drug with no patient bolus allow nothing: no raise
    none = edited({(2, 9): "5 min"})
    assert field_change(old, none.drugs["fentanyl"], 9) == CH


def test_a_new_drug_raises_its_limits_and_a_dropped_drug_counts_all_its_fields():
    old = default_library()
    new = Library(
        "two",
        [
            DEFAULT_LIBRARY[0],
            (
                "newdrug",
                "1 mg/mL",
                "1 mg/day",
                "2 mg/day",
                "1 mg/h",
                "1 mg/h",
                "0 mg",
                "0 mg",
                "0 mg",
                "0 min",
                "0",
                "x",
            ),
        ],
    )
    flags = [field_change(old, new.drugs["newdrug"], f) for f in range(12)]
    assert all(flags[f] & CH for f in range(12))
    assert [f for f in range(12) if flags[f] & RAISED] == [1, 3, 5]  # no bolus, no patient bolus allowed
    assert changes(old, new) == (12 + 7 * 12, 3)  # newdrug's fields; seven drugs dropped


def test_a_library_still_refuses_what_it_refused():
    with pytest.raises(Refusal, match="rate_hard"):
        edited({(0, 3): "48 mg/day"})  # 2 mg/h is below 48 mg/day over 24 h


@pytest.fixture(scope="module")
def cpython_output():
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{MP_DIR}", PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, check=True)
    return proc.stdout.decode("utf-8")


def test_the_vectors_on_cpython(cpython_output):
    out = cpython_output.splitlines()
    h = codec.library_hash(DEFAULT_LIBRARY)
    assert out[0] == "default %08x %08x" % (h, h)
    assert out[1].endswith(" 4 3")  # morphine daily, rate; hydromorphone lockout
    assert out[2] == "fields [0, 0, 1, 3, 0, 3, 0, 0, 0, 0, 0, 0]"
    assert out[3] == "lockout 3"
    assert out[4] == "renamed %08x 0 0" % h


@pytest.mark.micropython
def test_the_unix_port_hashes_and_compares_as_the_host_does(cpython_output):
    assert run_unix(SCRIPT) == cpython_output


@pytest.mark.micropython32
def test_the_32bit_vm_hashes_and_compares_as_the_host_does(cpython_output):
    assert run_wasm32(SCRIPT) == cpython_output
