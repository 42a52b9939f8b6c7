"""firmware_heap_bytes: the GC heap the pump's firmware holds on a 32-bit MicroPython.

Runs bench/mp/heap32.py on the 32-bit webassembly MicroPython under node
(tests/vms.py's run_wasm32, through tests/mp/run.mjs): it boots the sim
board's firmware with the real storage driver on the VM's in-memory
filesystem, then acts as the host over the real link (a clinician programs a
flex schedule with a patient bolus, the patient takes one, status and therapy
are read every 5 min) through one hour of pump time, and reports the live heap
(after a garbage collection) above the bare VM's, after boot and after the hour.

    .venv/bin/python bench/heap_bench.py      # prints the result as JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "mp" / "heap32.py"
GOAL_BYTES = 48 * 1024  # 49152: the heap the firmware may hold


def _run_wasm32(script: Path) -> str:
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from vms import run_wasm32  # the same runner as the micropython32 tests

    return run_wasm32(script, timeout=120)


def parse(out: str) -> tuple[dict, list[dict]]:
    """The script's result line and its import breakdown."""
    result = None
    qstr_bytes = None
    imports = []
    before = 0
    seen: set[str] = set()
    for line in out.splitlines():
        if line.startswith("HEAP32 "):
            result = json.loads(line[len("HEAP32 ") :])
        elif line.startswith("qstr pool:") and "n_total_bytes=" in line:
            qstr_bytes = int(line.split("n_total_bytes=")[1].split(",")[0])
        elif line.startswith("HEAP32_IMPORT "):
            parts = line.split(" ")
            name, live = parts[1], int(parts[2])
            modules = set(parts[3].split(",")) if len(parts) > 3 and parts[3] else set()
            imports.append({"import": name, "bytes": live - before, "modules": sorted(modules - seen)})
            seen |= modules
            before = live
    if result is None:
        raise RuntimeError(f"bench/mp/heap32.py printed no result:\n{out}")
    result["qstr_bytes"] = qstr_bytes
    return result, imports


def measure(quick: bool = False) -> dict[str, dict]:
    """Run the bench once (about 3 s; `quick` changes nothing: one simulated
    hour is already quick, and a shorter one would measure something else)."""
    del quick
    result, imports = parse(_run_wasm32(SCRIPT))
    if result["frames_refused"]:
        raise RuntimeError(f"the pump refused {result['frames_refused']} frames of the bench's host")
    after_boot = result["after_boot_bytes"]
    after_hour = result["after_hour_bytes"]
    value = max(after_boot, after_hour)
    detail = {
        "after_boot_bytes": after_boot,
        "after_programming_bytes": result["after_programming_bytes"],
        "after_hour_bytes": after_hour,
        "imports_bytes": result["after_imports_bytes"],  # modules: bytecode, qstrs, globals
        "qstr_bytes": result["qstr_bytes"],  # of which the interned names' pools (at the end of the run)
        "objects_after_boot_bytes": after_boot - result["after_imports_bytes"],  # drivers and the app's state
        "max_live_bytes": result["max_live_bytes"],  # largest live heap seen between two operations
        # Largest heap seen right after one operation, before its garbage was
        # collected (this VM collects only between steps): an upper bound of the peak.
        "max_alloc_bytes": result["max_alloc_bytes"],
        "max_op_bytes": result["max_op_bytes"],  # most one operation allocated (garbage included)
        "max_op": result["max_op"],
        "op_bytes": result["op_bytes"],  # the same, for each kind of operation
        "baseline_bytes": result["baseline_bytes"],
        "pump_time_us": result["pump_time_us"],
        "steps": result["steps"],
        "motor_steps": result["motor_steps"],
        "delivered_pl": result["steps"] * result["step_volume_pl"],
        "bolus_volume_nl": result["bolus_volume_nl"],
        "log_entries": result["log_entries"],
        "frames_served": result["frames_served"],
        "frames_refused": result["frames_refused"],
        "ticks": result["ticks"],
        "platform": result["platform"],
        "imports": imports,
    }
    return {
        "firmware_heap_bytes": {
            "value": value,
            "unit": "bytes",
            "baseline": (
                "heap of the bare 32-bit VM before the firmware is imported "
                f"(the bench script and its host objects only), {result['baseline_bytes']} bytes, subtracted"
            ),
            "goal": f"< {GOAL_BYTES} (48 KB)",
            "met": value < GOAL_BYTES,
            "detail": detail,
        }
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
