"""The Python API: one `Pump` per serial port, typed results with units.

    from pumpctl import Pump

    with Pump("/dev/ttyACM0") as pump:
        print(pump.status())
        pump.set_rate("0.5 mL/day")

Every method sends one command and waits for its reply. A refusal raises
PumpRefused (and the pump changed nothing), a dead line LinkError.

Keys. Reading needs none. A command that changes the pump opens a session
first, with the clinician's key (the patient bolus: the patient's key if the
host holds it, least privilege); the keys come from `keys=` or from the
config file by the pump's device id (config.py). Then every frame carries a
MAC, and every reply must too. close() ends the session.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from firmware import auth, codec

from . import config, words
from .config import PumpKeys
from .errors import AuthError, LinkError, PumpRefused
from .transport import SerialTransport

ROLES = {"patient": auth.ROLE_PATIENT, "clinician": auth.ROLE_CLINICIAN}

LIBRARY_FIELDS = codec.LIBRARY_FIELDS

US_PER_MDAY = codec.US_PER_MDAY


def _pump_time_us(mday: int, us: int) -> int:
    return mday * US_PER_MDAY + us


@dataclass(frozen=True)
class PumpInfo:
    protocol: int
    firmware: str
    board: str
    platform: str
    device_id: str  # empty if the pump was never provisioned with keys
    step_volume_pl: int
    min_rate_nl_per_day: int
    max_rate_nl_per_day: int


@dataclass(frozen=True)
class Status:
    time_us: int  # pump time since boot
    mode: str  # "stopped" or "continuous"
    rate_nl_per_day: int  # programmed rate, 0 when stopped
    steps: int  # motor steps issued since boot
    step_volume_pl: int  # calibrated volume of one step

    @property
    def delivered_pl(self) -> int:
        """Volume delivered since boot by the pump's own count of steps."""
        return self.steps * self.step_volume_pl


@dataclass(frozen=True)
class RateSet:
    rate_nl_per_day: int  # what the pump now runs, converted by the pump
    rounded: bool  # True if the requested rate was finer than 1 nL/day
    effective_us: int  # pump time at which the new rate took effect


@dataclass(frozen=True)
class Therapy:
    """The therapy in force, as the pump reports it."""

    mode: str  # stopped, continuous or flex
    basal_nl_per_day: int  # the basal now (the flex step running), at the fluid in the path
    rate_nl_per_day: int  # what the scheduler runs: basal plus any bolus (prime: the prime alone)
    bolus: str  # none, bolus, patient-bolus or prime
    bolus_rate_nl_per_day: int
    bolus_left_s: int
    bridge: bool  # old fluid still being pushed out at the old dose after a refill
    reservoir_nl: int | None  # None until a program gives a fill volume
    empty_in_s: int | None  # at the running program; None if unknown or beyond 400 days
    day_nl: int  # delivered in the guard's rolling 24 h window
    hour_nl: int  # and in its rolling 1 h window
    refused_steps: int  # steps the dose guard refused since boot
    alarm: str  # the latched alarm of highest priority (words.ALARM_NAMES), "none" if none
    clock_s: int | None  # device clock, local seconds since 1970; None if not set
    program_crc: int
    library: str  # version of the drug library in force
    alarms: list[str]  # every latched alarm (words.ALARM_NAMES), by code
    sounding: str  # the priority the tones sound at now: none, low, medium or high
    silenced_s: int  # seconds of silence left (at most 120)
    held: bool  # delivery held by a motor fault (stall, occlusion, step not confirmed) until it clears
    sensor_nl: int | None  # the reservoir sensor's last reading; None without a sensor
    low_in_s: int | None  # pump time until the low-reservoir volume at the running program
    low_nl: int  # the low-reservoir volume
    empty_nl: int  # the empty volume: delivery stops there
    battery_permille: int | None
    battery_days: int | None  # battery life left, estimated from the drain so far
    library_hash: int  # content hash of the library in force (codec.library_hash)


@dataclass(frozen=True)
class Staged:
    """A program the pump has checked and holds, not yet in force."""

    rows: list[tuple[str, str]]  # (line as the pump understood it, per-drug detail)
    warnings: list[str]  # soft limits passed: the commit must confirm them
    program_crc: int
    expires_in_s: int

    @property
    def lines(self) -> list[str]:
        return program_lines(self.rows)


@dataclass(frozen=True)
class StagedLibrary:
    """A library the pump has checked beside the one in force and holds, not yet in force."""

    version: str
    library_hash: int  # its content hash, as the pump computed it (and the host, from the file)
    drugs: int
    changed: int  # fields that differ from the library in force (a drug in one only: all its fields)
    raised: int  # hard limits loosened: committing needs confirm_raise
    expires_in_s: int


@dataclass(frozen=True)
class LibraryField:
    """One field of a drug of the library in force or of the staged one, as the pump holds it."""

    drug: str
    field: str  # codec.LIBRARY_FIELDS
    text: str
    changed: bool  # staged only: differs from the library in force (or the drug is new)
    raised: bool  # staged only: a hard limit loosened
    in_use: bool  # the drug is in the reservoir (the running program's blend)


@dataclass(frozen=True)
class Telemetry:
    """One sample of the telemetry stream."""

    seq: int  # sample number since the stream began: a gap is a sample lost on the way
    time_us: int
    mode: str
    rate_nl_per_day: int
    steps: int  # motor steps since boot, by the pump's count
    reservoir_nl: int | None
    day_nl: int
    hour_nl: int
    alarm: str
    session: str  # role of the session open on the pump: none, patient, clinician
    dropped: int  # samples the pump could not send (the line was busy) since the stream began
    alarms: list[str]  # every latched alarm
    sensor_nl: int | None  # the reservoir sensor's last reading
    battery_permille: int | None


@dataclass(frozen=True)
class Alarm:
    """One latched alarm, as the pump holds it."""

    code: int
    name: str  # words.ALARM_NAMES
    priority: str  # low, medium or high (IEC 60601-1-8)
    active: bool  # its condition is present now
    acknowledged: bool  # a clinician acknowledged it: it goes when its condition clears
    raised_us: int  # pump time it was raised
    text: str  # its cause, as the pump logged it


@dataclass(frozen=True)
class Weighing:
    """One weighing for CALIBRATE: the pump's own delivered-step counts (Status.steps) when the
    vessel was tared and when it was weighed, and the mass it gained, in micrograms."""

    from_steps: int
    to_steps: int
    mass_ug: int

    @property
    def steps(self) -> int:
        return self.to_steps - self.from_steps


@dataclass(frozen=True)
class Calibrated:
    """What the pump computed from the weighings (CALIBRATE's reply)."""

    step_volume_pl: int  # the mean volume per step, rounded to the nearest pL
    previous_pl: int  # the one in force before
    spread_ppm: int  # (largest - smallest) / mean, rounded up
    change_ppm: int  # |new - previous| / previous, rounded up
    stored: bool


@dataclass(frozen=True)
class Event:
    index: int
    time_us: int
    code: int
    text: str


def _one_at_a_time(method):
    """Run the method holding the pump's lock: threads sharing one Pump take turns, so
    frames, sequence numbers, sessions and multi-frame operations (a program's lines, the
    log) never interleave. Pumps on different ports share nothing and run in parallel."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return run


def _alarm_names(mask: int) -> list[str]:
    return [name for code, name in sorted(words.ALARM_NAMES.items()) if code and mask & (1 << code)]


def alarm_code(name: str) -> int:
    """An alarm's code from its name (words.ALARM_NAMES, case and dashes ignored); ValueError if none."""
    key = name.lower().replace("-", " ").replace("_", " ")
    for code, n in words.ALARM_NAMES.items():
        if n.lower() == key:
            return code
    if key in ("all", "every", "0"):
        return codec.ALARM_NONE
    raise ValueError(f"no alarm is called {name!r}: " + ", ".join(sorted(n for c, n in words.ALARM_NAMES.items() if c)))


def fault_code(name: str) -> int:
    for code, n in words.FAULT_NAMES.items():
        if n == name:
            return code
    raise ValueError(f"no simulator fault is called {name!r}: " + ", ".join(words.FAULT_NAMES.values()))


def program_lines(rows: list[tuple[str, str]]) -> list[str]:
    """The program lines among review rows (without soft-limit notes and totals)."""
    return [line for line, _detail in rows if line and line != "soft limit"]


# Lines that act once when committed; a new session built on the running
# program leaves them out, or the fill would happen again. A bolus, prime or
# bridge line is in the running program only while that delivery runs or
# waits, and committing the same line again leaves it untouched: it is kept.
ONE_SHOT = ("fill", "removed")
# The lines of a delivery that acts once (firmware/program.py DELIVERY_WORDS).
DELIVERY_WORDS = ("bolus", "prime", "bridge")


@dataclass(frozen=True)
class SimState:
    """The motor model's view. A step takes the board's motion time; a halt
    (a fault) drops the steps not finished, a normal stop lets them finish."""

    motor_steps: int  # steps the simulated motor made or is making: issued, less those dropped
    in_motion: int  # of those, steps not finished yet (moving now or queued)
    dropped_steps: int  # steps halts dropped before they finished (a step cut mid-motion counts here)
    halts: int  # times a fault halted the motor
    true_step_volume_pl: int  # what one step really moves in the model
    speed: int  # 0: time moves only by advance(); N: N times the wall clock
    true_reservoir_nl: int | None  # what the simulated reservoir really holds (None: no sensor modelled)
    battery_permille: int  # the simulated cell's true charge
    buzzer_plays: int  # alarm patterns the buzzer sounded since boot
    buzzer_priority: int  # priority of the last one (0: none yet)
    watchdog_feeds: int

    @property
    def finished_steps(self) -> int:
        """Steps the motor has completed by now."""
        return self.motor_steps - self.in_motion

    @property
    def delivered_pl(self) -> int:
        """Volume of the steps made or in motion (those in motion finish unless halted)."""
        return self.motor_steps * self.true_step_volume_pl


# What every command that programs a bare volume rate (SET_RATE: program --rate, bench, calibrate,
# demo --no-drug) says, in its text and as "drug_limits": false in --json: nothing names a drug.
NO_DRUG_LIMITS = "plain volume rate: no drug is named, so no drug-library limit applies (only the pump's rate range)"


def expected_steps(rate_nl_per_day: int, duration_us: int, step_volume_pl: int) -> int:
    """Steps a pump owes after running a rate for a duration from a step boundary.

    Exact: floor(volume / step), with volume = rate * duration in pL
    (a rate of r nL/day is r pL per 86.4 s).
    """
    volume_pl = Fraction(rate_nl_per_day * duration_us, US_PER_MDAY)
    return volume_pl.numerator // (volume_pl.denominator * step_volume_pl)


class Pump:
    """A pump on one serial port (a device path or a pyserial URL)."""

    def __init__(self, port: str, timeout: float = 2.0, keys: PumpKeys | None = None):
        """keys: the keys to use; None looks them up in the config file by the
        pump's device id when a command first needs one."""
        self.port = port
        self._keys = keys
        self.role = auth.ROLE_NONE  # of the session this host holds open
        self._lock = threading.RLock()  # one operation at a time on this port (_one_at_a_time)
        self._link = SerialTransport(port, timeout=timeout)

    def __enter__(self) -> Pump:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @_one_at_a_time
    def close(self, end_session: bool = True) -> None:
        """Close the port, ending the session first (end_session=False: just
        close; the pump ends the session itself after its timeout)."""
        try:
            if end_session and self.role != auth.ROLE_NONE:
                self._link.timeout = min(self._link.timeout, 0.5)
                self.end_session()
        except (LinkError, PumpRefused):
            pass  # the session times out on the pump by itself
        finally:
            self._link.close()

    # -- sessions ---------------------------------------------------------------

    def keys(self) -> PumpKeys:
        """The keys this host holds for the pump (AuthError if none)."""
        if self._keys is None:
            device_id = self.hello().device_id
            if not device_id:
                raise AuthError(f"the pump on {self.port} has no keys: provision it (flash it with keys) first")
            found = config.load_keys(device_id)
            if found is None:
                raise AuthError(
                    f"no keys for pump {device_id} in {config.config_path()}: "
                    "add them (they were written when it was flashed) or give keys="
                )
            self._keys = found
        return self._keys

    @_one_at_a_time
    def authenticate(self, role: str | int = "clinician") -> None:
        """Open a session with the role's key: the pump proves it holds the key too."""
        role_code = ROLES.get(role, role) if isinstance(role, str) else role
        if role_code not in (auth.ROLE_PATIENT, auth.ROLE_CLINICIAN):
            raise ValueError(f"role must be patient or clinician, not {role!r}")
        key = self.keys().key(role_code)
        name = auth.ROLE_NAMES[role_code]
        if key is None:
            raise AuthError(f"this host holds no {name} key for pump {self.keys().device_id}")
        self._link.session_mac = None
        self.role = auth.ROLE_NONE
        (pump_nonce,) = self._link.request(codec.AUTH_BEGIN, (role_code,))
        host_nonce = os.urandom(auth.NONCE_BYTES)
        proof = auth.proof(key, role_code, pump_nonce, host_nonce)
        try:
            pump_proof, _timeout_s = self._link.request(codec.AUTH_PROVE, (role_code, host_nonce, proof))
        except PumpRefused as e:
            if e.code == codec.ERR_AUTH:
                raise AuthError(f"the pump refused the {name} key: {e.reason}") from None
            raise
        if not auth.same_bytes(pump_proof, auth.pump_proof(key, role_code, pump_nonce, host_nonce)):
            raise AuthError(f"the pump on {self.port} could not prove it holds the {name} key: not the pump expected")
        self._link.session_mac = auth.Hmac(auth.session_key(key, role_code, pump_nonce, host_nonce))
        self.role = role_code

    @_one_at_a_time
    def end_session(self) -> None:
        try:
            if self.role != auth.ROLE_NONE:
                self._link.request(codec.AUTH_END)
        finally:
            self._link.session_mac = None
            self.role = auth.ROLE_NONE

    def _role_for(self, needed: int) -> int:
        """The role to open a session with for a command that needs `needed`."""
        if needed == auth.ROLE_PATIENT and self.keys().patient_key is not None:
            return auth.ROLE_PATIENT  # least privilege
        return auth.ROLE_CLINICIAN

    @_one_at_a_time
    def _request(self, msg_type: int, values=()) -> list:
        """Send a command, opening a session first if it needs one, and once
        more if the pump's session ended meanwhile (it refused, so nothing changed)."""
        needed = codec.ROLE_NEEDED.get(msg_type, auth.ROLE_NONE)
        if self.role < needed:
            self.authenticate(self._role_for(needed))
        try:
            return self._link.request(msg_type, values)
        except PumpRefused as e:
            if e.code != codec.ERR_NO_SESSION or self.role == auth.ROLE_NONE:
                raise
        # The session timed out on the pump (pump time; a simulator's can race).
        if needed == auth.ROLE_NONE:
            self._link.session_mac = None  # reading needs none
            self.role = auth.ROLE_NONE
        else:
            self.authenticate(self.role)
        return self._link.request(msg_type, values)

    @_one_at_a_time
    def change_key(self, role: str, new_key: bytes | None = None) -> PumpKeys:
        """Replace the pump's patient or clinician key (clinician session). The new
        key travels masked (auth.wrap_pad); returns the keys the host now holds,
        which it should save (config.save_keys)."""
        role_code = ROLES[role]
        new_key = new_key if new_key is not None else os.urandom(auth.KEY_BYTES)
        if len(new_key) != auth.KEY_BYTES:
            raise ValueError(f"a key is {auth.KEY_BYTES} bytes")
        if self.role < auth.ROLE_CLINICIAN:
            self.authenticate(auth.ROLE_CLINICIAN)
        seq = self._link.next_seq()
        masked = auth.xor_bytes(new_key, auth.wrap_pad(self._link.session_mac, role_code, seq))
        payload = codec.encode_fields(codec.request_fields(codec.KEY_CHANGE), (role_code, masked))
        session = self._link.session_mac
        self._link.send_raw(codec.encode_frame(codec.KEY_CHANGE, seq, payload, session))
        self._link.await_reply(codec.KEY_CHANGE, seq, session)
        old = self.keys()
        self._keys = PumpKeys(
            old.device_id,
            new_key if role_code == auth.ROLE_CLINICIAN else old.clinician_key,
            new_key if role_code == auth.ROLE_PATIENT else old.patient_key,
        )
        return self._keys

    @property
    def link(self) -> SerialTransport:
        """The frame transport, for tools and tests that speak raw frames."""
        return self._link

    def hello(self) -> PumpInfo:
        return PumpInfo(*self._request(codec.HELLO))

    def status(self) -> Status:
        mday, us, mode, rate, hi, lo, step_pl = self._request(codec.STATUS)
        return Status(
            time_us=_pump_time_us(mday, us),
            mode=words.MODE_NAMES.get(mode, str(mode)),
            rate_nl_per_day=rate,
            steps=hi * codec.STEP_RADIX + lo,
            step_volume_pl=step_pl,
        )

    def set_rate(self, rate: str) -> RateSet:
        """Program a continuous rate given with its unit, e.g. "0.5 mL/day".

        The pump converts the text itself and refuses anything unclear. A bare volume rate names
        no drug, so no drug-library limit applies to it (NO_DRUG_LIMITS); the pump refuses it
        while it holds a drug. To deliver a drug, program it: stage(["drug ...", "basal ..."]).
        """
        if not isinstance(rate, str):
            raise TypeError('give the rate as text with its unit, for example "0.5 mL/day"')
        nl_per_day, rounded, mday, us = self._request(codec.SET_RATE, (rate,))
        return RateSet(nl_per_day, bool(rounded), _pump_time_us(mday, us))

    def stop(self) -> int:
        """Stop delivery; return the pump time at which it stopped."""
        mday, us = self._request(codec.STOP)
        return _pump_time_us(mday, us)

    def therapy(self) -> Therapy:
        v = self._request(codec.THERAPY)
        none = codec.NO_TIME
        return Therapy(
            mode=words.MODE_NAMES.get(v[0], str(v[0])),
            basal_nl_per_day=v[1],
            rate_nl_per_day=v[2],
            bolus=words.BOLUS_KIND_NAMES.get(v[3], str(v[3])),
            bolus_rate_nl_per_day=v[4],
            bolus_left_s=v[5],
            bridge=bool(v[6]),
            reservoir_nl=None if v[7] == none else v[7],
            empty_in_s=None if v[8] == none else v[8],
            day_nl=v[9],
            hour_nl=v[10],
            refused_steps=v[11],
            alarm=words.ALARM_NAMES.get(v[12], str(v[12])),
            clock_s=None if v[13] == none else v[13],
            program_crc=v[14],
            library=v[15],
            alarms=_alarm_names(v[16]),
            sounding=words.PRIORITY_NAMES.get(v[17], "none"),
            silenced_s=v[18],
            held=bool(v[19]),
            sensor_nl=None if v[20] == none else v[20],
            low_in_s=None if v[21] == none else v[21],
            low_nl=v[22],
            empty_nl=v[23],
            battery_permille=None if v[24] == codec.NO_PERMILLE else v[24],
            battery_days=None if v[25] == none else v[25],
            library_hash=v[26],
        )

    def set_clock(self, clock_s: int) -> int:
        """Set the device clock to local wall time clock_s (seconds since 1970, naive local)."""
        (got,) = self._request(codec.CLOCK_SET, (clock_s,))
        return got

    # -- programming session: stage, review, commit ----------------------------

    @_one_at_a_time
    def stage(self, lines: list[str]) -> Staged:
        """Send program lines and have the pump check them; nothing changes yet."""
        if not lines:
            raise ValueError("a program needs at least one line")
        for i, line in enumerate(lines):
            self._request(codec.STAGE_LINE, (i, line))
        n_rows, _n_warn, crc, expires = self._request(codec.STAGE)
        rows = self._rows(codec.REVIEW_STAGED, n_rows)
        warnings = [detail for line, detail in rows if line == "soft limit"]
        return Staged(rows, warnings, crc, expires)

    @_one_at_a_time
    def review(self, staged: bool = False) -> list[tuple[str, str]]:
        """The running (or staged) program as the pump understood it."""
        which = codec.REVIEW_STAGED if staged else codec.REVIEW_RUNNING
        n, line, detail = self._request(codec.REVIEW, (which, 0))
        return [(words.render(line), words.render(detail))] + self._rows(which, n, start=1)

    def _rows(self, which: int, n: int, start: int = 0) -> list[tuple[str, str]]:
        rows = []
        for i in range(start, n):
            _n, line, detail = self._request(codec.REVIEW, (which, i))
            rows.append((words.render(line), words.render(detail)))
        return rows

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
        return _pump_time_us(mday, us)

    def discard(self) -> None:
        self._request(codec.DISCARD)

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
            n, code, prio, state, mday, us, text = self._request(codec.ALARMS, (i,))
            if i >= n or code == codec.ALARM_NONE:
                return out
            out.append(
                Alarm(
                    code=code,
                    name=words.ALARM_NAMES.get(code, str(code)),
                    priority=words.PRIORITY_NAMES.get(prio, str(prio)),
                    active=bool(state & codec.ALARM_STATE_ACTIVE),
                    acknowledged=bool(state & codec.ALARM_STATE_ACKED),
                    raised_us=_pump_time_us(mday, us),
                    text=words.render(text),
                )
            )
            i += 1

    def ack_alarm(self, alarm: str | int = 0) -> int:
        """Acknowledge one latched alarm (by name or code) or, with 0, every one (clinician key).
        Returns how many were acknowledged; one whose condition is still present stays latched."""
        code = alarm_code(alarm) if isinstance(alarm, str) else alarm
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
        """Event log entries from index `since` on (older ones may have left the ring).
        progress(done, total) after each entry read (one request each)."""
        out = []
        i = since
        while True:
            try:
                count, index, mday, us, code, text = self._request(codec.EVENT, (i,))
            except PumpRefused:
                return out  # nothing logged at or after i
            out.append(Event(index, _pump_time_us(mday, us), code, words.render(text)))
            i = index + 1
            if progress:
                progress(i - since, max(count - since, 1))
            if i >= count:
                return out

    @_one_at_a_time
    def library(self, progress: Callable[[int, int], None] | None = None) -> tuple[str, list[list[str]]]:
        """The drug library in force: (version, entries of 12 text fields).
        progress(done, total) after each request (one per field)."""
        version, fields = self.library_fields(staged=False, progress=progress)
        return version, _entries(fields)

    @_one_at_a_time
    def library_fields(
        self, staged: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> tuple[str, list[LibraryField]]:
        """The library in force (or the staged one) field by field, with what the pump says
        of each: changed, a hard limit raised (staged only), its drug in use."""
        which = codec.LIB_STAGED if staged else codec.LIB_IN_FORCE
        version, n, _, _ = self._request(codec.LIB_GET, (0, 0, which))
        total = 1 + n * len(LIBRARY_FIELDS)
        if progress:
            progress(1, total)
        out = []
        for d in range(n):
            name = ""
            for f, field in enumerate(LIBRARY_FIELDS):
                _v, _n, text, change = self._request(codec.LIB_GET, (d, f, which))
                name = text if f == 0 else name
                out.append(
                    LibraryField(
                        name,
                        field,
                        text,
                        bool(change & codec.LIB_CHANGED),
                        bool(change & codec.LIB_RAISED),
                        bool(change & codec.LIB_IN_USE),
                    )
                )
                if progress:
                    progress(2 + d * len(LIBRARY_FIELDS) + f, total)
        return version, out

    @_one_at_a_time
    def stage_library(
        self, version: str, entries: list[list[str]], progress: Callable[[int, int], None] | None = None
    ) -> StagedLibrary:
        """Send a library and have the pump check it beside the one in force (the first step);
        the library in force is unchanged. progress(done, total) after each request.
        Raises PumpRefused: the library's own refusal, a version not new, or (field
        "running ...") the running therapy that the new library would refuse."""
        total = sum(len(fields) for fields in entries) + 1
        done = 0
        for d, fields in enumerate(entries):
            for f, text in enumerate(fields):
                self._request(codec.LIB_FIELD, (d, f, text))
                done += 1
                if progress:
                    progress(done, total)
        h, n, changed, raised, expires = self._request(codec.LIB_STAGE, (version, len(entries)))
        if progress:
            progress(total, total)
        if h != codec.library_hash(entries):
            raise PumpRefused(
                codec.ERR_INTERNAL,
                "library_hash",
                f"the pump holds library hash {h:08x}, not the {codec.library_hash(entries):08x} sent",
            )
        return StagedLibrary(version, h, n, changed, raised, expires)

    @_one_at_a_time
    def commit_library(self, staged: StagedLibrary, confirm_raise: bool = False) -> None:
        """Put the staged library in force (the second step); read back its hash and version."""
        version, _n, h = self._request(codec.LIB_COMMIT, (staged.library_hash, 1 if confirm_raise else 0))
        th = self.therapy()
        if (version, h, th.library, th.library_hash) != (staged.version, staged.library_hash) * 2:
            raise PumpRefused(
                codec.ERR_INTERNAL,
                "library",
                f"read-back {th.library} {th.library_hash:08x} is not the library staged "
                f"({staged.version} {staged.library_hash:08x})",
            )

    @_one_at_a_time
    def load_library(
        self,
        version: str,
        entries: list[list[str]],
        progress: Callable[[int, int], None] | None = None,
        confirm_raise: bool = False,
    ) -> StagedLibrary:
        """Stage, then commit, a library in one call (scripts; people should review first)."""
        staged = self.stage_library(version, entries, progress)
        self.commit_library(staged, confirm_raise)
        return staged

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
        seq, v = got
        return Telemetry(
            seq=seq,
            time_us=_pump_time_us(v[0], v[1]),
            mode=words.MODE_NAMES.get(v[2], str(v[2])),
            rate_nl_per_day=v[3],
            steps=v[4] * codec.STEP_RADIX + v[5],
            reservoir_nl=None if v[6] == codec.NO_TIME else v[6],
            day_nl=v[7],
            hour_nl=v[8],
            alarm=words.ALARM_NAMES.get(v[9], str(v[9])),
            session=auth.ROLE_NAMES.get(v[10], str(v[10])),
            dropped=v[11],
            alarms=_alarm_names(v[12]),
            sensor_nl=None if v[13] == codec.NO_TIME else v[13],
            battery_permille=None if v[14] == codec.NO_PERMILLE else v[14],
        )

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
        start = self.status().time_us
        mday, us = self._request(codec.SIM_ADVANCE, (seconds, micros))
        target = _pump_time_us(mday, us)
        poll_s = 0.001  # short runs finish in a few ms: look soon, then less often
        while True:
            status = self.status()
            if progress:
                progress(min(status.time_us, target) - start, target - start)
            if status.time_us >= target:
                return status
            time.sleep(poll_s)
            poll_s = min(2 * poll_s, max_poll_s)

    def sim_fault(self, kind: str | int = "motor", at_s: int = 0, value: int = 1) -> int:
        """Inject a fault into the simulated board at pump time at_s (0 or the past: now);
        kind is a words.FAULT_NAMES name or code. Returns the pump time (us) it takes effect."""
        code = fault_code(kind) if isinstance(kind, str) else kind
        _kind, mday, us = self._request(codec.SIM_FAULT, (code, at_s, value))
        return _pump_time_us(mday, us)

    def sim_state(self) -> SimState:
        v = self._request(codec.SIM_STATE)
        return SimState(
            v[0] * codec.STEP_RADIX + v[1],
            v[2],
            v[3],
            v[4],
            v[5],
            v[6],
            None if v[7] == codec.NO_TIME else v[7],
            v[8],
            v[9],
            v[10],
            v[11],
        )


def _entries(fields: list[LibraryField]) -> list[list[str]]:
    """LibraryField rows back into entries of 12 texts."""
    n = len(LIBRARY_FIELDS)
    return [[f.text for f in fields[i : i + n]] for i in range(0, len(fields), n)]
