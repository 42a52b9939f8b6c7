"""A simulated analytical balance that weighs what the simulated pump delivered.

It speaks MT-SICS on the master side of its own pty; a host opens the slave
side (a tty path such as /dev/pts/5) with pyserial, as it would open the
USB serial port of a real balance, and reads it with MtSicsBalance:

    with Simulator(tally=tally) as sim, SimulatedBalance(tally, step_volume_pl=52_083) as scale:
        with MtSicsBalance(scale.port) as balance:
            balance.tare()
            ...                       # run the pump
            delivered_g = balance.read(stable=True).mass_g

On the pan: a vessel, and the fluid the motor moved. The motor's step total
is read from its tally file (hal/sim/tally.py) at every request. A
peristaltic pump does not deliver evenly within a roller pulse, so after n
steps the volume out is

    V(n) = s * (n + depth * P / (2 pi) * sin(2 pi n / P))      (pL)

with s the step volume and P the steps per pulse: over whole pulses it is
exactly s * n, and the step-to-step increment s * (1 + depth * cos(2 pi n / P))
swings by +-depth. The mass is vessel + density * V (1 mL = 1e9 pL), plus
Gaussian noise, rounded (half up) to the readability, less the zero point
and the tare.

Commands served: SI, S, SIR (a reading every 0.1 s of wall time until the
next command), Z and ZI (zero), T and TI (tare), TAC (clear the tare), I4
(serial number), @ (reset: clears the tare, answers as I4). Anything else:
ES. Empty lines are ignored. A reading is stable (`S S`) once the step total
has not changed for settle_s; S, Z and T wait for that up to STABLE_TIMEOUT_S,
then answer `S I`, `Z I`, `T I`. Above capacity: `S +` (`Z +`, `T +`).
Assumed rather than checked against the reference manual: the ZI reply
`ZI S` / `ZI D`, the TI reply `TI S  <tare> g` and TAC's `TAC A`.
"""

from __future__ import annotations

import math
import os
import random
import select
import threading
import time
import tty
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from .errors import SimulatorError

STEP_RADIX = 2**29  # the tally's two words: total = hi * STEP_RADIX + lo (hal/sim/tally.py)
TALLY_RECORD = 22  # bytes: "%010d %010d\n"
PL_PER_ML = 10**9


def read_steps(path: Path) -> int | None:
    """The step total in a tally file: 0 if it is missing or empty, None if it
    holds no whole record (caught mid-rewrite)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    if not data:
        return 0
    if len(data) != TALLY_RECORD or data[10:11] != b" " or data[21:22] != b"\n":
        return None
    try:
        return int(data[0:10]) * STEP_RADIX + int(data[11:21])
    except ValueError:
        return None


class SimulatedBalance:
    """An MT-SICS analytical balance on a pty weighing the simulated pump's output (see the header)."""

    STABLE_TIMEOUT_S = 1.0  # S, Z and T give up waiting for stability after this
    STREAM_INTERVAL_S = 0.1  # SIR: one reading this often
    POLL_S = 0.02  # how often the server looks at the tally while waiting for stability

    def __init__(
        self,
        tally_path: str | os.PathLike,
        step_volume_pl: int,
        density_g_per_ml: float = 0.9982,
        readability_g: Decimal = Decimal("0.00001"),
        noise_sd_g: float = 0.00002,
        pulsation_depth: float = 0.3,
        steps_per_pulse: int = 400,
        vessel_g: Decimal = Decimal("25.00000"),
        capacity_g: Decimal = Decimal("220"),
        seed: int = 1,
        settle_s: float = 0.1,
    ):
        """settle_s: wall time the step total must stay unchanged for a stable reading; 0 for a
        simulated pump whose time moves only when the host advances it (between two advances no
        drop falls: the pan is at rest)."""
        self.settle_s = settle_s
        self.tally_path = Path(tally_path)
        self.step_volume_pl = step_volume_pl
        # The shortest decimal of the float (0.9982, not its binary expansion):
        # without noise or pulsation the mass is then exact.
        self.density_g_per_ml = Decimal(repr(density_g_per_ml))
        self.readability_g = Decimal(readability_g)
        self.noise_sd_g = noise_sd_g
        self.pulsation_depth = pulsation_depth
        self.steps_per_pulse = steps_per_pulse
        self.vessel_g = Decimal(vessel_g)
        self.capacity_g = Decimal(capacity_g)
        self.serial = f"SIM{seed:07d}"
        self._random = random.Random(seed)
        self.zero_g = Decimal(0)  # the gross reading that shows as 0 (set by Z)
        self.tare_g = Decimal(0)  # taken off above the zero point (set by T, cleared by TAC and @)
        self._steps = 0
        self._changed_at = -math.inf  # when the step total last changed
        self._streaming = False
        self._next_stream_at = 0.0
        self.port: str | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def __enter__(self) -> SimulatedBalance:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> SimulatedBalance:
        if self._thread is not None:
            raise SimulatorError("the simulated balance is already running")
        master, slave = os.openpty()
        # The host side starts raw, like a USB serial port; keeping it open
        # here lets the pty live while hosts come and go.
        tty.setraw(slave)
        os.set_blocking(master, False)  # never stall on a host that stopped reading (SIR)
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        self._steps = self._read_steps()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="simulated balance", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    # The physics.

    def volume_pl(self, steps: int) -> Decimal:
        """V(n): the fluid out after n steps, with the roller's pulsation."""
        exact = Decimal(self.step_volume_pl * steps)
        if not self.pulsation_depth:
            return exact
        period = self.steps_per_pulse
        phase = 2 * math.pi * (steps % period) / period  # the remainder keeps the float exact for large n
        ripple = self.step_volume_pl * self.pulsation_depth * period / (2 * math.pi) * math.sin(phase)
        return exact + Decimal(ripple)

    def true_mass_g(self) -> Decimal:
        """What is on the pan now (vessel and fluid), in grams: no noise, no rounding, no zero or tare."""
        return self._true_mass_g(self._read_steps())

    def _true_mass_g(self, steps: int) -> Decimal:
        return self.vessel_g + self.density_g_per_ml * self.volume_pl(steps) / PL_PER_ML

    def _gross_g(self) -> Decimal:
        """One measurement of the load, noise included, on the readability grid."""
        mass_g = self._true_mass_g(self._observe())
        if self.noise_sd_g:
            mass_g += Decimal(self._random.gauss(0.0, self.noise_sd_g))
        return mass_g.quantize(self.readability_g, rounding=ROUND_HALF_UP)

    def _read_steps(self) -> int:
        steps = read_steps(self.tally_path)
        return self._steps if steps is None else steps  # a record caught mid-rewrite: keep the last

    def _observe(self) -> int:
        """The step total now; remembers when it last changed (for stability)."""
        steps = self._read_steps()
        if steps != self._steps:
            self._steps = steps
            self._changed_at = time.monotonic()
        return steps

    def _stable(self) -> bool:
        self._observe()
        return time.monotonic() - self._changed_at >= self.settle_s

    def _wait_stable(self) -> bool:
        deadline = time.monotonic() + self.STABLE_TIMEOUT_S
        while not self._stable():
            if time.monotonic() >= deadline or self._stopping.is_set():
                return False
            time.sleep(self.POLL_S)
        return True

    # MT-SICS.

    def _format_g(self, mass_g: Decimal) -> str:
        return f"{mass_g:>10f} g"  # the value right-aligned in 10 characters, as MT-SICS prints it

    def _weight_reply(self, head: str, stable: bool) -> str:
        gross_g = self._gross_g()
        if gross_g > self.capacity_g:
            return f"{head} +"
        return f"{head} {'S' if stable else 'D'} {self._format_g(gross_g - self.zero_g - self.tare_g)}"

    def _zero(self, head: str, stable: bool) -> str:
        gross_g = self._gross_g()
        if gross_g > self.capacity_g:
            return f"{head} +"
        self.zero_g, self.tare_g = gross_g, Decimal(0)
        return "Z A" if head == "Z" else f"ZI {'S' if stable else 'D'}"

    def _tare(self, head: str, stable: bool) -> str:
        gross_g = self._gross_g()
        if gross_g > self.capacity_g:
            return f"{head} +"
        self.tare_g = gross_g - self.zero_g
        return f"{head} {'S' if stable else 'D'} {self._format_g(self.tare_g)}"

    def answer(self, command: str) -> str | None:
        """The reply line (without CR LF) to one command; None for SIR, which streams."""
        if command == "SI":
            return self._weight_reply("S", self._stable())
        if command == "S":
            return self._weight_reply("S", True) if self._wait_stable() else "S I"
        if command == "SIR":
            self._streaming = True
            self._next_stream_at = time.monotonic()
            return None
        if command == "Z":
            return self._zero("Z", True) if self._wait_stable() else "Z I"
        if command == "ZI":
            return self._zero("ZI", self._stable())
        if command == "T":
            return self._tare("T", True) if self._wait_stable() else "T I"
        if command == "TI":
            return self._tare("TI", self._stable())
        if command == "TAC":
            self.tare_g = Decimal(0)
            return "TAC A"
        if command in ("I4", "@"):
            if command == "@":
                self.tare_g = Decimal(0)
            return f'I4 A "{self.serial}"'
        return "ES"

    # The pty.

    def _send(self, line: str) -> None:
        try:
            os.write(self._master, line.encode("latin-1") + b"\r\n")
        except (BlockingIOError, OSError):
            pass  # nobody reading and the pty full: the line is lost, as on a real cable

    def _serve(self) -> None:
        pending = bytearray()
        while not self._stopping.is_set():
            wait_s = 0.05
            if self._streaming:
                wait_s = max(0.0, min(wait_s, self._next_stream_at - time.monotonic()))
            ready, _, _ = select.select([self._master], [], [], wait_s)
            if ready:
                try:
                    pending += os.read(self._master, 4096)
                except (BlockingIOError, OSError):
                    time.sleep(0.01)
                while (end := pending.find(b"\n")) >= 0:
                    command = pending[:end].decode("latin-1").strip()
                    del pending[: end + 1]
                    if not command:
                        continue
                    self._streaming = False  # any command ends SIR
                    reply = self.answer(command)
                    if reply is not None:
                        self._send(reply)
            if self._streaming and time.monotonic() >= self._next_stream_at:
                self._send(self._weight_reply("S", self._stable()))
                self._next_stream_at = time.monotonic() + self.STREAM_INTERVAL_S
