"""Run Python code on the two real MicroPython VMs.

micropython32: the webassembly port under node, 32-bit (small ints below
2**30, ticks wrap at 2**30): the faithful model of a Pico for the core.
micropython: the unix port (64-bit), which runs the whole firmware.

Neither is optional: if one is missing the test fails, because a test that
did not run on MicroPython has not shown that the firmware works there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pumpctl.sim import find_micropython  # fails the test, with how to install it, if missing

ROOT = Path(__file__).resolve().parent.parent
MP_DIR = Path(__file__).resolve().parent / "mp"
# The host's view of the messages (request and reply fields), importable as `schema` by the scripts
# that run on the VMs: they speak to the firmware as a host does.
HOST_SCHEMA = ROOT / "host" / "pumpctl" / "schema.py"
# The modules bench/mp/heap32.py (the heap bench) imports: pass them to run_wasm32 beside it, or beside
# a script that imports it (run.mjs copies extra files into the VM's working directory).
HEAP32_PARTS = (
    ROOT / "bench" / "mp" / "heap32_pump.py",
    ROOT / "bench" / "mp" / "heap32_host.py",
    ROOT / "bench" / "mp" / "program_items.py",  # the items of its programs' lines, as pumpctl reads them
)


def harness_for_compiled(files: list[Path], into: Path) -> list[Path]:
    """The harness's .py files (a script, the modules beside it) as they must be to run beside firmware
    compiled by pumpctl (board_build.compile_module), written into `into` under their own names
    (other files as they are): that build writes each of the firmware's integer constants as its value
    (pumpctl.inline_consts) and its modules hold no such names any more, so the harness's reads of them
    (codec.STATUS, `from firmware.codec import STATUS`) are written as their values the same way."""
    from pumpctl.inline_consts import inline_script

    out = []
    for path in files:
        if path.suffix != ".py":
            out.append(path)
            continue
        target = into / path.name
        if target.exists():
            raise ValueError(f"two harness files named {path.name}")
        target.write_text(inline_script(path.read_text(), path.name, ROOT))
        out.append(target)
    return out


def run_unix(
    script: Path,
    cwd: Path = ROOT,
    timeout: float = 300,
    heap: str = "64M",
    args: tuple[str, ...] = (),
    path: tuple[Path, ...] = (),
    root: Path = ROOT,
) -> str:
    """Run script (with args in sys.argv) on the MicroPython unix port, with firmware/ importable, in cwd.
    path: more folders to import from, searched first (their firmware/ shadows the real one).
    root: where firmware/, hal/ and boards/ are imported from (a board's flashed files: only those).

    A root other than ROOT is a board's flashed files, compiled by pumpctl: the script then runs as
    harness_for_compiled writes it (the modules beside it and in path as they are).

    The heap is the test harness's (scenario files are megabytes), not a
    measure of the firmware, which the simulator runs in a board-sized heap.
    """
    search = ":".join(str(p) for p in (*path, root, script.parent, HOST_SCHEMA.parent))
    env = dict(os.environ, MICROPYPATH=f"{search}:.frozen")
    with tempfile.TemporaryDirectory(prefix="harness-") as tmp:
        run = script if root == ROOT else harness_for_compiled([script], Path(tmp))[0]
        proc = subprocess.run(
            [find_micropython(), "-X", f"heapsize={heap}", str(run), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=timeout,
        )
    if proc.returncode != 0:
        raise AssertionError(f"micropython failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def run_wasm32(script: Path, *extra: Path, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    """Run script on the 32-bit webassembly MicroPython (node), with firmware/,
    the harness's heaplock.py, the host's schema.py and the extra files (modules or data) in its
    working directory. env: RUN_MJS_HEAP, RUN_MJS_CODE or RUN_MJS_ROMFS (tests/mp/run.mjs). With
    RUN_MJS_CODE or RUN_MJS_ROMFS the firmware is compiled (heap_bench.compile_tree), and the script
    and the .py files beside it run as harness_for_compiled writes them."""
    node = shutil.which("node")
    if not node:
        raise RuntimeError("node is missing: the 32-bit MicroPython runs under node")
    if not (ROOT / "node_modules" / "@micropython").exists():
        raise RuntimeError("node_modules is missing: run the tests through `make test`")
    env = {**os.environ, **(env or {})}
    files = [script, MP_DIR / "heaplock.py", HOST_SCHEMA, *extra]
    with tempfile.TemporaryDirectory(prefix="harness-") as tmp:
        if env.get("RUN_MJS_CODE") or env.get("RUN_MJS_ROMFS"):
            files = harness_for_compiled(files, Path(tmp))
        proc = subprocess.run(
            [node, str(MP_DIR / "run.mjs"), str(ROOT), *map(str, files)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=timeout,
            env=env,
        )
    if proc.returncode != 0:
        raise AssertionError(f"webassembly micropython failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout
