"""A board's ROMFS partition, where the board has one (vfs.rom_ioctl): the firmware's modules as one
image, written there as `mpremote romfs deploy` writes it and read back by SHA-256. The board mounts
it at /rom at boot and runs the code in place from flash, so the code takes no heap (flash.py
decides between this and .mpy files)."""

from __future__ import annotations

import binascii
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .board_repl import Device
from .errors import FlashError

if TYPE_CHECKING:
    from .board_build import BoardFile

ROMFS_MOUNT = "/rom"  # where a board with a ROMFS partition mounts it at boot (on its sys.path)


def romfs_image(modules: list[BoardFile]) -> bytes:
    """A ROMFS image of the compiled modules, their paths as on the filesystem (mpremote's builder,
    as `mpremote romfs build` makes one)."""
    import contextlib
    import io

    from mpremote.romfs import make_romfs

    with tempfile.TemporaryDirectory(prefix="pump-romfs-") as tmp:
        for f in modules:
            path = Path(tmp) / f.target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f.data)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints the tree it builds
            return make_romfs(tmp, mpy_cross=False)


# Run on the device: its ROMFS partition 0, as mpremote's `romfs query` finds it (vfs.rom_ioctl: 1 the
# number of partitions, 2 the partition, a buffer or a block device; 6 its erase block): "size block
# object" (object 1: a block device, written with writeblocks), or "none WHY".
_ROMFS_QUERY_SCRIPT = """\
import vfs
if not hasattr(vfs, 'rom_ioctl'):
    print('none its MicroPython has no ROMFS')
elif vfs.rom_ioctl(1) <= 0:
    print('none its MicroPython has no ROMFS partition')
else:
    dev = vfs.rom_ioctl(2, 0)
    if isinstance(dev, int):
        print('none its ROMFS partition 0 is not found')
    elif hasattr(dev, 'ioctl'):
        print(dev.ioctl(4, 0) * dev.ioctl(5, 0), dev.ioctl(5, 0), 1)
    else:
        block = vfs.rom_ioctl(6, 0)
        print(len(dev), block if block > 0 else len(dev), 0)
"""


@dataclass
class RomPartition:
    """A board's ROMFS partition 0: its size, erase block, and whether it is a block device."""

    size: int
    block: int
    block_device: bool


def romfs_partition(device: Device) -> RomPartition | str:
    """The board's ROMFS partition 0, or why it has none (a sentence)."""
    out = device.exec(_ROMFS_QUERY_SCRIPT, "looking for a ROMFS partition").strip()
    if out.startswith("none "):
        return out[5:]
    size, block, block_device = (int(v) for v in out.split())
    return RomPartition(size, block, bool(block_device))


def _write(device: Device, part: RomPartition, image: bytes, progress: Callable[[int, int], None] | None) -> None:
    """Write image into ROMFS partition 0 as mpremote's `romfs deploy` does: unmount /rom, erase the
    blocks the image needs, write it in chunks, finish (the board mounts it at /rom when it boots).
    progress(done, len(image)) after each chunk."""
    device.exec(
        "import vfs\ntry:\n vfs.umount('/rom')\nexcept OSError:\n pass\ndev = vfs.rom_ioctl(2, 0)",
        "unmounting /rom",
    )
    chunk = 4096
    if part.block_device:
        for offset in range(0, len(image), part.block):
            device.exec(f"dev.ioctl(6, {offset // part.block})", "erasing the ROMFS partition")
        chunk = min(chunk, part.block)
    else:
        offset = 0
        while offset < len(image):
            n = -(-min(len(image) - offset, 32768) // part.block) * part.block
            least = int(device.exec(f"print(vfs.rom_ioctl(3, 0, {offset}, {n}))", "erasing the ROMFS partition"))
            if least < 0:
                raise FlashError(f"the board on {device.port} refused to erase its ROMFS partition (error {least})")
            chunk = max(chunk, least)
            offset += n
    device.exec("from binascii import a2b_base64", "preparing to write the ROMFS image")
    for offset in range(0, len(image), chunk):
        data = image[offset : offset + chunk]
        data += bytes(chunk - len(data))
        code = f"buf = a2b_base64({binascii.b2a_base64(data).strip()!r})\n"
        if part.block_device:
            code += f"dev.writeblocks({offset // part.block}, buf, {offset % part.block})"
        else:
            code += f"r = vfs.rom_ioctl(4, 0, {offset}, buf)\nif r < 0:\n raise OSError(r)"
        device.exec(code, f"writing the ROMFS image at {offset}")
        if progress:
            progress(min(offset + chunk, len(image)), len(image))
    if not part.block_device:
        device.exec("vfs.rom_ioctl(5, 0)", "finishing the ROMFS image")
    device.exec("buf = dev = None", "finishing the ROMFS image")


# Run on the device: the SHA-256 of the first n bytes of ROMFS partition 0, read as the board reads it.
_ROMFS_HASH_SCRIPT = """\
import vfs, hashlib, binascii
dev = vfs.rom_ioctl(2, 0)
n = %d
h = hashlib.sha256()
if hasattr(dev, 'ioctl'):
    size = dev.ioctl(5, 0)
    b = bytearray(size)
    for i in range(0, n, size):
        dev.readblocks(i // size, b)
        h.update(memoryview(b)[:min(size, n - i)])
else:
    m = memoryview(dev)
    for i in range(0, n, 512):
        h.update(m[i:min(i + 512, n)])
print(binascii.hexlify(h.digest()).decode())
dev = m = b = None
"""


def _read_back_hash(device: Device, n: int) -> str:
    """The SHA-256 (hex) of the first n bytes of the board's ROMFS partition 0, read back."""
    return device.exec(_ROMFS_HASH_SCRIPT % n, "reading the ROMFS image back").strip()


def deploy_romfs(device: Device, part: RomPartition, image: bytes, progress: Callable[[int, int], None] | None) -> None:
    """Write image into the board's ROMFS partition 0 and read it back: FlashError if it differs."""
    _write(device, part, image, progress)
    digest = _read_back_hash(device, len(image))
    if digest != hashlib.sha256(image).hexdigest():
        raise FlashError(
            f"the ROMFS image on the board does not match what was sent (sha256 {digest[:16]}... on the "
            "board): the write was damaged; flash again"
        )


def choose_romfs(part: RomPartition | str, modules: list[BoardFile]) -> tuple[bytes, RomPartition | None, str]:
    """(the ROMFS image, the partition it goes to, why) where the board can take the modules in ROMFS
    (part: romfs_partition's); (b"", None, why not) where it cannot."""
    if isinstance(part, str):
        return b"", None, f"{part}: the code is loaded into RAM"
    rom_image = romfs_image(modules)
    if len(rom_image) > part.size:
        return (
            b"",
            None,
            (
                f"the ROMFS image ({len(rom_image):,} bytes) is larger than the board's ROMFS partition "
                f"({part.size:,} bytes): the code is loaded into RAM"
            ),
        )
    return (
        rom_image,
        part,
        (
            f"a {len(rom_image):,}-byte ROMFS image in the board's {part.size:,}-byte partition, mounted at "
            f"{ROMFS_MOUNT}: the code runs from flash"
        ),
    )
