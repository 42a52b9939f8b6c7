"""pumpctl keys: the pumps whose keys this host holds; change a pump's key."""

from __future__ import annotations

import argparse
import os

from .. import render
from ..client import Pump
from ..errors import ConfigError, UsageError
from .common import EXIT_OK, EXIT_REFUSED, Command, confirm, emit, port_of


def cmd_keys(args) -> int:
    from .. import config

    if args.action == "show":
        known = config.known_devices()
        rows = {
            device_id: [r for r in ("clinician", "patient") if getattr(k, f"{r}_key")] for device_id, k in known.items()
        }
        human = f"{config.config_path()}\n" + "\n".join(f"  {d:<24} {', '.join(r)}" for d, r in rows.items())
        emit(
            args,
            human,
            {"config": str(config.config_path()), "pumps": rows},
            rich=lambda: render.keys(str(config.config_path()), rows),
        )
        return EXIT_OK
    if args.action == "forget":
        return _forget(args, config)
    if args.role not in ("clinician", "patient"):
        raise UsageError("say which key to change: pumpctl keys change clinician|patient")
    folder = config.config_path().parent  # checked first: a new key the host cannot save locks it out
    if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{folder} is not writable, so a new key could not be saved: nothing was changed")
    with Pump(port_of(args), timeout=args.timeout) as pump:
        keys = pump.change_key(args.role)
        path = config.save_keys(keys)
    emit(
        args,
        f"{args.role} key of pump {keys.device_id} changed; the new key is in {path}",
        {"device_id": keys.device_id, "changed": args.role, "config": str(path)},
        style=render.OK,
    )
    return EXIT_OK


def _forget(args, config) -> int:
    """Forget the keys of the pumps named (DEVICE_ID...), or of every simulator (--simulators: their keys
    died with them). A real pump whose keys are forgotten can no longer be programmed from this host."""
    held = config.known_devices()
    running: list[str] = []
    if args.simulators:
        from ..sim import running_simulator_devices

        alive = running_simulator_devices()
        running = sorted(d for d in held if d in alive)  # still in use: kept
        names = sorted(d for d in held if d.startswith("sim-") and d not in alive)
    else:
        names = ([args.role] if args.role else []) + list(args.names)  # the first is in role's place
        if not names:
            raise UsageError("say whose keys to forget: pumpctl keys forget DEVICE_ID ..., or --simulators")
        unknown = [n for n in names if n not in held]
        if unknown:
            raise UsageError(
                f"this host holds no keys for {', '.join(unknown)} (pumpctl keys lists them); nothing forgotten"
            )
    kept = f" (kept those of the running simulator(s) {', '.join(running)})" if running else ""
    if not names:
        emit(args, f"no simulator's keys to forget{kept}", {"forgotten": [], "kept_running": running})
        return EXIT_OK
    real = [n for n in names if not n.startswith("sim-")]
    warning = f" ({', '.join(real)} not a simulator: no longer programmable from this host)" if real else ""
    if not confirm(args, f"forget the keys of {len(names)} pump(s){warning}?", "not forgotten: add --yes"):
        render.warn("not forgotten; the keys are kept")
        return EXIT_REFUSED
    gone = config.forget_keys(names)
    emit(
        args,
        f"forgot the keys of {len(gone)} pump(s): {', '.join(gone)}{kept}",
        {"forgotten": gone, "kept_running": running, "config": str(config.config_path())},
        style=render.OK,
    )
    return EXIT_OK


def _keys_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("action", choices=["show", "change", "forget"], nargs="?", default="show")
    s.add_argument("role", nargs="?", help="for change: clinician or patient; for forget: a device id")
    s.add_argument("names", nargs="*", metavar="DEVICE_ID", help="for forget: more device ids")
    s.add_argument("--simulators", action="store_true", help="for forget: every simulator's keys (device id sim-...)")
    s.add_argument("--yes", action="store_true", help="for forget: without asking")


KEYS = Command(
    "keys",
    cmd_keys,
    help="the pumps whose keys this host holds, change a pump's key, or forget keys",
    epilog="examples:\n  pumpctl keys\n  pumpctl --port /dev/pts/4 keys change patient\n"
    "  pumpctl keys forget --simulators --yes     the keys of every simulator run so far\n"
    "  pumpctl keys forget rp2_pico-a4eb232e      a pump given away (asks first)",
    arguments=_keys_arguments,
)
