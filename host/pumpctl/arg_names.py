"""Build-time renaming of the firmware's positional parameters, applied by board_build.compile_module
after inline_consts (each source, before mpy-cross).

MicroPython keeps every function's parameter names in its bytecode (a call may name them: f(x=1)), and
a board interns each of them when it loads the module: a name on the heap for as long as the board
runs, never freed. A name that is only ever a parameter (`now_mday`, `reading_nl`) is used by no call
that names it, so this pass writes the i-th positional parameter of a function as `_i` (`_0`, `_1`,
...): a handful of names for the whole firmware in place of one per distinct parameter name. Lines
and columns outside the names do not move, so tracebacks (function names and line numbers) and
failure.py's map of them stay true.

    renamed   the positional parameters of a function defined at the top level of a module or of a
              class there (not `self`, not *args, **kwargs, or keyword-only ones), in its signature
              and everywhere in its body that means that parameter (nested functions, lambdas and
              comprehensions included)
    kept      a parameter whose name any scanned file names as a keyword (f(x=...)) or writes in a
              string (the keys of a dict passed as **kwargs, a getattr): a caller may name it; and
              every parameter of a function that a nested scope could see differently (a nested
              def, lambda, comprehension or class that binds the same name, `global` or `nonlocal`
              of it), or that reads names at run time (locals(), vars(), eval, exec, an f-string),
              or of a function nested in another (its `_i` could hide the outer one's)

It refuses (ArgNameError: the file, the line, the name) a module that already uses a name of the
form `_<digits>`, which the renamed parameters could then hide or be hidden by.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

# ast under a thread pool (board_build compiles modules in one) gave a SystemError once: every entry point
# takes the lock inline_consts' passes take.
from .inline_consts import LOCK

# The code that runs beside the compiled firmware, whose calls and strings may name a parameter of it:
# the firmware itself, its boards, and the harness scripts that run it on the VMs (bench/mp, tests/mp).
# (The host and the tests on CPython run the firmware's sources, which this pass never touches; a keyword
# used anywhere here keeps every parameter of that name.)
SCANNED = ("firmware", "hal", "boards", "bench/mp", "tests/mp")
_RENAMED = re.compile(r"^_\d+$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DYNAMIC = frozenset({"locals", "vars", "eval", "exec", "globals"})
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp,
           ast.GeneratorExp)  # fmt: skip


class ArgNameError(Exception):
    """The pass cannot rename safely: where, which name, and why."""

    def __init__(self, path: str, line: int, name: str, reason: str):
        super().__init__(f"{path}:{line}: {name}: {reason}")
        self.path, self.line, self.name, self.reason = path, line, name, reason


def named_anywhere(sources: list[str]) -> frozenset[str]:
    """The names some call gives as a keyword, or some string holds as a word, in these sources."""
    with LOCK:
        return _named_anywhere(sources)


def _named_anywhere(sources: list[str]) -> frozenset[str]:
    names: set[str] = set()
    for text in sources:
        tree = ast.parse(text)
        docstrings = {id(d) for d in docstrings_of(tree)}
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg:
                names.add(node.arg)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                names.update(_WORD.findall(node.value))
    return frozenset(names)


def docstrings_of(tree: ast.Module):
    """The docstrings of a module and its functions and classes: text for people, never read by name."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                yield first.value


_KEPT_CACHE: dict[Path, frozenset[str]] = {}


def kept_names(root: Path) -> frozenset[str]:
    """named_anywhere() over the SCANNED folders of the project at root (made once per root)."""
    with LOCK:
        if root not in _KEPT_CACHE:
            _KEPT_CACHE[root] = named_anywhere(list(scanned_sources(root).values()))
        return _KEPT_CACHE[root]


def scanned_sources(root: Path) -> dict[str, str]:
    """{path relative to root: text} of the Python files of the SCANNED folders of the project at root."""
    sources = {}
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")):
            if ".venv" in path.parts or "node_modules" in path.parts:
                continue
            try:
                sources[path.relative_to(root).as_posix()] = path.read_text()
            except UnicodeDecodeError:
                continue
    return sources


def _binds(scope: ast.AST, name: str) -> bool:
    """Whether a nested scope binds name itself (a parameter, an assignment, a loop or comprehension
    target, an import, a def or class, an except or with target)."""
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = scope.args
        if any(x.arg == name for x in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if x):
            return True
    for node in ast.walk(scope):
        if node is scope:
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)) and node.id == name:
            return True
        if _binds_here(node, name):
            return True
    return False


def _uses(fn: ast.AST, name: str) -> list[ast.Name]:
    """The Name nodes in fn's body that mean its parameter `name`, or None if a nested scope binds name
    (or fn declares it global or nonlocal)."""
    found: list[ast.Name] = []
    todo = list(fn.body) if isinstance(fn.body, list) else [fn.body]
    while todo:
        node = todo.pop()
        if isinstance(node, _SCOPES) and _binds(node, name):
            return None  # type: ignore[return-value]
        if _binds_here(node, name):  # bound in fn itself otherwise than by an assignment (renamed with the rest)
            return None  # type: ignore[return-value]
        if isinstance(node, ast.Name) and node.id == name:
            found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


def _binds_here(node: ast.AST, name: str) -> bool:
    """Whether node binds name in the scope it is in by a statement whose name is no Name node: a def or
    a class, an import, an except's target, a global or nonlocal declaration."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name == name
    if isinstance(node, ast.alias):
        return (node.asname or node.name.split(".")[0]) == name
    if isinstance(node, ast.ExceptHandler):
        return node.name == name
    return isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names


def _reads_names_at_run_time(fn: ast.AST) -> bool:
    for node in ast.walk(fn):
        if isinstance(node, ast.JoinedStr):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC:
            return True
    return False


def _functions(tree: ast.Module):
    """The functions defined at the top level of the module or of a class there."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield item


def rename_args(source: str, label: str, kept: frozenset[str]) -> str:
    """source with the positional parameters of its functions renamed `_i` (see the module's doc)."""
    with LOCK:
        return _rename_args(source, label, kept)


def _rename_args(source: str, label: str, kept: frozenset[str]) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        name = node.id if isinstance(node, ast.Name) else node.arg if isinstance(node, ast.arg) else None
        if name is None and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = node.name
        if name is not None and _RENAMED.match(name):
            raise ArgNameError(label, node.lineno, name, "a name of the form _<digits>, which renamed parameters use")
    edits: list[tuple[int, int, int, str]] = []  # (line, start byte, end byte, new name)
    for fn in _functions(tree):
        if _reads_names_at_run_time(fn):
            continue
        params = fn.args.posonlyargs + fn.args.args
        for i, arg in enumerate(params):
            name = arg.arg
            if name == "self" or name in kept or name.startswith("__"):
                continue
            uses = _uses(fn, name)
            if uses is None:
                continue
            new = "_%d" % i
            edits.append((arg.lineno, arg.col_offset, arg.col_offset + len(name.encode()), new))
            for use in uses:
                edits.append((use.lineno, use.col_offset, use.end_col_offset, new))  # type: ignore[arg-type]
    if not edits:
        return source
    lines = source.splitlines(keepends=True)
    for line, start, end, new in sorted(edits, reverse=True):
        raw = lines[line - 1].encode()
        lines[line - 1] = (raw[:start] + new.encode() + raw[end:]).decode()
    return "".join(lines)
