"""pumpctl flash for real: the sim board flashed onto the MicroPython unix port over a pty, then
booted from nothing but what was copied.

The "board" is `micropython -i` started in an empty folder that plays its filesystem root, on a pty
that is its controlling terminal, raw but with isig (DESIGN.md): mpremote's Ctrl-C then reaches it as
SIGINT, and interrupts a program it runs, as on a real board. Its other end is relayed to a second
pty whose path is the port, as socat's `pty,link=... EXEC:"micropython -i",pty,setsid,ctty,isig`
would; `flash` connects without a soft reset (`mpremote resume`: the unix port exits on Ctrl-D).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import select
import subprocess
import sys
import termios
import threading
import time
import tty
from pathlib import Path

import pytest
import serial
from pumpctl import Pump, cli, config, frozen
from pumpctl import flash as flash_module
from pumpctl.board_build import BOOT_FILE, CONFIG_FILE, MANIFEST_FILE, board_files, build
from pumpctl.errors import FlashError, PumpRefused, UsageError
from pumpctl.flash import flash
from pumpctl.romfs import romfs_image
from pumpctl.sim import find_micropython
from vms import MP_DIR, ROOT, run_unix

from firmware import keyring

pytestmark = pytest.mark.micropython


def _raw_pty() -> tuple[int, int]:
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave


class UnixBoard:
    """`micropython -i` with its cwd in `root`, reachable at `port` like a board's USB serial port.
    path: MICROPYPATH, the folders it imports from beside its filesystem (None: the port's defaults)."""

    def __init__(self, root: Path, path: str | None = None):
        self.root = root
        root.mkdir(exist_ok=True)
        self._m1, s1 = _raw_pty()  # the board's console: its controlling terminal, with isig
        attrs = termios.tcgetattr(s1)
        attrs[3] |= termios.ISIG
        termios.tcsetattr(s1, termios.TCSANOW, attrs)
        self._m2, self._s2 = _raw_pty()  # the host's end: kept open here, so the port lives while hosts come and go
        self.port = os.ttyname(self._s2)
        env = {k: v for k, v in os.environ.items() if k != "MICROPYPATH"}
        if path is not None:
            env["MICROPYPATH"] = path
        self.proc = subprocess.Popen(
            [find_micropython(), "-i"],
            stdin=s1,
            stdout=s1,
            stderr=subprocess.PIPE,
            cwd=root,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # the pty becomes its controlling terminal
        )
        os.close(s1)
        self.transcript = bytearray()  # what the board said
        self._prompt = threading.Event()
        self._relay = threading.Thread(target=self._run_relay, daemon=True)
        self._relay.start()
        # Until its REPL is up, a Ctrl-C would kill it (SIGINT's default action).
        assert self._prompt.wait(10), f"no REPL prompt: {bytes(self.transcript)!r}"

    def _run_relay(self) -> None:
        while True:
            ready, _, _ = select.select([self._m1, self._m2], [], [], 0.5)
            if self.proc.poll() is not None and not ready:
                return
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    return
                if not data:
                    return
                if fd == self._m1:
                    self.transcript += data
                    if b">>> " in self.transcript:
                        self._prompt.set()
                os.write(self._m2 if fd == self._m1 else self._m1, data)

    def stop(self) -> None:
        if self.proc.stderr.closed:  # stopped already
            return
        self.proc.kill()
        self.proc.wait(5)
        self._relay.join(2)
        self.proc.stderr.close()
        for fd in (self._m1, self._m2, self._s2):
            os.close(fd)


@pytest.fixture
def board(tmp_path):
    b = UnixBoard(tmp_path / "board")
    yield b
    b.stop()


def files_on(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@contextlib.contextmanager
def boot(root: Path, repl_after: bool = False, argv: tuple[str, ...] = (), frozen: Path | None = None):
    """Run the flashed root as the board would at power-up: `micropython main.py` there, nothing
    on its path but that folder and the port's frozen modules; stdin/stdout on a pty (the link).
    repl_after: then its REPL, as a board drops to its REPL when main.py returns (`-i`).
    argv: the port's arguments instead of main.py (boot_from_romfs). frozen: a folder on its path after
    the root, standing in for modules frozen into its MicroPython.
    Yields (process, the link's port); kills it after."""
    master, slave = _raw_pty()
    proc = subprocess.Popen(
        [find_micropython(), *(argv or (*(["-i"] if repl_after else []), BOOT_FILE))],
        stdin=master,
        stdout=master,
        stderr=subprocess.PIPE,
        cwd=root,
        env=dict(os.environ, MICROPYPATH=f"{root}:{frozen}:.frozen" if frozen else f"{root}:.frozen"),
        start_new_session=True,
    )
    os.close(master)
    try:
        yield proc, os.ttyname(slave)
    finally:
        proc.kill()
        proc.wait(5)
        proc.stderr.close()
        os.close(slave)


def test_flash_the_sim_board_then_boot_it_from_what_was_copied(board):
    root = board.root
    # Left by an earlier flash: a source file that would shadow its .mpy, a module no longer in the
    # firmware, a stale main.py; and the pump's own files, which flashing keeps.
    (root / "firmware").mkdir()
    (root / "firmware" / "app.py").write_text("raise SystemExit('the stale source ran')\n")
    (root / "hal" / "old").mkdir(parents=True)
    (root / "hal" / "old" / "gone.mpy").write_bytes(b"M")
    (root / BOOT_FILE).write_text("raise SystemExit('the old main.py ran')\n")
    (root / "pump").mkdir()
    (root / "pump" / "keep.txt").write_text("the pump's state\n")
    # The board is busy running a program: the flash interrupts it (Ctrl-C, a SIGINT through isig).
    os.write(board._s2, b"while True: pass\r\r\r")
    deadline = time.monotonic() + 5
    while b"while True: pass\r\n" not in board.transcript and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)

    seen = []
    result = flash(board.port, "sim", progress=lambda done, total, path: seen.append((done, total, path)))

    # Every file on the board is what the host compiled or generated, byte for byte.
    expected = {f.target: f.sha256 for f in result.files}
    on_board = files_on(root)
    assert on_board == dict(expected, **{"pump/keep.txt": on_board["pump/keep.txt"]})
    assert {f.target for f in build("sim")} == {t for _, t in board_files("sim")} | {BOOT_FILE}
    # Loaded into RAM, the modules are compiled without their line numbers (heap on the board).
    stripped = build("sim", line_numbers=False)[:-1]
    assert {f.target: f.sha256 for f in stripped}.items() <= expected.items()
    assert sum(len(f.data) for f in stripped) < sum(len(f.data) for f in build("sim")[:-1])
    assert not [p for p in on_board if p.endswith(".py") and p != BOOT_FILE]  # no source but main.py
    assert sorted(result.removed) == ["firmware/app.py", "hal/old", "hal/old/gone.mpy"]
    # The config names the board; the manifest holds every copied file but itself and the config.
    cfg = json.loads((root / CONFIG_FILE).read_text())
    assert cfg["board"] == "sim" and cfg["args"] == ["--board", "sim", "--storage", "pump"]
    assert cfg["manifest"] == MANIFEST_FILE and cfg["mpy_arch"] == "x64"
    lines = (root / MANIFEST_FILE).read_text().splitlines()
    listed = dict(reversed(line.split("  ", 1)) for line in lines)
    key_file = f"pump/{keyring.PROVISION_FILE}"
    assert listed == {t: h for t, h in expected.items() if t not in (CONFIG_FILE, MANIFEST_FILE, key_file)}
    # The key file holds the keys, which the host saved before writing them.
    assert (root / key_file).read_bytes() == config.provisioning_file(result.keys)
    assert result.keys_saved_in == config.config_path()
    assert config.load_keys(result.keys.device_id) == result.keys
    assert result.keys.device_id.startswith("sim-")
    assert result.platform == "linux" and result.reset.startswith("none")
    assert (result.code, result.code_note) == (
        "files",
        "its MicroPython has no ROMFS: the code is loaded into RAM, compiled without line numbers (heap there): "
        "a failure names its file and function",
    )
    # Progress: rising to the total, naming each file as it is copied.
    assert seen[-1][0] == seen[-1][1] == result.bytes
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))
    assert {p for _, _, p in seen} == set(expected)

    # Power on: the pump boots from the flashed files alone, provisioned with the keys.
    with boot(root) as (proc, port):
        line = proc.stderr.readline().decode()
        assert line.startswith("pump ready: board sim"), line + proc.stderr.read().decode()
        with Pump(port, keys=result.keys) as pump:
            info = pump.hello()
            assert (info.board, info.device_id) == ("sim", result.keys.device_id)
            assert pump.status().mode == "stopped"
            assert pump.set_rate("0.5 mL/day").rate_nl_per_day == 500_000  # the clinician key works
    assert (root / key_file).read_bytes() == b""  # taken into the key store at boot, as provisioning does
    assert (root / "pump" / "keep.txt").exists()


def test_pumpctl_flash_shows_a_progress_bar_on_a_terminal_and_says_what_it_did(board, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli.main(["--port", board.port, "flash", "--board", "sim"]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    # Every module, main.py, the manifest, the config and the keys (the count is checked file by file above).
    assert f"flashed board sim on {board.port}: {len(build('sim')) + 3} files" in out and "verified by SHA-256" in out
    device_id = out.split("device id", 1)[1].split()[0]
    assert config.load_keys(device_id) is not None
    assert "\r  [" in err and "firmware/app.mpy" in err
    assert f"[{'#' * 30}] 100%" in err.rstrip().rsplit("\r", 1)[-1]
    assert (board.root / BOOT_FILE).exists()
    # Flashed again, for scripts: nothing stale to remove, and the keys are not in what it prints.
    assert cli.main(["--json", "--port", board.port, "flash", "--board", "sim"]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["board"] == "sim" and data["removed"] == [] and err == ""
    assert data["key_file"] == f"pump/{keyring.PROVISION_FILE}" and data["key_file"] not in data["files"]
    assert data["files"]["firmware/app.mpy"] == files_on(board.root)["firmware/app.mpy"]
    assert data["device_id"] != device_id and config.load_keys(data["device_id"]) is not None


def flash_error(port, capsys, *extra, **kwargs) -> str:
    """flash()'s FlashError message, after checking that pumpctl says the same, exits 3, no traceback."""
    with pytest.raises(FlashError) as caught:
        flash(port, "sim", timeout=0.5, **kwargs)
    code = cli.main(["--port", port, "--timeout", "0.5", "flash", "--board", "sim", *extra])
    err = capsys.readouterr().err
    assert code == cli.EXIT_LINK, err
    assert err.startswith("pumpctl: ") and "Traceback" not in err, err
    return str(caught.value)


def test_a_port_that_does_not_exist(capsys):
    message = flash_error("/dev/ttyNO-SUCH-PORT", capsys)
    assert message.startswith("no such port /dev/ttyNO-SUCH-PORT")


def test_a_port_another_program_holds(capsys):
    master, slave = _raw_pty()
    port = os.ttyname(slave)
    try:
        with serial.Serial(port, exclusive=True):  # as pumpctl or mpremote hold a port
            message = flash_error(port, capsys)
    finally:
        os.close(master)
        os.close(slave)
    assert message.startswith(f"port {port} is busy: another program holds it")


def test_a_port_with_nothing_answering(capsys):
    master, slave = _raw_pty()
    try:
        started = time.monotonic()
        message = flash_error(os.ttyname(slave), capsys)
        assert time.monotonic() - started < 5
    finally:
        os.close(master)
        os.close(slave)
    assert "no MicroPython REPL on" in message and "within 0.5 s (it answered nothing)" in message


def test_a_port_answering_garbage(capsys):
    master, slave = _raw_pty()
    stop = threading.Event()

    def babble():  # answers everything with a line of noise, as a device that is not MicroPython might
        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0]:
                os.read(master, 1024)
                os.write(master, b"\xff\xfe?? ERR 42 unknown command\r\n")

    thread = threading.Thread(target=babble, daemon=True)
    thread.start()
    try:
        message = flash_error(os.ttyname(slave), capsys)
    finally:
        stop.set()
        thread.join(2)
        os.close(master)
        os.close(slave)
    assert "no MicroPython REPL on" in message and "ERR 42 unknown command" in message


def test_a_copy_that_reads_back_wrong_names_the_file_and_leaves_no_boot_file(board, capsys, mocker):
    real = flash_module.device_hashes

    def damaged(device, paths):  # a fault that cannot be made real: the board reads app.mpy back wrong
        got = real(device, paths)
        if "firmware/app.mpy" in got:
            got["firmware/app.mpy"] = "0" * 64
        return got

    mocker.patch.object(flash_module, "device_hashes", side_effect=damaged)
    message = flash_error(board.port, capsys)
    assert message.startswith("firmware/app.mpy on the board does not match what was sent (sha256 0000")
    assert "flash again" in message
    assert not (board.root / BOOT_FILE).exists()  # it will not boot a firmware that failed its check
    assert not (board.root / CONFIG_FILE).exists()


def test_a_board_of_another_architecture_is_refused(board, monkeypatch):
    real = flash_module.board_constant
    monkeypatch.setattr(
        flash_module, "board_constant", lambda b, name, *d: "armv6m" if name == "MPY_ARCH" else real(b, name, *d)
    )
    with pytest.raises(FlashError, match=r"is MicroPython for x64, but board sim is built for armv6m: is --board"):
        flash(board.port, "sim")
    assert not (board.root / "firmware").exists()  # refused before anything was written


def test_an_unknown_board_is_a_usage_error(capsys):
    with pytest.raises(UsageError, match=r"no board 'nope': the boards are .*sim"):
        board_files("nope")
    with pytest.raises(SystemExit) as exited:
        cli.main(["--port", "/dev/null", "flash", "--board", "nope"])
    assert exited.value.code == cli.EXIT_USAGE
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_reflash_a_board_running_the_pump_firmware_after_it_leaves_for_its_repl(board, tmp_path):
    # The pump firmware turns Ctrl-C off (frames may hold 0x03), so mpremote cannot interrupt it:
    # flash asks it over the link, with its clinician key, to leave for the REPL (SERVICE), which
    # a stopped pump does and a dosing one refuses.
    first = flash(board.port, "sim", timeout=5)
    board.stop()
    root = board.root
    with boot(root, repl_after=True) as (proc, port):
        assert b"pump ready" in proc.stderr.readline()
        with Pump(port, keys=first.keys) as pump:
            pump.set_rate("0.5 mL/day")
        with pytest.raises(FlashError, match=r"cannot be flashed now: the pump is continuous: stop it first"):
            flash(port, "sim", timeout=5)
        with Pump(port, keys=first.keys) as pump:
            assert pump.status().mode == "continuous"  # the refusal changed nothing
            pump.stop()
        second = flash(port, "sim", timeout=5)
        assert second.keys.device_id != first.keys.device_id  # a fresh pump identity, keys in the config
        assert files_on(root)[BOOT_FILE] == hashlib.sha256(build("sim")[-1].data).hexdigest()
    # The pump logged that it left, in its saved state, before it went.
    with boot(root) as (proc, port):
        assert b"pump ready" in proc.stderr.readline()
        with Pump(port, keys=second.keys) as pump:
            texts = [e.text for e in pump.events()]
    assert any("left for the board's REPL" in t for t in texts), texts


# A stand-in for a pump that has answered SERVICE and is still saving and ending its tasks: like
# the pump it has turned Ctrl-C off and reads the line itself, dropping what comes, for 2 s; then
# it returns and the board is at its REPL. On the emulated Pico the real pump took long enough to
# eat the raw-REPL request of a flash that followed at once.
SLOW_TO_LEAVE = """
import micropython, select, sys, time
micropython.kbd_intr(-1)
poll = select.poll()
poll.register(sys.stdin, select.POLLIN)
start = time.ticks_ms()
while time.ticks_diff(time.ticks_ms(), start) < 2000:
    if poll.poll(20):
        sys.stdin.buffer.read(1)
micropython.kbd_intr(3)
"""


@pytest.mark.parametrize("wait_first", [False, True])
def test_flash_reaches_the_repl_of_a_board_whose_pump_is_slow_to_leave(tmp_path, wait_first):
    from pumpctl.board_repl import Device, wait_for_repl

    (tmp_path / BOOT_FILE).write_text(SLOW_TO_LEAVE)
    with boot(tmp_path, repl_after=True) as (_proc, port):
        if not wait_first:  # what flash did: the raw-REPL request goes to the pump, which drops it
            with pytest.raises(FlashError, match="no MicroPython REPL"):
                Device(port, timeout=4)
            return
        assert wait_for_repl(port, 10)  # what it does now
        device = Device(port, timeout=4)
        try:
            assert device.exec("print(6 * 7)", "a sum").strip() == "42"
        finally:
            device.close()


def test_a_pump_that_left_for_the_repl_leaves_it_the_heap():
    # On the emulated Pico, a pump that had left for its REPL (SERVICE) still held 183 KB there (its asyncio
    # tasks held it), in pieces: the flash that followed found no free block of 1 KB to copy a file through.
    # Its task loop now drops the tasks as run() returns (firmware/tasks.py); its modules stay loaded until
    # free_for_the_repl forgets them.
    out = run_unix(MP_DIR / "repl_heap.py", path=(ROOT / "bench" / "mp",)).splitlines()
    held = int(out[0].split()[1])
    word, left, modules = out[1].split(" ", 2)
    assert held - int(left) > 90_000, out  # what forgetting the modules gave back (64-bit port)
    # the pump's modules are gone, their code and all they held, but for main's and the watchdog's
    assert modules == "['firmware.main', 'hal.watchdog']"
    assert int(left) < 45_000, out  # the names it interned stay (a heap's qstrs are never freed)


def test_a_flashed_file_changed_after_the_flash_fails_the_self_test_and_blocks_dosing(board):
    result = flash(board.port, "sim")
    root = board.root
    with boot(root) as (proc, port):  # untouched: the self-test passes and says the files match
        assert b"pump ready" in proc.stderr.readline()
        with Pump(port, keys=result.keys) as pump:
            assert any(
                e.text == "passed: firmware matches its manifest, storage, battery, clock, motor" for e in pump.events()
            )
            assert pump.alarms() == []
    with open(root / BOOT_FILE, "a") as f:
        f.write("# changed after the flash\n")  # still runs: only its hash tells
    with boot(root) as (proc, port):
        assert b"pump ready" in proc.stderr.readline()
        with Pump(port, keys=result.keys) as pump:
            alarms = {a.name: a for a in pump.alarms()}
            assert set(alarms) == {"restart", "self-test failed"}  # it booted before, from its saved state
            alarm = alarms["self-test failed"]
            assert (alarm.priority, alarm.active) == ("high", True)
            assert alarm.text == f"self-test failed: firmware: {BOOT_FILE} differs from the manifest"
            assert any(e.text == f"FAILED: firmware: {BOOT_FILE} differs from the manifest" for e in pump.events())
            with pytest.raises(PumpRefused, match="the power-on self-test failed .*main.py differs"):
                pump.set_rate("0.5 mL/day")
            pump.ack_alarm()
            assert [a.name for a in pump.alarms()] == ["self-test failed"]  # acknowledged, still failed
            assert pump.status().mode == "stopped"


# -- a board whose MicroPython has a ROMFS partition ------------------------------------------------------------------

# The unix port has no flash to hold a ROMFS partition (it has vfs.VfsRom, not vfs.rom_ioctl), so the board is given
# one: a `vfs` in sys.modules that answers vfs.rom_ioctl as a port with a memory-mapped partition does (rp2, stm32:
# 1 partitions, 2 the partition as a buffer, 3 erase, 4 write, 5 done, 6 its erase block) and, at 5, keeps the
# partition in romfs0.img, the board's flash chip. Everything else (VfsRom, mount) is the real vfs.
_ROMFS_BOARD = """\
import sys
import vfs as _vfs
class _RomBoard:
    def __init__(self, size, block, damage):
        self.part = bytearray(b'\\xff' * size)
        self.block = block
        self.damage = damage
        self.VfsRom = _vfs.VfsRom
        self.mount = _vfs.mount
        self.umount = _vfs.umount
    def rom_ioctl(self, op, *a):
        if op == 1:
            return 1
        if op == 2:
            return memoryview(self.part) if a[0] == 0 else -19
        if op == 3:
            off, n = (a[1], a[2]) if len(a) == 3 else (0, a[1])
            if off %% self.block or off + n > len(self.part):
                return -22
            self.part[off:off + n] = b'\\xff' * n
            return 16
        if op == 4:
            off, buf = a[1], a[2]
            self.part[off:off + len(buf)] = buf
            if self.damage and off == 0:
                self.part[100] ^= 1  # a bit the flash did not keep
            return 0
        if op == 5:
            with open('romfs0.img', 'wb') as f:
                f.write(self.part)
            return 0
        if op == 6:
            return self.block
        return -22
sys.modules['vfs'] = _RomBoard(%d, %d, %r)
"""


def give_romfs(board: UnixBoard, size: int, block: int = 4096, damage: bool = False) -> None:
    from pumpctl.board_repl import Device

    device = Device(board.port, 5.0)
    try:
        device.exec(_ROMFS_BOARD % (size, block, damage), "giving the board a ROMFS partition")
    finally:
        device.close()


def boot_from_romfs(root: Path):
    """As boot(), on a board that mounts its ROMFS partition (romfs0.img) at /rom at power-up, /rom on its path."""
    start = (
        "import vfs, sys\n"
        "vfs.mount(vfs.VfsRom(open('romfs0.img', 'rb').read()), '/rom')\n"
        "sys.path.append('/rom')\n"
        f"exec(open({BOOT_FILE!r}).read())\n"
    )
    return boot(root, argv=("-c", start))


def test_a_board_with_a_romfs_partition_gets_its_code_there_and_boots_from_flash(board, capsys):
    root = board.root
    give_romfs(board, 256 * 1024)
    first = flash(board.port, "sim", romfs=False)  # as files first, as a board flashed before ROMFS was used
    assert first.code == "files"
    assert first.code_note.startswith("asked for files: the code is loaded into RAM, compiled without line numbers")
    assert (root / "firmware" / "app.mpy").exists()

    assert cli.main(["--port", board.port, "flash", "--board", "sim"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "  code        in ROMFS: a " in out and "-byte ROMFS image in the board's 262,144-byte partition" in out
    assert "files and folders of the firmware (the code is in ROMFS)" in out
    result_keys = config.load_keys(next(line.split()[2] for line in out.splitlines() if "device id" in line))

    # The image on the board's flash is the one mpremote's builder makes of the compiled modules, and nothing of
    # the firmware is left on the filesystem, where it would come before /rom on the path.
    modules = build("sim")[:-1]
    image = romfs_image(modules)
    written = (root / "romfs0.img").read_bytes()
    assert written[: len(image)] == image and set(written[len(image) :]) <= {0, 0xFF}
    assert not [p for p in ("firmware", "hal", "boards") if (root / p).exists()]
    assert sorted(files_on(root)) == sorted(
        [BOOT_FILE, CONFIG_FILE, MANIFEST_FILE, f"pump/{keyring.PROVISION_FILE}", "romfs0.img"]
    )
    # The manifest names each module where the board reads it: in the image, at /rom.
    listed = dict(reversed(line.split("  ", 1)) for line in (root / MANIFEST_FILE).read_text().splitlines())
    assert listed == dict({f"/rom/{f.target}": f.sha256 for f in modules}, **{BOOT_FILE: listed[BOOT_FILE]})

    # Power on: it boots from the code in flash, passes its self-test against the manifest, and doses.
    with boot_from_romfs(root) as (proc, port):
        line = proc.stderr.readline().decode()
        assert line.startswith("pump ready: board sim"), line + proc.stderr.read().decode()
        with Pump(port, keys=result_keys) as pump:
            assert any(
                e.text == "passed: firmware matches its manifest, storage, battery, clock, motor" for e in pump.events()
            )
            assert pump.set_rate("0.5 mL/day").rate_nl_per_day == 500_000


def test_a_romfs_partition_the_image_does_not_fit_gets_files_and_says_why(board):
    give_romfs(board, 64 * 1024)
    result = flash(board.port, "sim")
    assert result.code == "files" and result.romfs_bytes == 0
    assert "is larger than the board's ROMFS partition (65,536 bytes): the code is loaded into RAM" in result.code_note
    assert (board.root / "firmware" / "app.mpy").exists() and not (board.root / "romfs0.img").exists()


def test_a_romfs_image_that_reads_back_wrong_fails_the_flash_and_leaves_no_boot_file(board):
    give_romfs(board, 256 * 1024, damage=True)
    with pytest.raises(FlashError, match="the ROMFS image on the board does not match what was sent"):
        flash(board.port, "sim")
    assert not (board.root / BOOT_FILE).exists()


# -- frozen into a MicroPython build ---------------------------------------------------------------------------


class ManifestRun:
    """A freeze manifest run as MicroPython's tools/manifestfile.py runs it (its include() and module(),
    paths relative to the manifest's folder; $(VAR) paths are the build's, kept as written)."""

    def __init__(self, manifest: Path):
        self.folder = manifest.parent
        self.included: list[str] = []
        self.frozen: dict[str, Path] = {}  # the path a module is frozen as -> its file
        exec(manifest.read_text(), {"include": self.included.append, "module": self.module})

    def module(self, module_path: str, base_path: str = ".", opt=None) -> None:
        assert module_path.endswith(".py") and opt is None  # as written: line numbers kept in tracebacks
        self.frozen[module_path] = (self.folder / base_path / module_path).resolve()


@pytest.mark.parametrize("board_name", frozen.frozen_boards())
def test_each_real_board_has_a_freeze_manifest_that_freezes_what_flash_copies(board_name):
    """boards/manifests/BOARD.py freezes exactly the modules `pumpctl flash --board BOARD` copies (each
    existing, frozen under the path it is imported by) after the port's own manifest (asyncio)."""
    manifest = frozen.MANIFESTS / f"{board_name}.py"
    copied = {source.relative_to(ROOT).as_posix(): source for source, _target in board_files(board_name)}
    assert manifest.read_text() == frozen.freeze_manifest(board_name, list(copied)), "out of date: make manifests"
    run = ManifestRun(manifest)
    assert run.included == [frozen.PORT_MANIFEST]
    assert run.frozen == copied
    assert all(path.is_file() for path in run.frozen.values())


@pytest.fixture
def frozen_board(tmp_path):
    """A board whose MicroPython has the sim board's firmware frozen in: its compiled modules in a folder
    on its path beside the filesystem (the unix port's own .frozen cannot be added to here)."""
    frozen = tmp_path / "frozen"
    for f in build("sim")[:-1]:
        (frozen / f.target).parent.mkdir(parents=True, exist_ok=True)
        (frozen / f.target).write_bytes(f.data)
    b = UnixBoard(tmp_path / "board", path=f".frozen:{frozen}")
    b.frozen = frozen
    yield b
    b.stop()


def test_flash_frozen_copies_no_module_onto_a_board_with_the_firmware_frozen_in_and_it_boots(frozen_board, capsys):
    root = frozen_board.root
    (root / "firmware").mkdir()  # a flash of files before: it would come first on the path
    (root / "firmware" / "app.mpy").write_bytes(b"M")
    assert cli.main(["--port", frozen_board.port, "flash", "--board", "sim", "--frozen"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    version = flash_module.module_constant(ROOT / "firmware" / "app.py", "FIRMWARE_VERSION")
    assert f"  code        frozen in: firmware {version} is frozen into its MicroPython: the code runs" in out
    assert "files and folders of the firmware (the code is frozen in)" in out
    # On its filesystem: main.py, the config, the manifest (main.py's hash alone) and the keys; no module.
    assert sorted(files_on(root)) == sorted([BOOT_FILE, CONFIG_FILE, MANIFEST_FILE, f"pump/{keyring.PROVISION_FILE}"])
    listed = [line.split("  ", 1)[1] for line in (root / MANIFEST_FILE).read_text().splitlines()]
    assert listed == [BOOT_FILE]
    keys = config.load_keys(next(line.split()[2] for line in out.splitlines() if "device id" in line))
    # Power on: the pump runs the frozen modules, passes its self-test and doses.
    with boot(root, frozen=frozen_board.frozen) as (proc, port):
        line = proc.stderr.readline().decode()
        assert line.startswith("pump ready: board sim"), line + proc.stderr.read().decode()
        with Pump(port, keys=keys) as pump:
            assert any(e.text.startswith("passed: firmware matches its manifest") for e in pump.events())
            assert pump.set_rate("0.5 mL/day").rate_nl_per_day == 500_000


def test_flash_frozen_refuses_a_board_without_it_or_with_another_version_and_changes_nothing(board, tmp_path):
    with pytest.raises(FlashError, match="has no pump firmware frozen in: build it with boards/manifests/sim.py"):
        flash(board.port, "sim", frozen=True)
    assert files_on(board.root) == {}
    older = tmp_path / "older"
    (older / "firmware").mkdir(parents=True)
    (older / "firmware" / "app.py").write_text('FIRMWARE_VERSION = "0.0.1"\n')
    other = UnixBoard(tmp_path / "other", path=f".frozen:{older}")
    try:
        version = flash_module.module_constant(ROOT / "firmware" / "app.py", "FIRMWARE_VERSION")
        with pytest.raises(FlashError, match=f"has firmware 0.0.1 frozen in, this pumpctl flashes {version}"):
            flash(other.port, "sim", frozen=True)
        assert files_on(other.root) == {}
    finally:
        other.stop()


@pytest.mark.micropython
def test_a_running_pumpctl_sim_is_refused_as_a_flash_target_and_runs_on(sim, capsys):
    """`flash --board sim` given the port of a running simulator used to end its process (SERVICE) and then say
    "no such port": it is refused before anything is sent, in words, and the simulator goes on."""
    code = cli.main(["--port", sim.port, "flash", "--board", "sim"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_LINK, err
    assert f"{sim.port} is a simulator that pumpctl sim runs" in err and "nothing to flash" in err
    assert sim.running()
    with sim.pump() as pump:
        assert pump.hello().board == "sim"
    from pumpctl import Simulator
    from pumpctl.sim import running_simulator

    with Simulator() as other:
        assert running_simulator(other.port) == other.proc.pid
    assert running_simulator(other.port) is None  # its record left with it
