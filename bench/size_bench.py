"""Firmware size figure for `make bench`: what flashing would copy, compiled by mpy-cross.

    .venv/bin/python bench/size_bench.py

mpy_bytes  per board in boards/: the total size of the .mpy files of every module the board can load,
           as `pumpctl flash` copies them (pumpctl.board_build.board_files: firmware/main.py, the board file,
           the command families and text parsers the pump imports by name, and everything they import,
           found by reading the imports, those inside functions too), compiled for the board's
           MPY_ARCH without line numbers, as files a board loads into RAM are; beside it the same with
           their line numbers (a ROMFS image's, in flash) and the source bytes.
           Also the firmware core alone (firmware/) for the two architectures of the boards to come.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from pumpctl.board_build import ROOT, board_constant, board_files, boards, compile_module

# The targets of the boards the firmware runs on, for the core alone.
CORE_ARCHES = {"rp2_pico": "armv6m", "esp32_devkit": "xtensawin"}


def mpy_size(files: list[Path], arch: str | None, line_numbers: bool = False) -> int:
    """The bytes of the files' .mpy, compiled as `pumpctl flash` compiles them (pumpctl.flash): files
    loaded into RAM without line numbers, a ROMFS image's with them."""
    with tempfile.TemporaryDirectory() as tmp:
        return sum(len(compile_module(path, arch, Path(tmp), line_numbers)) for path in files)


def measure(quick: bool = False) -> dict[str, dict]:
    per_board = {}
    for board in boards():
        files = [path for path, _ in board_files(board)]  # what pumpctl flash copies, by-name modules too
        arch = board_constant(board, "MPY_ARCH")
        per_board[board] = {
            "arch": arch,
            "mpy_bytes": mpy_size(files, arch),
            "romfs_mpy_bytes": mpy_size(files, arch, line_numbers=True),
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
