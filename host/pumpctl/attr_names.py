"""Build-time renaming of the firmware's private data attributes, applied by board_build.compile_module
after arg_names (each source, before mpy-cross).

A board interns every attribute name a module uses when it loads it: a name on the heap for as long as
the board runs, never freed, about 17 bytes for a name of 9 letters where the module is loaded into RAM
(from a ROMFS image the text stays in flash, and only the name's slot in the table is taken). A
private attribute that an object keeps for itself (`self._deadline_us`, `self._secret`), which only its
own class's methods and those of the classes it shares a hierarchy with ever name, and only through
`self`, is written `_a_`, `_b_`, ... in its hierarchy (its names in sorted order): a dozen names for
the whole firmware in place of one per attribute. Lines, function names and methods do not change, so
a traceback's lines and names and failure.py's map of them stay true; only the renamed attributes'
columns move.

    renamed   a name `_x` (one underscore, not `_<digits>`) that the compiled tree (firmware, hal,
              boards) uses only as `self._x` in the methods of its classes (functions defined in a
              class body whose first parameter is `self`, not static or class methods)
    kept      a name that any scanned file (the compiled tree, and the harness scripts that run it on
              the VMs: bench/mp, tests/mp) uses otherwise: on another object than `self` (`pump._x`, a
              harness's `app.guard._ring`), as `self._x` outside such a method or in a nested scope
              that binds its own `self`, in a method of a harness script's class (harness scripts run
              from their source), in a string (a getattr's name, persist.py's state names), or defined
              in a class body (a method, a class attribute)

Classes share a hierarchy when one names another as its base, by name (two classes of one name are one
hierarchy, which only renames less). It refuses (AttrNameError: the file, the line, the name) a scanned
file that already uses a name the renamed attributes take.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from .arg_names import named_anywhere, scanned_sources
from .inline_consts import LOCK

# The folders compiled for a board; the others arg_names.SCANNED (the harness scripts that run the
# compiled firmware on the VMs) run from their source, so what they name is kept.
COMPILED = ("firmware", "hal", "boards")
_PRIVATE = re.compile(r"^_[A-Za-z][A-Za-z0-9_]*$")  # one underscore, then a letter: not _0, not __x__
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class AttrNameError(Exception):
    """The pass cannot rename safely: where, which name, and why."""

    def __init__(self, path: str, line: int, name: str, reason: str):
        super().__init__(f"{path}:{line}: {name}: {reason}")
        self.path, self.line, self.name, self.reason = path, line, name, reason


def new_name(i: int) -> str:
    """The i-th name a hierarchy's renamed attributes take: _a_ ... _z_, _A_ ... _Z_, _ba_, _bb_, ...
    (a form no name of the firmware has: a short local or constant, `_d`, `_S`, is common)."""
    n = len(_LETTERS)
    return ("_" + _LETTERS[i] if i < n else "_" + _LETTERS[i // n] + _LETTERS[i % n]) + "_"


@dataclass(frozen=True)
class Plan:
    """What to rename: {class name: {attribute: new name}} for every class of the compiled tree."""

    by_class: dict[str, dict[str, str]]

    def renamed(self) -> set[str]:
        return {old for names in self.by_class.values() for old in names}


def _methods(cls: ast.ClassDef):
    """The functions of a class body that take the instance as `self`."""
    for item in cls.body:
        if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        decorators = {d.id for d in item.decorator_list if isinstance(d, ast.Name)}
        if decorators & {"staticmethod", "classmethod"}:
            continue
        params = item.args.posonlyargs + item.args.args
        if params and params[0].arg == "self":
            yield item


def _binds_self(scope: ast.AST) -> bool:
    """Whether a scope binds a `self` of its own (a parameter, an assignment, a loop target, ...)."""
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = scope.args
        if any(x.arg == "self" for x in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if x):
            return True
    return any(
        isinstance(node, ast.Name) and node.id == "self" and isinstance(node.ctx, (ast.Store, ast.Del))
        for node in ast.walk(scope)
        if node is not scope
    )


def _self_attributes(method: ast.AST):
    """(Attribute node, True) for each `self.x` in a method's body that means its instance, and
    (node, False) for one in a nested scope with a `self` of its own (or in a method that rebinds self)."""
    rebinds = any(
        isinstance(node, ast.Name) and node.id == "self" and isinstance(node.ctx, (ast.Store, ast.Del))
        for node in ast.walk(method)
    )
    todo: list[tuple[ast.AST, bool]] = [(child, not rebinds) for child in method.body]  # type: ignore[attr-defined]
    while todo:
        node, ours = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)) and _binds_self(node):
            ours = False
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            yield node, ours
        todo.extend((child, ours) for child in ast.iter_child_nodes(node))


def make_plan(sources: dict[str, str]) -> Plan:
    """The plan for these sources ({path relative to the project: text}, the scanned folders')."""
    with LOCK:
        return _make_plan(sources)


def _make_plan(sources: dict[str, str]) -> Plan:
    trees = {path: ast.parse(text) for path, text in sources.items()}
    # A name a string holds (a getattr's, persist.py's state names) or a call gives as a keyword: kept.
    kept: set[str] = set(named_anywhere(list(sources.values())))
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    used: dict[str, set[str]] = {}  # class name -> the private names its methods use on self
    taken: list[tuple[str, int, str]] = []  # (path, line, name) of a name of the renamed form
    for path, tree in trees.items():
        compiled = path.split("/")[0] in COMPILED
        ours: set[int] = set()
        for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
            root(cls.name)
            for base in cls.bases:
                name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else None
                if name:
                    parent[root(cls.name)] = root(name)
            for item in cls.body:  # a method's or a class attribute's name: kept
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    kept.add(item.name)
                elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                    for target in item.targets if isinstance(item, ast.Assign) else [item.target]:
                        kept.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            for method in _methods(cls):
                for node, is_ours in _self_attributes(method):
                    if is_ours and compiled:
                        ours.add(id(node))
                        if _PRIVATE.match(node.attr):
                            used.setdefault(cls.name, set()).add(node.attr)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and id(node) not in ours:
                kept.add(node.attr)  # on another object, or outside a method of the compiled tree
            name = (
                node.id
                if isinstance(node, ast.Name)
                else node.attr
                if isinstance(node, ast.Attribute)
                else node.arg
                if isinstance(node, ast.arg)
                else node.name
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                else None
            )
            if name is not None and re.fullmatch(r"_[A-Za-z]{1,2}_", name):
                taken.append((path, getattr(node, "lineno", 0), name))
    hierarchies: dict[str, set[str]] = {}
    for cls, names in used.items():
        hierarchies.setdefault(root(cls), set()).update(n for n in names if n not in kept)
    maps = {h: {old: new_name(i) for i, old in enumerate(sorted(names))} for h, names in hierarchies.items()}
    new_names = {new for m in maps.values() for new in m.values()}
    for path, line, name in taken:
        if name in new_names:
            raise AttrNameError(path, line, name, "a name of the form the renamed attributes take (_a_, _b_, ...)")
    return Plan({cls: maps.get(root(cls), {}) for cls in parent if maps.get(root(cls))})


_PLAN_CACHE: dict[Path, Plan] = {}


def plan_for(root: Path) -> Plan:
    """make_plan() over the SCANNED folders of the project at root (made once per root)."""
    with LOCK:
        if root not in _PLAN_CACHE:
            _PLAN_CACHE[root] = _make_plan(scanned_sources(root))
        return _PLAN_CACHE[root]


def rename_attributes(source: str, label: str, plan: Plan) -> str:
    """source (the file label) with its classes' private data attributes renamed by plan (see the
    module's doc)."""
    with LOCK:
        return _rename_attributes(source, label, plan)


def _rename_attributes(source: str, label: str, plan: Plan) -> str:
    tree = ast.parse(source)
    edits: list[tuple[int, int, int, str]] = []  # (line, start byte, end byte, new name)
    for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
        names = plan.by_class.get(cls.name)
        if not names:
            continue
        for method in _methods(cls):
            for node, ours in _self_attributes(method):
                new = names.get(node.attr) if ours else None
                if new is not None:
                    end = node.end_col_offset
                    edits.append((node.end_lineno, end - len(node.attr.encode()), end, new))  # type: ignore[operator, arg-type]
    if not edits:
        return source
    lines = source.splitlines(keepends=True)
    for line, start, end, new in sorted(edits, reverse=True):
        raw = lines[line - 1].encode()
        if raw[start:end].decode() not in plan.renamed():
            raise AttrNameError(label, line, raw[start:end].decode(), "the attribute is not where the parse put it")
        lines[line - 1] = (raw[:start] + new.encode() + raw[end:]).decode()
    return "".join(lines)
