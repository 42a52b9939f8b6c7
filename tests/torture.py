"""The torture test: power cuts at random moments while the pump doses, takes boluses, is programmed and is refilled.

The real firmware runs on the MicroPython unix port with the sim board, its state in a folder (--storage) and its
motor's step total in a tally file that outlives the process (--tally, hal/sim/tally.py). A seeded random.Random
drives a workload: continuous basal programs (morphine at 10 or 20 mg/mL, 1 to 14 mg/day, or saline with a volume
basal; a change of blend is a refill and carries a fill line), clinician boluses on top of the basal, stops, runs of
pump time from seconds to hours and acknowledgements of the restart alarm. Each life of the firmware ends in a cut:

  storage  the sim storage is armed (--cut-after-bytes N, N random): the process SIGKILLs itself when the N-th
           byte is written, so a save is torn at any byte: at boot, inside a command, while dosing.
  sigkill  the host kills the process (SIGKILL): idle after a reply, while it doses a run of pump time (after a
           random wall-clock delay), or a few milliseconds after sending a commit, stop or acknowledgement whose
           reply it never reads.

Then the firmware starts again on the same folder (again, while a cut lands in the restart's own saves) and every
invariant is checked (Episode._check_restart, Episode._check; the checks on the motor and the counts also run after
every run of pump time):

  readable  it starts, answers, resumes at the pump time R of a save with the restart alarm and no bolus, and logs
            "resumed at its last save; up to N reserved steps ...".
  program   its program (running lines and program CRC) is the last one durably committed: a commit or stop whose
            reply the host received; for one whose reply never came, the old or the new one (the new one only if R
            is the time it was sent at). R is at or after the last durable command and not after the cut.
  over      the motor's real total over all lives (the tally files) never exceeds the exact prescription on the
            pump's own timeline: floor(V(t) / step volume), V the exact integral of the committed rates from each
            commit's effective time, truncated at each restart's R (a running bolus ends there), a rate of
            r nL/day giving r pL per 86.4 s. Until the steps a restart counts as delivered without moving them
            (N) have all come due, the motor may be ahead of V(t) by the part of them not yet due; so the check is
            motor <= floor(V(t) / step) + max(0, N - steps counted since the restart): exactly motor <= prescription
            as soon as they have come due.
  short    the shortfall, prescription less motor, is at most the sum over the restarts of (N_i + 1).
  count    the pump's own count is the prescription less at most one partial step per cut: 0 <= P - count <= cuts.
  log      every event the host read before a cut with a time <= R is there after the restart, at its index,
            unchanged.

A failed readable or program check (or a crash) ends the episode, whose model of the pump is then wrong; an
over-delivery is counted, taken off the motor's total, and the episode goes on, so a long run counts how often cuts
over-deliver. Episodes run in fresh folders, seeded "SEED-INDEX", several at once in worker processes (--jobs).

Policies. "any" cuts anywhere. "settled" makes each cut only after the restart before it has settled: the steps it
counted as delivered have come due and a save after them is complete (its storage cuts are armed past the restart's
saves and the first one after it). It is what a pump sees when no two cuts come close together.

The model is exact and small: integer volumes (nL/day x us), one basal rate and at most one bolus at a time. No
timing is asserted. Run as a script for the long form (`make torture`):

    python tests/torture.py --cuts 2000 --seed 7
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import random
import re
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script, tests/ is first on the path, where tests/firmware and tests/hal (their tests) would
# hide the firmware and hal packages: the repository goes first.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pumpctl import LinkError, Pump, PumpRefused, Simulator, SimulatorError, program_text, program_words, schema  # noqa: E402

from firmware import codec, eventlog, framing  # noqa: E402
from hal.sim.tally import read_tally  # noqa: E402

# Log entries the pump keeps only until the next save (eventlog.py): sessions and security refusals,
# which a flood of frames could otherwise turn into a flood of flash writes.
NOT_DURABLE = (eventlog.EV_SESSION, eventlog.EV_SECURITY)
S = 1_000_000
MIN = 60 * S
HOUR = 60 * MIN
STEP_PL = 52_083  # boards/sim.py
U_PER_STEP = 86_400_000 * STEP_PL  # volume in u = nL/day x us: a step is STEP_PL pL = this many u
RESERVE_MAX_STEPS = 384  # firmware/app.py
KILLED = -9  # a process ended by SIGKILL, as subprocess reports it
# "no step was reserved" when the pump was stopped at its save (issue 24): 0 reserved steps.
_RESUMED = re.compile(r"resumed at its last save; (?:up to (\d+) reserved steps|no step was reserved)")
# Timing margins of the runner, in wall-clock seconds. They bound waits on another process, so they must hold on a
# machine whose cores are all busy (make torture beside a build): a margin that is too tight makes a slow reply look
# like a dead or hung firmware (a false "readable" or "crash" violation), one that is generous only slows a failing
# run down. None of them is a property of the pump: the pump's time is virtual and moves only when told.
START_TIMEOUT_S = 30.0  # the firmware starting on the unix port and answering (10 s is enough on a quiet machine)
REPLY_TIMEOUT_S = 10.0  # one reply on the link, a long SIM_ADVANCE's included (pumpctl's default is 2 s)
EXIT_WAIT_S = 15.0  # a killed process to be reaped, or one whose link broke to end
# How long after a request the SIGKILL lands, drawn uniformly up to these: a cut while dosing a run of pump time, and
# a cut inside a command (before, during or after its save). Not margins: where in the work the cut falls.
DOSING_KILL_DELAY_S = 0.04
COMMAND_KILL_DELAY_S = 0.004
EV_RESTART = 12  # firmware/eventlog.py
# Lines that act once: a refill's, and a bolus's, which stays in the running program only while the bolus runs
# (after a restart never: the restart alarm cancels it).
ONE_SHOT = ("fill", "removed", "bolus", "prime", "bridge")


# -- programs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prog:
    """A program as the harness sent it, with what it means exactly."""

    lines: tuple[str, ...]
    basal: int  # nL/day
    bolus: tuple[int, int] | None  # (rate nL/day, duration us): exact by construction
    drugs: tuple  # the blend it leaves in the reservoir: () for saline, (("morphine", 20),) ...
    kind: str  # basal, refill, bolus

    @property
    def running(self) -> tuple[str, ...]:
        """What running_lines() must show once any bolus has ended, as after every restart."""
        return tuple(ln for ln in self.lines if ln.split(" ", 1)[0] not in ONE_SHOT)

    def crc_after_bolus(self, crc: int, library: str) -> int:
        """The program CRC once its bolus has ended: its bolus line leaves the running program."""
        if self.bolus is None:
            return crc
        lines = [ln for ln in self.lines if ln.split(" ", 1)[0] != "bolus"]
        return program_words.program_crc(program_text.parse_program(lines), library)  # lines in canonical order


STOPPED = Prog((), 0, None, (), "stop")  # the stop command: no program (crc 0); the blend stays


def _mg(hundredths: int) -> str:
    whole, frac = divmod(hundredths, 100)
    return f"{whole}" if not frac else f"{whole}.{frac:02d}".rstrip("0")


class Workload:
    """Random programs within the library's limits (docs/drug-library.md), exact in nL/day."""

    BOLUS_MIN = (5, 10, 15, 20, 30, 45, 60)  # durations dividing 1440 x every bolus volume (multiples of 2.5 uL)
    SALINE_ML = ("0.1", "0.25", "0.5", "1", "1.5", "2")

    def __init__(self, rng: random.Random):
        self.rng = rng

    def basal(self, drugs) -> Prog:
        """A new basal, sometimes a refill (a fill line, maybe a new concentration or saline)."""
        rng = self.rng
        refill = rng.random() < 0.25
        if refill:  # a new blend or the same again: saline now and then, else morphine at 10 or 20 mg/mL
            drugs = () if rng.random() < 0.2 else (("morphine", rng.choice((10, 20))),)
        lines = []
        if drugs:
            conc = drugs[0][1]
            mg = rng.randint(1, 14)
            lines.append(f"drug morphine {conc} mg/mL")
            basal_line, basal = f"basal {mg} mg/day", mg * 1_000_000 // conc
        else:
            ml = rng.choice(self.SALINE_ML)
            lines.append("drug none")
            basal_line, basal = f"basal {ml} mL/day", int(float(ml) * 1_000_000)
        if refill:
            lines.append(f"fill {rng.choice((10, 15, 20))} mL")
        lines.append(basal_line)
        return Prog(tuple(lines), basal, None, drugs, "refill" if refill else "basal")

    def bolus(self, running: Prog) -> Prog:
        """A clinician bolus on top of the running basal, mostly within the rate limits."""
        rng = self.rng
        lines = list(running.running)
        if running.drugs:
            conc = running.drugs[0][1]
            basal_mg_day = running.basal * conc // 1_000_000
            for _ in range(20):  # morphine: bolus <= 1 mg, basal/24 + bolus per hour <= 1.625 mg/h
                hundredths = 5 * rng.randint(1, 20)
                minutes = rng.choice(self.BOLUS_MIN)
                if basal_mg_day / 24 + hundredths / 100 * 60 / minutes <= 1.6:
                    break
            volume_nl = hundredths * 10_000 // conc
            lines.append(f"bolus {_mg(hundredths)} mg over {minutes} min")
        else:
            microlitres = rng.choice((5, 10, 20, 25, 50))
            minutes = rng.choice(self.BOLUS_MIN)
            volume_nl = microlitres * 1000
            lines.append(f"bolus {microlitres} uL over {minutes} min")
        rate = volume_nl * 1440 // minutes
        assert rate * minutes == volume_nl * 1440  # exact: the pump's rounding never comes into it
        return Prog(tuple(lines), running.basal, (rate, minutes * MIN), running.drugs, "bolus")


# -- the prescription on the pump's own timeline ----------------------------------------------------------------


class Timeline:
    """The exact volume the committed programs prescribe, on the pump's timeline (it rewinds at a restart)."""

    def __init__(self):
        self.base_t = 0
        self.base_u = 0  # volume up to base_t, in u (nL/day x us)
        self.basal = 0
        self.bolus = None  # (start, end, rate)

    def volume(self, t: int) -> int:
        assert t >= self.base_t, (t, self.base_t)
        u = self.base_u + self.basal * (t - self.base_t)
        if self.bolus:
            start, end, rate = self.bolus
            lo, hi = max(start, self.base_t), min(end, t)
            if hi > lo:
                u += rate * (hi - lo)
        return u

    def steps(self, t: int) -> int:
        return self.volume(t) // U_PER_STEP

    def change(self, t: int, basal: int, bolus=None, keep=False):
        """From pump time t on: basal, and bolus = (rate, duration) starting at t, or None (any bolus ends);
        keep: the running bolus goes on (the same bolus line committed again)."""
        self.base_u = self.volume(t)
        self.base_t = t
        self.basal = basal
        if not keep:
            self.bolus = None if bolus is None else (t, t + bolus[1], bolus[0])


# -- the run -------------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    cuts: int = 0  # lives that ended in a cut
    survived: int = 0  # cuts after which the next start read its state and passed every check
    storage_cuts: int = 0
    storage_cuts_at_boot: int = 0  # of those, during the restart's own saves
    storage_cuts_in: dict = field(default_factory=dict)  # the others, by what the host was doing
    stopped_restarts: int = 0  # restarts from a save made while stopped: no reserved step, no shortfall from them
    sigkills: int = 0
    sigkill_idle: int = 0
    sigkill_dosing: int = 0
    sigkill_command: int = 0
    uncertain: int = 0  # commands cut before their reply: resolved from the restarted pump
    uncertain_took: int = 0  # of those, the ones that had taken effect
    commits: int = 0
    boluses: int = 0
    refills: int = 0
    stops: int = 0
    acks: int = 0
    advances: int = 0
    refused: int = 0
    pump_time_us: int = 0  # on the final timelines, summed over episodes
    prescribed_steps: int = 0
    moved_steps: int = 0
    max_shortfall: int = 0  # steps
    max_shortfall_bound: int = 0  # the bound at that moment
    max_reserved: int = 0
    over_deliveries: int = 0  # checks where the motor was ahead of the prescription
    max_over: int = 0  # steps
    over_steps: int = 0  # all the over-deliveries together (each taken off the motor's total once found)
    lost_log_entries: int = 0
    violations: list = field(default_factory=list)
    kept: list = field(default_factory=list)  # folders of failed episodes kept for replay (run() keeps the first)
    wall_s: float = 0.0

    def merge(self, other: Figures):
        """Add another run's figures (an episode run elsewhere) into these."""
        if other.max_shortfall > self.max_shortfall:
            self.max_shortfall, self.max_shortfall_bound = other.max_shortfall, other.max_shortfall_bound
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if name in ("max_shortfall", "max_shortfall_bound", "wall_s"):
                continue
            if name.startswith("max_"):
                setattr(self, name, max(mine, value))
            elif isinstance(value, dict):
                for key, n in value.items():
                    mine[key] = mine.get(key, 0) + n
            elif isinstance(value, list):
                mine.extend(value)
            else:
                setattr(self, name, mine + value)

    def add_violation(self, kind: str, text: str, trace):
        self.violations.append((kind, text, list(trace[-30:])))

    def count(self, kind: str) -> int:
        return sum(1 for v in self.violations if v[0] == kind)

    def failed(self) -> bool:
        return bool(self.violations)

    def report(self) -> str:
        nl = self.max_shortfall * STEP_PL / 1000
        by_kind = {}
        for kind, _text, _trace in self.violations:
            by_kind[kind] = by_kind.get(kind, 0) + 1
        out = [
            f"cuts survived:                {self.survived} of {self.cuts}",
            f"  storage cuts (torn saves):  {self.storage_cuts} ({self.storage_cuts_at_boot} during a restart; "
            + ", ".join(f"{n} in {op}" for op, n in sorted(self.storage_cuts_in.items()))
            + ")",
            f"  SIGKILLs:                   {self.sigkills} ({self.sigkill_idle} idle, {self.sigkill_dosing} while "
            f"dosing, {self.sigkill_command} inside a command)",
            f"  commands cut before reply:  {self.uncertain} ({self.uncertain_took} had taken effect)",
            f"workload:                     {self.commits} commits ({self.boluses} boluses, {self.refills} refills), "
            f"{self.stops} stops, {self.acks} acks, {self.advances} runs, {self.refused} refused",
            f"pump time (final timelines):  {self.pump_time_us / HOUR:.1f} h; prescribed {self.prescribed_steps} "
            f"steps, moved {self.moved_steps + self.over_steps}",
            f"max shortfall:                {self.max_shortfall} steps ({nl:.1f} nL), bound there "
            f"{self.max_shortfall_bound} steps; largest reservation {self.max_reserved} steps",
            f"over-deliveries (must be 0):  {self.over_deliveries} (largest {self.max_over} steps = "
            f"{self.max_over * STEP_PL / 1000:.1f} nL; {self.over_steps} steps in all)",
            f"lost committed log entries (must be 0): {self.lost_log_entries}",
            f"invariant violations:         {len(self.violations)} {by_kind if by_kind else ''}",
            f"wall time:                    {self.wall_s:.1f} s",
        ]
        return "\n".join(out)

    def details(self, limit: int = 5) -> str:
        out = []
        for kind, text, trace in self.violations[:limit]:
            out.append(f"[{kind}] {text}\n  last operations:\n    " + "\n    ".join(trace))
        return "\n".join(out)


class Died(Exception):
    """The firmware process ended (a cut): raised where the host notices."""


class Episode:
    """One storage folder, cut again and again: the harness's model of what the pump must hold."""

    def __init__(self, folder: Path, seed: str, figures: Figures, cuts: int, policy: str = "any"):
        self.folder = folder
        self.rng = random.Random(seed)
        self.seed = seed
        self.work = Workload(self.rng)
        self.fig = figures
        self.cuts_wanted = cuts
        self.policy = policy
        self.trace: list[str] = []
        self.timeline = Timeline()
        self.prog = STOPPED  # the last program known durable
        self.prog_crc = 0
        self.drugs: tuple = ()  # the blend in the reservoir as the pump knows it
        self.inflight = None  # (kind, prog, crc, t): a commit or stop sent and not answered
        self.t_now = 0  # pump time, known exactly while the firmware is idle
        self.t_max = 0  # the latest pump time it may have reached (a cut while dosing)
        self.t_durable = 0  # pump time of the last durable point the host knows of
        self.alarm = False  # the restart alarm is latched
        self.moved_before = 0  # motor steps of the lives that ended (their tallies)
        self.bound = 0  # sum over the restarts of (N + 1)
        self.cuts = 0
        self.unchecked = 0  # cuts since the last restart that passed its checks
        self.doing = ""  # what the host is doing: where a storage cut finds it
        self.lives = 0
        self.keys = None  # provisioned at the first life
        self.reserved = 0  # N of the current life
        self.count_at_restart = 0
        self.events: dict[int, tuple] = {}  # index -> (time, code, text): what the host has read
        self.next_event = 0
        self.sim: Simulator | None = None
        self.pump: Pump | None = None
        self.tally: Path | None = None
        self.broken = False

    # -- bookkeeping

    def note(self, text: str):
        self.trace.append(f"life {self.lives} t={self.t_now}: {text}")

    def cut(self, storage: bool, at_boot: bool = False):
        self.fig.cuts += 1
        self.cuts += 1
        self.unchecked += 1
        if storage:
            self.fig.storage_cuts += 1
            self.fig.storage_cuts_at_boot += at_boot
        else:
            self.fig.sigkills += 1

    def violation(self, kind: str, text: str, fatal: bool = True):
        """Record a failed invariant. A fatal one ends the episode: its model of the pump is no longer trusted."""
        self.fig.add_violation(kind, f"seed {self.seed} life {self.lives} cut {self.cuts}: {text}", self.trace)
        self.broken = self.broken or fatal

    # -- lives

    def run(self):
        try:
            self._start_life(cut=None)
            if self.pump is None:
                return
            self._first_program()
            while self.cuts < self.cuts_wanted and not self.broken:
                self._live_and_cut()
                if self.broken:
                    break
                self._restart()
        except Exception:  # the harness met something it does not know: report it with the trace, go on
            self.violation("error", traceback.format_exc())
        finally:
            self._end_process()
        self.fig.pump_time_us += self.t_now
        self.fig.prescribed_steps += self.timeline.steps(self.t_now)
        self.fig.moved_steps += self.moved_before

    def _start_life(self, cut: int | None):
        """Start the firmware on the folder; self.pump is None if it died (a cut) while starting."""
        self.lives += 1
        self.tally = self.folder / f"tally.{self.lives}"
        # Provisioned once, as at flashing: later lives keep the keys they stored.
        self.sim = Simulator(
            start_timeout=START_TIMEOUT_S,
            storage=self.folder / "state",
            cut_after_bytes=cut,
            tally=self.tally,
            keys=self.keys,
            provision=self.keys is None,
        )
        self.keys = self.sim.keys
        try:
            self.sim.start()
        except SimulatorError:
            code = self.sim.proc.returncode if self.sim.proc else None
            if code != KILLED:
                self.violation("readable", f"the firmware did not start (exit {code}):\n{self.sim.stderr_text()}")
            self.pump = None
            return
        self.pump = self.sim.pump(timeout=REPLY_TIMEOUT_S)

    def _end_process(self):
        if self.pump is not None:
            self.pump.close(end_session=False)  # the process may be dead: no one to answer
            self.pump = None
        if self.sim is not None:
            if self.sim.proc is not None and self.sim.proc.poll() is None:
                self.sim.proc.kill()
                self.sim.proc.wait(EXIT_WAIT_S)
            self.sim.stop()
            code = self.sim.proc.returncode if self.sim.proc else None
            self.sim = None
            if code not in (KILLED, None):
                self.violation("crash", f"the firmware exited with {code}")
        if self.tally is not None:
            try:
                self.moved_before += read_tally(self.tally)
            except FileNotFoundError:
                pass
            self.tally.unlink(missing_ok=True)
            self.tally = None

    def _kill(self):
        """SIGKILL now."""
        self.sim.proc.kill()
        self.sim.proc.wait(EXIT_WAIT_S)

    def _died(self) -> bool:
        """After a link error: wait for the process to end; True if a cut killed it."""
        try:
            code = self.sim.proc.wait(EXIT_WAIT_S)
        except Exception:
            self.violation("readable", f"the firmware stopped answering but lives on:\n{self.sim.stderr_text()}")
            return False
        if code != KILLED:
            self.violation("crash", f"the firmware exited with {code}:\n{self.sim.stderr_text()}")
            return False
        return True

    def _first_program(self):
        prog = Prog(
            ("drug morphine 20 mg/mL", "fill 20 mL", "basal 10 mg/day"), 500_000, None, (("morphine", 20),), "refill"
        )
        self._commit(prog)
        self.note(f"first program {prog.lines}")

    def _live_and_cut(self):
        """Run a random workload on the live firmware, then cut it: a storage cut armed at its start or a SIGKILL."""
        rng = self.rng
        storage = self._armed
        try:
            if self.policy == "settled" and self.lives > 1:
                self._settle()
            for _ in range(rng.randint(0, 6 if not storage else 12)):
                self._operation()
                if self.broken:
                    return
            if self.policy == "stop":  # a stop, some pump time, then the cut: the restart must owe nothing
                self._stop()
                self._advance(rng.randrange(1, 30) * MIN)
            self._final_cut()
        except Died:
            pass
        except (LinkError, PumpRefused) as e:
            if isinstance(e, PumpRefused):
                self.violation("internal", f"unexpected refusal: {e}")
                return
            if not self._died():
                return
            if not storage:
                self.violation("crash", f"the firmware was killed with no cut armed: {e}")
                return
            self.cut(storage=True)
            self.fig.storage_cuts_in[self.doing] = self.fig.storage_cuts_in.get(self.doing, 0) + 1
            self.note(f"storage cut in {self.doing} (the link said: {e})")
        self._end_process()

    _armed = False  # set by _restart when the current life was started with a storage cut

    def _final_cut(self):
        """The life ends: SIGKILL idle, while dosing, or inside a command."""
        rng = self.rng
        self._read_events()
        how = rng.random()
        link = self.pump.link
        if how < 0.3:
            where = "sigkill_idle"
            self.note("SIGKILL idle")
        elif how < 0.7:
            where = "sigkill_dosing"
            self.doing = "a run of pump time"
            d = rng.choice((10 * MIN, HOUR, 4 * HOUR, 12 * HOUR)) + rng.randrange(HOUR)
            mday, us = link.request(codec.SIM_ADVANCE, divmod(d, S))
            self.t_max = mday * codec.US_PER_MDAY + us
            delay = rng.uniform(0, DOSING_KILL_DELAY_S)
            time.sleep(delay)
            self.note(f"SIGKILL {delay * 1000:.1f} ms into a run to {self.t_max}")
        else:
            where = "sigkill_command"
            kind = rng.choice(("commit", "commit", "stop", "ack") if self.alarm else ("commit", "commit", "stop"))
            self.doing = {"commit": "a commit", "stop": "a stop", "ack": "an ack"}[kind]
            if kind == "commit":
                prog = self._next_program()
                crc = self._stage(prog)
                if crc is None:
                    kind, prog, crc = "stop", STOPPED, 0
            else:
                prog, crc = STOPPED, 0
                self._clinician()
            msg, values = {
                "commit": (codec.COMMIT, (crc, 1)),
                "stop": (codec.STOP, ()),
                "ack": (codec.ACK_ALARM, (codec.ALARM_NONE,)),  # every latched alarm
            }[kind]
            seq = link.next_seq()
            payload = schema.encode_fields(schema.request_fields(msg), values)
            self.inflight = (kind, prog, crc, self.t_now)
            link.send_raw(framing.encode_frame(msg, seq, payload, link.session_mac))
            delay = rng.uniform(0, COMMAND_KILL_DELAY_S)
            time.sleep(delay)
            self.note(f"SIGKILL {delay * 1000:.2f} ms after sending {kind} {prog.lines}")
        if self.sim.proc.poll() is not None:  # an armed storage cut came first
            raise LinkError("the firmware died before the SIGKILL")
        self._kill()
        self.cut(storage=False)
        setattr(self.fig, where, getattr(self.fig, where) + 1)
        raise Died

    def _settle(self):
        """Policy "settled": before anything else in a life, run until the steps the restart counted as delivered
        have come due and one step more has moved, so that a save holds the state after them."""
        basal = self.timeline.basal
        if basal == 0:  # stopped at the save: nothing moved after it, nothing to settle
            return
        st = self.pump.status()
        owed = self.reserved + 1 - (st.steps - self.count_at_restart)
        if owed > 0:
            self._advance(-(-(owed + 1) * U_PER_STEP // basal))

    # -- operations

    def _operation(self):
        rng = self.rng
        r = rng.random()
        if self.alarm and r < 0.25:
            self._ack()
        elif r < 0.55:
            d = rng.choice((rng.randrange(1, 120) * S, rng.randrange(1, 60) * MIN, rng.randrange(1, 6) * HOUR))
            self._advance(d)
        elif r < 0.75:
            self._commit(self._next_program())
        elif r < 0.92:
            if self.prog is STOPPED:
                self._advance(rng.randrange(1, 30) * MIN)
            else:
                if self.alarm:  # no bolus during an alarm: acknowledge it first
                    self._ack()
                self._commit(self.work.bolus(self.prog))
        else:
            self._stop()
        if rng.random() < 0.5:
            self._read_events()

    def _next_program(self) -> Prog:
        return self.work.basal(self.drugs)

    def _advance(self, d: int):
        self.doing = "a run of pump time"
        self.t_max = self.t_now + d
        st = self.pump.sim_advance(d)
        self.fig.advances += 1
        if st.time_us != self.t_max:
            self.violation("time", f"a run of {d} us ended at {st.time_us}, not {self.t_max}")
        self.t_now = st.time_us
        self.note(f"advance {d / S:g} s -> count {st.steps}")
        self._check(self.t_now, st.steps, read_tally(self.tally))

    def _clinician(self):
        """A fresh clinician session: the raw requests below need one, and pump time
        runs on between them (a session ends after 60 s of it without a frame)."""
        self.pump.authenticate("clinician")

    def _stage(self, prog: Prog) -> int | None:
        """Stage prog; its CRC, or None if the pump refused it."""
        self._clinician()
        link = self.pump.link
        for i, it in enumerate(program_text.parse_program(list(prog.lines))):
            link.request(codec.STAGE_ITEM, (i, *it))
        try:
            _rows, _warn, crc, _ttl = link.request(codec.STAGE)
        except PumpRefused as e:
            self._refused(prog, e)
            return None
        return crc

    def _refused(self, prog, e: PumpRefused):
        if e.code == codec.ERR_INTERNAL:
            self.violation("internal", f"{prog.lines}: {e}")
        self.fig.refused += 1
        self.note(f"refused {prog.lines}: {e.reason}")

    def _commit(self, prog: Prog):
        self.doing = "a commit"
        crc = self._stage(prog)
        if crc is None:
            return
        self.inflight = ("commit", prog, crc, self.t_now)
        try:
            got, mday, us = self.pump.link.request(codec.COMMIT, (crc, 1))
        except PumpRefused as e:
            self.inflight = None
            self._refused(prog, e)
            return
        self.inflight = None
        t = mday * codec.US_PER_MDAY + us
        if got != crc or t != self.t_now:
            self.violation(
                "program", f"commit of {prog.lines} answered crc {got:08x} at {t}, not {crc:08x} at {self.t_now}"
            )
        self._took(prog, crc, t)
        self.note(f"commit {prog.lines} crc {crc:08x}")

    def _took(self, prog: Prog, crc: int, t: int):
        """A commit or stop is durable: it runs from pump time t. The same bolus line as one still running
        leaves it untouched."""
        running = self.timeline.bolus
        keep = prog.bolus is not None and prog.lines == self.prog.lines and running is not None and t < running[1]
        self.timeline.change(t, prog.basal, prog.bolus, keep)
        self.prog = prog
        self.prog_crc = crc
        self.t_durable = t
        if prog is not STOPPED:
            self.drugs = prog.drugs
            self.fig.commits += 1
            self.fig.boluses += prog.kind == "bolus"
            self.fig.refills += prog.kind == "refill"
        else:
            self.fig.stops += 1

    def _stop(self):
        self.doing = "a stop"
        self.inflight = ("stop", STOPPED, 0, self.t_now)
        self._clinician()
        mday, us = self.pump.link.request(codec.STOP)
        self.inflight = None
        self._took(STOPPED, 0, mday * codec.US_PER_MDAY + us)
        self.note("stop")

    def _ack(self):
        self.doing = "an ack"
        self.inflight = ("ack", None, 0, self.t_now)
        self.pump.ack_alarm()
        self.inflight = None
        self.alarm = False
        self.t_durable = self.t_now
        self.fig.acks += 1
        self.note("ack")

    def _read_events(self):
        self.doing = "reading events"
        for ev in self.pump.events(self.next_event):
            self.events[ev.index] = (ev.time_us, ev.code, ev.text)
            self.next_event = ev.index + 1

    # -- the checks

    def _check(self, t: int, count: int, moved_now: int):
        """The prescription, the motor and the pump's count at pump time t of the current life."""
        fig = self.fig
        prescribed = self.timeline.steps(t)
        moved = self.moved_before + moved_now
        not_due = max(0, self.reserved - (count - self.count_at_restart))
        over = moved - (prescribed + not_due)
        if over > 0:
            fig.over_deliveries += 1
            fig.max_over = max(fig.max_over, over)
            fig.over_steps += over
            self.violation(
                "over",
                f"at t={t}: the motor moved {moved} steps over all lives, the prescription is "
                f"{prescribed} (+{not_due} counted at the restart and not yet due): {over} over",
                fatal=False,
            )
            # Go on from here, counting the next over-delivery afresh: the excess is taken off the lives that ended.
            self.moved_before -= over
            moved -= over
        shortfall = prescribed - moved
        if shortfall > fig.max_shortfall:
            fig.max_shortfall = shortfall
            fig.max_shortfall_bound = self.bound
        if shortfall > self.bound:
            self.violation(
                "short",
                f"at t={t}: shortfall {shortfall} steps (prescribed {prescribed}, moved "
                f"{moved}) is above the bound {self.bound}",
                fatal=False,
            )
        if not 0 <= prescribed - count <= self.cuts:
            self.violation(
                "count",
                f"at t={t}: the pump counts {count} steps, the prescription is {prescribed}, after {self.cuts} cuts",
                fatal=False,
            )

    def _restart(self):
        """Start again on the folder (again while a cut lands in the restart) and check everything."""
        while True:
            cut = None
            if self.rng.random() < 0.45:
                size = max((p.stat().st_size for p in (self.folder / "state").iterdir()), default=0) or 10_000
                cut = self.rng.randrange(size * self.rng.choice((2, 4, 8, 16)))
                if self.policy == "settled":  # not in the restart's saves nor the first one after it settles
                    cut += 3 * (size + 2048)
            self._armed = cut is not None
            self._start_life(cut)
            if self.broken:
                return
            if self.pump is not None:
                break
            self.cut(storage=True, at_boot=True)
            self.note(f"storage cut at {cut} bytes while starting")
            self._end_process()
        try:
            self._check_restart()
        except (LinkError, PumpRefused) as e:
            # A storage cut in the restart's own saves is caught by the next status: the state is the same.
            if isinstance(e, PumpRefused) or not self._died():
                self.violation("readable", f"the restarted firmware did not answer: {e}")
                return
            self.cut(storage=True, at_boot=True)
            self.note("storage cut while checking the restart")
            self._end_process()
            self._restart()

    def _check_restart(self):
        pump = self.pump
        st = pump.status()
        th = pump.therapy()
        lines = tuple(pump.running_lines())
        log = pump.events(max(0, self.next_event - 200))
        restart = [ev for ev in log if ev.code == EV_RESTART]
        fig = self.fig
        r = st.time_us
        # readable: it resumed from a save, with the restart alarm, no bolus, and said how many steps it reserved
        if not restart or not _RESUMED.search(restart[-1].text):
            self.violation("readable", f"no restart in the log: {[ev.text for ev in log[-5:]]}")
            return
        reserved = int(_RESUMED.search(restart[-1].text).group(1) or 0)
        restored = restart[-1].index  # the restored log ends just before the restart's entry
        if not 0 <= reserved <= RESERVE_MAX_STEPS:
            self.violation("readable", f"{reserved} reserved steps")
        if th.alarm != "restart" or th.bolus != "none":
            self.violation("readable", f"after the restart: alarm {th.alarm}, bolus {th.bolus}")
        if not self.t_durable <= r <= self.t_max:
            self.violation("time", f"resumed at {r}, outside [{self.t_durable} (last durable), {self.t_max} (cut)]")
        # program: the last durable one, or one whose reply never came
        inflight, self.inflight = self.inflight, None
        if inflight is not None:
            fig.uncertain += 1
        now_is = (th.program_crc, lines)
        if inflight is not None and inflight[0] != "ack":
            inflight = (*inflight[:2], inflight[1].crc_after_bolus(inflight[2], th.library), inflight[3])
        if now_is == (self.prog.crc_after_bolus(self.prog_crc, th.library), self.prog.running):
            self.note(f"restart at {r}: program unchanged")
        elif inflight is not None and inflight[0] != "ack" and now_is == (inflight[2], inflight[1].running):
            kind, prog, crc, t = inflight
            fig.uncertain_took += 1
            if r != t:
                self.violation("program", f"the {kind} sent at {t} took effect but the pump resumed at {r}")
            else:
                self._took(prog, crc, t)
            self.note(f"restart at {r}: the {kind} cut before its reply took effect")
        else:
            want = [(f"{self.prog.crc_after_bolus(self.prog_crc, th.library):08x}", self.prog.running)]
            if inflight is not None and inflight[0] != "ack":
                want.append((f"{inflight[2]:08x}", inflight[1].running))
            self.violation(
                "program", f"after the restart the program is {th.program_crc:08x} {lines}, not one of {want}"
            )
            return
        # the timeline resumes at R; a bolus running there was cancelled by the restart alarm
        self.timeline.change(r, self.timeline.basal, None)
        self.t_now = self.t_max = self.t_durable = r
        self.alarm = True
        # log: every event read before the cut, up to R, is there, unchanged
        now = {ev.index: (ev.time_us, ev.code, ev.text) for ev in log}
        oldest = min(now) if now else 0
        lost = []
        for index, ev in sorted(self.events.items()):
            if ev[1] in NOT_DURABLE:
                continue
            if ev[0] <= r and index >= oldest and (index >= restored or now.get(index) != ev):
                lost.append((index, ev, now.get(index) if index < restored else None))
        if lost:
            fig.lost_log_entries += len(lost)
            self.violation("log", f"{len(lost)} log entries up to R={r} lost or changed: {lost[:3]}", fatal=False)
        self.events = now
        self.next_event = max(now) + 1 if now else 0
        # the motor and the prescription, at R
        if self.timeline.basal == 0:  # stopped at the save (any bolus ended with the stop): nothing may be owed
            fig.stopped_restarts += 1
            if reserved > self.reserved:  # only the last restart's credit, not yet used, may be carried on
                self.violation(
                    "stopped",
                    f"resumed at {r}, stopped at its save, with {reserved} reserved steps "
                    f"credited (the restart before credited {self.reserved}): the next program's first "
                    "steps would not move",
                    fatal=False,
                )
        self.reserved = reserved
        self.count_at_restart = st.steps
        self.bound += reserved + 1
        fig.max_reserved = max(fig.max_reserved, reserved)
        self.note(f"restart at {r}: count {st.steps}, {reserved} reserved, motor so far {self.moved_before}")
        self._check(r, st.steps, read_tally(self.tally))
        if not self.broken:
            fig.survived += self.unchecked
            self.unchecked = 0


def _episode(task) -> Figures:
    """One episode in a folder of its own (also the unit of work of a worker process)."""
    root, seed, index, cuts, policy, keep = task
    fig = Figures()
    folder = Path(root) / f"episode-{index}"
    folder.mkdir(parents=True, exist_ok=True)
    episode = Episode(folder, f"{seed}-{index}", fig, cuts, policy)
    try:
        episode.run()
        if fig.failed() and keep is not None:
            fig.kept.append(str(_keep(episode, Path(keep))))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return fig


def replay_command(seed: str, cuts: int, policy: str) -> str:
    return f"python tests/torture.py --replay {seed} --cuts {cuts} --policy {policy}"


def _keep(episode: Episode, keep: Path) -> Path:
    """Copy a failed episode's folder (its state files, the tally of the life that failed) into keep/episode-SEED,
    with episode.txt: the seed, the cut, the violations, the harness's log of the episode, the events the host read
    from the pump, and the command that replays it. Returns that folder."""
    out = keep / f"episode-{episode.seed}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(episode.folder, out)
    fig = episode.fig
    text = [
        f"seed {episode.seed}, policy {episode.policy}, failed at life {episode.lives} cut {episode.cuts} "
        f"(of {episode.cuts_wanted})",
        f"replay: {replay_command(episode.seed, episode.cuts_wanted, episode.policy)}",
        "(the seed fixes the workload and where storage cuts land; a SIGKILL's wall-clock moment may differ)",
        "",
        "violations:",
        *(f"  [{kind}] {what}" for kind, what, _trace in fig.violations),
        "",
        "the harness's log:",
        *(f"  {line}" for line in episode.trace),
        "",
        "events read from the pump (index: time us, code, text):",
        *(f"  {i}: {ev}" for i, ev in sorted(episode.events.items())),
    ]
    (out / "episode.txt").write_text("\n".join(text) + "\n")
    return out


def run(
    cuts: int,
    seed: int,
    episode_cuts: int = 100,
    policy: str = "any",
    jobs: int = 1,
    root: Path | None = None,
    progress=None,
    keep: Path | None = None,
) -> Figures:
    """Run at least `cuts` cuts in episodes of `episode_cuts` each (a fresh storage folder each, seeded
    "seed-index"), `jobs` at a time; return the figures. An episode ends early at its first violation (its model
    of the pump is then no longer trusted), and further episodes make up the cuts. keep: a folder where the first
    failed episode is kept (fig.kept[0]; _keep says what it holds)."""
    fig = Figures()
    start = time.monotonic()
    own = root is None
    root = Path(tempfile.mkdtemp(prefix="torture-")) if own else Path(root)
    pool = None
    if jobs > 1:
        pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        index = 0
        while fig.cuts < cuts:
            wave = []
            left = cuts - fig.cuts
            while left > 0:
                kept = None if keep is None else str(keep)
                wave.append((str(root), seed, index, min(episode_cuts, left), policy, kept))
                left -= episode_cuts
                index += 1
            for done in pool.map(_episode, wave) if pool else map(_episode, wave):
                fig.merge(done)
                if progress:
                    progress(fig)
    finally:
        if pool:
            pool.shutdown()
        if own:
            shutil.rmtree(root, ignore_errors=True)
    for later in fig.kept[1:]:  # the first failure is the one to diagnose: the others may follow from the same cause
        shutil.rmtree(later, ignore_errors=True)
    del fig.kept[1:]
    fig.wall_s = time.monotonic() - start
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The torture test: power cuts at random moments, then check.")
    parser.add_argument("--cuts", type=int, default=int(os.environ.get("TORTURE_CUTS", 2000)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("TORTURE_SEED", 1)))
    parser.add_argument("--episode", type=int, default=100, help="cuts per storage folder")
    parser.add_argument(
        "--policy",
        choices=("any", "settled", "stop"),
        default=os.environ.get("TORTURE_POLICY", "any"),
        help="settled: cut only once a restart's reserved steps have come due and been saved past; "
        "stop: each life stops the pump before its cut, and the restart must owe nothing",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("TORTURE_JOBS", os.cpu_count() or 1)),
        help="episodes run at once, each in its own process",
    )
    parser.add_argument(
        "--keep",
        default=os.environ.get("TORTURE_KEEP", "torture-failed"),
        help="folder where the first failed episode is kept, with how to replay it",
    )
    parser.add_argument("--replay", metavar="SEED-INDEX", help="run the one episode of that seed (from episode.txt)")
    args = parser.parse_args(argv)
    if args.replay:
        fig = Figures()
        with tempfile.TemporaryDirectory(prefix="torture-replay-") as folder:
            episode = Episode(Path(folder), args.replay, fig, args.cuts, args.policy)
            episode.run()
            if fig.failed():
                fig.kept.append(str(_keep(episode, Path(args.keep))))
        print(fig.report())
        if fig.failed():
            print(f"\nFAILED (kept in {fig.kept[0]}):\n" + fig.details())
            return 1
        return 0
    print(
        f"torture: {args.cuts} cuts, seed {args.seed}, {args.episode} cuts per folder, policy {args.policy}, "
        f"{args.jobs} jobs"
    )

    def progress(fig):
        print(f"  {fig.cuts} cuts, {len(fig.violations)} violations", file=sys.stderr, flush=True)

    fig = run(args.cuts, args.seed, args.episode, args.policy, args.jobs, progress=progress, keep=Path(args.keep))
    print(fig.report())
    if fig.failed():
        print("\nFAILED:\n" + fig.details())
        if fig.kept:
            seed = Path(fig.kept[0]).name.removeprefix("episode-")
            print(
                f"\nthe first failed episode is kept in {fig.kept[0]} (episode.txt, state files); replay it with:\n"
                f"  {replay_command(seed, args.episode, args.policy)}"
            )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
