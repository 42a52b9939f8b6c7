"""pumpctl sim: start a simulated pump and print its port."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .. import config
from ..errors import UsageError
from .common import EXIT_OK, EXIT_SIM, Command, volume_nl_arg

CUT_SIGNAL = 9  # hal/sim/file_storage.py's power cut: the firmware's process ends by SIGKILL


def _board_args(args) -> list[str]:
    """The simulated board's options (boards/sim.py make()) from pumpctl sim's, each checked here first,
    so a wrong one is one line and no simulator starts (nor are keys saved for it)."""
    from ..board_build import board_constant

    words: list[str] = []
    if args.reservoir is not None:
        sizes = board_constant("sim", "RESERVOIR_SIZES_ML")
        size_ml = args.reservoir_size
        reservoir_nl = volume_nl_arg("--reservoir", args.reservoir)
        if reservoir_nl > size_ml * 1_000_000:
            raise UsageError(
                f"--reservoir {args.reservoir}: more than the reservoir holds ({size_ml} mL; "
                f"--reservoir-size {' or '.join(str(v) for v in sizes)})"
            )
        words += ["--reservoir-nl", str(reservoir_nl)]
    words += ["--reservoir-ml", str(args.reservoir_size)]
    if args.battery is not None:
        if not 0 <= args.battery <= 1000:
            raise UsageError(f"--battery {args.battery}: give the cell's charge at boot, 0 to 1000 permille")
        words += ["--battery-permille", str(args.battery)]
    if args.true_step_pl is not None:
        nominal = board_constant("sim", "STEP_VOLUME_PL")
        if not nominal // 2 <= args.true_step_pl <= 2 * nominal:
            raise UsageError(
                f"--true-step-pl {args.true_step_pl}: give what one step really moves, "
                f"{nominal // 2} to {2 * nominal} pL (the calibrated volume is {nominal} pL)"
            )
        words += ["--true-step-pl", str(args.true_step_pl)]
    if args.cut_after_bytes is not None:
        if args.storage is None:
            raise UsageError("--cut-after-bytes needs --storage DIR: the power is cut while the pump writes there")
        if args.cut_after_bytes < 0:
            raise UsageError(f"--cut-after-bytes {args.cut_after_bytes}: give 0 or more bytes")
    words += ["--seed", str(args.seed)]
    if args.motor_dead:
        words += ["--motor-dead", "1"]
    if args.clock_dead:
        words += ["--clock-dead", "1"]
    return words


# In a --storage folder: the device id of the pump whose files it holds, so that a later start
# resumes that pump with its keys (from the config file) instead of provisioning new ones.
DEVICE_FILE = "pumpctl-device-id"


def _kept_pump(storage: str | None):
    """The keys of the pump whose files the --storage folder holds (None: a new folder, or none
    given); UsageError for a folder that is not one, or a pump whose keys this host lacks."""
    if storage is None:
        return None
    folder = Path(storage)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--storage {storage}: not a folder; give a folder for the pump's files (made if missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        device_id = (folder / DEVICE_FILE).read_text().strip() if (folder / DEVICE_FILE).exists() else None
    except OSError as e:
        raise UsageError(f"--storage {storage}: {e.strerror}; give a folder this user can write") from None
    if device_id is None:
        return None
    keys = config.load_keys(device_id)
    if keys is None:
        raise UsageError(
            f"--storage {storage} holds pump {device_id}, whose keys this host's config file does not hold "
            "(forgotten?); give another folder for a new pump"
        )
    return keys


def cmd_sim(args) -> int:
    from ..sim import Simulator

    if args.speed < 0:
        raise UsageError(f"--speed {args.speed}: give 0 (time moves only with advance) or N, N x real time")
    board_args = _board_args(args)
    kept = _kept_pump(args.storage)
    with Simulator(
        speed=args.speed,
        board=args.board,
        register=True,
        balance=args.balance,
        board_args=board_args,
        storage=args.storage,
        cut_after_bytes=args.cut_after_bytes,
        keys=kept,
        provision=kept is None,  # a kept pump has its keys in its own key store
    ) as sim:
        if args.storage is not None and kept is None:
            (Path(args.storage) / DEVICE_FILE).write_text(sim.keys.device_id + "\n")
        pace = "time moves only with 'pumpctl advance'" if args.speed == 0 else f"{args.speed}x real time"
        print(f"simulated pump (board {args.board}, {pace}) on {sim.port}", flush=True)
        if sim.balance_port:
            print(f"simulated MT-SICS balance weighing its output on {sim.balance_port}", flush=True)
        if args.storage is not None:
            cut = f"; the power is cut after {args.cut_after_bytes:,} more bytes" if args.cut_after_bytes else ""
            print(f"its files are in {args.storage} (start it again on them to resume){cut}", flush=True)
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
            if args.cut_after_bytes is not None and sim.proc.returncode == -CUT_SIGNAL:
                print(
                    f"the power was cut, as --cut-after-bytes {args.cut_after_bytes} asked: start it again with "
                    f"--storage {args.storage} to see it resume",
                    file=sys.stderr,
                )
            else:
                print(f"the simulated firmware stopped: {_how_it_ended(sim)}", file=sys.stderr)
            return EXIT_SIM
    return EXIT_OK


def _how_it_ended(sim) -> str:
    """How the firmware's process ended, and what it last said: killed by a signal, or its status."""
    code = sim.proc.returncode
    if code is not None and code < 0:
        try:
            name = f" ({signal.Signals(-code).name})"
        except ValueError:
            name = ""
        how = f"killed by signal {-code}{name}"
    else:
        how = f"it exited with status {code}"
    said = sim.stderr_text().strip()
    return how + (f"; it last said:\n{said}" if said else "")


def _sim_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--speed", type=int, default=0, help="0: time moves only with advance (default); N: N x real time")
    s.add_argument("--board", default="sim", choices=["sim"], help="board file to boot (the simulator's: sim)")
    s.add_argument("--balance", action="store_true", help="also a simulated lab balance weighing what it delivers")
    s.add_argument(
        "--reservoir",
        metavar="VOLUME",
        help='fit the reservoir sensor, the reservoir holding VOLUME at boot ("20 mL"); none without it',
    )
    s.add_argument(
        "--reservoir-size",
        type=int,
        choices=[20, 40],
        default=20,
        metavar="ML",
        help="the reservoir's capacity in mL: 20 (default) or 40, the two sizes of implanted pumps",
    )
    s.add_argument("--battery", type=int, metavar="PERMILLE", help="the cell's charge at boot, 0..1000 (default full)")
    s.add_argument(
        "--true-step-pl",
        type=int,
        metavar="PL",
        help="what one step really moves, in pL (default the calibrated 52083): a worn head, which weighing "
        "finds (pumpctl calibrate, pumpctl bench)",
    )
    s.add_argument(
        "--storage",
        metavar="DIR",
        help="keep the pump's files (its saved state, log and keys) in folder DIR: start it again on the "
        "same folder and it resumes, as after a power cut",
    )
    s.add_argument(
        "--cut-after-bytes",
        type=int,
        metavar="N",
        help="with --storage: cut the power (end the process at once) after N more bytes are written",
    )
    s.add_argument("--seed", type=int, default=1, help="seed of the reservoir sensor's noise (default 1)")
    s.add_argument("--motor-dead", action="store_true", help="the motor driver does not respond from boot")
    s.add_argument("--clock-dead", action="store_true", help="the power-on self-test finds the clock not running")


SIM = Command(
    "sim",
    cmd_sim,
    help="start a simulated pump and print its port",
    epilog="""examples:
  pumpctl sim                          time moves only with pumpctl advance
  pumpctl sim --speed 60               a minute of pump time each second
  pumpctl sim --balance --reservoir "20 mL"   with a lab balance and a reservoir sensor
  pumpctl sim --reservoir "35 mL" --reservoir-size 40 --battery 120   a 40 mL pump, its battery near ERI
  pumpctl sim --true-step-pl 54000     a head that moves 3.7 % more than calibrated
  pumpctl sim --storage pump-files     its state kept in pump-files: Ctrl-C, start again, it resumes
  pumpctl sim --storage pump-files --cut-after-bytes 5000   the power fails mid-write

The simulator at speed 0 runs pump time only when asked (pumpctl advance),
as fast as the CPU allows. Faults are injected with pumpctl fault.""",
    arguments=_sim_arguments,
)
