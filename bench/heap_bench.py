"""The GC heap the pump's firmware holds on a 32-bit MicroPython, and the garbage it makes.

firmware_heap_bytes          most live bytes, the modules loaded from .mpy files into RAM
                             (as stock MicroPython does with files copied to a board; compiled
                             without line numbers, as pumpctl flash compiles those)
firmware_op_garbage_bytes    most bytes one command or one dosing turn allocates (garbage
                             included): more than a Pico collects at once is a stall there
                             (the boot and a restart, which make the pump's objects on an
                             empty heap, are reported beside it, not in it)
firmware_heap_romfs_bytes    most live bytes with the .mpy files in a ROMFS image, which
                             the VM registers outside its GC heap as a board keeps it in flash:
                             the code runs in place and only objects and names take heap

Runs bench/mp/heap32.py (its parts beside it: heap32_pump.py, heap32_host.py) on the 32-bit
webassembly MicroPython under node (tests/vms.py's run_wasm32, through tests/mp/run.mjs): it
boots the sim board's firmware with the real storage driver on the VM's in-memory filesystem,
then acts as the host over the real link (a clinician programs a flex schedule with a patient
bolus, the patient takes one, status and therapy are read every 5 min) through one hour of pump
time, and reports the live heap (after a garbage collection) above the bare VM's, after boot and
after the hour.

    .venv/bin/python bench/heap_bench.py      # prints the result as JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "mp" / "heap32.py"
# The budgets of a Pico (229,760 bytes free after boot): room for the firmware's objects,
# for collections to keep up, and for a fragmented heap to still find a 6 KB block.
GOAL_BYTES = 96 * 1024  # live, code in RAM
GOAL_OP_GARBAGE_BYTES = 16 * 1024  # allocated by one command or turn
GOAL_ROMFS_BYTES = 40 * 1024  # live, code in flash (ROMFS)
PACKAGES = ("firmware", "hal", "boards")
# The pools of interned names: the first holds 20 names, each next one twice the last's; a name's
# slot in one is 7 bytes on this VM (a pointer, a 2-byte hash, a length byte; 6 on a Pico, whose hash
# is a byte), and each pool about 64 more (tests/firmware/test_qstr_pools.py).
FIRST_POOL_NAMES = 20
POOL_SLOT_BYTES = 7
# The operations that start the pump (its objects made on an empty heap): not commands or turns, so outside
# firmware_op_garbage_bytes; their allocation is reported beside it.
STARTS = ("boot", "restart")


def _run_wasm32(script: Path, env: dict[str, str] | None = None) -> str:
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
        sys.path.insert(0, str(ROOT))  # the firmware package first: tests/firmware holds only its tests
    from vms import HEAP32_PARTS, run_wasm32  # the same runner as the micropython32 tests

    return run_wasm32(script, *HEAP32_PARTS, timeout=120, env=env)


def compile_tree(out: Path, line_numbers: bool = True) -> Path:
    """firmware/, hal/ and boards/ compiled to bytecode .mpy files (as `pumpctl flash` compiles them,
    with no native code: the VM runs bytecode) in out/code (out/code-lines-less with line_numbers=False,
    as flash compiles .mpy files a board loads into RAM), the same folders."""
    from pumpctl.board_build import compile_module

    code = out / ("code" if line_numbers else "code-lines-less")
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        for source in sorted((ROOT / package).rglob("*.py")):
            if source.parent.name == "manifests":  # boards/manifests: build manifests, not modules
                continue
            target = code / source.relative_to(ROOT).with_suffix(".mpy")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(compile_module(source, None, work, line_numbers))
    return code


def romfs_image(code: Path, out: Path) -> Path:
    """A ROMFS image of the compiled tree (mpremote's builder, as `mpremote romfs build`)."""
    import contextlib
    import io

    from mpremote.romfs import make_romfs

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the tree it builds
        image = make_romfs(str(code), mpy_cross=False)
    path = out / "firmware.romfs"
    path.write_bytes(image)
    return path


def parse(out: str) -> tuple[dict, list[dict]]:
    """The script's result line, its import breakdown, and its interned names (qstr_info)."""
    result = None
    qstrs: dict[str, dict] = {}  # "baseline", "end": {"pool": its qstr pool line's numbers, "names": [...]}
    at = None
    imports = []
    before = 0
    seen: set[str] = set()
    for line in out.splitlines():
        if line.startswith("HEAP32 "):
            result = json.loads(line[len("HEAP32 ") :])
        elif line.startswith("HEAP32_QSTR "):
            at = qstrs[line.split(" ")[1]] = {"pool": {}, "names": []}
        elif line.startswith("qstr pool:") and at is not None:
            for part in line[len("qstr pool:") :].split(","):
                key, _, value = part.strip().partition("=")
                at["pool"][key] = int(value)
        elif line.startswith("Q(") and line.endswith(")") and at is not None:
            at["names"].append(line[2:-1])
        elif line.startswith("HEAP32_IMPORT "):
            parts = line.split(" ")
            name, live = parts[1], int(parts[2])
            modules = set(parts[3].split(",")) if len(parts) > 3 and parts[3] else set()
            imports.append({"import": name, "bytes": live - before, "modules": sorted(modules - seen)})
            seen |= modules
            before = live
    if result is None or set(qstrs) != {"baseline", "end"}:
        raise RuntimeError(f"bench/mp/heap32.py printed no result:\n{out}")
    end, base = qstrs["end"], qstrs["baseline"]
    result["qstr_bytes"] = end["pool"]["n_total_bytes"]
    result["qstr_names"] = end["pool"]["n_qstr"]
    result["baseline_qstr_names"] = base["pool"]["n_qstr"]
    result["qstr_pools"] = end["pool"]["n_pool"]
    result["baseline_qstr_pools"] = base["pool"]["n_pool"]
    result["qstr_added"] = sorted(set(end["names"]) - set(base["names"]))
    return result, imports


def pool_room(pools: int, names: int) -> int:
    """How many more names `pools` pools of interned names hold, `names` of them taken: MicroPython makes
    its first pool for FIRST_POOL_NAMES names and each next one for twice the last one's (py/qstr.c; the
    same on this VM and on the emulated Pico's RPI_PICO 1.29: 20, 40, 80, ... 640, 1280)."""
    room = FIRST_POOL_NAMES * (2**pools - 1) - names
    if not 0 <= room < FIRST_POOL_NAMES * 2 ** (pools - 1):
        raise RuntimeError(f"{names} interned names in {pools} pools: not the pool sizes this bench knows")
    return room


def _run(env: dict[str, str] | None) -> tuple[dict, dict]:
    """One run of the bench script: (its figures, the detail kept in results.json)."""
    result, imports = parse(_run_wasm32(SCRIPT, env))
    if result["frames_refused"] != result["refusals_asked"]:
        raise RuntimeError(
            f"the pump refused {result['frames_refused']} frames of the bench's host, "
            f"{result['refusals_asked']} of them on purpose"
        )
    after_boot = result["after_boot_bytes"]
    # The harness's names fill the VM's first pools; slots they leave free in the last one would take the
    # firmware's first names at no charge, so a harness change could move the figure by a pool (2.5 KB
    # for 3 names, seen). They are charged: the firmware pays for its names from a pool's start, whatever
    # the harness holds. (On a Pico its names start in the first pool: its six pools for the firmware's
    # 900-odd names, 1,260 slots of 6 bytes, take 7.9 KB, where this VM charges two, 960 slots of 7, 6.8 KB.)
    baseline_room = pool_room(result["baseline_qstr_pools"], result["baseline_qstr_names"])
    names_not_charged = baseline_room * POOL_SLOT_BYTES
    detail = {
        "live_bytes": max(after_boot, result["after_hour_bytes"], result["max_live_bytes"]) + names_not_charged,
        "after_boot_bytes": after_boot,
        "after_programming_bytes": result["after_programming_bytes"],
        "after_hour_bytes": result["after_hour_bytes"],
        "imports_bytes": result["after_imports_bytes"],  # modules: bytecode (unless in ROMFS), qstrs, globals
        "qstr_bytes": result["qstr_bytes"],  # of which the interned names' pools (at the end of the run)
        "qstr_names": result["qstr_names"],  # interned names at the end (micropython.qstr_info's n_qstr) ...
        "baseline_qstr_names": result["baseline_qstr_names"],  # ... and at the baseline (the harness's)
        "qstr_pools": result["qstr_pools"],  # their pools at the end, and at the baseline
        # Names that fit before the next pool (twice the last one's size: the heap then jumps by all of it)
        "qstr_room": pool_room(result["qstr_pools"], result["qstr_names"]),
        # Slots the harness's own names left free in their last pool, charged to the firmware (see POOL_SLOT_BYTES)
        "baseline_qstr_room": baseline_room,
        "baseline_qstr_pools": result["baseline_qstr_pools"],
        # The names the firmware interned (and the host's strings the bench sent, a few): each is heap
        # on a board, from the names of its modules' globals, attributes, functions and arguments.
        "qstr_added": result["qstr_added"],
        "objects_after_boot_bytes": after_boot - result["after_imports_bytes"],  # drivers and the app's state
        "max_live_bytes": result["max_live_bytes"],  # largest live heap seen between two operations
        "max_live_op": result.get("max_live_op", ""),  # the operation after which it was seen
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
    return result, detail


def measure(quick: bool = False) -> dict[str, dict]:
    """Run the bench three times (about 3 s each; `quick` changes nothing: one simulated hour is
    already quick, and a shorter one would measure something else): the modules from .mpy files in
    RAM (the budget figures), from a ROMFS image, and compiled from source on the VM (for comparison)."""
    del quick
    import tempfile

    with tempfile.TemporaryDirectory(prefix="heap-bench-") as tmp:
        # As pumpctl flash deploys them: .mpy files loaded into RAM without line numbers, a ROMFS image with them.
        image = romfs_image(compile_tree(Path(tmp)), Path(tmp))
        mpy, mpy_detail = _run({"RUN_MJS_CODE": str(compile_tree(Path(tmp), line_numbers=False))})
        _, romfs_detail = _run({"RUN_MJS_ROMFS": str(image)})
        romfs_detail["image_bytes"] = image.stat().st_size  # in flash on a board, outside the GC heap here
    _, source_detail = _run(None)
    baseline = (
        "heap of the bare 32-bit VM before the firmware is imported "
        f"(the bench script and its host objects only), {mpy['baseline_bytes']} bytes, subtracted"
    )
    live = mpy_detail["live_bytes"]
    op_bytes = mpy_detail["op_bytes"]
    # A boot (and a restart, a boot that resumes) allocates the pump's own objects on an empty heap: it is
    # neither a command nor a turn, and needs no collection on a board. Its figure stays in the detail.
    commands = {op: n for op, n in op_bytes.items() if op not in STARTS}
    worst = max(commands, key=lambda op: commands[op])
    garbage = commands[worst]
    romfs_live = romfs_detail["live_bytes"]
    mpy_detail["from_source_live_bytes"] = source_detail["live_bytes"]  # the .py files compiled on the VM
    mpy_detail["from_source_imports_bytes"] = source_detail["imports_bytes"]
    return {
        "firmware_heap_bytes": {
            "value": live,
            "unit": "bytes",
            "baseline": baseline,
            "goal": f"<= {GOAL_BYTES} (96 KB, modules as .mpy in RAM)",
            "met": live <= GOAL_BYTES,
            "detail": mpy_detail,
        },
        "firmware_op_garbage_bytes": {
            "value": garbage,
            "unit": "bytes allocated by one command or turn",
            "baseline": "gc.mem_alloc() after the previous operation's collection, subtracted",
            "goal": f"<= {GOAL_OP_GARBAGE_BYTES} (16 KB)",
            "met": garbage <= GOAL_OP_GARBAGE_BYTES,
            "detail": {
                "max_op": worst,
                "op_bytes": op_bytes,
                "starts": {op: op_bytes[op] for op in STARTS},  # not in the figure: see STARTS
            },
        },
        "firmware_heap_romfs_bytes": {
            "value": romfs_live,
            "unit": "bytes",
            "baseline": baseline + "; the ROMFS image is registered outside the GC heap, as flash on a board",
            "goal": f"<= {GOAL_ROMFS_BYTES} (40 KB, modules in ROMFS)",
            "met": romfs_live <= GOAL_ROMFS_BYTES,
            "detail": romfs_detail,
        },
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
