"""Programs for the firmware's tests, driven as numbers: the lines a test writes are read into items by
pumpctl's parser (host/pumpctl/program_text.py, on CPython) and built and checked by the pump's own
code (firmware/program_items.py), as STAGE_ITEM and STAGE do; a refusal's code is worded as pumpctl
words it, so a test reads the sentence a user reads."""

from pumpctl import program_text, program_words, words

from firmware.errors import Refusal
from firmware.program import build_program
from firmware.program_rows import item_row, own_rows


def items(lines):
    """The items of program lines, as pumpctl sends them."""
    return program_text.parse_program(list(lines))


def parse_program(lines, library, old_drugs=(), bridging=None):
    """The Program the pump builds from the items of lines, or Refusal with its sentence."""
    try:
        return build_program(items(lines), library, old_drugs, bridging)
    except Refusal as e:
        raise Refusal(e.field, words.render(e.message)) from None


def recheck_program(program, library, old_drugs=(), bridging=None):
    from firmware.program import recheck_program as recheck

    try:
        return recheck(program, library, old_drugs, bridging)
    except Refusal as e:
        raise Refusal(e.field, words.render(e.message)) from None


def lines_of(p):
    """Program p's canonical lines: its items as the pump understood them (REVIEW's), in pumpctl's words."""
    return [program_words.line(it) for it in program_words.items_of(raw_rows(p))]


def raw_rows(p):
    """Program p's own REVIEW rows, as the wire carries them (item fields, volume_nl, note)."""
    out = []
    for i in range(own_rows(p)):
        it, volume = item_row(p, i)
        out.append((*it, volume, ""))
    return out


def details_of(p):
    """Program p's review rows (line, what it means per drug), as pumpctl shows them."""
    return program_words.rows(raw_rows(p))


def warnings_of(p):
    """Program p's soft-limit warnings, as pumpctl words them."""
    return [words.render(w) for w in p.warnings]


# -- the items of the programs the 32-bit MicroPython's host scripts send -----------------------------------

MP_ITEMS = "bench/mp/program_items.py"  # read by bench/mp/heap32_host.py's stage()
_MP_SOURCES = ("bench/mp/heap32.py", "tests/mp/soak32.py")


def mp_items_text(root):
    """bench/mp/program_items.py as it must read: the item of every program line in _MP_SOURCES (each
    string constant that pumpctl reads as one), as pumpctl's parser reads it."""
    import ast

    found = {}
    for name in _MP_SOURCES:
        for node in ast.walk(ast.parse((root / name).read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                try:
                    (it,) = program_text.parse_program([node.value])
                except Exception:  # not a program line
                    continue
                found[node.value] = it
    import json

    def text(it):
        return "(" + ", ".join(json.dumps(v) for v in it) + ")"

    rows = "".join("    %s: %s,\n" % (json.dumps(line), text(found[line])) for line in sorted(found))
    return (
        "# Generated from tests/programs.py (mp_items_text): the item pumpctl sends (STAGE_ITEM, after its\n"
        "# index) for each program line the 32-bit MicroPython's host scripts send; the VM has no parser.\n"
        "ITEMS = {\n" + rows + "}\n"
    )
