"""pumpctl: the command line.

Exit codes: 0 done; 1 the pump refused (it changed nothing) or a check
failed; 2 the command line itself is wrong; 3 the serial link failed;
4 the simulator could not run; 5 no key for the pump, a wrong key, or a
config file that others can read. `bench` also exits 1 when the test ran and
failed a limit, 3 when the balance failed, and 130 when interrupted (its
samples are kept: resume it). Any command exits 130, quietly, on Ctrl-C, and
141 when what reads its output went away (`pumpctl log | head`).

Output for people (tables, colour, progress bars) is drawn by render.py on a
terminal only; piped or redirected, the text is the plain text scripts read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
from dataclasses import asdict
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from firmware import codec

from . import flash as flashing
from . import quantities, render
from .benchtest import BenchConfig, BenchInterrupted, BenchTest, run_many
from .client import NO_DRUG_LIMITS, Pump
from .commands import alarms, clock, keys, library, log, program, status, stop, telemetry
from .commands.log import EVENT_NAMES  # noqa: F401  (the names `pumpctl log` shows)
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
  pumpctl --port /dev/pts/4 therapy            program, bolus, reservoir, battery, alarms
  pumpctl --port /dev/pts/4 refill --removed "1.8 mL" --fill "20 mL"
  pumpctl --port /dev/pts/4 alarms             latched alarms; alarms ack, alarms silence
  pumpctl --port /dev/pts/4 log --csv events.csv
  pumpctl --port /dev/pts/4 fault stall        (simulator) the motor stalls
  pumpctl --port /dev/pts/4 advance 24h        (simulator) run 24 h of pump time
  pumpctl --port /dev/pts/4 stop
  pumpctl --port /dev/pts/4 telemetry --interval 100ms --count 20
  pumpctl --port /dev/pts/4 keys change patient
  pumpctl bench --sim --rate "1 mL/h" --duration 2h   flow-rate bench test on a simulated balance
  pumpctl ports                                which serial ports look like MicroPython boards
  pumpctl --port /dev/pts/4 telemetry --live   a live view: rate, delivered, reservoir, battery, alarms
  pumpctl --port /dev/pts/4 calibrate --balance /dev/pts/5   the volume per step, by weighing

Changing the pump needs its clinician key (the patient bolus: the patient
key), kept in ~/.config/pumpctl/config.toml (or $PUMPCTL_CONFIG) by the
pump's device id; `pumpctl sim` adds its simulator's keys there.

The port is a device path, `auto` (the only attached MicroPython board) or a
pyserial URL (socket://host:port, rfc2217://host:port); without --port,
PUMPCTL_PORT, then the default `pumpctl ports --set-default PORT` saves.
"""


def _port(args) -> str:
    """The port to use: --port, else PUMPCTL_PORT (the parser's default for --port), else the
    config file's default (pumpctl ports --set-default); `auto` is the one attached board."""
    from . import config
    from . import ports as port_list

    port = args.port or config.default_port()
    if not port:
        raise UsageError(
            "no port given: use --port PORT or set PUMPCTL_PORT, or save a default with "
            "pumpctl ports --set-default PORT (pumpctl ports lists the attached ones, pumpctl sim prints one)"
        )
    if port == "auto":
        port = port_list.auto_port(note=lambda message: print(f"pumpctl: {message}", file=sys.stderr))
    return port


def cmd_ports(args) -> int:
    """The serial ports and which look like a MicroPython board (pumpctl.ports); or set the default port."""
    from . import config
    from . import ports as port_list

    as_json = args.json or args.ports_json
    if args.set_default is not None or args.clear_default:
        port = None if args.clear_default else args.set_default
        if port is not None:
            try:
                config.check_port(port)
            except ConfigError as e:  # the command line's fault, not the file's
                raise UsageError(str(e)) from None
        path = config.set_default_port(port)
        if port is None:
            human = f"default port removed from {path}"
        else:
            where = "" if port_list.attached(port) else f" ({port} is not attached now)"
            human = f"default port set to {port} in {path}{where}; --port and PUMPCTL_PORT still come first"
        if as_json:
            print(json.dumps({"default_port": port, "config": str(path)}, indent=2))
        else:
            print(human)
        return EXIT_OK
    rows = port_list.port_rows()
    env = os.environ.get("PUMPCTL_PORT") or None
    try:
        default, config_problem = config.default_port(), None
    except ConfigError as e:
        default, config_problem = None, str(e)
    if as_json:
        print(json.dumps({"ports": rows, "default_port": default, "pumpctl_port": env}, indent=2))
        return EXIT_OK
    if rows:
        lines = [port_list.plain_table(rows)]
    else:
        lines = [
            "no serial ports found: plug the pump in (a Pico shows up as /dev/ttyACM0, an ESP32 DevKit as "
            "/dev/ttyUSB0), or start a simulated one with pumpctl sim"
        ]
    if env:
        lines.append(f"without --port: PUMPCTL_PORT={env}")
    elif default:
        lines.append(f"without --port: {default} (the default in {config.config_path()})")
    else:
        lines.append("without --port: none set (pumpctl ports --set-default PORT saves one)")
    if config_problem:
        lines.append(f"the default port cannot be read: {config_problem}")
    print("\n".join(lines))
    return EXIT_OK


def _duration_us(text: str) -> int:
    try:
        return quantities.parse_duration_us(text)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _status_data(st) -> dict:
    return dict(asdict(st), delivered_pl=st.delivered_pl)


def _print(args, human: str, data: dict, rich=None, style: str | None = None) -> None:
    """data as JSON with --json; else human, or on a terminal rich() (a renderable made of the
    same values) or human in style (render.OK, render.WARN): render.show."""
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        render.show(human, rich, style)


_NOT_COMMITTED = "not committed: review the program above, then run again with --yes to commit it"


def _confirm(args, question: str, refusal: str = _NOT_COMMITTED) -> bool:
    if args.yes:
        return True
    if sys.stdin is None or not sys.stdin.isatty():
        raise UsageError(refusal)
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _volume_nl(option: str, text: str) -> int:
    """A volume with its unit ("20 mL", "150 uL", "500 nL"), in whole nL."""
    try:
        return quantities.parse_volume_nl(text)
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from None


def cmd_sim(args) -> int:
    from .sim import Simulator

    if args.speed < 0:
        raise UsageError(f"--speed {args.speed}: give 0 (time moves only with advance) or N, N x real time")
    board_args = []
    if args.reservoir is not None:
        board_args = ["--reservoir-nl", str(_volume_nl("--reservoir", args.reservoir))]
    with Simulator(
        speed=args.speed, board=args.board, register=True, balance=args.balance, board_args=board_args
    ) as sim:
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


def cmd_bench(args) -> int:
    import contextlib
    import time as _time

    from .balance import open_balance
    from .sim import Simulator

    if args.resume and (args.sim or args.rig):
        raise UsageError("--resume carries on one test: give its pump (--port) and --balance, not --sim or --rig")
    if args.sim < 0:
        raise UsageError(f"--sim {args.sim}: give how many simulated pumps, 1 or more")
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
        labels = [f"pump {i + 1}" for i in range(len(tests))] if len(tests) > 1 else ["bench test"]
        try:  # a bar per pump on a terminal (its samples taken), gone once the test ends
            with render.progress_many(labels, lambda done, total: f"{done}/{total} samples") as bar:
                outcomes = run_many(tests, bar)
        except KeyboardInterrupt:
            for test, _ in tests:
                render.error(str(BenchInterrupted(test.folder)))
            return 130
    failed_to_run = [o for o in outcomes if isinstance(o, Exception)]
    reports = [o for o in outcomes if not isinstance(o, Exception)]
    if args.json:
        print(
            json.dumps([r.to_dict() for r in reports] if len(tests) > 1 else reports[0].to_dict(), indent=2)
            if reports
            else "[]"
        )
    elif reports:
        render.show("\n\n".join(r.summary() for r in reports), lambda: render.bench(reports))
    for (test, _), outcome in zip(tests, outcomes, strict=True):
        if isinstance(outcome, OSError):  # its folder or files: --out, --resume
            render.error(
                f"the test in {test.folder} stopped: cannot write its files ({outcome.strerror or outcome}); "
                "give --out a folder you may write to"
            )
        elif isinstance(outcome, Exception):
            render.error(f"the test in {test.folder} stopped: {outcome}")
    if failed_to_run:
        first = failed_to_run[0]
        if isinstance(first, PumpError):
            return next((code for kind, code in _EXIT_CODES if isinstance(first, kind)), EXIT_REFUSED)
        if isinstance(first, OSError):
            return EXIT_USAGE
        raise first
    return EXIT_OK if all(r.passed for r in reports) else EXIT_REFUSED


def _placeholder_config() -> BenchConfig:
    """Resume reads the real one from the test's folder; BenchTest only needs a valid one to exist."""
    return BenchConfig("1 mL/h", 3600)


def cmd_demo(args) -> int:
    from .demo import run_demo

    duration_us = _duration_us(args.duration)
    if args.no_drug and (args.drug or args.concentration):
        raise UsageError("--no-drug runs a plain volume rate: do not give --drug or --concentration with it")
    if args.no_drug:
        drug, concentration = None, None
    else:
        drug, concentration = args.drug or "morphine", args.concentration or "10 mg/mL"
    return run_demo(
        args.rate,
        duration_us,
        drug,
        concentration,
        timeout=args.timeout,
        as_json=args.json,
        confirm_soft=args.confirm_soft,
    )


CALIBRATE_EPILOG = """\
examples:
  pumpctl sim --balance                      # a simulated pump with a simulated balance: prints both ports
  pumpctl --port /dev/pts/4 calibrate --balance /dev/pts/5
  pumpctl --port /dev/ttyACM0 calibrate --balance /dev/ttyUSB0 --rates "1 mL/h,5 mL/h" --repeats 2
  pumpctl --port /dev/ttyACM0 calibrate --typed --steps 4000       # weigh by hand, type each mass

The pump must be stopped and hold no drug (bench water): for each rate the
vessel is tared, the pump makes --steps steps, the vessel is weighed. The raw
weighings (the pump's step counts at tare and weighing, the mass) go to the
pump, which computes the volume per step, the spread and the change itself
(it refuses more than 20 % from the board's volume or a spread over 2 %). It
is shown, old beside new, and stored when you answer yes (or --yes; a change
over 2 % is stored only so confirmed), and logged with the weighings; not
with --dry-run or when the runs spread more than --max-spread.
"""


def cmd_calibrate(args) -> int:
    from . import calibrate as cal

    rates = [r.strip() for r in args.rates.split(",") if r.strip()]
    max_spread_ppm = _percent_ppm("--max-spread", args.max_spread)
    cal.density_ug_per_ml(args.density)  # a bad density is refused before anything is dispensed
    with contextlib.ExitStack() as stack:
        pump = stack.enter_context(Pump(_port(args), timeout=args.timeout))
        if args.balance:
            from .balance import open_balance

            scale = cal.BalanceScale(stack.enter_context(open_balance(args.balance, args.balance_protocol)))
        elif args.typed or args.masses:
            if not args.masses and (sys.stdin is None or not sys.stdin.isatty()):
                raise UsageError("--typed asks for each mass on the terminal: give --masses MG,MG,... without one")
            scale = cal.TypedScale(input, args.masses.split(",") if args.masses else None)
        else:
            raise UsageError("weigh with a balance (--balance PORT) or by hand (--typed, or --masses MG,MG,...)")

        def shown(k, run):
            if not args.json:
                mass = quantities.as_decimal(run.mass_mg, 3)
                print(
                    f"run {k + 1}  {quantities.rate(run.rate_nl_per_day):>12}  {run.steps:6d} steps  "
                    f"{mass:>10} mg  {run.step_volume_pl:>10} pL/step",
                    flush=True,
                )

        try:
            result = cal.calibrate(
                pump,
                scale,
                steps=args.steps,
                rates=rates,
                repeats=args.repeats,
                density_g_per_ml=args.density,
                max_spread_ppm=max_spread_ppm,
                store=False,
                on_run=shown,
            )
        except cal.CalibrationRefused as e:
            _print_calibration(args, e.result, refused=str(e))
            raise
        if not args.json:
            print(_calibration_summary(result), flush=True)
        if not args.dry_run:
            change = quantities.as_decimal(Fraction(result.change_ppm, 10_000), 2)
            question = (
                f"store {result.step_volume_pl} pL per step on the pump (it has {result.previous_pl} pL)?"
                if not result.needs_confirming
                else f"the pump has {result.previous_pl} pL per step and computed {result.step_volume_pl} pL: "
                f"a change of {change} %, more than 2 %. Confirm it and store it?"
            )
            if _confirm(
                args,
                question,
                "not stored: run again with --yes to store the calibration (or --dry-run to only measure)",
            ):
                result = cal.store_calibration(pump, result, confirm=True)
    _print_calibration(args, result, stored=result.stored)
    return EXIT_OK


def _percent_ppm(option: str, text: str) -> int:
    t = text.strip().removesuffix("%").strip()
    try:
        value = Decimal(t)
    except ArithmeticError:
        raise UsageError(f"{option} {text!r}: give a percentage, for example 2%") from None
    if not 0 < value <= 20:
        raise UsageError(f"{option} {text!r} must be above 0 and at most 20 %")
    return int(value * 10_000)


def _calibration_summary(result) -> str:
    """The pump's figures (the host's while the pump has not computed them), old beside new."""
    spread = quantities.as_decimal(Fraction(result.spread_ppm, 10_000), 2)
    change = quantities.as_decimal(Fraction(result.change_ppm, 10_000), 2)
    who = "computed by the pump" if result.pump is not None else "computed by this host"
    return (
        f"mean        {result.step_volume_pl} pL per step over {len(result.runs)} runs ({who})\n"
        f"spread      {spread} % (largest - smallest, over the mean)\n"
        f"change      {change} % from the {result.previous_pl} pL in force"
        + (": more than 2 %, stored only when confirmed" if result.needs_confirming else "")
    )


def _print_calibration(args, result, stored=False, refused=None) -> None:
    if refused:
        verdict = "refused: " + refused
    elif stored:
        verdict = f"stored on the pump: {result.step_volume_pl} pL per step (was {result.previous_pl} pL), and logged"
    else:
        verdict = f"not stored (the pump keeps {result.previous_pl} pL per step)"
    limits = f"limits      bench water, {NO_DRUG_LIMITS}"
    data = {
        "runs": [
            {
                "rate_nl_per_day": r.rate_nl_per_day,
                "from_steps": r.from_steps,
                "to_steps": r.to_steps,
                "steps": r.steps,
                "mass_ug": r.mass_ug,
                "mass_mg": str(quantities.as_decimal(r.mass_mg, 6)),
                "step_volume_pl": r.step_volume_pl,
            }
            for r in result.runs
        ],
        "mean_pl": str(quantities.as_decimal(result.mean_pl, 3)),
        "step_volume_pl": result.step_volume_pl,
        "previous_pl": result.previous_pl,
        "spread_ppm": result.spread_ppm,
        "change_ppm": result.change_ppm,
        "needs_confirming": result.needs_confirming,
        "computed_by_pump": result.pump is not None,
        "density_g_per_ml": str(result.density_g_per_ml),
        "density_ug_per_ml": result.density_ug_per_ml,
        "stored": stored,
        "refused": refused,
        "drug_limits": False,
    }
    if args.json:
        _print(args, "", data)
    elif refused:
        print(_calibration_summary(result).split("\nchange")[0])  # the refusal itself is the error line
        print(limits)
    else:
        print(f"{verdict}\n{limits}")


class _Parser(argparse.ArgumentParser):
    """argparse whose error line also says where the help is (subcommands' parsers are made of this
    class too): `pumpctl log: error: argument --since: invalid int value: 'x' (see pumpctl log --help)`."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        render.error(f"error: {message} (see {self.prog} --help)", prog=self.prog)
        self.exit(EXIT_USAGE)


def _timeout_s(text: str) -> float:
    """--timeout: seconds, above 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give the seconds to wait for each reply, above 0 (2, 0.5)")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pumpctl",
        description="Program, watch and test a drug pump over USB serial.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--port",
        default=os.environ.get("PUMPCTL_PORT"),
        help="device path (/dev/ttyACM0), auto (the one attached MicroPython board), or a pyserial URL "
        "(socket://HOST:PORT, rfc2217://HOST:PORT); default: $PUMPCTL_PORT, else the config file's "
        "(pumpctl ports --set-default)",
    )
    p.add_argument("--timeout", type=_timeout_s, default=2.0, help="seconds to wait for each reply (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts instead of text")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status.STATUS.add_to(sub)

    s = sub.add_parser(
        "ports",
        help="list the serial ports and which look like a MicroPython board; set the default port",
        epilog="""examples:
  pumpctl ports                              device, USB VID:PID, serial number, maker, MicroPython board?
  pumpctl ports --json
  pumpctl ports --set-default /dev/ttyACM0   used when neither --port nor PUMPCTL_PORT is given
  pumpctl ports --set-default auto           the one attached board, whichever port it is on
  pumpctl --port auto status

A board is known by its USB id: Raspberry Pi 2E8A (a Pico running MicroPython is 2E8A:0005) and
Espressif 303A are "yes"; the USB-UART bridges of ESP32 dev kits (CP210x 10C4:EA60, CH340
1A86:7523, FTDI 0403:6001) are "maybe", as balances use them too. --port auto takes the one
"yes" port, or with none the one "maybe" port, and refuses to guess between several.""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--json", dest="ports_json", action="store_true", help="print JSON (as pumpctl --json ports)")
    default = s.add_mutually_exclusive_group()
    default.add_argument("--set-default", metavar="PORT", help="save PORT in the config file as the default port")
    default.add_argument("--clear-default", action="store_true", help="remove the default port from the config file")
    s.set_defaults(func=cmd_ports)

    def session(s):
        s.add_argument("--yes", action="store_true", help="commit without asking (after reviewing)")
        s.add_argument("--confirm-soft", action="store_true", help="confirm values past a soft limit")

    program.PROGRAM.add_to(sub)

    program.BOLUS.add_to(sub)

    program.PRIME.add_to(sub)

    program.PATIENT_BOLUS.add_to(sub)

    program.REFILL.add_to(sub)

    s = sub.add_parser(
        "calibrate",
        help="measure the volume per step by weighing at two or more rates, and store it on the pump",
        epilog=CALIBRATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--balance", metavar="PORT", help="the balance's serial port or pyserial URL")
    s.add_argument("--balance-protocol", default="mt-sics", choices=("mt-sics", "sbi"), help="default mt-sics")
    s.add_argument("--typed", action="store_true", help="weigh by hand: tare and type each mass (mg) when asked")
    s.add_argument("--masses", metavar="MG,MG,...", help="the masses weighed by hand, in mg, one per run, in order")
    s.add_argument("--steps", type=int, default=2000, help="steps per run (default 2000, about 0.1 mL)")
    s.add_argument(
        "--rates", default="1 mL/h,5 mL/h", help='two or more rates, comma-separated (default "1 mL/h,5 mL/h")'
    )
    s.add_argument("--repeats", type=int, default=1, help="runs at each rate (default 1)")
    s.add_argument("--density", default="0.9982", help="of the fluid, g/mL (default 0.9982: water at 20 degC)")
    s.add_argument(
        "--max-spread", default="2%", help="largest minus smallest over the mean (default 2%%; the pump's limit)"
    )
    s.add_argument("--dry-run", action="store_true", help="measure and show, store nothing")
    s.add_argument("--yes", action="store_true", help="store without asking")
    s.set_defaults(func=cmd_calibrate)

    status.THERAPY.add_to(sub)

    clock.CLOCK.add_to(sub)

    library.LIBRARY.add_to(sub)

    log.LOG.add_to(sub)

    alarms.ALARMS.add_to(sub)

    from .trial import add_trial_parser

    add_trial_parser(sub)

    keys.KEYS.add_to(sub)

    telemetry.TELEMETRY.add_to(sub)

    stop.STOP.add_to(sub)

    stop.ADVANCE.add_to(sub)

    alarms.FAULT.add_to(sub)

    s = sub.add_parser(
        "sim",
        help="start a simulated pump and print its port",
        epilog="""examples:
  pumpctl sim                          time moves only with pumpctl advance
  pumpctl sim --speed 60               a minute of pump time each second
  pumpctl sim --balance --reservoir "20 mL"   with a lab balance and a reservoir sensor""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--speed", type=int, default=0, help="0: time moves only with advance (default); N: N x real time")
    s.add_argument("--board", default="sim", help="board file to boot (default sim)")
    s.add_argument("--balance", action="store_true", help="also a simulated lab balance weighing what it delivers")
    s.add_argument(
        "--reservoir",
        metavar="VOLUME",
        help='fit the reservoir sensor, the reservoir holding VOLUME at boot ("20 mL"); none without it',
    )
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
        epilog="""examples:
  pumpctl demo
  pumpctl demo --rate "0.5 mL/day" --duration 24h --drug morphine --concentration "10 mg/mL"
  pumpctl demo --rate "2 mg/day" --drug morphine --concentration "20 mg/mL"
  pumpctl demo --rate "1 mL/h" --duration 2h --no-drug

The drug is programmed as a drug (drug NAME CONC, fill 20 mL, basal RATE), so
the pump's drug library and dose guard apply: a rate over a hard limit is
refused, and the demo exits 1. --no-drug programs a plain volume rate, to which
no drug-library limit applies (only the pump's rate range).
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--rate", default="0.5 mL/day", help="basal rate, a volume or dose per time (default 0.5 mL/day)")
    s.add_argument("--duration", default="24h", help="pump time to run (default 24h)")
    s.add_argument("--drug", help="drug name in the pump's library (default morphine)")
    s.add_argument("--concentration", help="drug concentration (default 10 mg/mL)")
    s.add_argument(
        "--no-drug", action="store_true", help="a plain volume rate of no drug: no drug-library limit applies"
    )
    s.add_argument("--confirm-soft", action="store_true", help="commit a program past a soft limit")
    s.set_defaults(func=cmd_demo)
    return p


def _hint(e: PumpError) -> str:
    """What the error line adds to the message (the link's and the keys' messages say what to do
    themselves): a refusal changed nothing, whatever it was about."""
    return "; nothing was changed" if isinstance(e, PumpRefused) and "nothing was changed" not in str(e) else ""


# The request fields a person gives through an option, by the name the codec says them.
_WIRE_FIELD_NAMES = {
    "seconds": "the duration in seconds",
    "at_s": "--at, in seconds",
    "clock_s": "--set, in seconds since 1970 (1970 to 2106)",
    "index": "--since",
    "value": "--value",
}


def _wire_range(e: codec.FrameError) -> str:
    """A value the wire format cannot carry, said as a person reads it (it was never sent)."""
    m = re.match(r"^(\w+)=(-?\d+) does not fit (\w)$", e.message)
    if m and m.group(3) in codec.SIZES:
        top = (1 << (8 * codec.SIZES[m.group(3)])) - 1
        what = _WIRE_FIELD_NAMES.get(m.group(1), m.group(1))
        return f"{what}: {int(m.group(2)):,} is beyond what the pump takes (0 to {top:,}); give a value in range"
    return f"{e.message}: more than the pump takes; give a smaller or shorter value"


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit:  # --help, or a wrong command line (its message is out)
            _flush_stdout()
            raise
        code = args.func(args)
        sys.stdout.flush()  # a reader gone away shows here, not at the interpreter's exit
        return code
    except PumpError as e:  # a user's or the line's problem: a message, never a traceback
        render.error(f"{e}{_hint(e)}")
        return next((code for kind, code in _EXIT_CODES if isinstance(e, kind)), EXIT_REFUSED)
    except codec.FrameError as e:  # a request the codec would not encode: a value out of range, never sent
        render.error(_wire_range(e))
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C: quietly, as a shell expects
        return 130
    except BrokenPipeError:  # what read our output went away (pumpctl log | head): quietly too
        _drop_stdout()
        return 141


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit does not fail again."""
    try:
        fd = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError, AttributeError):  # not a real file (pytest's capture): nothing to flush
        return
    os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
