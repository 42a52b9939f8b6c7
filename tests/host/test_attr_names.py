"""pumpctl's build-time renaming of the firmware's private data attributes (host/pumpctl/attr_names.py): a
private attribute that only its own class hierarchy's methods use, through `self`, written `_a_`, `_b_`, ... in
that hierarchy, so a board interns a dozen names where it interned one per attribute; an attribute kept wherever
anything else could name it. That the firmware compiled this way still boots and runs is shown by the tests that
run it compiled (tests/firmware/test_soak.py, tests/e2e/test_boards_e2e.py, tests/host/test_flash.py)."""

from __future__ import annotations

import textwrap

import pytest
from pumpctl import attr_names
from pumpctl.attr_names import AttrNameError, make_plan, rename_attributes
from vms import ROOT


def build(files: dict[str, str]) -> dict[str, str]:
    """Each file as the pass writes it, the plan made from all of them."""
    files = {path: textwrap.dedent(text) for path, text in files.items()}
    plan = make_plan(files)
    return {path: rename_attributes(text, path, plan) for path, text in files.items()}


def run(source: str, call: str):
    scope: dict = {}
    exec(compile(source, "m.py", "exec"), scope)
    return eval(call, scope)


COUNTER = """\
    class Counter:
        def __init__(self, start):
            self._count = start
            self._step = 1
            self.total = 0

        def add(self):
            self._count += self._step
            self.total = self._count
            return self._count
    """


def test_a_private_attribute_used_only_through_self_is_renamed_in_its_class():
    out = build({"firmware/counter.py": COUNTER})["firmware/counter.py"]
    lines = out.splitlines()
    assert lines[2] == "        self._a_ = start"  # _count: the first in sorted order
    assert lines[3] == "        self._b_ = 1"  # _step
    assert lines[7] == "        self._a_ += self._b_"
    assert "self.total" in out  # a public attribute: kept
    assert len(lines) == len(textwrap.dedent(COUNTER).splitlines())  # no line moves
    call = "[c.add() for c in [Counter(5)] for _ in range(3)]"
    assert run(out, call) == run(textwrap.dedent(COUNTER), call) == [6, 7, 8]


def test_an_attribute_another_object_names_or_a_string_holds_is_kept():
    files = {
        "firmware/counter.py": COUNTER,
        "firmware/user.py": """\
            def peek(counter):
                return counter._count
            """,
        "firmware/state.py": """\
            NAMES = ("_step",)
            """,
    }
    out = build(files)["firmware/counter.py"]
    assert "self._count" in out  # read on another object (user.py)
    assert "self._step" in out  # named in a string (a getattr's)
    assert out == textwrap.dedent(COUNTER)


def test_an_attribute_a_harness_script_reads_or_its_class_uses_is_kept():
    harness = {
        "firmware/counter.py": COUNTER,
        "bench/mp/probe.py": """\
            class Probe(Counter):
                def look(self):
                    return self._step
            """,
    }
    out = build(harness)
    assert "self._step" in out["firmware/counter.py"]  # the harness runs from source: it says _step
    assert "self._a_" in out["firmware/counter.py"]  # _count: the harness never names it
    assert out["bench/mp/probe.py"] == textwrap.dedent(harness["bench/mp/probe.py"])  # harness scripts: never renamed


def test_classes_of_one_hierarchy_share_their_names_and_methods_are_kept():
    files = {
        "hal/base.py": """\
            class Base:
                def __init__(self):
                    self._pin = 3

                def _read(self):
                    return self._pin
            """,
        "hal/sim.py": """\
            from hal.base import Base

            class Sim(Base):
                def read(self):
                    self._level = self._read()
                    return self._level + self._pin
            """,
    }
    out = build(files)
    assert "self._b_ = 3" in out["hal/base.py"]  # _pin: _level is _a_ in the hierarchy
    assert "def _read(self):" in out["hal/base.py"]  # a method: its name is in tracebacks, kept
    assert "self._a_ = self._read()" in out["hal/sim.py"]
    assert "return self._a_ + self._b_" in out["hal/sim.py"]


def test_a_nested_scope_with_its_own_self_keeps_the_names_it_uses():
    source = """\
        class Holder:
            def __init__(self):
                self._value = 1
                self._other = 2

            def make(self):
                def inner(self):
                    return self._value
                return inner(self) + self._other
        """
    out = build({"firmware/holder.py": source})["firmware/holder.py"]
    assert "self._value" in out.splitlines()[2] and "return self._value" in out  # another self reads it: kept
    assert "self._a_ = 2" in out and "+ self._a_" in out  # _other: only the method's own self


def test_static_and_class_methods_are_not_methods_of_an_instance():
    source = """\
        class Tool:
            def __init__(self):
                self._size = 1

            @staticmethod
            def measure(self):
                return self._size
        """
    out = build({"firmware/tool.py": source})["firmware/tool.py"]
    assert out == textwrap.dedent(source)  # a static method's `self` may be anything: kept


def test_a_tree_that_uses_a_renamed_name_is_refused_naming_file_line_and_name():
    files = {"firmware/counter.py": COUNTER, "firmware/other.py": "_a_ = 1\n"}
    with pytest.raises(AttrNameError, match=r"firmware/other.py:1: _a_"):
        build(files)


def test_compile_module_turns_a_refusal_into_a_flash_error_naming_file_line_and_name(flashed_tree):
    e = flashed_tree({"firmware/counter.py": textwrap.dedent(COUNTER), "firmware/other.py": "x = 1\n_a_ = 2\n"})
    assert str(e).startswith("cannot rename the attributes of firmware/other.py, line 2, _a_")


def test_the_firmware_s_modules_keep_their_lines_and_compile(rewrite_every_source):
    plan = attr_names.plan_for(ROOT)
    assert set(attr_names.COMPILED) == {"firmware", "hal", "boards"}
    changed = rewrite_every_source(lambda source, path: rename_attributes(source, path, plan))
    assert changed > 20  # most classes keep a private attribute
    assert max(len(names) for names in plan.by_class.values()) <= 26  # _a_ ... _z_: one letter each


def test_a_compiled_module_holds_no_name_only_its_private_attributes_had(built_and_plain):
    """firmware/monitors.py as pumpctl builds it has no `_sensor_faults` (an attribute only Monitors' methods
    use, through self): mpy-cross alone on the same source keeps it, a name the board would intern."""
    built, plain = built_and_plain("firmware/monitors.py")
    assert b"_sensor_faults" in plain
    assert b"_sensor_faults" not in built
