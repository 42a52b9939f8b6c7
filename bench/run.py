"""`make bench`: every benchmark figure, as a ratio against a baseline measured in the same run or as
a count that machine noise cannot move; written to bench/results.json and printed as a table.

    .venv/bin/python bench/run.py [--quick] [--out FILE]

--quick runs each measurement briefly (the test suite uses it to check that every figure is written);
its numbers are not the figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import heap_bench  # noqa: E402
import link_bench  # noqa: E402
import scheduler_bench  # noqa: E402
import sim_bench  # noqa: E402
import size_bench  # noqa: E402
from pumpctl.sim import find_micropython  # noqa: E402

# In the order of the benchmarks issue; each module's measure() returns some of them.
FIGURES = (
    "scheduler_tick_ratio",
    "scheduler_allocs_per_step",
    "scheduler_max_error_steps",
    "link_rtt_ratio",
    "telemetry_frames_per_s",
    "flood_lateness_ratio",
    "sim_speedup",
    "firmware_heap_bytes",
    "firmware_op_garbage_bytes",
    "firmware_heap_romfs_bytes",
    "mpy_bytes",
)
MODULES = (scheduler_bench, link_bench, sim_bench, heap_bench, size_bench)


MICROPYTHON_VERSION = "import sys; i = sys.implementation; print('%d.%d.%d' % i.version[:3], i._machine.split()[0])"


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "not found"


def machine() -> dict[str, str | int]:
    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": model or platform.processor(),
        "cpus": os.cpu_count() or 0,
        "python": platform.python_version(),
        "micropython": _version([find_micropython(), "-c", MICROPYTHON_VERSION]),
        "node": _version(["node", "--version"]),
    }


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.9g}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(results: dict) -> str:
    rows = [("figure", "value", "unit", "goal", "met")]
    for key in FIGURES:
        f = results[key]
        met = {True: "yes", False: "NO", None: "-"}[f["met"]]
        rows.append((key, _show(f["value"]), f["unit"].split(" (")[0], f["goal"] or "-", met))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="brief runs: checks the bench, not the figures")
    parser.add_argument("--out", type=Path, default=HERE / "results.json", help="where to write the results")
    args = parser.parse_args(argv)
    started = time.monotonic()
    results: dict = {}
    for module in MODULES:
        t0 = time.monotonic()
        print(f"bench: {module.__name__} ...", file=sys.stderr, flush=True)
        results.update(module.measure(quick=args.quick))
        print(f"bench: {module.__name__} done in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    missing = [k for k in FIGURES if k not in results]
    if missing:
        raise SystemExit(f"bench: no figure for {', '.join(missing)}")
    results["_run"] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "quick": args.quick,
        "wall_s": round(time.monotonic() - started, 1),
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    run = results["_run"]
    print(
        f"make bench, {run['date']}, {run['machine']['cpu']} ({run['machine']['cpus']} cpus), "
        f"{run['wall_s']} s{' (quick: not the figures)' if args.quick else ''}"
    )
    print(table(results))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
