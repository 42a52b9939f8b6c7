"""Build-time inlining of the firmware's module-level integer constants, applied by
board_build.compile_module to each source before mpy-cross.

MicroPython folds `X = const(5)` at each use inside its own module, but keeps X as a global (a dict
entry and an interned name, on the heap of a board that loads the module), and every other module
that reads `codec.X` or `from firmware.codec import X` looks it up at run time, holding the name X
in its own bytecode too. This pass does for the whole tree what the compiler does inside a module:

    a constant    a module-level `NAME = const(<int expression>)` of firmware/ or hal/ (a private
                  `_NAME = const(...)` is left to the compiler, which folds it already), or a
                  plain `NAME = <int expression>` (upper-case name) that nothing rebinds; the
                  expression may use literals, arithmetic and other constants (`auth.ERR_AUTH`),
                  and a module-level `from M import C as C` of a constant is one too (a re-export).
                  Only values that are small ints on a 32-bit port (-2**30 .. 2**30-1): a larger
                  literal at each use would be a long int object at each use; but a larger one
                  that no other module names is written out in its own module too (for a const()
                  the compiler makes that object at each use already): its global name goes.
    each use      `NAME` in its own module, `codec.NAME` (any import of the module, at any level),
                  `from firmware.codec import NAME` then `NAME`: written as its value, on the same
                  line (tracebacks and failure.py map line numbers: no line moves)
    dropped       the definitions (blank lines), and the imports that only served the inlined
                  uses (an import nothing reads any more), so the module neither holds the names
                  nor loads what it no longer needs; and `from firmware import const` where
                  const is only called (mpy-cross folds const() by its name, imported or not:
                  the import would only make a `const` global in each module)

It refuses (InlineError: the file, the line, the name and why) wherever inlining could change what
the code does: a constant rebound or assigned elsewhere (`codec.X = 1`, `global X`), a name that is
a constant in one place and a local or parameter in another, a constant named in a string (read by
name at run time: getattr, lazy.values), a module whose names are read by a computed name
(getattr(codec, name), codec.__dict__, vars(codec), globals()), an attribute of a module it cannot
resolve (sys.modules[...].X, __import__(...).X, a name that is a module here and something else
there), a star import of a module with constants.

KEPT names stay real attributes: what the pump reads by name at run time, and what the harness and
the host read off a module on a board.

The same pass rewrites the test harness scripts that run beside compiled firmware on the VMs
(tests/vms.py's harness_for_compiled): they read the firmware's constants as the firmware does.

Not thread-safe by itself (a cache, and ast under a thread pool gave wrong results once): every
entry point takes LOCK.
"""

from __future__ import annotations

import ast
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

LOCK = threading.RLock()

# The packages whose constants are inlined; boards/ is rewritten (its uses) but its own constants
# stay: the firmware reads a board's constants by name (getattr(board, "RESERVOIR_ML", 40)).
CONST_PACKAGES = ("firmware", "hal")
PACKAGES = ("firmware", "hal", "boards")

# (module, name) that stay attributes of their module, read by name at run time.
KEPT = frozenset(
    {
        # library.default_library() reads them with lazy.values() (the module is forgotten after)
        ("firmware.druglib", "DEFAULT_LIBRARY_VERSION"),
        ("firmware.druglib", "DEFAULT_LIBRARY_HASH"),
    }
)

SMALL_INT_MIN = -(1 << 30)  # a 32-bit port's small ints (MicroPython's 31-bit)
SMALL_INT_MAX = (1 << 30) - 1
_UPPER = re.compile(r"^_?[A-Z][A-Z0-9_]*$")


class InlineError(Exception):
    """Inlining would change what the code does: where, which name, and why."""

    def __init__(self, path: str, line: int, name: str, reason: str):
        super().__init__(f"{path}:{line}: {name}: {reason}")
        self.path, self.line, self.name, self.reason = path, line, name, reason


# -- scopes: which binding a name means where it is read -----------------------------------------------


@dataclass(eq=False)
class Binding:
    kind: str  # "module" (an import of a module), "from" (from M import a), "const", "other"
    target: str = ""  # "module": the module's dotted name; "from": "M.a"
    node: ast.AST | None = None
    stmt: ast.stmt | None = None  # the import statement (or the definition)
    alias: ast.alias | None = None
    refs: int = 0  # Name loads that mean it
    inlined: int = 0  # of which the pass wrote a value for (or dropped with a definition)


@dataclass(eq=False)
class Scope:
    kind: str  # module, function, class, comp
    parent: Scope | None
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    globals: set[str] = field(default_factory=set)
    nonlocals: set[str] = field(default_factory=set)

    def bind(self, name: str, binding: Binding) -> None:
        scope = self
        if name in self.globals:
            while scope.parent is not None:
                scope = scope.parent
        self_or_module = scope
        self_or_module.bindings.setdefault(name, []).append(binding)

    def lookup(self, name: str) -> tuple[Scope, list[Binding]] | None:
        scope: Scope | None = self
        if name in self.globals:
            while scope.parent is not None:
                scope = scope.parent
            return (scope, scope.bindings[name]) if name in scope.bindings else None
        first = True
        while scope is not None:
            if (first or scope.kind != "class") and name in scope.bindings and name not in scope.nonlocals:
                if scope.kind == "class" and scope.parent is not None:
                    # A class body reads its own namespace, then the globals (LOAD_NAME): both, then.
                    outer = scope.parent.lookup(name)
                    return scope, scope.bindings[name] + (outer[1] if outer else [])
                return scope, scope.bindings[name]
            first = False
            scope = scope.parent
        return None


def _meaning(bindings: list[Binding]) -> Binding | None:
    """The one thing a scope's bindings of a name mean, or None if they differ (or are not imports)."""
    first = bindings[0]
    if first.kind == "other":
        return None
    for b in bindings[1:]:
        if b.kind != first.kind or b.target != first.target:
            return None
    return first


@dataclass
class ModuleScan:
    """One file's scopes, its reads of names, and the places the pass cares about."""

    tree: ast.Module
    module_scope: Scope
    loads: list[tuple[ast.Name, Scope]] = field(default_factory=list)
    attrs: list[tuple[ast.Attribute, Scope]] = field(default_factory=list)
    bindings: list[tuple[str, Binding, Scope]] = field(default_factory=list)  # every binding, in order
    strings: list[ast.Constant] = field(default_factory=list)
    calls: list[tuple[ast.Call, Scope]] = field(default_factory=list)
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)


def scan(tree: ast.Module, is_module: callable) -> ModuleScan:  # type: ignore[valid-type]
    """Walk a file once: scopes, bindings, name loads, attributes, strings, calls."""
    top = Scope("module", None)
    out = ModuleScan(tree, top)

    def bind(scope: Scope, name: str, b: Binding) -> None:
        scope.bind(name, b)
        out.bindings.append((name, b, scope))

    def import_binding(stmt: ast.stmt, alias: ast.alias, scope: Scope) -> None:
        if isinstance(stmt, ast.Import):
            if alias.asname:
                name, target = alias.asname, alias.name
            else:
                name = target = alias.name.split(".")[0]
            bind(scope, name, Binding("module", target, alias, stmt, alias))
            return
        assert isinstance(stmt, ast.ImportFrom)
        if alias.name == "*":
            bind(scope, "*", Binding("other", stmt.module or "", alias, stmt, alias))
            return
        name = alias.asname or alias.name
        full = f"{stmt.module}.{alias.name}"
        if stmt.level == 0 and is_module(full):
            bind(scope, name, Binding("module", full, alias, stmt, alias))
        elif stmt.level == 0:
            bind(scope, name, Binding("from", full, alias, stmt, alias))
        else:
            bind(scope, name, Binding("other", "", alias, stmt, alias))

    def args(a: ast.arguments, scope: Scope) -> None:
        for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg):
            if arg is not None:
                bind(scope, arg.arg, Binding("other", "parameter", arg))

    def visit(node: ast.AST, scope: Scope) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if not isinstance(node, ast.Lambda):
                bind(scope, node.name, Binding("other", "def", node))
                for d in node.decorator_list:
                    walk(d, scope)
                if node.returns:
                    walk(node.returns, scope)
            for d in (*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]):
                walk(d, scope)
            inner = Scope("function", scope)
            _declare(node, inner)
            args(node.args, inner)
            body = node.body if isinstance(node.body, list) else [node.body]
            for stmt in body:
                walk(stmt, inner)
            return
        if isinstance(node, ast.ClassDef):
            bind(scope, node.name, Binding("other", "class", node))
            for d in (*node.decorator_list, *node.bases, *node.keywords):
                walk(d, scope)
            inner = Scope("class", scope)
            _declare(node, inner)
            for stmt in node.body:
                walk(stmt, inner)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            walk(node.generators[0].iter, scope)
            inner = Scope("comp", scope)
            for i, gen in enumerate(node.generators):
                if i:
                    walk(gen.iter, inner)
                walk(gen.target, inner)
                for cond in gen.ifs:
                    walk(cond, inner)
            for part in (node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,):
                walk(part, inner)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                import_binding(node, alias, scope)
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                out.loads.append((node, scope))
            else:
                bind(scope, node.id, Binding("other", "assigned" if isinstance(node.ctx, ast.Store) else "del", node))
            return
        if isinstance(node, ast.NamedExpr):
            target_scope = scope
            while target_scope.kind == "comp" and target_scope.parent is not None:
                target_scope = target_scope.parent
            bind(target_scope, node.target.id, Binding("other", "assigned", node.target))
            walk(node.value, scope)
            return
        if isinstance(node, ast.ExceptHandler) and node.name:
            bind(scope, node.name, Binding("other", "assigned", node))
        if isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bind(scope, node.name, Binding("other", "assigned", node))
        if isinstance(node, ast.MatchMapping) and node.rest:
            bind(scope, node.rest, Binding("other", "assigned", node))
        if isinstance(node, ast.Attribute):
            out.attrs.append((node, scope))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.strings.append(node)
        elif isinstance(node, ast.Call):
            out.calls.append((node, scope))
        for child in ast.iter_child_nodes(node):
            walk(child, scope)

    def walk(node: ast.AST, scope: Scope) -> None:
        visit(node, scope)

    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            out.parents[child] = node
    _declare(tree, top)
    for stmt in tree.body:
        walk(stmt, top)
    return out


def _declare(node: ast.AST, scope: Scope) -> None:
    """The global and nonlocal statements of a function's (or class's, or module's) own body."""
    todo = list(node.body) if hasattr(node, "body") and isinstance(node.body, list) else []
    while todo:
        n = todo.pop()
        if isinstance(n, ast.Global):
            scope.globals.update(n.names)
        elif isinstance(n, ast.Nonlocal):
            scope.nonlocals.update(n.names)
        elif not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(n))


# -- the tree's constants ----------------------------------------------------------------------------


class _NotConstant(Exception):
    pass


_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b if b >= 0 else None,
    ast.LShift: lambda a, b: a << b,
    ast.RShift: lambda a, b: a >> b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitXor: lambda a, b: a ^ b,
}
_UNARY = {ast.USub: lambda a: -a, ast.UAdd: lambda a: a, ast.Invert: lambda a: ~a}


@dataclass
class Module:
    name: str
    path: Path
    label: str  # the path as errors name it (firmware/codec.py)
    scan: ModuleScan
    candidates: dict[str, tuple[ast.stmt, ast.expr, bool]] = field(default_factory=dict)  # name: (stmt, expr, const)
    reexports: dict[str, Binding] = field(default_factory=dict)  # name: its `from M import C as name`


def _is_const_call(value: ast.expr) -> bool:
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "const"
        and len(value.args) == 1
        and not value.keywords
    )


class Tree:
    """The constants of a source tree (firmware/ and hal/), and its modules, to rewrite uses by."""

    def __init__(self, root: Path):
        self.root = root
        self.modules: dict[str, Module] = {}
        self.values: dict[tuple[str, str], int] = {}  # (module, name): value, of every constant inlined
        self.where: dict[tuple[str, str], tuple[str, int]] = {}
        self._evaluating: set[tuple[str, str]] = set()
        self._cache: dict[tuple[str, str], int | None] = {}
        files = [p for pkg in PACKAGES if (root / pkg).is_dir() for p in sorted((root / pkg).rglob("*.py"))]
        names = {}
        for path in files:
            parts = path.relative_to(root).with_suffix("").parts
            if "manifests" in parts:
                continue
            names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
        self.known = set(names)
        for name, path in names.items():
            label = path.relative_to(root).as_posix()
            tree = ast.parse(path.read_text(), label)
            self.modules[name] = Module(name, path, label, scan(tree, self.is_module))
        for m in self.modules.values():
            if m.name.split(".")[0] in CONST_PACKAGES:
                self._candidates(m)
        self._collect()

    def is_module(self, dotted: str) -> bool:
        return dotted in self.known

    def _candidates(self, m: Module) -> None:
        for stmt in m.scan.tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                name = stmt.targets[0].id
                if _is_const_call(stmt.value):
                    m.candidates[name] = (stmt, stmt.value.args[0], True)  # type: ignore[attr-defined]
                elif _UPPER.match(name):
                    m.candidates[name] = (stmt, stmt.value, False)
            elif isinstance(stmt, ast.ImportFrom) and stmt.level == 0:
                for alias in stmt.names:
                    name = alias.asname or alias.name
                    if alias.name != "*" and not self.is_module(f"{stmt.module}.{alias.name}") and _UPPER.match(name):
                        b = next(b for b in m.scan.module_scope.bindings[name] if b.alias is alias)
                        m.reexports[name] = b

    def _rebound(self, m: Module, name: str) -> Binding | None:
        """Another binding of name at the module's level than its definition, if any."""
        stmt = m.candidates[name][0] if name in m.candidates else m.reexports[name].stmt
        for b in m.scan.module_scope.bindings.get(name, []):
            if b.stmt is not stmt and not (b.node is not None and _inside(b.node, stmt, m.scan.parents)):
                return b
        return None

    def value(self, module: str, name: str) -> int | None:
        """The value of module.name if it is a constant of the tree (in range or not), else None."""
        key = (module, name)
        if key in self._cache:
            return self._cache[key]
        m = self.modules.get(module)
        result = None
        if m is not None and key not in self._evaluating and key not in KEPT:
            self._evaluating.add(key)
            try:
                if name in m.candidates and self._rebound(m, name) is None:
                    stmt, expr, _ = m.candidates[name]
                    try:
                        result = self._eval(m, expr, m.scan.module_scope)
                    except _NotConstant:
                        result = None
                elif name in m.reexports and self._rebound(m, name) is None:
                    source, attr = m.reexports[name].target.rsplit(".", 1)
                    result = self.value(source, attr)
            finally:
                self._evaluating.discard(key)
        self._cache[key] = result
        return result

    def _eval(self, m: Module, expr: ast.expr, scope: Scope) -> int:
        if isinstance(expr, ast.Constant) and type(expr.value) is int:
            return expr.value
        if isinstance(expr, ast.UnaryOp) and type(expr.op) in _UNARY:
            return _UNARY[type(expr.op)](self._eval(m, expr.operand, scope))
        if isinstance(expr, ast.BinOp) and type(expr.op) in _BINOPS:
            left, right = self._eval(m, expr.left, scope), self._eval(m, expr.right, scope)
            try:
                v = _BINOPS[type(expr.op)](left, right)
            except (ZeroDivisionError, ValueError, OverflowError):
                raise _NotConstant from None
            if type(v) is not int:
                raise _NotConstant
            return v
        ref = self.reference(expr, scope, m.name)
        if ref is not None:
            v = self.value(*ref)
            if v is not None:
                return v
        raise _NotConstant

    def reference(self, expr: ast.expr, scope: Scope, module: str) -> tuple[str, str] | None:
        """(module, name) that a name or attribute read refers to, if it may be a project module's global."""
        if isinstance(expr, ast.Name):
            found = scope.lookup(expr.id)
            if found is None:
                return None
            where, bindings = found
            if where.parent is None and len(bindings) == 1 and bindings[0].kind == "other":
                return module, expr.id  # a module-level assignment: a global of this module
            b = _meaning(bindings)
            if b is not None and b.kind == "from":
                source, attr = b.target.rsplit(".", 1)
                return source, attr
            return None
        if isinstance(expr, ast.Attribute):
            base = self.module_of(expr.value, scope)
            if base is not None:
                return base, expr.attr
        return None

    def module_of(self, expr: ast.expr, scope: Scope) -> str | None:
        """The project module an expression names (codec, firmware.codec), or None."""
        if isinstance(expr, ast.Name):
            found = scope.lookup(expr.id)
            if found is None:
                return None
            b = _meaning(found[1])
            return b.target if b is not None and b.kind == "module" else None
        if isinstance(expr, ast.Attribute):
            base = self.module_of(expr.value, scope)
            if base is not None and self.is_module(f"{base}.{expr.attr}"):
                return f"{base}.{expr.attr}"
        return None

    def _collect(self) -> None:
        for m in self.modules.values():
            for name in (*m.candidates, *m.reexports):
                if name.startswith("_") and name in m.candidates and m.candidates[name][2]:
                    continue  # a private const(): the compiler folds it already, and it is no global
                v = self.value(m.name, name)
                if v is not None and (SMALL_INT_MIN <= v <= SMALL_INT_MAX or self._own_long_const(m, name)):
                    self.values[(m.name, name)] = v
                    stmt = m.candidates[name][0] if name in m.candidates else m.reexports[name].stmt
                    self.where[(m.name, name)] = (m.label, stmt.lineno)  # type: ignore[union-attr]
                elif name in m.candidates and m.candidates[name][2] and (m.name, name) not in KEPT:
                    stmt = m.candidates[name][0]
                    rebound = self._rebound(m, name)
                    if rebound is not None:
                        raise InlineError(m.label, _line(rebound), name, f"a const() (line {stmt.lineno}) rebound here")
        self.names = {name for _, name in self.values}

    def _own_long_const(self, m: Module, name: str) -> bool:
        """A constant past the small ints that no other module of the tree names (as an attribute, a
        name or an import): written out in its own module, a long int in each function that reads it
        (what the compiler makes of a const() there already; for a plain one, instead of one shared
        object), and the global name goes."""
        if name not in m.candidates or (m.name, name) in KEPT:
            return False
        for other in self.modules.values():
            if other is m:
                continue
            o = other.scan
            if (
                any(a.attr == name for a, _ in o.attrs)
                or any(n.id == name for n, _ in o.loads)
                or any(bound == name for bound, _, _ in o.bindings)
            ):
                return False
        return True


def _line(b: Binding) -> int:
    node = b.node if b.node is not None and hasattr(b.node, "lineno") else b.stmt
    return getattr(node, "lineno", 0)


def _inside(node: ast.AST, stmt: ast.AST | None, parents: dict[ast.AST, ast.AST]) -> bool:
    while node is not None:
        if node is stmt:
            return True
        node = parents.get(node)  # type: ignore[assignment]
    return False


# -- rewriting one file --------------------------------------------------------------------------------


def rewrite(source: str, label: str, module: str | None, tree_consts: Tree) -> str:
    """The file's text with every constant of the tree written as its value, the constants' own
    definitions (if it is module `module` of the tree) and the imports nothing reads any more
    dropped, every line where it was. InlineError where that could change what the code does."""
    if module is not None and module in tree_consts.modules and tree_consts.modules[module].label == label:
        m = tree_consts.modules[module]
        s = m.scan
    else:
        m = None
        s = scan(ast.parse(source, label), tree_consts.is_module)
    values = tree_consts.values
    own = {name for (mod, name) in values if mod == module} if m is not None else set()
    edits: list[tuple[int, int, int, int, str]] = []  # (line, col, end line, end col, text): byte columns
    dropped: list[ast.stmt] = []

    def refuse(node: ast.AST, name: str, reason: str) -> InlineError:
        return InlineError(label, getattr(node, "lineno", 0), name, reason)

    # The definitions this file drops.
    for name in own:
        stmt = m.candidates[name][0] if name in m.candidates else None  # type: ignore[union-attr]
        if stmt is not None:
            dropped.append(stmt)
    dropped_ids = {id(d) for d in dropped}

    def in_dropped(node: ast.AST) -> bool:
        while node is not None:
            if id(node) in dropped_ids:
                return True
            node = s.parents.get(node)  # type: ignore[assignment]
        return False

    # Bindings: a name that is a constant in one place must be that constant wherever it is bound.
    const_names: dict[str, tuple[str, str]] = {}  # name: the constant it means in this file
    for name, b, _scope in s.bindings:
        if b.kind == "from" and tuple(b.target.rsplit(".", 1)) in values:
            const_names.setdefault(name, tuple(b.target.rsplit(".", 1)))  # type: ignore[arg-type]
        if name == "*" and b.target in tree_consts.modules and any(k[0] == b.target for k in values):
            raise refuse(b.stmt, "*", f"a star import of {b.target}, whose constants are inlined")
    for name in own:
        const_names[name] = (module, name)  # type: ignore[assignment]
    for name, b, scope in s.bindings:
        if name not in const_names:
            continue
        meant = const_names[name]
        if b.kind == "from" and tuple(b.target.rsplit(".", 1)) == meant:
            continue
        if name in own and scope.parent is None and b.stmt is None and in_dropped(b.node):  # its definition
            continue
        if name in own and (m.reexports.get(name) is b):  # type: ignore[union-attr]
            continue
        what = b.target if b.kind == "other" else f"an import of {b.target}"
        if scope.parent is None:
            raise refuse(b.node or b.stmt, name, f"the constant {meant[0]}.{meant[1]} is rebound here ({what})")
        raise refuse(b.node or b.stmt, name, f"the constant {meant[0]}.{meant[1]} is shadowed here by a {what} name")

    # Strings: a constant named in one may be read by name at run time.
    for node in s.strings:
        if node.value in tree_consts.names:
            owners = sorted(mod for (mod, n) in values if n == node.value)
            raise refuse(
                node, node.value, f"named in a string (read by name at run time?), a constant of {', '.join(owners)}"
            )

    mod_with_consts = {mod for mod, _ in values}

    # Reads by a computed name, of a module with constants, or of this module's globals.
    for call, scope in s.calls:
        f = call.func
        if isinstance(f, ast.Name) and scope.lookup(f.id) is None:
            if f.id in ("getattr", "hasattr", "setattr", "delattr", "vars") and call.args:
                target = tree_consts.module_of(call.args[0], scope)
                if target in mod_with_consts:
                    raise refuse(call, f.id, f"reads {target}'s globals by a computed name")
            if f.id in ("globals", "locals", "vars") and not call.args and own:
                parent = s.parents.get(call)
                grand = s.parents.get(parent) if parent is not None else None
                great = s.parents.get(grand) if grand is not None else None
                popped = (
                    isinstance(parent, ast.Attribute)
                    and parent.attr == "pop"
                    and isinstance(grand, ast.Call)
                    and len(grand.args) == 2
                    and isinstance(great, ast.Expr)
                )  # globals().pop(name, default), its value unused: forgets a global, reads none
                if not popped:
                    raise refuse(call, f.id, "reads the module's globals by name, and its constants are inlined")

    def literal(value: int, node: ast.AST) -> str:
        text = str(value)
        parent = s.parents.get(node)
        if value < 0 or (isinstance(parent, ast.Attribute) and parent.value is node):
            return f"({text})"
        return text

    def edit(node: ast.AST, text: str) -> None:
        if node.lineno != node.end_lineno:  # type: ignore[attr-defined]
            raise refuse(node, ast.unparse(node), "a use spread over lines (write it on one)")
        edits.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, text))  # type: ignore[attr-defined,arg-type]

    # Name reads.
    for node, scope in s.loads:
        found = scope.lookup(node.id)
        if found is None:
            continue
        where, bindings = found
        ref = None
        if node.id in own and where.parent is None:
            ref = (module, node.id)
        else:
            b = _meaning(bindings)
            if b is not None and b.kind == "from":
                ref = tuple(b.target.rsplit(".", 1))
        parent = s.parents.get(node)
        escapes = [b.target for b in bindings if b.kind == "module" and b.target in mod_with_consts]
        if escapes and not (isinstance(parent, ast.Attribute) and parent.value is node):
            raise refuse(
                node,
                node.id,
                f"the module {escapes[0]} is used as a value here: its constants, inlined, may be read off it "
                "where this pass cannot see (import it where they are read)",
            )
        for b in bindings:
            b.refs += 1
        if isinstance(parent, ast.Call) and parent.func is node and all(b.target == "firmware.const" for b in bindings):
            for b in bindings:  # const(...): folded by mpy-cross by its name alone, imported or not
                b.inlined += 1
        elif in_dropped(node):  # read by a dropped definition: read no more
            for b in bindings:
                b.inlined += 1
        elif ref in values:
            for b in bindings:
                b.inlined += 1
            edit(node, literal(values[ref], node))  # type: ignore[index]

    # Attribute reads of a module's constants.
    consumed: set[int] = set()
    for node, scope in s.attrs:
        if node.attr not in tree_consts.names or id(node) in consumed:
            continue
        base = tree_consts.module_of(node.value, scope)
        if base is None:
            bad = _unresolved(node.value, scope, s, tree_consts, node.attr)
            if bad:
                raise refuse(node, node.attr, bad)
            continue
        key = (base, node.attr)
        if key not in values:
            continue
        if not isinstance(node.ctx, ast.Load):
            raise refuse(node, node.attr, f"the constant {base}.{node.attr} is assigned (or deleted) here")
        # The names the chain reads (codec in codec.X; firmware in firmware.codec.X): one read fewer each.
        root = node.value
        while isinstance(root, ast.Attribute):
            consumed.add(id(root))
            root = root.value
        if in_dropped(node):
            continue  # its names' reads were counted as gone with the definition
        if isinstance(root, ast.Name):
            found = scope.lookup(root.id)
            if found is not None:
                for b in found[1]:
                    b.inlined += 1
        edit(node, literal(values[key], node))

    # Imports nothing reads any more (that something did read): dropped, and constants' re-exports.
    drop_aliases: dict[int, set[int]] = {}  # id(import stmt): ids of its aliases to drop
    stmts: dict[int, ast.stmt] = {}
    for name, b, scope in s.bindings:
        if b.alias is None or b.stmt is None or in_dropped(b.stmt):
            continue
        reexport = m is not None and scope.parent is None and (module, name) in values and m.reexports.get(name) is b
        unread = b.refs > 0 and b.refs == b.inlined
        if reexport or (unread and all(x.refs == x.inlined for x in scope.bindings.get(name, []))):
            if reexport and b.refs != b.inlined:
                continue  # still read here (cannot be: its reads were inlined), keep it to be safe
            drop_aliases.setdefault(id(b.stmt), set()).add(id(b.alias))
            stmts[id(b.stmt)] = b.stmt

    lines = source.encode().split(b"\n")

    def blank(stmt: ast.stmt, keep: bytes | None) -> None:
        """Replace a statement with keep (or nothing, or pass inside a block), its lines kept."""
        first, last = stmt.lineno - 1, stmt.end_lineno - 1  # type: ignore[operator]
        before = lines[first][: stmt.col_offset]
        after = lines[last][stmt.end_col_offset :]  # type: ignore[misc]
        alone = not before.strip() and (not after.strip() or after.strip().startswith(b"#"))
        nested = s.parents.get(stmt) is not s.tree
        if keep is None and (nested or not alone):
            keep = b"pass"
        if keep is None:
            new_first = b""
        else:
            new_first = before + keep + (after if not alone else b"")
        for i in range(first, last + 1):
            lines[i] = b""
        lines[first] = new_first

    # Apply the use edits (right to left on each line), then the dropped statements.
    by_line: dict[int, list[tuple[int, int, str]]] = {}
    for line, col, _, end, text in edits:
        by_line.setdefault(line, []).append((col, end, text))
    for line, items in by_line.items():
        raw = lines[line - 1]
        for col, end, text in sorted(items, reverse=True):
            raw = raw[:col] + text.encode() + raw[end:]
        lines[line - 1] = raw
    for stmt in dropped:
        blank(stmt, None)
    for sid, alias_ids in drop_aliases.items():
        stmt = stmts[sid]
        kept = [a for a in stmt.names if id(a) not in alias_ids]  # type: ignore[attr-defined]
        if not kept:
            blank(stmt, None)
            continue
        names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in kept)
        head = f"import {names}" if isinstance(stmt, ast.Import) else f"from {stmt.module} import {names}"  # type: ignore[attr-defined]
        blank(stmt, head.encode())
    text = b"\n".join(lines).decode()
    if text.count("\n") != source.count("\n"):
        raise InlineError(label, 0, "-", "the rewrite moved lines (a bug of inline_consts)")
    return text


def _unresolved(expr: ast.expr, scope: Scope, s: ModuleScan, t: Tree, attr: str) -> str | None:
    """Why expr.attr may be a module's constant that the pass cannot see, or None if it is not one."""
    owners = sorted(mod for (mod, n) in t.values if n == attr)
    if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Attribute) and expr.value.attr == "modules":
        return f"an attribute of a module found at run time (sys.modules[...]), a constant of {', '.join(owners)}"
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "__import__":
        return f"an attribute of a module imported by name, a constant of {', '.join(owners)}"
    if isinstance(expr, ast.Name):
        modules = {
            b.target
            for name, b, _ in s.bindings
            if name == expr.id and b.kind == "module" and (b.target, attr) in t.values
        }
        if modules:
            return (
                f"{expr.id} is the module {', '.join(sorted(modules))} elsewhere in this file and something "
                "else here: cannot resolve which"
            )
    return None


# -- entry points --------------------------------------------------------------------------------------

_TREES: dict[tuple, Tree] = {}


def tree_constants(root: Path) -> Tree:
    """The constants of root's firmware/ and hal/ (cached while no file changes)."""
    with LOCK:
        files = sorted(p for pkg in PACKAGES if (root / pkg).is_dir() for p in (root / pkg).rglob("*.py"))
        key = (str(root), tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))
        if key not in _TREES:
            _TREES.clear()
            _TREES[key] = Tree(root)
        return _TREES[key]


def inline_module(path: Path, root: Path) -> str:
    """The source of a module of root's firmware/, hal/ or boards/, its constants inlined."""
    with LOCK:
        t = tree_constants(root)
        label = path.relative_to(root).as_posix()
        parts = path.relative_to(root).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        return rewrite(path.read_text(), label, module, t)


def inline_script(source: str, label: str, root: Path) -> str:
    """A script that runs beside root's compiled firmware (a test harness), its reads of the
    firmware's constants written as their values."""
    with LOCK:
        return rewrite(source, label, None, tree_constants(root))
