"""The 32-bit MicroPython's host scripts (the heap bench, the soak) send programs as pumpctl does, as items;
the VM has no parser, so each line's item is generated on CPython by pumpctl's parser into
bench/mp/program_items.py. It must be what the parser reads today."""

from pathlib import Path

import programs

ROOT = Path(__file__).resolve().parents[2]


def test_the_items_the_vm_scripts_send_are_what_pumpctl_reads_their_lines_into():
    assert (ROOT / programs.MP_ITEMS).read_text() == programs.mp_items_text(ROOT), (
        "bench/mp/program_items.py is stale: write it again with programs.mp_items_text (tests/programs.py)"
    )
