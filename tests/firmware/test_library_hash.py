"""The drug library's content hash (framing.library_hash, over each drug's name and numbers) and the pump's review
of a new library beside the one in force (commands/library.py drug_changes, changes): what is a change, what raises a
hard limit; the same on CPython and both MicroPython VMs, and the same hash on the host as on the pump."""

import os
import struct
import subprocess
import sys
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pumpctl.library_file import parse_entry
from test_boot_memory import Board, storage_of
from vms import MP_DIR, ROOT, run_unix, run_wasm32

from firmware import codec, framing
from firmware.commands.library import changes, drug_changes
from firmware.druglib import DEFAULT_LIBRARY, DEFAULT_LIBRARY_HASH, DEFAULT_NAMES, DEFAULT_NUMBERS
from firmware.library import DrugLimits, Library, default_library

SCRIPT = MP_DIR / "library_hash_vectors.py"
DEFAULT = list(zip(DEFAULT_NAMES, DEFAULT_NUMBERS, strict=True))
F = {name: f for f, name in enumerate(codec.LIBRARY_FIELDS)}  # a field's bit in changed and raised
ALL = (1 << len(codec.LIBRARY_FIELDS)) - 1


def bits(*names):
    n = 0
    for name in names:
        n |= 1 << F[name]
    return n


def reference_hash(drugs):
    """The hash as docs/protocol.md defines it, written again: CRC-32 of one buffer of, per drug, its name's
    UTF-8 length as a byte, the name, and its ten numbers as u32 little-endian."""
    data = b""
    for name, numbers in drugs:
        b = name.encode("utf-8")
        data += bytes([len(b)]) + b + struct.pack("<10I", *numbers)
    return zlib.crc32(data)


def edited(changes_by_drug, version="site-2027.01"):
    """The default library with some numbers changed: {(drug index, field name): number}."""
    numbers = [list(n) for n in DEFAULT_NUMBERS]
    for (d, field), value in changes_by_drug.items():
        numbers[d][F[field] - 1] = value
    return Library(version, [DrugLimits(DEFAULT_NAMES[i], numbers[i]) for i in range(len(numbers))])


# --- the hash ---------------------------------------------------------------------------------------------------------


def test_the_hash_is_a_crc32_of_each_drugs_name_and_numbers_and_not_of_the_version():
    lib = default_library()
    assert lib.hash == DEFAULT_LIBRARY_HASH == framing.library_hash(DEFAULT) == reference_hash(DEFAULT)
    assert Library("another name", list(lib.drugs.values())).hash == lib.hash  # the version is not content
    assert edited({}, version="x").hash == lib.hash  # computed again from the numbers: the same
    # the name's length is its UTF-8 bytes
    one = ("\u00b5g", (1, 2, 3, 4, 5, 6, 7, 8, 9, 0xFFFFFFFF))
    assert framing.library_hash([one]) == zlib.crc32(b"\x03\xc2\xb5g" + struct.pack("<10I", *one[1]))


def test_the_same_limits_written_in_other_units_are_the_same_library():
    # A site rewriting its file in other units sends the same numbers: no change to review or confirm.
    text = list(DEFAULT_LIBRARY[0])
    text[3] = "15000 mcg/day"  # daily_hard 15 mg/day
    text[5] = "39 mg/day"  # rate_hard 1.625 mg/h
    text[9] = "60 min"  # lockout 1 h
    text[11] = "another source note"
    site = [parse_entry(text)] + [parse_entry(e) for e in DEFAULT_LIBRARY[1:]]
    assert framing.library_hash(site) == DEFAULT_LIBRARY_HASH
    new = Library("site", [DrugLimits(name, numbers) for name, numbers in site])
    assert new.hash == DEFAULT_LIBRARY_HASH and changes(default_library(), new) == (0, 0)


@given(
    st.integers(0, len(DEFAULT) - 1),
    st.integers(1, codec.LIBRARY_LIMITS),
    st.integers(0, 0xFFFFFFFF),
)
def test_any_change_of_any_number_changes_the_hash(d, field, value):
    numbers = list(DEFAULT_NUMBERS[d])
    if numbers[field - 1] == value:
        value ^= 1
    numbers[field - 1] = value
    drugs = list(DEFAULT)
    drugs[d] = (DEFAULT_NAMES[d], tuple(numbers))
    assert framing.library_hash(drugs) == reference_hash(drugs) != DEFAULT_LIBRARY_HASH


@given(st.integers(0, len(DEFAULT) - 1), st.text(st.characters(codec="utf-8"), min_size=1, max_size=24))
def test_any_change_of_a_name_changes_the_hash(d, name):
    if name == DEFAULT_NAMES[d]:
        name += "-"
    drugs = list(DEFAULT)
    drugs[d] = (name, DEFAULT_NUMBERS[d])
    assert framing.library_hash(drugs) == reference_hash(drugs) != DEFAULT_LIBRARY_HASH


def test_the_order_of_the_drugs_and_where_a_name_ends_are_content():
    assert framing.library_hash(DEFAULT[::-1]) != DEFAULT_LIBRARY_HASH
    assert framing.library_hash(DEFAULT[:-1]) != DEFAULT_LIBRARY_HASH
    # without the name's length, "ab" then a number starting with byte 0x63 would read as "abc" then a shifted one
    assert framing.library_hash([("ab", (0x63,) + (0,) * 9)]) != framing.library_hash([("abc", (0,) * 10)])


def test_the_pump_stages_the_library_pumpctl_sends_under_the_hash_pumpctl_computes():
    site = [list(e) for e in DEFAULT_LIBRARY[:3]]
    site[0][3] = "20 mg/day"  # morphine daily_hard raised
    site[2][9] = "5 min"  # fentanyl's lockout, with no patient bolus
    drugs = [parse_entry(e) for e in site]  # what pumpctl reads and sends
    app = Board(storage_of({})).app
    for d, (name, numbers) in enumerate(drugs):
        app.commands.get(codec.LIB_DRUG)((d, name, *numbers))
    h, n, changed, raised, _expires = app.commands.get(codec.LIB_STAGE)(("site-9", len(drugs)))
    assert (h, n) == (framing.library_hash(drugs), 3)
    assert (changed, raised) == (2 + 5 * 11, 1)  # the two edits and the five drugs left out; daily_hard raised
    assert app.commands.get(codec.LIB_COMMIT)((h, 1)) == ("site-9", 3, h)
    assert app.library.hash == h
    # LIB_GET gives back the numbers sent
    for d, (name, numbers) in enumerate(drugs):
        reply = app.commands.get(codec.LIB_GET)((d, codec.LIB_IN_FORCE))
        assert reply[:3] == ("site-9", 3, name) and reply[3:13] == numbers


# --- what a new library changes, and which hard limits it loosens -----------------------------------------------------


def test_raising_morphines_hard_limits_counts_two_fields_changed_two_raised():
    old = default_library()
    new = edited({(0, "daily_hard"): 30_000_000, (0, "rate_hard"): 48_000_000})
    assert changes(old, new) == (2, 2)
    assert drug_changes(old, new.drugs["morphine"]) == (bits("daily_hard", "rate_hard"),) * 2
    assert drug_changes(old, new.drugs["hydromorphone"]) == (0, 0)


@pytest.mark.parametrize(
    "field, value",
    [
        ("max_concentration", 25_000_000),
        ("daily_hard", 15_000_001),
        ("rate_hard", 39_000_001),
        ("bolus_hard", 1_000_001),
        ("patient_dose_hard", 200_001),
        ("patient_lockout_min", 3_599),  # a shorter lockout allows more
        ("patient_max_per_day", 5),
    ],
)
def test_each_hard_limit_loosened_is_raised(field, value):
    old = default_library()
    new = edited({(0, field): value})
    assert drug_changes(old, new.drugs["morphine"]) == (bits(field), bits(field))
    assert changes(old, new) == (1, 1)


def test_lowering_a_hard_limit_or_changing_a_soft_one_is_a_change_not_a_raise():
    old = default_library()
    new = edited(
        {
            (0, "daily_hard"): 12_000_000,
            (0, "daily_soft"): 11_000_000,  # a soft limit raised needs no confirm_raise
            (0, "max_concentration"): 10_000_000,
            (0, "patient_lockout_min"): 7_200,  # a longer lockout
            (0, "rate_soft"): 30_000_000,
            (0, "bolus_soft"): 900_000,
        }
    )
    assert changes(old, new) == (6, 0)
    changed, raised = drug_changes(old, new.drugs["morphine"])
    assert changed == bits(
        "daily_hard", "daily_soft", "max_concentration", "patient_lockout_min", "rate_soft", "bolus_soft"
    )
    assert raised == 0


def test_a_shorter_lockout_or_more_patient_boluses_loosen_a_limit():
    old = default_library()
    new = edited({(1, "patient_lockout_min"): 1_800, (1, "patient_max_per_day"): 6, (1, "patient_dose_hard"): 50_000})
    fields = bits("patient_lockout_min", "patient_max_per_day", "patient_dose_hard")
    assert drug_changes(old, new.drugs["hydromorphone"]) == (fields, fields)


def test_patient_limits_of_a_drug_with_no_patient_bolus_allow_nothing_and_raise_nothing():
    old = default_library()
    none = edited({(2, "patient_lockout_min"): 300, (2, "patient_max_per_day"): 4})  # fentanyl: dose 0
    assert drug_changes(old, none.drugs["fentanyl"]) == (bits("patient_lockout_min", "patient_max_per_day"), 0)
    # allowing one is a raise: a dose and a count above zero
    allowed = edited({(2, "patient_dose_hard"): 10_000, (2, "patient_max_per_day"): 2})
    both = bits("patient_dose_hard", "patient_max_per_day")
    assert drug_changes(old, allowed.drugs["fentanyl"]) == (both, both)


def test_a_new_drug_raises_its_limits_and_a_dropped_drug_counts_all_its_fields():
    old = default_library()
    newdrug = DrugLimits("newdrug", (1_000_000, 1_000_000, 2_000_000, 24_000_000, 24_000_000, 0, 0, 0, 0, 0))
    new = Library("two", [old.drugs["morphine"], newdrug])
    changed, raised = drug_changes(old, new.drugs["newdrug"])
    assert changed == ALL  # every field of a new drug, its name too
    assert raised == bits("max_concentration", "daily_hard", "rate_hard")  # no bolus, no patient bolus allowed
    assert changes(old, new) == (11 + 7 * 11, 3)  # newdrug's fields; seven drugs dropped
    assert drug_changes(old, new.drugs["morphine"]) == (0, 0)


def test_a_new_drug_with_a_patient_bolus_raises_its_patient_limits_even_the_lockout():
    old = default_library()
    new = Library("two", [DrugLimits("newdrug", (1_000_000, 1, 2, 24, 24, 0, 0, 1, 3_600, 1))])
    raised = drug_changes(old, new.drugs["newdrug"])[1]
    assert raised == bits(
        "max_concentration",
        "daily_hard",
        "rate_hard",
        "patient_dose_hard",
        "patient_lockout_min",
        "patient_max_per_day",
    )


# --- the same on the MicroPython VMs ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cpython_output():
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{MP_DIR}", PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, check=True)
    return proc.stdout.decode("utf-8")


def test_the_vectors_on_cpython(cpython_output):
    out = cpython_output.splitlines()
    h = DEFAULT_LIBRARY_HASH
    assert out[0] == "default %08x %08x" % (h, h)
    raised = edited(
        {
            (0, "daily_hard"): 30_000_000,
            (0, "rate_hard"): 48_000_000,
            (0, "daily_soft"): 9_000_000,
            (1, "patient_lockout_min"): 1_800,
        }
    )
    # four fields changed: morphine daily_soft, daily_hard, rate_hard; hydromorphone lockout; all but one raised
    assert out[1] == "raised %08x 4 3" % reference_hash([(n, raised.drugs[n].numbers) for n in raised.order])
    assert out[2] == "morphine %x %x" % (bits("daily_soft", "daily_hard", "rate_hard"), bits("daily_hard", "rate_hard"))
    assert out[3] == "lockout %x %x" % ((bits("patient_lockout_min"),) * 2)
    assert out[4] == "renamed %08x 0 0" % h
    assert out[5] == "one (88, 3) %x %x" % (ALL, bits("max_concentration", "daily_hard", "rate_hard"))
    newdrug = (1_000_000, 1_000_000, 2_000_000, 24_000_000, 24_000_000, 0, 0, 0, 0, 0)
    assert out[6] == "utf8 %08x" % reference_hash([("\u00b5g", newdrug), ("", (0xFFFFFFFF,) * 10)])


@pytest.mark.micropython
def test_the_unix_port_hashes_and_compares_as_the_host_does(cpython_output):
    assert run_unix(SCRIPT) == cpython_output


@pytest.mark.micropython32
def test_the_32bit_vm_hashes_and_compares_as_the_host_does(cpython_output):
    assert run_wasm32(SCRIPT) == cpython_output
