"""const() is written once, in firmware/__init__.py, and every module of firmware/, hal/ and boards/
takes it from there (`from firmware import const`): imports go boards -> hal -> firmware, so each
layer may. That costs nothing on MicroPython, whose compiler (and mpy-cross) folds const() by the
name `const` alone, wherever it was imported from: a private `_X = const(5)` becomes the literal at
each use and no global, shown here on the unix port."""

import ast
import subprocess
from pathlib import Path

import pytest
from pumpctl.board_build import mpy_cross_command
from vms import ROOT, run_unix

HOME = ROOT / "firmware" / "__init__.py"  # the one place const is defined


def py_files():
    return sorted(p for folder in ("firmware", "hal", "boards") for p in (ROOT / folder).rglob("*.py"))


def own_const(path: Path) -> list[str]:
    """Where a file makes a const of its own (not `from firmware import const`), as 'line: what'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == "const":
            found.append(f"{node.lineno}: defines const")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if (alias.asname or alias.name) == "const" and not (
                    isinstance(node, ast.ImportFrom) and node.module == "firmware" and alias.name == "const"
                ):
                    found.append(f"{node.lineno}: imports const from {getattr(node, 'module', None)}")
        elif isinstance(node, ast.Name) and node.id == "const" and isinstance(node.ctx, ast.Store):
            found.append(f"{node.lineno}: assigns const")
        elif isinstance(node, ast.arg) and node.arg == "const":
            found.append(f"{node.lineno}: takes const as an argument")
    return sorted(found, key=lambda f: int(f.split(":")[0]))


def calls_const(tree: ast.Module) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "const" for n in ast.walk(tree)
    )


def imports_const_from_firmware(tree: ast.Module) -> bool:
    """At the top of the module and by that very name: an alias (`as K`) is not folded by MicroPython."""
    return any(
        isinstance(n, ast.ImportFrom)
        and n.module == "firmware"
        and any(a.name == "const" and a.asname is None for a in n.names)
        for n in tree.body
    )


@pytest.mark.parametrize("path", py_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_module_defines_its_own_const_fallback(path):
    if path == HOME:
        return
    assert not own_const(path), f"{path.relative_to(ROOT)}: use `from firmware import const`: {own_const(path)}"
    tree = ast.parse(path.read_text())
    if calls_const(tree):
        assert imports_const_from_firmware(tree), f"{path.relative_to(ROOT)} calls const() without importing it"


def test_firmware_init_holds_the_one_fallback():
    tree = ast.parse(HOME.read_text())
    assert sum(isinstance(n, ast.FunctionDef) and n.name == "const" for n in ast.walk(tree)) == 1
    assert HOME.read_text().count("from micropython import const  # pyright: ignore[reportAssignmentType]") == 1


def test_the_check_sees_the_old_block_and_its_spellings(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "try:\n    from micropython import const  # pyright: ignore[reportAssignmentType]\n"
        "except ImportError:\n\n    def const(x):\n        return x\n"
    )
    assert own_const(probe) == ["2: imports const from micropython", "5: defines const"]
    probe.write_text("const = lambda x: x\nfrom firmware import const as const2\nfrom hal import const\n")
    assert own_const(probe) == ["1: assigns const", "3: imports const from hal"]
    probe.write_text("from firmware import const\n\n_X = const(1)\n")
    assert own_const(probe) == []
    assert imports_const_from_firmware(ast.parse(probe.read_text()))
    assert not imports_const_from_firmware(ast.parse("from firmware import const as K\n"))


# -- on MicroPython: the name is folded wherever const comes from ---------------------------------------

PROBE = """\
{import_line}

_X = const(5)  # private: folded, no global
Y = const(7)  # public: folded at each use here, and kept as a global for importers
_Z = 9  # not a const: a global, which shows the check below can see private globals


def f():
    return _X + Y + _Z
"""

CHECK = """\
import sys

for name in sys.argv[1:]:
    m = __import__(name)
    names = sorted(k for k in m.__dict__ if not k.startswith("__"))
    print(name, m.__file__.rsplit(".", 1)[1], hasattr(m, "_X"), m.Y, m.f(), " ".join(names))
"""


@pytest.mark.micropython
def test_a_const_folded_private_name_costs_no_global_when_const_comes_from_firmware(tmp_path):
    """Compiled by mpy-cross (as pumpctl flash ships modules) and run on the unix port: a module taking
    const from firmware has exactly the globals and the answers of one taking it from micropython."""
    src, mpy, run = tmp_path / "src", tmp_path / "mpy", tmp_path / "run"  # the script's folder is searched first
    for folder in (src, mpy, run):
        folder.mkdir()
    sources = {
        "via_firmware": "from firmware import const",
        "via_micropython": "from micropython import const",
    }
    for name, import_line in sources.items():
        source = src / f"{name}.py"
        source.write_text(PROBE.format(import_line=import_line))
        subprocess.run([mpy_cross_command(), "-o", str(mpy / f"{name}.mpy"), str(source)], check=True)
    (run / "check.py").write_text(CHECK)
    from_mpy = run_unix(run / "check.py", args=tuple(sources), path=(mpy,))
    from_source = run_unix(run / "check.py", args=tuple(sources), path=(src,))
    expected = [
        "via_firmware mpy False 7 21 Y _Z const f",
        "via_micropython mpy False 7 21 Y _Z const f",
    ]
    assert from_mpy.splitlines() == expected
    assert from_source.splitlines() == [line.replace(" mpy ", " py ") for line in expected]


def private_consts(path: Path) -> list[str]:
    """The module-level `_NAME = const(...)` of a file."""
    return [
        t.id
        for n in ast.parse(path.read_text()).body
        if isinstance(n, ast.Assign)
        and isinstance(n.value, ast.Call)
        and isinstance(n.value.func, ast.Name)
        and n.value.func.id == "const"
        for t in n.targets
        if isinstance(t, ast.Name) and t.id.startswith("_")
    ]


@pytest.mark.micropython
def test_no_private_const_of_the_tree_is_a_global_on_micropython(tmp_path):
    """Every module of firmware/, hal/ and boards/ as the unix port loads it: none of its private consts
    is left as a global (each one would cost a dict slot on a board)."""
    modules: dict[str, list[str]] = {}
    for path in py_files():
        names = private_consts(path)
        if names:
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = names
    assert len(modules) >= 20, modules  # the check covers the tree, not a corner of it
    script = tmp_path / "globals.py"
    script.write_text(
        "import sys\n"
        f"MODULES = {sorted(modules.items())!r}\n"
        "for name, consts in MODULES:\n"
        "    __import__(name)\n"
        "    m = sys.modules[name]\n"
        "    left = [c for c in consts if hasattr(m, c)]\n"
        "    print(name, len(consts), ' '.join(left) or 'folded')\n"
    )
    out = run_unix(script).splitlines()
    assert out == [f"{name} {len(consts)} folded" for name, consts in sorted(modules.items())], "\n".join(out)
