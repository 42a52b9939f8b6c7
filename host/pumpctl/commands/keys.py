"""pumpctl keys: the pumps whose keys this host holds; change a pump's key."""

from __future__ import annotations

import argparse
import os

from .. import render
from ..client import Pump
from ..errors import ConfigError, UsageError
from .common import EXIT_OK, Command, emit, port_of


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


def _keys_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("action", choices=["show", "change"], nargs="?", default="show")
    s.add_argument("role", nargs="?", help="for change: clinician or patient")


KEYS = Command(
    "keys",
    cmd_keys,
    help="the pumps whose keys this host holds, or change a pump's key",
    epilog="examples:\n  pumpctl keys\n  pumpctl --port /dev/pts/4 keys change patient",
    arguments=_keys_arguments,
)
