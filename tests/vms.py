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

    The heap is the test harness's (scenario files are megabytes), not a
    measure of the firmware, which the simulator runs in a board-sized heap.
    """
    search = ":".join(str(p) for p in (*path, root, script.parent, HOST_SCHEMA.parent))
    env = dict(os.environ, MICROPYPATH=f"{search}:.frozen")
    proc = subprocess.run(
        [find_micropython(), "-X", f"heapsize={heap}", str(script), *args],
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
    working directory. env: RUN_MJS_HEAP, RUN_MJS_CODE or RUN_MJS_ROMFS (tests/mp/run.mjs)."""
    node = shutil.which("node")
    if not node:
        raise RuntimeError("node is missing: the 32-bit MicroPython runs under node")
    if not (ROOT / "node_modules" / "@micropython").exists():
        raise RuntimeError("node_modules is missing: run the tests through `make test`")
    proc = subprocess.run(
        [node, str(MP_DIR / "run.mjs"), str(ROOT), str(script), str(MP_DIR / "heaplock.py"), str(HOST_SCHEMA)]
        + list(map(str, extra)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise AssertionError(f"webassembly micropython failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout
