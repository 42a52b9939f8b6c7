"""The Python API: one `Pump` per serial port, typed results with units.

    from pumpctl import Pump

    with Pump("/dev/ttyACM0") as pump:
        print(pump.status())
        pump.set_rate("0.5 mL/day")

Every method sends one command and waits for its reply. A refusal raises
PumpRefused (and the pump changed nothing), a dead line LinkError.

The link, the keys and the sessions are PumpSession's (session.py); what the replies
become, the records with units and how each is read from its reply, are in replies.py;
the drug library's commands are in client_library.py.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Callable

from firmware import codec
from firmware.errors import Refusal

from . import program_words, units, words
from .client_library import LibraryCommands
from .errors import LineRefused, PumpRefused, UsageError
from .program_text import parse_program
from .replies import (
    Alarm,
    Calibrated,
    Event,
    RateSet,
    SimState,
    Staged,
    Status,
    Telemetry,
    Therapy,
    Weighing,
    program_lines,
    pump_time_us,
)
from .session import _one_at_a_time

US_PER_MDAY = codec.US_PER_MDAY


# Lines that act once when committed; a new session built on the running
# program leaves them out, or the fill would happen again. A bolus, prime or
# bridge line is in the running program only while that delivery runs or
# waits, and committing the same line again leaves it untouched: it is kept.
ONE_SHOT = ("fill", "removed")
# The lines of a delivery that acts once (firmware/program.py Program.delivery).
DELIVERY_WORDS = ("bolus", "prime", "bridge")


def read_rate(rate: str) -> tuple[int, bool]:
    """A rate as a person typed it ("0.5 mL/day") in nL/day, and whether it was rounded down (below
    1 nL/day), read by pumpctl.s own parser (units.py); UsageError (nothing is sent) if it does not read."""
    if not isinstance(rate, str):
        raise TypeError('give the rate as text with its unit, for example "0.5 mL/day"')
    try:
        return units.parse_rate("rate", rate)
    except Refusal as e:
        raise UsageError(f"{e.field}: {e.message}; nothing was sent to the pump") from None


# What every command that programs a bare volume rate (SET_RATE: program --rate, bench, calibrate,
# demo --no-drug) says, in its text and as "drug_limits": false in --json: nothing names a drug.
NO_DRUG_LIMITS = "plain volume rate: no drug is named, so no drug-library limit applies (only the pump's rate range)"


def pump_clock(pump: Pump, trips: int = 5) -> tuple[int, float, float]:
    """(pump_us, wall_s, uncertain_s): the pump's time pump_us was read at time.monotonic() wall_s,
    from the quickest of `trips` STATUS round trips; the pump read its clock somewhere inside it, so
    wall_s is off by at most half of it, uncertain_s. For mapping wall time to pump time at speed 1."""
    quickest = None
    for _ in range(trips):
        before = time.monotonic()
        status_us = pump.status().time_us
        after = time.monotonic()
        trip = (after - before, status_us, (before + after) / 2)
        quickest = trip if quickest is None else min(quickest, trip)
    assert quickest is not None
    rtt_s, pump_us, wall_s = quickest
    return pump_us, wall_s, rtt_s / 2


def expected_steps(rate_nl_per_day: int, duration_us: int, step_volume_pl: int) -> int:
    """Steps a pump owes after running a rate for a duration from a step boundary.

    Exact: floor(volume / step), with volume = rate * duration in pL
    (a rate of r nL/day is r pL per 86.4 s).
    """
    volume_pl = Fraction(rate_nl_per_day * duration_us, US_PER_MDAY)
    return volume_pl.numerator // (volume_pl.denominator * step_volume_pl)


class Pump(LibraryCommands):
    """A pump on one serial port (a device path or a pyserial URL): one method per command.
    Built in layers, each using only the one below it: PumpSession (session.py: the link, keys and
    sessions), LibraryCommands (client_library.py: the drug library's commands), and this."""

    def status(self) -> Status:
        return Status.from_reply(self._request(codec.STATUS))

    def set_rate(self, rate: str) -> RateSet:
        """Program a continuous rate given with its unit, e.g. "0.5 mL/day".

        pumpctl reads the text into nL/day (pumpctl/units.py, exactly; rounded down only below
        1 nL/day, which `rounded` says) and refuses anything unclear (UsageError, nothing sent);
        the pump checks the number against its range. A bare volume rate names no drug, so no
        drug-library limit applies to it (NO_DRUG_LIMITS); the pump refuses it while it holds a
        drug. To deliver a drug, program it: stage(["drug ...", "basal ..."]).
        """
        nl_per_day, rounded = read_rate(rate)
        got, mday, us = self._request(codec.SET_RATE, (nl_per_day,))
        if got != nl_per_day:
            raise PumpRefused(codec.ERR_INTERNAL, "rate", f"the pump runs {got} nL/day, not the {nl_per_day} sent")
        return RateSet(got, rounded, pump_time_us(mday, us))

    def stop(self) -> int:
        """Stop delivery; return the pump time at which it stopped."""
        mday, us = self._request(codec.STOP)
        return pump_time_us(mday, us)

    def therapy(self) -> Therapy:
        return Therapy.from_reply(self._request(codec.THERAPY))

    def set_clock(self, clock_s: int) -> int:
        """Set the device clock to local wall time clock_s (seconds since 1970, naive local)."""
        (got,) = self._request(codec.CLOCK_SET, (clock_s,))
        return got

    # -- programming session: stage, review, commit ----------------------------

    @_one_at_a_time
    def stage(self, lines: list[str]) -> Staged:
        """Read program lines into their items (program_text.py: a line that does not read is refused,
        UsageError, before anything is sent), send them and have the pump check them; nothing changes
        yet. The rows are the program as the pump understood it, written from its numbers."""
        if not lines:
            raise ValueError("a program needs at least one line")
        try:
            items = parse_program(lines)
        except Refusal as e:
            raise LineRefused(e.field, e.message) from None
        for i, it in enumerate(items):
            self._request(codec.STAGE_ITEM, (i, *it))
        n_rows, _n_warn, crc, expires = self._request(codec.STAGE)
        raw = self._raw_rows(codec.REVIEW_STAGED, n_rows)
        rows = program_words.rows(raw)
        warnings = [detail for line, detail in rows if line == "soft limit"]
        return Staged(rows, warnings, crc, expires)

    @_one_at_a_time
    def review(self, staged: bool = False) -> list[tuple[str, str]]:
        """The running (or staged) program as the pump understood it: (line, what it means per drug)."""
        return program_words.rows(self._review_raw(codec.REVIEW_STAGED if staged else codec.REVIEW_RUNNING))

    def _review_raw(self, which: int) -> list[tuple]:
        first = self._request(codec.REVIEW, (which, 0))
        return [tuple(first[1:])] + self._raw_rows(which, first[0], start=1)

    def _raw_rows(self, which: int, n: int, start: int = 0) -> list[tuple]:
        """REVIEW's rows start..n-1, each (item and its fields, volume_nl, note)."""
        return [tuple(self._request(codec.REVIEW, (which, i))[1:]) for i in range(start, n)]

    @_one_at_a_time
    def commit(self, staged: Staged, confirm_soft: bool = False) -> int:
        """Put the staged program in force; read it back and check it is the one
        reviewed. Returns the pump time it took effect."""
        crc, mday, us = self._request(codec.COMMIT, (staged.program_crc, 1 if confirm_soft else 0))
        running = program_lines(self.review())
        if crc != staged.program_crc or running != staged.lines:
            raise PumpRefused(
                codec.ERR_INTERNAL,
                "program",
                f"read-back differs from the program reviewed: {running} != {staged.lines}",
            )
        return pump_time_us(mday, us)

    def discard(self) -> None:
        self._request(codec.DISCARD)

    @_one_at_a_time
    def staged(self) -> Staged | None:
        """The program the pump holds staged, by this session or another (it stays until it expires,
        is discarded or committed), read back as the pump understood it; None if none is. Its
        program_crc is computed from the items read and the library in force (docs/protocol.md), so
        a commit of it commits what was read; expires_in_s is 0 (REVIEW does not say)."""
        try:
            raw = self._review_raw(codec.REVIEW_STAGED)
        except PumpRefused as e:
            if e.field == "which":
                return None
            raise
        version = self.therapy().library
        rows = program_words.rows(raw)
        warnings = [detail for line, detail in rows if line == "soft limit"]
        return Staged(rows, warnings, program_words.program_crc(program_words.items_of(raw), version), 0)

    @_one_at_a_time
    def program(self, lines: list[str], confirm_soft: bool = False) -> Staged:
        """Stage, then commit, in one call (scripts; people should review first)."""
        staged = self.stage(lines)
        self.commit(staged, confirm_soft)
        return staged

    @_one_at_a_time
    def running_lines(self) -> list[str]:
        """The running program's lines, without those of a refill (fill, removed); a bolus,
        prime or bridge still running or waiting is kept (committed again, it goes on unchanged)."""
        lines = program_lines(self.review())
        if lines == ["stop"]:
            return []
        return [ln for ln in lines if ln.split(" ", 1)[0] not in ONE_SHOT]

    @_one_at_a_time
    def last_lines(self) -> list[str]:
        """The lines of the last program that dosed, kept by a stopped pump since a stop replaced it
        (without the lines that act once or belong to a refill); [] if it keeps none."""
        try:
            raw = self._review_raw(codec.REVIEW_LAST)
        except PumpRefused as e:
            if e.field == "which":
                return []
            raise
        return [program_words.line(r) for r in program_words.items_of(raw)]

    def patient_bolus(self) -> tuple[int, int]:
        """The patient asks for a bolus; returns (volume_nl, duration_s) or raises PumpRefused."""
        volume_nl, duration_s = self._request(codec.PATIENT_BOLUS)
        return volume_nl, duration_s

    def service(self) -> None:
        """Have a stopped pump leave its program for the board's REPL, to be flashed (clinician key).
        Refused while it doses; the link is gone afterwards: close without ending the session."""
        self._request(codec.SERVICE)

    def service_not_started(self) -> None:
        """Have a board whose pump firmware failed to start (NotStarted) leave for its REPL: SERVICE
        without a session, which such a board obeys (nothing doses there)."""
        self._link.request(codec.SERVICE)

    @_one_at_a_time
    def alarms(self) -> list[Alarm]:
        """Every latched alarm, in the order raised."""
        out = []
        i = 0
        while True:
            reply = self._request(codec.ALARMS, (i,))
            n, code = reply[0], reply[1]
            if i >= n or code == codec.ALARM_NONE:
                return out
            out.append(Alarm.from_reply(reply))
            i += 1

    def ack_alarm(self, alarm: str | int = 0) -> int:
        """Acknowledge one latched alarm (by name or code) or, with 0, every one (clinician key).
        Returns how many were acknowledged; one whose condition is still present stays latched."""
        code = words.alarm_code(alarm) if isinstance(alarm, str) else alarm
        acknowledged, _mask = self._request(codec.ACK_ALARM, (code,))
        return acknowledged

    @_one_at_a_time
    def calibrate(
        self,
        weighings: list[Weighing] | list[tuple[int, int, int]],
        density_ug_per_ml: int = 998_200,
        confirm: bool = False,
        check: bool = False,
    ) -> Calibrated:
        """A new volume per step from weighings (clinician key; a stopped pump only). Each weighing
        is (from_steps, to_steps, mass_ug): the pump's own step counts (Status.steps) at tare and at
        weighing, and the mass dispensed in micrograms. The pump stages them (CAL_WEIGHING: it
        refuses counts beyond its own), computes the volume per step, the spread and the change
        itself, and refuses fewer than 2 weighings, a spread over 2 %, more than 20 % from its
        board's volume or a density outside 990000..1000000 ug/mL (bench water). A change over 2 %
        from the volume in force is refused (field "confirm") unless confirm=True after the pump
        has shown it for these same weighings (a refusal, or check=True). check=True stores
        nothing. (The wizard that weighs: pumpctl.calibrate.)"""
        ws = [w if isinstance(w, Weighing) else Weighing(*w) for w in weighings]
        for k, w in enumerate(ws):
            self._request(
                codec.CAL_WEIGHING,
                (k, *divmod(w.from_steps, codec.STEP_RADIX), *divmod(w.to_steps, codec.STEP_RADIX), w.mass_ug),
            )
        mode = codec.CAL_CHECK if check else codec.CAL_CONFIRM if confirm else codec.CAL_STORE
        new, previous, spread, change, stored = self._request(codec.CALIBRATE, (len(ws), density_ug_per_ml, mode))
        return Calibrated(new, previous, spread, change, bool(stored))

    def silence(self) -> int:
        """Silence the alarm tones for at most 2 min (patient key); returns the seconds."""
        (seconds,) = self._request(codec.SILENCE)
        return seconds

    @_one_at_a_time
    def events(self, since: int = 0, progress: Callable[[int, int], None] | None = None) -> list[Event]:
        """Event log entries from index `since` on (those that left the log are skipped: an entry's
        index says where it is; sessions and security refusals leave first).
        progress(done, total) after each entry read (one request each)."""
        out = []
        i = since
        while True:
            try:
                reply = self._request(codec.EVENT, (i,))
            except PumpRefused:
                return out  # nothing logged at or after i
            event = Event.from_reply(reply)
            out.append(event)
            count = reply[0]
            i = event.index + 1
            if progress:
                progress(i - since, max(count - since, 1))
            if i >= count:
                return out

    # -- telemetry ---------------------------------------------------------------

    def start_telemetry(self, interval_ms: int) -> None:
        """Have the pump send a sample every interval_ms (10..3,600,000; 0 stops).
        The pump stops by itself if this host sends nothing for 10 s: call
        keep_alive() (or any command) meanwhile."""
        self._request(codec.TELEMETRY, (interval_ms,))

    def stop_telemetry(self) -> None:
        self._request(codec.TELEMETRY, (0,))

    @_one_at_a_time
    def keep_alive(self) -> None:
        """Tell the pump this host is still there (an empty delimiter byte)."""
        self._link.send_raw(b"\x00")

    @_one_at_a_time
    def telemetry(self, timeout: float = 1.0) -> Telemetry | None:
        """The next telemetry sample, or None if none came within timeout seconds."""
        got = self._link.read_telemetry(time.monotonic() + timeout)
        if got is None:
            return None
        seq, values = got
        return Telemetry.from_reply(seq, values)

    # -- simulator only --------------------------------------------------------

    @_one_at_a_time
    def sim_advance(
        self,
        duration_us: int,
        progress: Callable[[int, int], None] | None = None,
        max_poll_s: float = 0.05,
    ) -> Status:
        """Run a simulated pump forward by duration_us of pump time and wait.

        progress(done_us, total_us) is called while it runs. Returns the
        status once the pump's clock has reached the target.
        """
        seconds, micros = divmod(duration_us, 1_000_000)
        if not duration_us:
            return self.status()  # 0 s would stop a running advance (sim_stop_advance)
        start = self.status().time_us
        mday, us = self._request(codec.SIM_ADVANCE, (seconds, micros))
        target = pump_time_us(mday, us)
        poll_s = 0.001  # short runs finish in a few ms: look soon, then less often
        while True:
            status = self.status()
            if progress:
                progress(min(status.time_us, target) - start, target - start)
            if status.time_us >= target:
                return status
            time.sleep(poll_s)
            poll_s = min(2 * poll_s, max_poll_s)

    def sim_stop_advance(self) -> Status:
        """Stop a simulated pump's time where it is (SIM_ADVANCE of 0 s): the time granted and not yet
        run is dropped. Returns the status then; its time stays until time is granted again."""
        self._request(codec.SIM_ADVANCE, (0, 0))
        return self.status()

    def sim_fault(self, kind: str | int = "motor", at_s: int = 0, value: int = 1) -> int:
        """Inject a fault into the simulated board at pump time at_s (0 or the past: now);
        kind is a words.FAULT_NAMES name or code. Returns the pump time (us) it takes effect."""
        code = words.fault_code(kind) if isinstance(kind, str) else kind
        _kind, mday, us = self._request(codec.SIM_FAULT, (code, at_s, value))
        return pump_time_us(mday, us)

    @_one_at_a_time
    def sim_faults(self) -> list[tuple[int, str, int, int]]:
        """The faults still to come on the simulated board, soonest first: (index, kind name, value,
        pump time us it takes effect)."""
        out = []
        while True:
            n, kind, value, mday, us = self._request(codec.SIM_FAULTS, (len(out), 0))
            if kind == codec.NO_FAULT or len(out) >= n:
                return out
            out.append((len(out), words.FAULT_NAMES.get(kind, str(kind)), value, pump_time_us(mday, us)))

    def sim_cancel_fault(self, index: int) -> tuple[str, int, int]:
        """Drop pending fault index (sim_faults' numbering); returns (kind name, value, pump time us) of it."""
        _n, kind, value, mday, us = self._request(codec.SIM_FAULTS, (index, 1))
        return words.FAULT_NAMES.get(kind, str(kind)), value, pump_time_us(mday, us)

    def sim_state(self) -> SimState:
        return SimState.from_reply(self._request(codec.SIM_STATE))
