"""What the pump's replies become: typed records with units, one per kind of reply.

The Pump's methods (client.py) send a command; each record's from_reply() reads the reply's
decoded fields (in firmware/codec.py's order) into it. Nothing here talks to a pump."""

from __future__ import annotations

from dataclasses import dataclass

from firmware import codec

from . import words


def pump_time_us(mday: int, us: int) -> int:
    """Pump time in us from the wire's (millidays, us) pair."""
    return mday * codec.US_PER_MDAY + us


def alarm_names(mask: int) -> list[str]:
    """The names of the alarms whose bits are set in a mask of alarm codes."""
    return [name for code, name in sorted(words.ALARM_NAMES.items()) if code and mask & (1 << code)]


def _unless(value: int, none: int) -> int | None:
    """None where the wire says "none" (codec.NO_TIME, codec.NO_PERMILLE)."""
    return None if value == none else value


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

    @classmethod
    def from_reply(cls, values) -> Status:
        mday, us, mode, rate, hi, lo, step_pl = values
        return cls(
            time_us=pump_time_us(mday, us),
            mode=words.MODE_NAMES.get(mode, str(mode)),
            rate_nl_per_day=rate,
            steps=hi * codec.STEP_RADIX + lo,
            step_volume_pl=step_pl,
        )

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
    library_hash: int  # content hash of the library in force (framing.library_hash)
    bolus_nl: int = 0  # the running or waiting bolus, prime or bridge: its volume (0 without one)
    bolus_left_nl: int = 0  # and what of it is still to go

    @classmethod
    def from_reply(cls, v) -> Therapy:
        none = codec.NO_TIME
        return cls(
            mode=words.MODE_NAMES.get(v[0], str(v[0])),
            basal_nl_per_day=v[1],
            rate_nl_per_day=v[2],
            bolus=words.BOLUS_KIND_NAMES.get(v[3], str(v[3])),
            bolus_rate_nl_per_day=v[4],
            bolus_left_s=v[5],
            bridge=bool(v[6]),
            reservoir_nl=_unless(v[7], none),
            empty_in_s=_unless(v[8], none),
            day_nl=v[9],
            hour_nl=v[10],
            refused_steps=v[11],
            alarm=words.ALARM_NAMES.get(v[12], str(v[12])),
            clock_s=_unless(v[13], none),
            program_crc=v[14],
            library=v[15],
            alarms=alarm_names(v[16]),
            sounding=words.PRIORITY_NAMES.get(v[17], "none"),
            silenced_s=v[18],
            held=bool(v[19]),
            sensor_nl=_unless(v[20], none),
            low_in_s=_unless(v[21], none),
            low_nl=v[22],
            empty_nl=v[23],
            battery_permille=_unless(v[24], codec.NO_PERMILLE),
            battery_days=_unless(v[25], none),
            library_hash=v[26],
            bolus_nl=v[27],
            bolus_left_nl=v[28],
        )


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

    @classmethod
    def from_reply(cls, seq: int, v) -> Telemetry:
        """seq: the sample's number; v: TELEMETRY_DATA's fields."""
        return cls(
            seq=seq,
            time_us=pump_time_us(v[0], v[1]),
            mode=words.MODE_NAMES.get(v[2], str(v[2])),
            rate_nl_per_day=v[3],
            steps=v[4] * codec.STEP_RADIX + v[5],
            reservoir_nl=_unless(v[6], codec.NO_TIME),
            day_nl=v[7],
            hour_nl=v[8],
            alarm=words.ALARM_NAMES.get(v[9], str(v[9])),
            session=words.ROLE_NAMES.get(v[10], str(v[10])),
            dropped=v[11],
            alarms=alarm_names(v[12]),
            sensor_nl=_unless(v[13], codec.NO_TIME),
            battery_permille=_unless(v[14], codec.NO_PERMILLE),
        )


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

    @classmethod
    def from_reply(cls, values) -> Alarm:
        """values: an ALARMS reply that holds an alarm (its code is not ALARM_NONE)."""
        _n, code, prio, state, mday, us, text = values
        return cls(
            code=code,
            name=words.ALARM_NAMES.get(code, str(code)),
            priority=words.PRIORITY_NAMES.get(prio, str(prio)),
            active=bool(state & codec.ALARM_STATE_ACTIVE),
            acknowledged=bool(state & codec.ALARM_STATE_ACKED),
            raised_us=pump_time_us(mday, us),
            text=words.render(text),
        )


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
    clock_s: int | None = None  # the device clock when it was logged (local s since 1970), None if not set then

    @classmethod
    def from_reply(cls, values) -> Event:
        _count, index, mday, us, code, text, clock_s = values
        return cls(index, pump_time_us(mday, us), code, words.render(text), _unless(clock_s, codec.NO_TIME))


def program_lines(rows: list[tuple[str, str]]) -> list[str]:
    """The program lines among review rows (without soft-limit notes and totals)."""
    return [line for line, _detail in rows if line and line != "soft limit"]


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

    @classmethod
    def from_reply(cls, v) -> SimState:
        return cls(
            v[0] * codec.STEP_RADIX + v[1],
            v[2],
            v[3],
            v[4],
            v[5],
            v[6],
            _unless(v[7], codec.NO_TIME),
            v[8],
            v[9],
            v[10],
            v[11],
        )

    @property
    def finished_steps(self) -> int:
        """Steps the motor has completed by now."""
        return self.motor_steps - self.in_motion

    @property
    def delivered_pl(self) -> int:
        """Volume of the steps made or in motion (those in motion finish unless halted)."""
        return self.motor_steps * self.true_step_volume_pl
