"""An internal error names where it was raised (firmware/failure.py): a command that fails inside the pump
(a bug, or a heap too full for an allocation, as on the emulated Pico) is answered ERR_INTERNAL with the
exception's type, its innermost file, line and function, and its message, on MicroPython and on CPython
alike, so the report a user copies names the place that failed (the function only, where the code was
compiled without line numbers)."""

import re

import pytest
from vms import run_unix

from firmware import codec, failure, framing
from firmware.link import Link

SCRIPT = """
from firmware import failure


def fails():
    raise MemoryError("memory allocation failed, allocating 1148 bytes")


try:
    fails()
except MemoryError as e:
    print(failure.describe(e))
print(failure.describe(ValueError("never raised")))
"""


def test_it_names_the_innermost_line_on_cpython():
    def fails():
        return 1 // 0

    try:
        fails()
    except ZeroDivisionError as e:
        text = failure.describe(e)
    line = fails.__code__.co_firstlineno + 1
    # the path's last two parts, as firmware/x.py on a board
    assert text == (
        f"ZeroDivisionError in firmware/test_failure.py line {line}, in fails: integer division or modulo by zero"
    )


@pytest.mark.micropython
def test_it_names_the_innermost_line_on_micropython(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text(SCRIPT)
    out = run_unix(script).splitlines()
    folder = tmp_path.name
    assert out == [
        f"MemoryError in {folder}/fails.py line 6, in fails: memory allocation failed, allocating 1148 bytes",
        "ValueError: never raised",  # never raised: no place to name
    ]


def test_the_link_answers_a_failing_handler_with_its_explanation():
    sent = []

    class Serial:
        def write(self, data):
            sent.append(bytes(data))

    def broken(values):
        raise KeyError("lib")

    link = Link(Serial(), {codec.STATUS: broken}, explain=failure.describe)
    for b in framing.encode_frame(codec.STATUS, 7):
        link.receive(b)
    frame = sent[0]
    kind, seq, body, _mac, _signed = framing.decode_frame(framing.cobs_decode(frame, len(frame) - 1))
    at = codec.span(codec.ERROR, True)
    code, field, message, _more = framing.decode_spec(codec.MESSAGES, at >> 16, at & 0xFFFF, body)
    line = broken.__code__.co_firstlineno + 1
    assert (kind, seq, code, field) == (codec.ERROR, 7, codec.ERR_INTERNAL, "")
    assert message == f"KeyError in firmware/test_failure.py line {line}, in broken: 'lib'"


FLASHED_SCRIPT = """
from firmware import failure, intmath

try:
    intmath.muldiv(1, 2, 0)
except ZeroDivisionError as e:
    print(failure.describe(e))
"""


@pytest.mark.micropython
def test_a_flashed_board_names_the_file_and_line_as_the_source_does(tmp_path):
    """pumpctl flash compiles each module with its module name as the source name (one interned name
    fewer per module on the board); the failure still names firmware/x.py, the line and the function, as
    from source. Compiled without line numbers (.mpy files loaded into RAM), it names the file and the
    function."""
    from pumpctl.board_build import ROOT, compile_module

    script = tmp_path / "divides.py"
    script.write_text(FLASHED_SCRIPT)
    from_source = run_unix(script).splitlines()
    said = {}
    for line_numbers in (True, False):
        flashed = tmp_path / f"board-{line_numbers}"
        (flashed / "firmware").mkdir(parents=True)
        for name in ("__init__", "failure", "intmath"):
            mpy = compile_module(ROOT / "firmware" / f"{name}.py", None, tmp_path, line_numbers)
            (flashed / "firmware" / f"{name}.mpy").write_bytes(mpy)
        said[line_numbers] = run_unix(script, root=flashed).splitlines()
    assert re.fullmatch(r"ZeroDivisionError in firmware/intmath\.py line \d+, in \w+: .+", from_source[0])
    assert said[True] == from_source
    assert said[False] == [re.sub(r" line \d+,", ",", from_source[0])]


def test_no_module_has_code_on_its_first_line():
    """What failure.py takes line 1 for: no line known (code compiled without line numbers)."""
    from pumpctl.board_build import ROOT

    for package in ("firmware", "hal", "boards"):
        for path in (ROOT / package).rglob("*.py"):
            first = (path.read_text().splitlines() or [""])[0]
            assert first == "" or first.startswith(("#", '"""')), f"{path}: code on line 1"
