"""Texts a host sends never become interned names on the pump (tests/mp/host_texts32.py).

MicroPython interns every one-character str that code gets by indexing a str or iterating over one,
for any character: a permanent entry in its table of names, whose next pool is 9 KB on a Pico and
which only a reset of the board empties. A drug name checked character by character, or a saved text
unescaped character by character at a restart, so added a name for each new character a host sent:
one per refused LIB_DRUG, and every character of a library version with a backslash in it at each
restart. Found by the heap bench's list of interned names (2026-12-07); the checks now look at the
text's UTF-8 bytes.

On the 32-bit webassembly MicroPython, the firmware from source: rounds of a clinician sending texts of
new CJK characters (a drug name LIB_DRUG refuses, a program naming no drug of the library, a library
committed under a version with a backslash) and a restart that reads the log and library back. The
first round loads what these paths load; the rounds after it add no name."""

import re

import pytest
from vms import HEAP32_PARTS, MP_DIR, run_wasm32

pytestmark = pytest.mark.micropython32

SCRIPT = MP_DIR / "host_texts32.py"


def names_after_each_round(out: str) -> list[int]:
    counts = []
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("NAMES ") and line != "NAMES done":
            m = re.search(r"n_qstr=(\d+)", lines[i + 1])
            assert m, lines[i + 1]
            counts.append(int(m.group(1)))
    assert "NAMES done" in lines, out
    return counts


def test_new_characters_from_a_host_add_no_interned_names():
    counts = names_after_each_round(run_wasm32(SCRIPT, *HEAP32_PARTS, timeout=300))
    assert len(counts) == 4
    assert counts[1:] == [counts[0]] * 3, f"names after each round: {counts}"
