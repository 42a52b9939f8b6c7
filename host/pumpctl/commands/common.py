"""What the commands share: the exit codes, the `Command` each registers, the port to use,
the output (text, or JSON with --json), the confirmation question, and the parsing of the
quantities a person gives on the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .. import quantities, render
from ..errors import AuthError, BalanceError, ConfigError, LinkError, PumpRefused, SimulatorError, UsageError

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_LINK = 3
EXIT_SIM = 4
EXIT_AUTH = 5
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell counts it (128 + SIGINT)

EXIT_CODES = (
    (UsageError, EXIT_USAGE),
    (AuthError, EXIT_AUTH),
    (ConfigError, EXIT_AUTH),
    (PumpRefused, EXIT_REFUSED),
    (LinkError, EXIT_LINK),
    (BalanceError, EXIT_LINK),
    (SimulatorError, EXIT_SIM),
)


def timeout_s(text: str) -> float:
    """--timeout: seconds, above 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give the seconds to wait for each reply, above 0 (2, 0.5)")
    return value


def add_global_options(p: argparse.ArgumentParser, port_default, timeout_default, json_default) -> None:
    """--port, --timeout and --json: pumpctl's own (with their defaults), and again on every command's
    parser (AFTER_COMMAND, with argparse.SUPPRESS: given there, they override what came before the
    command; not given, they leave it), so `pumpctl status --json` is `pumpctl --json status`."""
    p.add_argument(
        "--port",
        default=port_default,
        help="device path (/dev/ttyACM0), auto (the one attached MicroPython board), or a pyserial URL "
        "(socket://HOST:PORT, rfc2217://HOST:PORT); default: $PUMPCTL_PORT, else the config file's "
        "(pumpctl ports --set-default)",
    )
    p.add_argument(
        "--timeout", type=timeout_s, default=timeout_default, help="seconds to wait for each reply (default 2)"
    )
    p.add_argument("--json", action="store_true", default=json_default, help="print JSON for scripts instead of text")


# The global options as a command's parser takes them (a parent parser: no help of its own).
AFTER_COMMAND = argparse.ArgumentParser(add_help=False)
add_global_options(AFTER_COMMAND, argparse.SUPPRESS, argparse.SUPPRESS, argparse.SUPPRESS)


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, run(args) -> exit code (None where its own subcommands set it),
    the help line, the examples (epilog), and arguments(parser), which adds its options."""

    name: str
    run: Callable[[argparse.Namespace], int] | None
    help: str
    epilog: str
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    description: str | None = None

    def add_to(self, subparsers) -> argparse.ArgumentParser:
        """Add this command to an argparse subparsers object; its parser sets func=run and takes the
        global options after the command too (AFTER_COMMAND)."""
        s = subparsers.add_parser(
            self.name,
            help=self.help,
            description=self.description,
            epilog=self.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[AFTER_COMMAND],
        )
        if self.arguments is not None:
            self.arguments(s)
        if self.run is not None:
            s.set_defaults(func=self.run)
        return s


def session_arguments(s: argparse.ArgumentParser) -> None:
    """--yes and --confirm-soft: the options of every command that commits a program."""
    s.add_argument("--yes", action="store_true", help="commit without asking (after reviewing)")
    s.add_argument("--confirm-soft", action="store_true", help="confirm values past a soft limit")


def port_of(args) -> str:
    """The port to use: --port, else PUMPCTL_PORT (the parser's default for --port), else the
    config file's default (pumpctl ports --set-default); `auto` is the one attached board."""
    from .. import config
    from .. import ports as port_list

    port = args.port or config.default_port()
    if not port:
        raise UsageError(
            "no port given: use --port PORT or set PUMPCTL_PORT, or save a default with "
            "pumpctl ports --set-default PORT (pumpctl ports lists the attached ones, pumpctl sim prints one)"
        )
    if port == "auto":
        port = port_list.auto_port(note=lambda message: print(f"pumpctl: {message}", file=sys.stderr))
    return port


def duration_us_arg(text: str) -> int:
    try:
        return quantities.parse_duration_us(text)
    except ValueError as e:
        raise UsageError(str(e)) from None


def volume_nl_arg(option: str, text: str) -> int:
    """A volume with its unit ("20 mL", "150 uL", "500 nL"), in whole nL."""
    try:
        return quantities.parse_volume_nl(text)
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from None


def status_data(st) -> dict:
    return dict(asdict(st), delivered_pl=st.delivered_pl)


def emit(args, human: str, data: dict, rich=None, style: str | None = None) -> None:
    """data as JSON with --json; else human, or on a terminal rich() (a renderable made of the
    same values) or human in style (render.OK, render.WARN): render.show."""
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        render.show(human, rich, style)


NOT_COMMITTED = "not committed: review the program above, then run again with --yes to commit it"


def confirm(args, question: str, refusal: str = NOT_COMMITTED) -> bool:
    if args.yes:
        return True
    if sys.stdin is None or not sys.stdin.isatty():
        raise UsageError(refusal)
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False
