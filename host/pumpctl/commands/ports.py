"""pumpctl ports: the serial ports, which look like a MicroPython board, and the default port."""

from __future__ import annotations

import argparse
import json
import os

from ..errors import ConfigError, UsageError
from .common import EXIT_OK, Command


def cmd_ports(args) -> int:
    """The serial ports and which look like a MicroPython board (pumpctl.ports); or set the default port."""
    from .. import config
    from .. import ports as port_list

    as_json = args.json
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


def _ports_arguments(s: argparse.ArgumentParser) -> None:
    default = s.add_mutually_exclusive_group()
    default.add_argument("--set-default", metavar="PORT", help="save PORT in the config file as the default port")
    default.add_argument("--clear-default", action="store_true", help="remove the default port from the config file")


PORTS = Command(
    "ports",
    cmd_ports,
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
    arguments=_ports_arguments,
)
