"""pumpctl: the command line.

Exit codes: 0 done; 1 the pump refused (it changed nothing) or a check
failed; 2 the command line itself is wrong; 3 the serial link failed;
4 the simulator could not run; 5 no key for the pump, a wrong key, or a
config file that others can read. `bench` also exits 1 when the test ran and
failed a limit, 3 when the balance failed, and 130 when interrupted (its
samples are kept: resume it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from . import flash as flashing
from . import quantities
from .benchtest import BenchConfig, BenchInterrupted, BenchTest, run_many
from .client import Pump
from .errors import (
    AuthError,
    BalanceError,
    ConfigError,
    LinkError,
    PumpError,
    PumpRefused,
    SimulatorError,
    UsageError,
)

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_LINK = 3
EXIT_SIM = 4
EXIT_AUTH = 5

_EXIT_CODES = (
    (UsageError, EXIT_USAGE),
    (AuthError, EXIT_AUTH),
    (ConfigError, EXIT_AUTH),
    (PumpRefused, EXIT_REFUSED),
    (LinkError, EXIT_LINK),
    (BalanceError, EXIT_LINK),
    (SimulatorError, EXIT_SIM),
)

EPILOG = """examples:
  pumpctl demo                                 dose 24 h of morphine on the simulator
  pumpctl sim                                  start a simulated pump, print its port
  pumpctl --port /dev/pts/4 status             what the pump is doing
  pumpctl --port /dev/pts/4 program --rate "0.5 mL/day"
  pumpctl --port /dev/pts/4 program "drug morphine 20 mg/mL" "fill 20 mL" "basal 2 mg/day"
  pumpctl --port /dev/pts/4 bolus "0.5 mg" --over "30 min"
  pumpctl --port /dev/pts/4 therapy            program, bolus, reservoir, guard windows
  pumpctl --port /dev/pts/4 advance 24h        (simulator) run 24 h of pump time
  pumpctl --port /dev/pts/4 stop
  pumpctl --port /dev/pts/4 telemetry --interval 100ms --count 20
  pumpctl --port /dev/pts/4 keys change patient
  pumpctl bench --sim --rate "1 mL/h" --duration 2h   flow-rate bench test on a simulated balance

Changing the pump needs its clinician key (the patient bolus: the patient
key), kept in ~/.config/pumpctl/config.toml (or $PUMPCTL_CONFIG) by the
pump's device id; `pumpctl sim` adds its simulator's keys there.

The port is a device path or a pyserial URL (socket://host:port); set
PUMPCTL_PORT to avoid repeating it.
"""


PROGRAM_EPILOG = """program lines (doses in mg or mcg are of the first drug; volumes in mL or uL):
  drug NAME CONCENTRATION            drug morphine 20 mg/mL   (1-3 lines: a blend)
  fill VOLUME                        the reservoir now holds this (after a refill)
  basal DOSE/TIME                    basal 2 mg/day
  flex HH:MM DOSE/TIME               daily schedule step (first at 00:00, up to 24)
  bolus DOSE over TIME [after TIME]  on top of the basal
  prime VOLUME over TIME             fill the catheter, then back to the program
  bridge VOLUME                      after a refill with a new concentration
  patient-bolus DOSE over TIME lockout TIME max N per day
  trial TIME                         trial mode: stop after this
  stop                               stopped mode

examples:
  pumpctl program "drug morphine 20 mg/mL" "fill 20 mL" "basal 2 mg/day"
  pumpctl program --file night-and-day.txt --yes
"""


def _port(args) -> str:
    if not args.port:
        raise UsageError("no port given: use --port PORT or set PUMPCTL_PORT (pumpctl sim prints one)")
    return args.port


def _duration_us(text: str) -> int:
    try:
        return quantities.parse_duration_us(text)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _status_data(st) -> dict:
    return dict(asdict(st), delivered_pl=st.delivered_pl)


def _print(args, human: str, data: dict) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(human)


def cmd_status(args) -> int:
    with Pump(_port(args), timeout=args.timeout) as pump:
        st = pump.status()
    rate = quantities.rate(st.rate_nl_per_day) + f" ({st.rate_nl_per_day} nL/day)" if st.rate_nl_per_day else "-"
    human = "\n".join(
        [
            f"pump time   {quantities.duration(st.time_us)}",
            f"mode        {st.mode}",
            f"rate        {rate}",
            f"delivered   {quantities.volume(st.delivered_pl)} "
            f"({st.steps} steps of {quantities.volume(st.step_volume_pl)})",
        ]
    )
    _print(args, human, _status_data(st))
    return EXIT_OK


def side_by_side(running: list[tuple[str, str]], staged: list[tuple[str, str]]) -> str:
    """The running and the staged program next to each other, every field with
    its unit as the pump understood it; changed rows are marked with '*'."""
    import difflib

    def show(row):
        line, detail = row
        if line == "soft limit":
            return f"! {detail}"
        return f"{line}  [{detail}]" if line and detail else line or detail

    left = [show(r) for r in running]
    right = [show(r) for r in staged]
    width = max([len("running"), *map(len, left)]) + 2
    out = [f"  {'running':<{width}}staged", f"  {'-' * (width - 2):<{width}}{'-' * 6}"]
    matcher = difflib.SequenceMatcher(a=[r[0] for r in running], b=[r[0] for r in staged], autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        for k in range(max(a1 - a0, b1 - b0)):
            a = left[a0 + k] if a0 + k < a1 else ""
            b = right[b0 + k] if b0 + k < b1 else ""
            mark = " " if op == "equal" else "*"
            out.append(f"{mark} {a:<{width}}{b}")
    return "\n".join(out)


def _confirm(args, question: str) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError("not committed: review the program above, then run again with --yes to commit it")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _session(args, pump: Pump, lines: list[str]) -> int:
    """Stage lines, show them beside the running program, commit on confirmation."""
    running = pump.review()
    staged = pump.stage(lines)
    if not args.json:
        print(side_by_side(running, staged.rows))
        if staged.warnings:
            print(f"{len(staged.warnings)} soft limit(s) passed; committing needs --confirm-soft")
    if staged.warnings and not args.confirm_soft:
        pump.discard()
        raise UsageError("soft limits passed: not committed (add --confirm-soft after checking them)")
    if not _confirm(args, "commit this program?"):
        pump.discard()
        print("not committed; the running program is unchanged")
        return EXIT_REFUSED
    at = pump.commit(staged, confirm_soft=args.confirm_soft)
    _print(
        args,
        f"committed at pump time {quantities.duration(at)}; read back and identical (crc {staged.program_crc:08x})",
        {"committed_us": at, "program_crc": staged.program_crc, "lines": staged.lines, "warnings": staged.warnings},
    )
    return EXIT_OK


def _read_lines(path: str) -> list[str]:
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    return [ln.split("#", 1)[0].strip() for ln in text.splitlines() if ln.split("#", 1)[0].strip()]


def cmd_program(args) -> int:
    if args.rate is None:
        lines = list(args.lines) + (_read_lines(args.file) if args.file else [])
        if not lines:
            raise UsageError(
                'give program lines (for example "drug morphine 20 mg/mL" "basal 2 mg/day"), --file or --rate'
            )
        with Pump(_port(args), timeout=args.timeout) as pump:
            return _session(args, pump, lines)
    if args.lines or args.file:
        raise UsageError("--rate is a plain volume rate on its own; do not combine it with program lines")
    with Pump(_port(args), timeout=args.timeout) as pump:
        result = pump.set_rate(args.rate)
    note = " (rounded down to the pump's resolution of 1 nL/day)" if result.rounded else ""
    human = (
        f"programmed  {quantities.rate(result.rate_nl_per_day)} = {result.rate_nl_per_day} nL/day{note}\n"
        f"from        pump time {quantities.duration(result.effective_us)}"
    )
    _print(args, human, asdict(result))
    return EXIT_OK


def cmd_bolus(args) -> int:
    line = f"bolus {args.dose} over {args.over}" + (f" after {args.after}" if args.after else "")
    with Pump(_port(args), timeout=args.timeout) as pump:
        return _session(args, pump, pump.running_lines() + [line])


def cmd_prime(args) -> int:
    with Pump(_port(args), timeout=args.timeout) as pump:
        return _session(args, pump, pump.running_lines() + [f"prime {args.volume} over {args.over}"])


def cmd_patient_bolus(args) -> int:
    with Pump(_port(args), timeout=args.timeout) as pump:
        volume_nl, duration_s = pump.patient_bolus()
    _print(
        args,
        f"patient bolus started: {quantities.volume(volume_nl * 1000)} over {quantities.duration(duration_s * 10**6)}",
        {"volume_nl": volume_nl, "duration_s": duration_s},
    )
    return EXIT_OK


def cmd_therapy(args) -> int:
    with Pump(_port(args), timeout=args.timeout) as pump:
        th = pump.therapy()
        rows = pump.review()
    lines = [f"mode        {th.mode}   library {th.library}   alarm {th.alarm}"]
    lines.append(
        f"rate        {quantities.rate(th.rate_nl_per_day) if th.rate_nl_per_day else '-'}"
        f"   (basal {quantities.rate(th.basal_nl_per_day) if th.basal_nl_per_day else '-'})"
    )
    if th.bolus != "none":
        lines.append(
            f"bolus       {th.bolus} at {quantities.rate(th.bolus_rate_nl_per_day)}, "
            f"{quantities.duration(th.bolus_left_s * 10**6)} left"
        )
    if th.bridge:
        lines.append("bridge      old concentration still in the catheter, delivered at the old dose")
    if th.reservoir_nl is not None:
        empty = quantities.duration(th.empty_in_s * 10**6) if th.empty_in_s is not None else "beyond 400 days"
        lines.append(f"reservoir   {quantities.volume(th.reservoir_nl * 1000)}, empty in {empty}")
    lines.append(
        f"last 24 h   {quantities.volume(th.day_nl * 1000)}   last hour {quantities.volume(th.hour_nl * 1000)}"
        f"   refused by the guard {th.refused_steps} steps"
    )
    lines.append("program")
    lines += [f"  {line:<44}{detail}" for line, detail in rows]
    _print(args, "\n".join(lines), dict(asdict(th), program=[list(r) for r in rows]))
    return EXIT_OK


def cmd_clock(args) -> int:
    import datetime as dt

    with Pump(_port(args), timeout=args.timeout) as pump:
        if args.set:
            when = dt.datetime.now() if args.set == "now" else _parse_local(args.set)
            pump.set_clock(_local_seconds(when))
        clock_s = pump.therapy().clock_s
    shown = (
        "not set"
        if clock_s is None
        else dt.datetime.fromtimestamp(clock_s, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    )
    _print(args, f"device clock {shown}", {"clock_s": clock_s})
    return EXIT_OK


def _parse_local(text: str):
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a time; write now or YYYY-MM-DDTHH:MM[:SS] local time") from None


def _local_seconds(when) -> int:
    """Local wall time as seconds since 1970 read as if it were UTC (the pump has no time zone)."""
    import calendar

    return calendar.timegm(when.replace(tzinfo=None).timetuple())


def cmd_library(args) -> int:
    from .client import LIBRARY_FIELDS

    with Pump(_port(args), timeout=args.timeout) as pump:
        if args.action == "load":
            if not args.file:
                raise UsageError("library load needs a FILE (see docs/drug-library.md)")
            try:
                doc = json.load(open(args.file, encoding="utf-8"))
                entries = [[str(d[f]) for f in LIBRARY_FIELDS] for d in doc["drugs"]]
                version = str(doc["version"])
            except OSError as e:
                raise UsageError(f"cannot read {args.file}: {e.strerror}") from None
            except (ValueError, KeyError, TypeError) as e:
                raise UsageError(f"{args.file} is not a drug library file: missing or bad {e}") from None
            pump.load_library(version, entries)
        version, entries = pump.library()
    human = [f"drug library {version}"]
    for e in entries:
        human.append(
            f"  {e[0]:<14} conc <= {e[1]:<12} daily {e[2]} / {e[3]}   rate {e[4]} / {e[5]}   bolus {e[6]} / {e[7]}"
        )
    drugs = [dict(zip(LIBRARY_FIELDS, e, strict=True)) for e in entries]
    _print(args, "\n".join(human), {"version": version, "drugs": drugs})
    return EXIT_OK


def cmd_log(args) -> int:
    with Pump(_port(args), timeout=args.timeout) as pump:
        events = pump.events()
    human = "\n".join(f"{e.index:5d}  {quantities.duration(e.time_us):>22}  {e.text}" for e in events)
    _print(args, human, {"events": [asdict(e) for e in events]})
    return EXIT_OK


def cmd_alarms(args) -> int:
    with Pump(_port(args), timeout=args.timeout) as pump:
        if args.action == "ack":
            was = pump.ack_alarm()
            _print(args, f"acknowledged: {was}", {"acknowledged": was})
            return EXIT_OK
        alarm = pump.therapy().alarm
    _print(args, f"alarm: {alarm}", {"alarm": alarm})
    return EXIT_OK


def cmd_stop(args) -> int:
    with Pump(_port(args), timeout=args.timeout) as pump:
        at = pump.stop()
    _print(args, f"stopped at pump time {quantities.duration(at)}", {"stopped_us": at})
    return EXIT_OK


def cmd_advance(args) -> int:
    duration_us = _duration_us(args.duration)
    with Pump(_port(args), timeout=args.timeout) as pump:
        st = pump.sim_advance(duration_us)
    human = f"pump time now {quantities.duration(st.time_us)}; delivered {quantities.volume(st.delivered_pl)}"
    _print(args, human, _status_data(st))
    return EXIT_OK


def cmd_keys(args) -> int:
    from . import config

    if args.action == "show":
        known = config.known_devices()
        rows = {
            device_id: [r for r in ("clinician", "patient") if getattr(k, f"{r}_key")] for device_id, k in known.items()
        }
        human = f"{config.config_path()}\n" + "\n".join(f"  {d:<24} {', '.join(r)}" for d, r in rows.items())
        _print(args, human, {"config": str(config.config_path()), "pumps": rows})
        return EXIT_OK
    if args.role not in ("clinician", "patient"):
        raise UsageError("say which key to change: pumpctl keys change clinician|patient")
    with Pump(_port(args), timeout=args.timeout) as pump:
        keys = pump.change_key(args.role)
        path = config.save_keys(keys)
    _print(
        args,
        f"{args.role} key of pump {keys.device_id} changed; the new key is in {path}",
        {"device_id": keys.device_id, "changed": args.role, "config": str(path)},
    )
    return EXIT_OK


def cmd_telemetry(args) -> int:
    import time

    interval_ms = _duration_us(args.interval) // 1000
    with Pump(_port(args), timeout=args.timeout) as pump:
        pump.start_telemetry(interval_ms)
        shown = 0
        last_seq = None
        lost = 0
        alive_at = time.monotonic()
        try:
            while args.count is None or shown < args.count:
                sample = pump.telemetry(timeout=max(2.0, 3 * interval_ms / 1000))
                if time.monotonic() - alive_at > 2:
                    pump.keep_alive()  # the pump stops streaming to a host silent for 10 s
                    alive_at = time.monotonic()
                if sample is None:
                    raise LinkError("the pump stopped sending telemetry")
                if last_seq is not None and sample.seq != last_seq + 1:
                    lost += sample.seq - last_seq - 1
                last_seq = sample.seq
                shown += 1
                if args.json:
                    print(json.dumps(asdict(sample)), flush=True)
                else:
                    reservoir = "-" if sample.reservoir_nl is None else quantities.volume(sample.reservoir_nl * 1000)
                    print(
                        f"{sample.seq:6d}  {quantities.duration(sample.time_us):>18}  {sample.mode:<10} "
                        f"{quantities.rate(sample.rate_nl_per_day) if sample.rate_nl_per_day else '-':>14}  "
                        f"steps {sample.steps:<8} reservoir {reservoir:<10} alarm {sample.alarm}",
                        flush=True,
                    )
        except KeyboardInterrupt:
            pass
        finally:
            pump.stop_telemetry()
    if not args.json:
        print(f"{shown} samples, {lost} lost on the way", file=sys.stderr)
    return EXIT_OK


def cmd_sim(args) -> int:
    from .sim import Simulator

    with Simulator(speed=args.speed, board=args.board, register=True, balance=args.balance) as sim:
        pace = "time moves only with 'pumpctl advance'" if args.speed == 0 else f"{args.speed}x real time"
        print(f"simulated pump (board {args.board}, {pace}) on {sim.port}", flush=True)
        if sim.balance_port:
            print(f"simulated MT-SICS balance weighing its output on {sim.balance_port}", flush=True)
        print(f"device id {sim.keys.device_id}; its keys are in the config file", flush=True)
        print(f"try: pumpctl --port {sim.port} status    (Ctrl-C stops the simulator)", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while sim.running() and not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
        if not sim.running():
            print("the simulated firmware stopped:\n" + sim.stderr_text(), file=sys.stderr)
            return EXIT_SIM
    return EXIT_OK


BENCH_EPILOG = """examples:
  pumpctl bench --sim --rate "1 mL/h" --duration 2h      a simulated pump on a simulated balance
  pumpctl bench --sim 3 --rate "1 mL/h"                  three at once, each on its own balance
  pumpctl --port /dev/ttyACM0 bench --balance /dev/ttyUSB0 --rate "1 mL/h" --duration 2h
  pumpctl bench --rig /dev/ttyACM0=/dev/ttyUSB0 --rig /dev/ttyACM1=/dev/ttyUSB1 --rate "1 mL/h"
  pumpctl --port /dev/ttyACM0 bench --balance /dev/ttyUSB0 --resume bench-20261201-101500

Every 30 s of pump time it reads the balance (MT-SICS SI, or Sartorius SBI ESC P) and the pump's
step count, appends both to samples.csv at once (an interrupted test loses no sample), and at the
end writes results.json and curves.png (start-up and trumpet curves, IEC 60601-2-24 method: mean
flow error A and Ep(max)/Ep(min) over 2, 5, 11, 19 and 31 min windows from the second hour on),
prints a summary with pass/fail against the limits, and stops the pump.
"""


_EVAPORATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mg|g)\s*/\s*(h|min)\s*$")


def cmd_flash(args) -> int:
    """Compile, copy, verify by hash, write config and keys, reset (pumpctl.flash)."""
    port = _port(args)

    def bar(done: int, total: int, path: str) -> None:  # on stderr, in place, only on a terminal
        width = 30
        filled = width * done // max(total, 1)
        print(
            f"\r  [{'#' * filled}{'.' * (width - filled)}] {100 * done // max(total, 1):3d}%  "
            f"{done / 1000:6.1f} / {total / 1000:.1f} kB  {path:<32.32}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    show = sys.stderr.isatty() and not args.json
    try:
        result = flashing.flash(port, args.board, progress=bar if show else None, timeout=args.timeout)
    finally:
        if show:
            print(file=sys.stderr)
    saved = f" (keys saved in {result.keys_saved_in})" if result.keys_saved_in else ""
    human = [
        f"flashed board {result.board} on {port}: {len(result.files)} files, {result.bytes:,} bytes "
        f"in {result.seconds:.1f} s, each read back and verified by SHA-256",
        f"  device id   {result.keys.device_id}{saved}",
        f"  platform    {result.platform}",
        f"  reset       {result.reset}",
    ]
    if result.removed:
        human.append(f"  removed     {', '.join(result.removed)} (not in this firmware)")
    data = {
        "board": result.board,
        "port": port,
        "device_id": result.keys.device_id,
        "keys_saved_in": str(result.keys_saved_in) if result.keys_saved_in else None,
        "platform": result.platform,
        "reset": result.reset,
        "seconds": round(result.seconds, 3),
        "bytes": result.bytes,
        "files": {f.target: f.sha256 for f in result.files if f.target != result.key_file},  # not the keys'
        "key_file": result.key_file,
        "removed": result.removed,
    }
    _print(args, "\n".join(human), data)
    return EXIT_OK


def _evaporation_g_per_h(text: str) -> float:
    m = _EVAPORATION.match(text)
    if not m:
        raise UsageError(f"evaporation {text!r} is not a mass per time; write for example '0.5 mg/h'")
    value = float(m.group(1)) * (0.001 if m.group(2) == "mg" else 1.0)
    return value * (60 if m.group(3) == "min" else 1)


def _volume_limits(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split("-"))
    except ValueError:
        raise UsageError(f"volume limits {text!r}: write LOW-HIGH in percent, for example 85-115") from None
    return low, high


def _bench_config(args) -> BenchConfig:
    if not args.rate:
        raise UsageError('bench needs --rate with its unit, for example --rate "1 mL/h"')
    duration_us = _duration_us(args.duration)
    if duration_us % 10**6:
        raise UsageError(f"duration {args.duration!r} must be whole seconds")
    config = BenchConfig(
        args.rate,
        duration_us // 10**6,
        density_g_per_ml=args.density,
        evaporation_g_per_h=_evaporation_g_per_h(args.evaporation),
        max_mean_error_pct=args.max_mean_error,
        volume_limits_pct=_volume_limits(args.volume_limits),
    )
    config.check()
    return config


def _bench_progress(tests: int):
    """A line on stderr that updates in place (only on a terminal)."""
    done = [0] * tests
    totals = [1] * tests

    def show(i: int, taken: int, total: int) -> None:
        done[i], totals[i] = taken, total
        if sys.stderr.isatty():
            parts = "  ".join(f"{d}/{t}" for d, t in zip(done, totals, strict=True))
            print(f"\r  samples {parts}", end="", file=sys.stderr, flush=True)

    return show


def cmd_bench(args) -> int:
    import contextlib
    import time as _time

    from .balance import open_balance
    from .sim import Simulator

    if args.resume and (args.sim or args.rig):
        raise UsageError("--resume carries on one test: give its pump (--port) and --balance, not --sim or --rig")
    config = None if args.resume else _bench_config(args)
    stamp = _time.strftime("bench-%Y%m%d-%H%M%S")
    with contextlib.ExitStack() as stack:
        pairs = []  # (pump, balance)
        if args.sim:
            for _ in range(args.sim):
                sim = stack.enter_context(Simulator(balance=True))
                pairs.append((stack.enter_context(sim.pump(timeout=args.timeout)), sim.balance_port))
        elif args.rig:
            for rig in args.rig:
                pump_port, sep, balance_port = rig.partition("=")
                if not sep or not pump_port or not balance_port:
                    raise UsageError(f"--rig {rig!r}: write PUMP_PORT=BALANCE_PORT")
                pairs.append((stack.enter_context(Pump(pump_port, timeout=args.timeout)), balance_port))
        else:
            if not args.balance:
                raise UsageError("bench needs the balance's port: --balance PORT (or --sim to try it on the simulator)")
            pairs.append((stack.enter_context(Pump(_port(args), timeout=args.timeout)), args.balance))
        tests = []
        for i, (pump, balance_port) in enumerate(pairs):
            balance = stack.enter_context(open_balance(balance_port, args.protocol, timeout=args.timeout))
            if args.resume:
                folder = Path(args.resume)
            else:
                base = Path(args.out or stamp)
                folder = base if len(pairs) == 1 else base / f"pump{i + 1}"
            tests.append(
                (BenchTest(pump, balance, config or _placeholder_config(), folder, args.protocol), bool(args.resume))
            )
        try:
            outcomes = run_many(tests, _bench_progress(len(tests)))
        except KeyboardInterrupt:
            for test, _ in tests:
                print(f"\npumpctl: {BenchInterrupted(test.folder)}", file=sys.stderr)
            return 130
        if sys.stderr.isatty():
            print(file=sys.stderr)
    failed_to_run = [o for o in outcomes if isinstance(o, Exception)]
    reports = [o for o in outcomes if not isinstance(o, Exception)]
    if args.json:
        print(
            json.dumps([r.to_dict() for r in reports] if len(tests) > 1 else reports[0].to_dict(), indent=2)
            if reports
            else "[]"
        )
    else:
        print("\n\n".join(r.summary() for r in reports))
    for (test, _), outcome in zip(tests, outcomes, strict=True):
        if isinstance(outcome, Exception):
            print(f"pumpctl: the test in {test.folder} stopped: {outcome}", file=sys.stderr)
    if failed_to_run:
        first = failed_to_run[0]
        if isinstance(first, PumpError):
            return next((code for kind, code in _EXIT_CODES if isinstance(first, kind)), EXIT_REFUSED)
        raise first
    return EXIT_OK if all(r.passed for r in reports) else EXIT_REFUSED


def _placeholder_config() -> BenchConfig:
    """Resume reads the real one from the test's folder; BenchTest only needs a valid one to exist."""
    return BenchConfig("1 mL/h", 3600)


def cmd_demo(args) -> int:
    from .demo import run_demo

    duration_us = _duration_us(args.duration)
    return run_demo(args.rate, duration_us, args.drug, args.concentration, timeout=args.timeout)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pumpctl",
        description="Program, watch and test a drug pump over USB serial.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", default=os.environ.get("PUMPCTL_PORT"), help="device path or pyserial URL")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each reply (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts instead of text")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("status", help="what the pump is doing")
    s.set_defaults(func=cmd_status)

    def session(s):
        s.add_argument("--yes", action="store_true", help="commit without asking (after reviewing)")
        s.add_argument("--confirm-soft", action="store_true", help="confirm values past a soft limit")

    s = sub.add_parser(
        "program",
        help="stage a program, review it beside the running one, commit",
        epilog=PROGRAM_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("lines", nargs="*", help="program lines, each quoted")
    s.add_argument("--file", help="read program lines from a file (# starts a comment)")
    s.add_argument("--rate", help='no drug in the pump: a plain volume rate ("0.5 mL/day"), at once')
    session(s)
    s.set_defaults(func=cmd_program)

    s = sub.add_parser(
        "bolus",
        help="a single bolus on top of the running program",
        epilog='example: pumpctl bolus "0.5 mg" --over "30 min" --after "2 h"',
    )
    s.add_argument("dose", help='dose with unit: "0.5 mg", "200 mcg", "25 uL"')
    s.add_argument("--over", required=True, help='duration with unit: "30 min"')
    s.add_argument("--after", help='delay with unit: "2 h" (default now)')
    session(s)
    s.set_defaults(func=cmd_bolus)

    s = sub.add_parser(
        "prime",
        help="priming bolus: fill catheter and tubing, then back to the program",
        epilog='example: pumpctl prime "0.2 mL" --over "20 min"',
    )
    s.add_argument("volume", help='volume with unit: "0.2 mL"')
    s.add_argument("--over", required=True, help='duration with unit: "20 min"')
    session(s)
    s.set_defaults(func=cmd_prime)

    s = sub.add_parser("patient-bolus", help="ask for the patient bolus the program allows")
    s.set_defaults(func=cmd_patient_bolus)

    s = sub.add_parser("therapy", help="the therapy in force: program, bolus, reservoir, guard, alarm")
    s.set_defaults(func=cmd_therapy)

    s = sub.add_parser(
        "clock",
        help="show or set the device clock (local time; flex schedules run on it)",
        epilog="example: pumpctl clock --set now",
    )
    s.add_argument("--set", help="now, or local time YYYY-MM-DDTHH:MM[:SS]")
    s.set_defaults(func=cmd_clock)

    s = sub.add_parser(
        "library",
        help="show the drug library, or load a site's library",
        epilog="example: pumpctl library load site-library.json  (format: docs/drug-library.md)",
    )
    s.add_argument("action", choices=["show", "load"], nargs="?", default="show")
    s.add_argument("file", nargs="?", help="JSON library file, for load")
    s.set_defaults(func=cmd_library)

    s = sub.add_parser("log", help="the pump's event log")
    s.set_defaults(func=cmd_log)

    s = sub.add_parser("alarms", help="show the alarm, or acknowledge it", epilog="example: pumpctl alarms ack")
    s.add_argument("action", choices=["show", "ack"], nargs="?", default="show")
    s.set_defaults(func=cmd_alarms)

    from .trial import add_trial_parser

    add_trial_parser(sub)

    s = sub.add_parser(
        "keys",
        help="the pumps whose keys this host holds, or change a pump's key",
        epilog="examples:\n  pumpctl keys\n  pumpctl --port /dev/pts/4 keys change patient",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("action", choices=["show", "change"], nargs="?", default="show")
    s.add_argument("role", nargs="?", help="for change: clinician or patient")
    s.set_defaults(func=cmd_keys)

    s = sub.add_parser(
        "telemetry",
        help="stream samples from the pump: time, mode, rate, steps, reservoir, alarm",
        epilog="example: pumpctl telemetry --interval 1s --count 10",
    )
    s.add_argument("--interval", default="1s", help="time between samples, with unit (10ms .. 1h; default 1s)")
    s.add_argument("--count", type=int, help="stop after this many samples (default: until Ctrl-C)")
    s.set_defaults(func=cmd_telemetry)

    s = sub.add_parser("stop", help="stop delivery (stopped mode)")
    s.set_defaults(func=cmd_stop)

    s = sub.add_parser("advance", help="simulator only: run pump time forward", epilog="example: pumpctl advance 24h")
    s.add_argument("duration", help="how much pump time: 30s, 90min, 24h, 7day")
    s.set_defaults(func=cmd_advance)

    s = sub.add_parser(
        "sim", help="start a simulated pump and print its port", epilog="example: pumpctl sim --speed 60"
    )
    s.add_argument("--speed", type=int, default=0, help="0: time moves only with advance (default); N: N x real time")
    s.add_argument("--board", default="sim", help="board file to boot (default sim)")
    s.add_argument("--balance", action="store_true", help="also a simulated lab balance weighing what it delivers")
    s.set_defaults(func=cmd_sim)

    s = sub.add_parser(
        "bench",
        help="flow-rate bench test against a lab balance: start-up and trumpet curves, volume accuracy",
        epilog=BENCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--rate", help='rate with its unit, for example "1 mL/h"')
    s.add_argument("--duration", default="2h", help="test length in pump time, whole 30 s samples (default 2h)")
    s.add_argument(
        "--balance", default=os.environ.get("PUMPCTL_BALANCE"), help="the balance's port (or PUMPCTL_BALANCE)"
    )
    s.add_argument(
        "--protocol", default="mt-sics", choices=("mt-sics", "sbi"), help="balance protocol (default mt-sics)"
    )
    s.add_argument(
        "--density", type=float, default=0.9982, help="of the test fluid, g/mL (default 0.9982, water at 20 C)"
    )
    s.add_argument("--evaporation", default="0 mg/h", help="lost by a reference vial, e.g. '0.5 mg/h' (default 0)")
    s.add_argument("--max-mean-error", type=float, default=5.0, help="limit on |A|, percent (default 5)")
    s.add_argument("--volume-limits", default="85-115", help="delivered / programmed, percent (default 85-115)")
    s.add_argument("--out", help="folder for the files (default bench-DATE-TIME; one per pump inside with several)")
    s.add_argument("--resume", metavar="FOLDER", help="carry on the interrupted test in FOLDER")
    s.add_argument(
        "--sim",
        type=int,
        nargs="?",
        const=1,
        default=0,
        metavar="N",
        help="run on N simulated pumps (default 1), each on a simulated MT-SICS balance",
    )
    s.add_argument("--rig", action="append", metavar="PUMP=BALANCE", help="a pump and its balance; repeat for several")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser(
        "flash",
        help="flash a board: compile, copy, verify by hash, write its config and keys, reset",
        epilog="""examples:
  pumpctl --port /dev/ttyACM0 flash --board rp2_pico
  make flash BOARD=rp2_pico PORT=/dev/ttyACM0       the same, after make setup

Every module the board loads is compiled with mpy-cross for the board's
architecture, copied with mpremote and read back by SHA-256; then come the
keys (fresh ones, saved in your config file), pump.json, manifest.sha256
and main.py, and the board is reset. A board running the pump firmware
ignores Ctrl-C: flash first asks it, with its clinician key from your config
file, to leave for its REPL, which a stopped pump does (stop it first).
--timeout is how long to wait for the REPL.""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--board", required=True, choices=flashing.boards(), help="board file in boards/")
    s.set_defaults(func=cmd_flash)

    s = sub.add_parser(
        "demo",
        help="dose on the simulator and compare with the exact expectation",
        epilog='example: pumpctl demo --rate "0.5 mL/day" --duration 24h --drug morphine --concentration "10 mg/mL"',
    )
    s.add_argument("--rate", default="0.5 mL/day", help="rate with its unit (default 0.5 mL/day)")
    s.add_argument("--duration", default="24h", help="pump time to run (default 24h)")
    s.add_argument("--drug", default="morphine", help="drug name, for the dose column (default morphine)")
    s.add_argument("--concentration", default="10 mg/mL", help="drug concentration (default 10 mg/mL)")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PumpError as e:  # a user's or the line's problem: a message, never a traceback
        print(f"pumpctl: {e}", file=sys.stderr)
        return next((code for kind, code in _EXIT_CODES if isinstance(e, kind)), EXIT_REFUSED)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
