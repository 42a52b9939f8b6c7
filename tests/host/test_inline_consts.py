"""pumpctl's build-time inlining of the firmware's integer constants (host/pumpctl/inline_consts.py):
each use written as the constant's value on its own line, the definitions and the imports that only
served them dropped, and a refusal, naming the file, the line and the name, wherever that could
change what the code does. That the firmware compiled this way still boots and runs is shown by the
tests that run it compiled: tests/firmware/test_soak.py (the 32-bit VM, from .mpy files and ROMFS),
tests/e2e/test_boards_e2e.py and tests/host/test_flash.py (a flashed board on the unix port)."""

from __future__ import annotations

import importlib
import subprocess
import textwrap
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pumpctl import board_build, inline_consts
from pumpctl.errors import FlashError
from pumpctl.inline_consts import InlineError, Tree, inline_module, rewrite, tree_constants
from vms import ROOT, harness_for_compiled

CODEC = """\
from firmware import const

STATUS = const(0x02)
REPLY = const(0x80)
NEGATIVE = const(-3)
SHIFTED = const(STATUS << 4 | 1)
LIMIT_US = 600_000_000
BIG = const(1 << 30)  # a long int on a 32-bit port: stays a global where another module reads it
_PRIVATE = const(7)  # the compiler folds it already


def helper():
    return STATUS | REPLY
"""


def tree(tmp_path: Path, **modules: str) -> Path:
    """A source tree in tmp_path: firmware/__init__.py, firmware/codec.py (CODEC), and the modules given
    (firmware/<name>.py)."""
    root = tmp_path / "src"
    (root / "firmware").mkdir(parents=True)
    (root / "firmware" / "__init__.py").write_text("def const(x):\n    return x\n")
    (root / "firmware" / "codec.py").write_text(CODEC)
    for name, text in modules.items():
        (root / "firmware" / f"{name}.py").write_text(textwrap.dedent(text))
    return root


def inlined(root: Path, name: str) -> str:
    return inline_module(root / "firmware" / f"{name}.py", root)


def refusal(root: Path, name: str) -> InlineError:
    with pytest.raises(InlineError) as e:
        inlined(root, name)
    return e.value


# -- what is inlined, and where ------------------------------------------------------------------------


def test_each_inlined_value_is_the_value_the_module_holds():
    """Every constant of the real tree that CPython can import (firmware/, hal/sim/) has exactly the
    value the module gives it at run time."""
    values = tree_constants(ROOT).values
    checked = 0
    for (module, name), value in values.items():
        if module.startswith("hal.") and not module.startswith("hal.sim"):
            continue  # a driver imports machine
        assert getattr(importlib.import_module(module), name) == value, f"{module}.{name}"
        checked += 1
    assert checked >= 400, checked  # the codec's, the errors', the guard's, ...


def test_the_three_ways_of_reading_a_constant_are_written_as_its_value(tmp_path):
    root = tree(
        tmp_path,
        user="""\
        import firmware.codec
        from firmware import codec
        from firmware.codec import REPLY, helper


        def reply_of(t):
            return t | REPLY, codec.STATUS, firmware.codec.SHIFTED, helper()


        def local():
            from firmware.codec import NEGATIVE as N

            return abs(N), codec.NEGATIVE.bit_length(), codec.LIMIT_US
        """,
    )
    out = inlined(root, "user")
    assert "return t | 128, 2, 33, helper()" in out
    assert "return abs((-3)), (-3).bit_length(), 600000000" in out
    # The imports that served only constants are gone (one kept for helper); lines stay where they were.
    assert out.splitlines()[:3] == ["", "", "from firmware.codec import helper"]
    assert out.count("\n") == (root / "firmware" / "user.py").read_text().count("\n")
    namespace: dict = {}
    exec(compile(out.replace("from firmware.codec import helper", "helper = lambda: 130"), "user", "exec"), namespace)
    assert namespace["reply_of"](1) == (129, 2, 33, 130)
    assert namespace["local"]() == (3, 2, 600000000)


def test_a_module_loses_its_constants_definitions_but_keeps_its_other_globals(tmp_path):
    out = inlined(tree(tmp_path, user="from firmware import codec\n\nX = codec.BIG\n"), "codec")
    lines = out.splitlines()
    assert lines[2:7] == ["", "", "", "", ""]  # STATUS .. LIMIT_US
    assert lines[7].startswith("BIG = const(1 << 30)")  # not a small int on a 32-bit port, and read elsewhere
    assert lines[8].startswith("_PRIVATE = const(7)")  # left to the compiler
    assert "return 2 | 128" in out
    # mpy-cross folds const() by its name, imported or not: the import, a global of each module, goes.
    assert lines[0] == ""


def test_const_stays_imported_where_it_is_read_other_than_called(tmp_path):
    root = tree(tmp_path, user="from firmware import const\n\nMARK = const\n")
    assert inlined(root, "user").splitlines()[0] == "from firmware import const"


def test_line_numbers_do_not_move_so_a_traceback_names_the_same_line(tmp_path):
    source = """\
    from firmware.codec import (
        REPLY,
        STATUS,
    )
    LIMIT = 10


    def fail(x):
        y = STATUS + LIMIT
        return y // (x - REPLY)
    """
    root = tree(tmp_path, user=source)
    out = inlined(root, "user")
    assert out.count("\n") == textwrap.dedent(source).count("\n")
    namespace: dict = {}
    exec(compile(out, "user.py", "exec"), namespace)
    with pytest.raises(ZeroDivisionError) as e:
        namespace["fail"](128)
    assert traceback.extract_tb(e.value.__traceback__)[-1].lineno == 10


def test_every_module_of_the_tree_keeps_its_lines_and_its_functions_where_they_were():
    t = tree_constants(ROOT)
    import ast

    for module in t.modules.values():
        before = module.path.read_text()
        after = inline_module(module.path, ROOT)
        assert after.count("\n") == before.count("\n"), module.label
        defs = [
            (n.name, n.lineno)
            for n in ast.walk(ast.parse(after))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
        assert defs == [
            (n.name, n.lineno)
            for n in ast.walk(ast.parse(before))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ], module.label


def test_names_read_by_name_at_run_time_stay_attributes():
    values = tree_constants(ROOT).values
    assert ("firmware.druglib", "DEFAULT_LIBRARY_HASH") not in values  # library.py reads it with lazy.values()
    assert "DEFAULT_LIBRARY_HASH = " in inline_module(ROOT / "firmware" / "druglib.py", ROOT)
    assert ("firmware.codec", "ALARM_RESTART") in values


def test_a_plain_int_that_a_function_rebinds_is_a_variable_and_stays(tmp_path):
    root = tree(tmp_path, user="COUNT = 0\n\n\ndef bump():\n    global COUNT\n    COUNT += 1\n    return COUNT\n")
    assert ("firmware.user", "COUNT") not in Tree(root).values
    assert inlined(root, "user") == (root / "firmware" / "user.py").read_text()


# -- refusals ------------------------------------------------------------------------------------------


def test_a_const_rebound_is_refused(tmp_path):
    root = tree(
        tmp_path, user="from firmware import const\n\nMODE = const(1)\n\n\ndef f():\n    global MODE\n    MODE = 2\n"
    )
    with pytest.raises(InlineError) as e:
        Tree(root)
    assert (e.value.path, e.value.line, e.value.name) == ("firmware/user.py", 8, "MODE")
    assert "rebound" in e.value.reason


def test_a_constant_assigned_on_its_module_elsewhere_is_refused(tmp_path):
    e = refusal(tree(tmp_path, user="from firmware import codec\n\n\ndef f():\n    codec.STATUS = 5\n"), "user")
    assert (e.line, e.name) == (5, "STATUS") and "assigned" in e.reason


def test_a_constant_named_in_a_string_is_refused(tmp_path):
    e = refusal(
        tree(tmp_path, user='from firmware import lazy\n\nX = lazy.values("firmware.codec", "STATUS")\n'), "user"
    )
    assert (e.line, e.name) == (3, "STATUS") and "string" in e.reason


def test_reading_a_module_by_a_computed_name_is_refused(tmp_path):
    root = tree(tmp_path, user="from firmware import codec\n\n\ndef code(name):\n    return getattr(codec, name)\n")
    e = refusal(root, "user")
    assert (e.line, e.name) == (5, "getattr") and "computed name" in e.reason


def test_reading_the_module_s_own_globals_is_refused_forgetting_one_is_not(tmp_path):
    root = tree(tmp_path, user="from firmware import const\n\nK = const(1)\n\n\ndef g(n):\n    return globals()[n]\n")
    e = refusal(root, "user")
    assert (e.line, e.name) == (7, "globals") and "globals" in e.reason
    root = tree(
        tmp_path / "2", user="from firmware import const\n\nK = const(1)\n\n\ndef g(n):\n    globals().pop(n, None)\n"
    )
    assert "globals().pop(n, None)" in inlined(root, "user")


def test_a_constant_shadowed_by_a_parameter_or_a_local_is_refused(tmp_path):
    root = tree(tmp_path, user="from firmware.codec import STATUS\n\n\ndef f(STATUS):\n    return STATUS\n")
    e = refusal(root, "user")
    assert (e.line, e.name) == (4, "STATUS") and "shadowed" in e.reason and "parameter" in e.reason
    root = tree(
        tmp_path / "2", user="from firmware import const\n\nK = const(1)\n\n\ndef f():\n    K = 2\n    return K\n"
    )
    e = refusal(root, "user")
    assert (e.line, e.name) == (7, "K") and "shadowed" in e.reason


def test_an_attribute_of_a_module_it_cannot_resolve_is_refused(tmp_path):
    root = tree(tmp_path, user="import sys\n\n\ndef f():\n    return sys.modules['firmware.codec'].STATUS\n")
    e = refusal(root, "user")
    assert (e.line, e.name) == (5, "STATUS") and "run time" in e.reason
    root = tree(
        tmp_path / "2",
        user="from firmware import codec\n\n\ndef f(codec):\n    return codec.STATUS\n\n\nX = codec.REPLY\n",
    )
    e = refusal(root, "user")
    assert (e.line, e.name) == (5, "STATUS") and "cannot resolve" in e.reason


def test_a_module_passed_as_a_value_or_star_imported_is_refused(tmp_path):
    root = tree(tmp_path, user="from firmware import codec\n\n\nclass Host:\n    codec = codec\n")
    e = refusal(root, "user")
    assert (e.line, e.name) == (5, "codec") and "used as a value" in e.reason
    root = tree(tmp_path / "2", user="from firmware.codec import *  # noqa\n\nX = STATUS\n")
    e = refusal(root, "user")
    assert (e.line, e.name) == (1, "*") and "star import" in e.reason


def test_compile_module_turns_a_refusal_into_a_flash_error_naming_file_line_and_name(tmp_path, monkeypatch):
    root = tree(tmp_path, user="from firmware import codec\n\n\ndef f():\n    codec.STATUS = 5\n")
    monkeypatch.setattr(board_build, "ROOT", root)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(FlashError, match=r"firmware/user\.py, line 5, STATUS: .*assigned"):
        board_build.compile_module(root / "firmware" / "user.py", None, work)


# -- the build ---------------------------------------------------------------------------------------


def test_a_compiled_module_holds_no_name_of_a_constant_it_reads(tmp_path):
    """The .mpy of firmware/alarms.py as pumpctl builds it has none of the codec's alarm names (which
    would be interned names on the board's heap); mpy-cross alone on the same source keeps them."""
    built = board_build.compile_module(ROOT / "firmware" / "alarms.py", None, tmp_path)
    plain = tmp_path / "plain.mpy"
    subprocess.run([board_build.mpy_cross_command(), "-o", str(plain), "firmware/alarms.py"], cwd=ROOT, check=True)
    assert b"ALARM_RESTART" in plain.read_bytes() and b"PRIORITY_HIGH" in plain.read_bytes()
    assert b"ALARM_RESTART" not in built and b"PRIORITY_HIGH" not in built
    assert b"firmware.alarms" in built  # the source name tracebacks give


def test_the_pass_gives_the_same_text_from_a_thread_pool():
    modules = list(tree_constants(ROOT).modules.values())
    alone = [inline_module(m.path, ROOT) for m in modules]
    with ThreadPoolExecutor(4) as pool:
        pooled = list(pool.map(lambda m: inline_module(m.path, ROOT), modules))
    assert pooled == alone


def test_a_harness_script_reads_the_firmware_s_constants_as_values_beside_compiled_firmware(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        "from firmware import codec\nfrom firmware.codec import ALARM_RESTART\n\nprint(codec.STATUS, ALARM_RESTART)\n"
    )
    data = tmp_path / "data.bin"
    data.write_bytes(b"\x00")
    out = tmp_path / "out"
    out.mkdir()
    written = harness_for_compiled([script, data], out)
    assert written == [out / "probe.py", data]
    assert (out / "probe.py").read_text() == "\n\n\nprint(2, 3)\n"
    assert rewrite(script.read_text(), "probe.py", None, inline_consts.tree_constants(ROOT)) == "\n\n\nprint(2, 3)\n"


def test_a_long_const_read_only_in_its_own_module_is_written_out_there_and_its_name_goes(tmp_path):
    """The compiler writes a const() past the small ints as a long int at each use in its module anyway:
    when no other module names it, the pass does the same and drops the global; read elsewhere, it stays."""
    own = "from firmware import const\n\nDAY_US = const(86_400_000_000)\n\n\ndef days(us):\n    return us // DAY_US\n"
    out = inlined(tree(tmp_path, clock=own), "clock").splitlines()
    assert out[2] == "" and out[6] == "    return us // 86400000000"
    read = tree(tmp_path / "2", clock=own, user="from firmware.clock import DAY_US\n\n\ndef f():\n    return DAY_US\n")
    assert inlined(read, "clock").splitlines()[2].startswith("DAY_US = const(86_400_000_000)")
    assert "DAY_US" in inlined(read, "user")
