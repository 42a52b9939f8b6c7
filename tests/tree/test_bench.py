"""`make bench` runs and writes every figure, each with its unit and baseline.

Only that: the benchmarks measure speed and memory, and a timing assertion has
no place in a test on a shared machine. --quick runs each measurement briefly.
"""

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = [
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
]


def test_make_bench_writes_every_figure_with_its_unit_and_baseline(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        ["make", "-s", "bench", f"BENCH_ARGS=--quick --out {out}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    assert set(results) - {"_run"} == set(FIGURES)
    for key in FIGURES:
        figure = results[key]
        assert isinstance(figure["value"], int | float), key
        assert figure["unit"] and figure["baseline"], key
        assert "goal" in figure and figure["met"] in (True, False, None), key
        assert key in proc.stdout  # the table on the terminal names it
    run = results["_run"]
    assert run["quick"] is True and run["date"] and run["machine"]["cpus"] > 0


def test_the_allocation_profile_names_what_an_operation_allocated():
    # bench/alloc_profile.py: the heap bench's run with the firmware's functions wrapped. A dosing turn's
    # garbage is its reservation's save: the profile must say so, each caller at least its callee's bytes.
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "bench" / "alloc_profile.py"), "--most", "40", "tick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout.splitlines()
    assert len(out) == 1 and out[0].split()[0] == "tick", out
    figures = dict(item.split("=") for item in out[0].split()[1:])
    assert int(figures["PumpApp.tick"]) >= int(figures["PumpApp.save"]) >= int(figures["persist.sections"]) > 0
