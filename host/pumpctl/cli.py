"""pumpctl: the command line.

Exit codes: 0 done; 1 the pump refused (it changed nothing) or a check
failed; 2 the command line itself is wrong; 3 the serial link failed;
4 the simulator could not run; 5 no key for the pump, a wrong key, or a
config file that others can read. `bench` also exits 1 when the test ran and
failed a limit, 3 when the balance failed, and 130 when interrupted (its
samples are kept: resume it); `alarms` exits 1 while any alarm is latched. Any command
exits 130 on Ctrl-C (quietly; `advance` says where the simulator's time stopped), and
141 when what reads its output went away (`pumpctl log | head`).

Output for people (tables, colour, progress bars) is drawn by render.py on a
terminal only; piped or redirected, the text is the plain text scripts read.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from firmware import codec, framing

from . import __version__, render, schema
from .client import Pump
from .commands import (
    alarms,
    bench,
    calibrate,
    clock,
    demo,
    flash,
    keys,
    library,
    log,
    ports,
    program,
    refill,
    sim,
    staged,
    status,
    stop,
    telemetry,
)
from .commands.common import (  # noqa: F401  (the exit codes: pumpctl's API, and the tests')
    EXIT_AUTH,
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_LINK,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_SIM,
    EXIT_USAGE,
    Command,
    add_global_options,
)
from .commands.log import EVENT_NAMES, event_name  # noqa: F401  (the names `pumpctl log` shows)
from .commands.trial import TRIAL
from .errors import PumpError, PumpRefused, UsageError  # noqa: F401

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


# Every command, in the order `pumpctl --help` lists them. A new command: its module in
# commands/ (its Command beside its run(args)), and a line here.
COMMANDS: tuple[Command, ...] = (
    status.STATUS,
    ports.PORTS,
    program.PROGRAM,
    program.BOLUS,
    program.PRIME,
    program.PATIENT_BOLUS,
    refill.REFILL,
    program.RESUME,
    staged.REVIEW,
    staged.COMMIT,
    staged.DISCARD,
    calibrate.CALIBRATE,
    status.THERAPY,
    clock.CLOCK,
    library.LIBRARY,
    log.LOG,
    alarms.ALARMS,
    TRIAL,
    keys.KEYS,
    telemetry.TELEMETRY,
    stop.STOP,
    stop.ADVANCE,
    alarms.FAULT,
    sim.SIM,
    bench.BENCH,
    flash.FLASH,
    demo.DEMO,
)


class _Parser(argparse.ArgumentParser):
    """argparse whose error line also says where the help is (subcommands' parsers are made of this
    class too): `pumpctl log: error: argument --since: invalid int value: 'x' (see pumpctl log --help)`."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        render.error(f"error: {message} (see {self.prog} --help)", prog=self.prog)
        self.exit(EXIT_USAGE)


class _Version(argparse.Action):
    """--version: print pumpctl's version and the protocol it speaks; with a port given before it,
    ask the pump there (HELLO: no key needed) for its firmware's. Exits 0, or 3 if no pump answers."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"pumpctl {__version__} (protocol {codec.PROTOCOL_VERSION})")
        port = getattr(namespace, "port", None)
        if not port:
            parser.exit(EXIT_OK)
        try:
            with Pump(port, timeout=namespace.timeout) as pump:
                info = pump.hello()
        except PumpError as e:
            render.error(str(e))
            parser.exit(next((code for kind, code in EXIT_CODES if isinstance(e, kind)), EXIT_REFUSED))
        print(f"pump on {port}: firmware {info.firmware} (protocol {info.protocol}), board {info.board}")
        parser.exit(EXIT_OK)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pumpctl",
        description="Program, watch and test a drug pump over USB serial.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(p, os.environ.get("PUMPCTL_PORT"), 2.0, False)
    p.add_argument(
        "--version",
        action=_Version,
        help="pumpctl's version and its protocol; with --port before it, the pump's firmware's too",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for command in COMMANDS:
        command.add_to(sub)
    return p


def _hint(e: PumpError) -> str:
    """What the error line adds to the message (the link's and the keys' messages say what to do
    themselves): a refusal changed nothing, whatever it was about; a failure inside the pump may
    have changed something, and nobody knows what."""
    if not isinstance(e, PumpRefused) or "nothing was changed" in str(e):
        return ""
    if e.internal:
        return "; what it changed is not known: read pumpctl therapy and pumpctl log before going on"
    return "; nothing was changed"


# The request fields a person gives through an option, by the name the codec says them.
_WIRE_FIELD_NAMES = {
    "seconds": "the duration in seconds",
    "at_s": "--at, in seconds",
    "clock_s": "--set, in seconds since 1970 (1970 to 2106)",
    "index": "--since",
    "value": "--value",
}


def _wire_range(e: framing.FrameError) -> str:
    """A value the wire format cannot carry, said as a person reads it (it was never sent)."""
    m = re.match(r"^(\w+)=(-?\d+) does not fit (\w)$", e.message)
    if m and m.group(3) in schema.SIZES:
        top = (1 << (8 * schema.SIZES[m.group(3)])) - 1
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
        return next((code for kind, code in EXIT_CODES if isinstance(e, kind)), EXIT_REFUSED)
    except framing.FrameError as e:  # a request the codec would not encode: a value out of range, never sent
        render.error(_wire_range(e))
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C: quietly, as a shell expects
        return EXIT_INTERRUPTED
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
