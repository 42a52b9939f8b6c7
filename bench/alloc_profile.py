"""Where each operation's garbage comes from: bench/mp/heap32.py's run (the budgets' bench) with every
firmware function wrapped to note the most one call allocated, per kind of operation, its callees
included. A tool for finding what to shrink, not a figure: the wrappers add a little to each call.

    .venv/bin/python bench/alloc_profile.py [--romfs] [--most N] [OP ...]

prints one line per operation (all of them without OP): `op  function=bytes ...`, largest first.
With the modules as .mpy in RAM, as the budgets measure them (--romfs: from a ROMFS image).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))  # the firmware package first: tests/firmware holds only its tests


def main() -> None:
    import heap_bench
    from vms import HEAP32_PARTS, run_wasm32

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--romfs", action="store_true", help="the modules from a ROMFS image, not .mpy files in RAM")
    p.add_argument("--most", type=int, default=12, help="functions shown per operation (default 12)")
    p.add_argument("ops", nargs="*", help="operations to show (default: every one)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="alloc-profile-") as tmp:
        code = heap_bench.compile_tree(Path(tmp), line_numbers=args.romfs)  # as the budgets' bench compiles them
        env = {"RUN_MJS_HEAP": "1200000"}  # small: gc.mem_alloc() walks the whole heap at each call
        if args.romfs:
            env["RUN_MJS_ROMFS"] = str(heap_bench.romfs_image(code, Path(tmp)))
        else:
            env["RUN_MJS_CODE"] = str(code)
        out = run_wasm32(heap_bench.SCRIPT, *HEAP32_PARTS, ROOT / "bench" / "mp" / "allocprof.py", timeout=600, env=env)
    for line in out.splitlines():
        if line.startswith("ALLOCPROF "):
            op, _, rest = line[len("ALLOCPROF ") :].partition("\t")
            if rest and (not args.ops or op in args.ops):
                print("%-22s %s" % (op, " ".join(rest.split(" ")[: args.most])))


if __name__ == "__main__":
    main()
