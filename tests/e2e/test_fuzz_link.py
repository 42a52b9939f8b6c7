"""Fuzzing the link end to end: the real firmware on the MicroPython unix port,
behind a pty, programmed and dosing, is sent frames by the thousand.

Frame sources:
  - hypothesis strategies that build structurally plausible frames (known and
    unknown types, any flags, sequence numbers and payloads, typed fields with
    odd values, a valid CRC so they reach the link's logic, sometimes a wrong
    CRC, length or COBS, a cut or an oversized frame) and raw byte soup;
  - mutation of valid frames of every command in schema.FIELDS, plain and with
    the live session's MAC, and of replies captured from the pump: bit flips,
    inserted and deleted bytes, truncation, two frames spliced, a frame sent
    twice (a replay), a changed sequence number, type, length, flags or
    version, junk around it, oversize; and frames re-signed with the session
    key around a random payload, so the handlers' field and value checks run
    behind a valid MAC.

Frames go out in batches without waiting for each reply; a reader thread
drains the replies meanwhile, so neither side waits on a full pty. Each reply
is checked, in order, against LinkModel: an independent model of what the link
must answer (COBS, CRC, header, MAC and sequence rules, roles, fields), written
from the protocol and not from the firmware's code. Every few hundred frames,
and at the end, the pump is checked: the process is alive and did not restart
(pump time never went back, the event log only grew, and by nothing but
session and security entries), the therapy is the one programmed (program CRC,
mode, basal, the review's rows, library, no alarm), and, after a random run of
pump time, it delivered exactly the steps owed (pumpctl.expected_steps).

PUMP_TEST_PROFILE=long (make test-long) sends more than 100,000 frames; the
default run a few thousand. PUMP_FUZZ_SEED changes the mutation seed.
"""

import os
import random
import select
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pumpctl import NoReply, Simulator, expected_steps, pump_clock, schema, words

from firmware import auth, codec, eventlog, framing
from firmware.druglib import DEFAULT_NUMBERS
from hal.sim.tally import read_tally

pytestmark = pytest.mark.micropython

LONG = os.environ.get("PUMP_TEST_PROFILE", "default") == "long"
SEED = int(os.environ.get("PUMP_FUZZ_SEED", "1"))
HYPOTHESIS_BATCHES = 4_000 if LONG else 200  # hypothesis examples, each a batch of 10 to 80 units
# The older versions whose hosts the pump answers in their own version (firmware/link.py's _OLDEST_ERROR
# on), so they read why: a reply this pumpctl cannot read, which test_link checks. The fuzzer's foreign
# versions are the others, whose refusal comes in the pump's own version.
TOLD_VERSIONS = range(8, codec.PROTOCOL_VERSION)
MUTATED_FRAMES = 100_000 if LONG else 3_000
FLOOD_SECONDS = 20 if LONG else 3
CHECK_EVERY = 500  # fuzz frames between two full checks of the pump (and a run of pump time)

S = 1_000_000
HOUR = 3600 * S
FLAG_MAC = framing.FLAG_MAC

# Commands the fuzz sends with a valid MAC of the live clinician session, and
# any payload: they read, change only what is staged (a program or a library
# not yet committed), or (TELEMETRY with interval 0) stop a stream that is not
# running. A frame carrying the session's MAC is by design the clinician's own
# instruction: a valid SET_RATE, STOP, COMMIT, PATIENT_BOLUS... under it must
# change the therapy, so they cannot be sent validly signed by a test that
# requires nothing to change. Those commands are fuzzed without a valid MAC
# instead (none, a wrong one, a replayed or altered signed frame), which must
# be refused before any handler runs.
SAFE_WITH_MAC = (
    codec.HELLO,
    codec.STATUS,
    codec.THERAPY,
    codec.REVIEW,
    codec.LIB_GET,
    codec.EVENT,
    codec.SIM_STATE,
    codec.STAGE_ITEM,
    codec.STAGE,
    codec.DISCARD,
    codec.LIB_DRUG,
    codec.CAL_WEIGHING,
    codec.TELEMETRY,
)
# Handlers no fuzz frame may reach (LinkModel finds a unit that would and it
# is not sent; counted as skipped): those above, the session's end, and the
# simulator's own hooks, which need no key on the simulator (SIM_ADVANCE runs
# pump time, SIM_FAULT fails the motor; a real board offers neither).
NEVER_SERVED = frozenset(
    (
        codec.SET_RATE,
        codec.STOP,
        codec.CLOCK_SET,
        codec.ACK_ALARM,
        codec.COMMIT,
        codec.PATIENT_BOLUS,
        codec.LIB_COMMIT,
        codec.KEY_CHANGE,
        codec.AUTH_END,
        codec.SERVICE,
        codec.SILENCE,
        codec.CALIBRATE,
        codec.SIM_ADVANCE,
        codec.SIM_FAULT,
    )
)
TELEMETRY_RANGE = range(10, 3_600_001)  # an interval that starts the stream (app.py)

# Event log entries a fuzzed pump may add: sessions starting and ending, and
# (rate-limited) security refusals. Anything else (a boot, a restart, a
# program, a stop, an alarm, a key change...) means something changed.
QUIET_EVENTS = (eventlog.EV_SESSION, eventlog.EV_SECURITY)

MORPHINE = [
    "drug morphine 20 mg/mL",
    "fill 20 mL",
    "basal 8 mg/day",
    "patient-bolus 0.2 mg over 30 min lockout 1 h max 4 per day",
]

# Text for string fields: program lines, rates, library values, near misses.
TEXTS = (
    "basal 1 mL/day",
    "basal 2 mg/day",
    "basal 0.0000001 nL/day",
    "drug morphine 20 mg/mL",
    "drug none",
    "drug morphine 999 mg/mL",
    "fill 20 mL",
    "fill 0 mL",
    "stop",
    "stop now",
    "bolus 0.5 mg over 10 min",
    "bolus 1 mg over 0 min after 25 h",
    "prime 10 uL over 1 min",
    "bridge",
    "flex 00:00 2 mg/day",
    "flex 24:61 2 mg/day",
    "patient-bolus 0.2 mg over 30 min lockout 1 h max 4 per day",
    "patient-bolus 0.2 mg over 30 min lockout 1 h max 99999999999 per day",
    "trial 2 h",
    "10 mL/h",
    "12 mL/h",
    "0.5 uL/day",
    "1e9 mL/h",
    "0x10 mL/h",
    "99999999999999999999999999 nL/day",
    "-1 mL/h",
    "1,5 mL/h",
    ".5 mL/h",
    "5 mg/day",
    "morphine",
    "20 mg/mL",
    "15 mg/day",
    "1 h",
    "µL",
    "",
    " ",
    "\x00",
    "basal\t1\tmL/day",
)
# Byte strings a string field may carry that are not UTF-8: cut characters, and
# the forms a lax decoder takes for other characters (overlong, surrogates,
# beyond U+10FFFF): "0\xc0\xae5" is "0.5" to a decoder that allows overlong forms.
NOT_UTF8 = (
    b"\xff",
    b"basal 1 \xc2",
    b"\xc0\x80",
    b"basal 0\xc0\xae5 mL/day",
    b"10 mL/\xe0\x81\xa8",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xf0\x80\x80\xb1 mL/h",
)


# -- the model of the link -------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What the pump must answer to one frame."""

    seq: int  # the reply's sequence number (0 when the frame could not be read)
    reply: int | None  # the reply type allowed (command | REPLY), or None: an ERROR only
    errors: frozenset  # the ERROR codes allowed
    signed: bool  # the reply carries the session's MAC (the frame's MAC was accepted)
    what: str  # what the frame was, for the tallies


SIZES = {"B": 1, "H": 2, "I": 4}


def cobs_decode(chunk):
    """COBS decoding, written from the definition; None if chunk is not valid COBS."""
    out = bytearray()
    i = 0
    while i < len(chunk):
        code = chunk[i]
        block = chunk[i + 1 : i + code]
        if code == 0 or len(block) != code - 1 or 0 in block:
            return None
        out += block
        i += code
        if code < 0xFF and i < len(chunk):
            out.append(0)
    return bytes(out)


def unpack(fields, payload):
    """The field values if payload holds exactly these fields (strings of at most MAX_STRING
    bytes, text strict UTF-8), else None."""
    values = []
    pos = 0
    for _name, kind in fields:
        if kind in "sy":
            if pos >= len(payload) or payload[pos] > framing.MAX_STRING or pos + 1 + payload[pos] > len(payload):
                return None
            raw = payload[pos + 1 : pos + 1 + payload[pos]]
            pos += 1 + len(raw)
            if kind == "s":
                try:
                    raw = raw.decode("utf-8")
                except UnicodeDecodeError:
                    return None
            values.append(raw)
        else:
            size = SIZES[kind]
            if pos + size > len(payload):
                return None
            values.append(int.from_bytes(payload[pos : pos + size], "little"))
            pos += size
    return values if pos == len(payload) else None


def pack(fields, values):
    """A payload of these fields; a string may be given as bytes (any bytes, any length up to 255)."""
    out = bytearray()
    for (_name, kind), v in zip(fields, values, strict=True):
        if kind in "sy":
            raw = v.encode() if isinstance(v, str) else bytes(v)
            out.append(len(raw))
            out += raw
        else:
            out += v.to_bytes(SIZES[kind], "little")
    return bytes(out)


def handler_outcome(msg_type, values):
    """(reply allowed, error codes allowed) for a frame a handler serves."""
    if msg_type == codec.AUTH_BEGIN:
        if values[0] in (auth.ROLE_PATIENT, auth.ROLE_CLINICIAN):
            return True, set()  # a challenge is never refused: failed proofs lock nobody out
        return False, {codec.ERR_AUTH}
    if msg_type == codec.AUTH_PROVE:
        return False, {codec.ERR_AUTH}  # no proof without the key
    if msg_type in (codec.HELLO, codec.STATUS, codec.THERAPY, codec.SIM_STATE, codec.DISCARD):
        return True, set()
    if msg_type == codec.TELEMETRY:
        return (True, set()) if values[0] == 0 else (False, {codec.ERR_BAD_VALUE})
    return True, {codec.ERR_BAD_VALUE}  # a value refused: range, syntax, a row or an event that is not there


class LinkModel:
    """The answer the link owes each frame, from the protocol (codec.py's header,
    link.py's order of checks, auth.py's MAC and sequence rules) and not from the
    firmware's code: every non-empty run of bytes between delimiters gets exactly
    one reply, in order."""

    def __init__(self):
        self.session = None  # auth.Hmac of the live session
        self.last_seq = 0  # the highest sequence number the session accepted

    def unit(self, wire):
        """[(chunk, Expect)] for wire (ending with a delimiter), or None if a frame in
        it would reach a handler in NEVER_SERVED (or start telemetry); then nothing
        is taken from it into the model."""
        assert wire.endswith(b"\x00")
        last = self.last_seq
        out = []
        for chunk in wire.split(b"\x00"):
            if chunk:
                expect, last, served = self._frame(chunk, last)
                if served:
                    return None
                out.append((chunk, expect))
        self.last_seq = last
        return out

    def _frame(self, chunk, last):
        """(Expect, last accepted seq, True if it reaches a handler the fuzz must not reach)."""

        def refused(seq, code, what, signed=False):
            return Expect(seq, None, frozenset((code,)), signed, what), last, False

        if len(chunk) > framing.MAX_ENCODED:
            return refused(0, codec.ERR_TOO_LONG, "too long")
        raw = cobs_decode(chunk)
        if raw is None:
            return refused(0, codec.ERR_BAD_FRAME, "bad COBS")
        flags = raw[2] if len(raw) > 2 else 0
        mac_len = auth.MAC_BYTES if flags & FLAG_MAC else 0
        if len(raw) < 12 or raw[7] > framing.MAX_PAYLOAD or len(raw) != 12 + raw[7] + mac_len:
            return refused(0, codec.ERR_BAD_FRAME, "bad length")
        if zlib.crc32(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
            return refused(0, codec.ERR_BAD_FRAME, "bad CRC")
        seq = int.from_bytes(raw[3:7], "little")
        if raw[0] != codec.PROTOCOL_VERSION:
            return refused(seq, codec.ERR_BAD_VERSION, "bad version")
        if flags & ~FLAG_MAC:
            return refused(seq, codec.ERR_MALFORMED, "bad flags")
        msg_type = raw[1]
        body = 8 + raw[7]
        payload = raw[8:body]
        signed = False
        role = auth.ROLE_NONE
        if mac_len:
            if self.session is None:
                return refused(seq, codec.ERR_NO_SESSION, "no session")
            if raw[body : body + mac_len] != self.session.digest(raw[:body])[:mac_len]:
                return refused(seq, codec.ERR_AUTH, "wrong MAC")
            if seq <= last:
                return refused(seq, codec.ERR_AUTH, "replayed")
            last = seq
            signed = True
            role = auth.ROLE_CLINICIAN
        if msg_type not in words.COMMAND_NAMES:
            return refused(seq, codec.ERR_UNKNOWN_COMMAND, "unknown type", signed)
        if role < schema.ROLE_NEEDED.get(msg_type, auth.ROLE_NONE):
            return refused(seq, codec.ERR_NEED_KEY, "needs a key", signed)
        values = unpack(schema.request_fields(msg_type), payload)
        if values is None:
            return refused(seq, codec.ERR_MALFORMED, "malformed", signed)
        if msg_type in NEVER_SERVED or (msg_type == codec.TELEMETRY and values[0] in TELEMETRY_RANGE):
            return None, last, True
        reply, errors = handler_outcome(msg_type, values)
        what = ("served signed " if signed else "served ") + words.COMMAND_NAMES[msg_type]
        return Expect(seq, msg_type | codec.REPLY if reply else None, frozenset(errors), signed, what), last, False


def frame_bytes(version, msg_type, flags, seq, payload, mac=b""):
    """A decoded frame (header, payload, MAC, CRC), the length byte from the payload."""
    body = bytes([version, msg_type, flags]) + seq.to_bytes(4, "little") + bytes([len(payload) & 0xFF]) + payload
    return with_crc(body + mac)


def with_crc(data):
    return data + zlib.crc32(data).to_bytes(4, "little")


def resign(raw, session, seq):
    """raw (a decoded frame) under the session's MAC with sequence number seq, its length and CRC right."""
    payload = raw[8 : 8 + raw[7]] if len(raw) >= 12 else b""
    body = bytes([codec.PROTOCOL_VERSION, raw[1], FLAG_MAC]) + seq.to_bytes(4, "little") + bytes([len(payload)])
    body += payload
    return with_crc(body + session.digest(body)[: auth.MAC_BYTES])


# -- the pump under fuzz -----------------------------------------------------------


class FuzzedPump:
    """A simulated pump in a clinician session, programmed, checked as it is fuzzed."""

    def __init__(self, sim, pump, rng, exact_motor=True):
        self.sim = sim
        self.pump = pump
        self.rng = rng
        self.exact_motor = exact_motor  # speed 0: the motor's count is the status's; else it may run ahead
        self.model = LinkModel()
        self.stats = Counter()  # what each frame was and what it got
        self.frames = 0  # fuzz frames sent (non-empty runs between delimiters)
        self.units = 0
        self.skipped = 0
        self.since_check = 0
        self.checks = 0
        self.captured = []  # replies from the pump: valid frames to mutate
        self.last_time = -1

    def program(self, lines=None, rate=None):
        """Put the therapy in force from a stopped pump (no partial step carried)."""
        pump = self.pump
        pump.authenticate("clinician")
        if rate is not None:
            result = pump.set_rate(rate)
            self.t0, self.rate = result.effective_us, result.rate_nl_per_day
        else:
            self.t0 = pump.commit(pump.stage(lines))
            self.rate = pump.therapy().rate_nl_per_day
        self.info = pump.hello()
        self.therapy = pump.therapy()
        self.review = pump.review()
        self.fill_nl = self.therapy.reservoir_nl
        self.events_seen = len(pump.events())
        assert self.therapy.alarm == "none" and self.rate > 0
        self.pid = self.sim.proc.pid
        self.check()
        self.new_session()

    # -- checks ----------------------------------------------------------------

    def alive(self):
        assert self.sim.running(), "the firmware died:\n" + self.sim.stderr_text()
        assert self.sim.proc.pid == self.pid

    def check(self):
        """The pump is alive, was not reset, runs the same therapy and delivered exactly the steps owed."""
        self.alive()
        pump = self.pump
        assert pump.hello() == self.info
        status = pump.status()
        assert status.time_us >= self.last_time, "pump time went back: a restart"
        self.last_time = status.time_us
        assert (status.mode, status.rate_nl_per_day) == (self.therapy.mode, self.rate)
        owed = expected_steps(self.rate, status.time_us - self.t0, status.step_volume_pl)
        assert status.steps == owed, f"at {status.time_us} us: {status.steps} steps delivered, {owed} owed"
        therapy = pump.therapy()
        for name in ("mode", "basal_nl_per_day", "rate_nl_per_day", "bolus", "bridge", "refused_steps"):
            assert getattr(therapy, name) == getattr(self.therapy, name), name
        for name in ("alarm", "clock_s", "program_crc", "library"):
            assert getattr(therapy, name) == getattr(self.therapy, name), name
        if self.fill_nl is not None:
            assert therapy.reservoir_nl == self.fill_nl - status.steps * status.step_volume_pl // 1000
        assert pump.review() == self.review
        motor = pump.sim_state()
        assert (motor.halts, motor.dropped_steps) == (0, 0)
        if self.exact_motor:
            assert motor.motor_steps == status.steps
        else:
            assert motor.motor_steps >= status.steps
        events = pump.events(self.events_seen)
        if events:
            assert events[0].index == self.events_seen, "log entries lost between two checks"
            self.events_seen = events[-1].index + 1
        for e in events:
            assert e.code in QUIET_EVENTS, f"the fuzz made the pump log {e}"
            self.stats["log: " + ("security" if e.code == eventlog.EV_SECURITY else "session")] += 1
        self.checks += 1

    def advance(self):
        """Run pump time forward a random while and check the dosing against the exact count."""
        rng = self.rng
        us = rng.choice((rng.randrange(1, S), rng.randrange(S, 600 * S), rng.randrange(600 * S, 3 * HOUR)))
        before = self.pump.status().time_us
        status = self.pump.sim_advance(us)
        assert status.time_us == before + us
        self.check()

    def new_session(self):
        """A fresh clinician session (the last one timed out in the pump time run)."""
        self.pump.authenticate("clinician")  # the fuzz's wrong proofs never lock the key holder out
        self.model.session = self.pump.link.session_mac
        self.model.last_seq = 0
        assert self.model.session is not None

    def checkpoint(self, force=False):
        if force or self.since_check >= CHECK_EVERY:
            self.check()
            self.advance()
            self.new_session()
            self.since_check = 0

    # -- sending ---------------------------------------------------------------

    def send(self, units):
        """Send units (each ending with a delimiter) in one write, then check every reply.

        The batch opens with a STATUS under the session's MAC, which makes every
        older sequence number a replay, and closes with a plain STATUS. units may be
        a generator: signed frames made in it get sequence numbers after the first."""
        self.alive()
        link = self.pump.link
        first = framing.encode_frame(codec.STATUS, link.next_seq(), b"", link.session_mac)
        expected = self.model.unit(first)
        wire = [first]
        for unit in units:
            got = self.model.unit(unit)
            if got is None:
                self.skipped += 1
                continue
            expected += got
            wire.append(unit)
            self.units += 1
            self.frames += len(got)
            self.since_check += len(got)
        last = framing.encode_frame(codec.STATUS, link.next_seq())
        expected += self.model.unit(last)
        wire.append(last)
        replies = self._exchange(b"".join(wire), len(expected))
        session = self.model.session
        for (chunk, expect), reply in zip(expected, replies, strict=True):
            try:
                self._check_reply(expect, reply, session)
            except AssertionError as e:
                raise AssertionError(f"frame {chunk.hex()} ({expect.what}): {e}") from None
        for (_chunk, expect), reply in zip(expected[1:-1], replies[1:-1], strict=True):
            self.stats[expect.what] += 1
            self.stats["reply: " + ("error %d" % reply[2][0] if reply[0] == codec.ERROR else "answered")] += 1
        if len(self.captured) < 200:
            self.captured += [frame_of(r) for r in replies[-3:]]

    def _exchange(self, data, n):
        """Write data, meanwhile reading replies on a thread; return the n replies, in order,
        as (type, seq, payload, mac, signed)."""
        link = self.pump.link
        replies = []
        telemetry = []
        failure = []

        def read():
            deadline = time.monotonic() + 10 + len(data) / 20_000
            while len(replies) < n and time.monotonic() < deadline:
                try:
                    frame = link.read_frame(time.monotonic() + 0.5)
                except NoReply:
                    continue
                except Exception as e:  # noqa: BLE001 - reported by the test thread
                    failure.append(e)
                    break
                if frame[0] == codec.TELEMETRY_DATA:
                    telemetry.append(frame)
                else:
                    replies.append(frame)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        link.send_raw(data)
        reader.join()
        assert not failure, f"reading the replies failed: {failure[0]!r}"
        assert not telemetry, "a telemetry stream started"
        self.alive()
        assert len(replies) == n, f"{n} replies owed, {len(replies)} came"
        with pytest.raises(NoReply):  # and nothing more (as far as it has come in)
            link.read_frame(time.monotonic())
        return replies

    @staticmethod
    def _check_reply(expect, reply, session):
        kind, seq, payload, mac, signed = reply
        assert seq == expect.seq, f"reply seq {seq}, expected {expect.seq}"
        if kind == codec.ERROR:
            code, _field, message, _more = schema.decode_fields(schema.reply_fields(codec.ERROR), payload)
            assert code in expect.errors, f"refused with error {code} ({message}); allowed {set(expect.errors)}"
        else:
            assert kind == expect.reply, f"reply type 0x{kind:02x}, allowed {expect.reply} or errors {expect.errors}"
            schema.decode_fields(schema.reply_fields(kind & ~codec.REPLY), payload)  # the host can read it
        if expect.signed:
            assert mac is not None and auth.same_bytes(mac, session.digest(signed)[: auth.MAC_BYTES]), "unsigned"
        else:
            assert mac is None, "a reply signed for a frame whose MAC was not accepted"


def frame_of(reply):
    """The decoded frame bytes of a reply (to mutate later)."""
    kind, seq, payload, mac, _signed = reply
    return frame_bytes(codec.PROTOCOL_VERSION, kind, FLAG_MAC if mac else 0, seq, payload, mac or b"")


# -- mutation of valid frames ---------------------------------------------------------

# A valid request of every message in schema.FIELDS (example_values): a valid value of each field's kind,
# or, for a command that needs specific values (a role, a rate in range, a program line...), its EXAMPLES.
VALID_VALUE = {"B": 0, "H": 0, "I": 0, "s": "", "y": b""}
EXAMPLES = {
    codec.AUTH_BEGIN: (auth.ROLE_CLINICIAN,),
    codec.AUTH_PROVE: (auth.ROLE_CLINICIAN, bytes(16), bytes(16), bytes(32)),
    codec.KEY_CHANGE: (auth.ROLE_PATIENT, bytes(range(32))),
    codec.CLOCK_SET: (1_700_000_000,),
    codec.STAGE_ITEM: (0, codec.ITEM_BASAL, "", codec.DOSE_VOLUME, 1_000_000, 0, 0, 0, 0, 0, 0),
    codec.COMMIT: (0x12345678, 1),
    codec.LIB_DRUG: (0, "morphine", *DEFAULT_NUMBERS[0]),
    codec.LIB_STAGE: ("site-1", 1),
    codec.LIB_COMMIT: (0x12345678, 1),
    codec.SIM_FAULT: (codec.FAULT_STALL, 0, 1),
    codec.CALIBRATE: (2, 998_200, 0),
    codec.CAL_WEIGHING: (0, 0, 0, 0, 2000, 104_000),
    codec.SET_RATE: (240_000_000,),
    codec.SIM_ADVANCE: (3600, 0),
}


def example_values(msg_type):
    """A valid request of msg_type: its values in EXAMPLES, or a valid value of each field's kind."""
    if msg_type in EXAMPLES:
        return EXAMPLES[msg_type]
    return tuple(VALID_VALUE[kind] for _name, kind in schema.request_fields(msg_type))


def test_every_command_has_an_example_request_that_the_codec_reads():
    for msg_type in schema.FIELDS:
        fields = schema.request_fields(msg_type)
        values = example_values(msg_type)
        assert framing.decode_request(msg_type, pack(fields, values)) == list(values)


def random_values(fields, rng):
    values = []
    for _name, kind in fields:
        if kind == "s":
            values.append(rng.choice((rng.choice(TEXTS), rng.choice(NOT_UTF8), rng.randbytes(rng.randrange(0, 40)))))
        elif kind == "y":
            values.append(rng.randbytes(rng.choice((0, 16, 32, rng.randrange(0, 101)))))
        else:
            bits = 8 * SIZES[kind]
            values.append(rng.choice((rng.randrange(0, 4), rng.getrandbits(bits), (1 << bits) - 1)))
    return values


class Mutator:
    """Mutations of valid frames (decoded frames, with CRC) into units to send."""

    def __init__(self, rng, fuzz):
        self.rng = rng
        self.fuzz = fuzz
        self.corpus = []
        self.ops = Counter()

    def new_corpus(self):
        """Valid requests of every message, plain and under the live session (their sequence
        numbers are replays by the time they are sent), and replies captured from the pump."""
        link = self.fuzz.pump.link
        corpus = []
        for msg_type in sorted(schema.FIELDS):
            fields = schema.request_fields(msg_type)
            payload = pack(fields, example_values(msg_type))
            for session in (None, link.session_mac):
                wire = framing.encode_frame(msg_type, link.next_seq(), payload, session)
                corpus.append(framing.cobs_decode(wire[:-1], len(wire) - 1))
        self.corpus = [bytes(f) for f in corpus] + self.fuzz.captured[-60:]

    def unit(self):
        rng = self.rng
        raw = bytearray(rng.choice(self.corpus))
        if rng.random() < 0.25 and raw[1] in SAFE_WITH_MAC:
            raw = bytearray(self._signed_random(raw[1]))
            self.ops["re-signed, random payload"] += 1
            if rng.random() < 0.8:
                return framing.cobs_encode(raw) + b"\x00"
        elif rng.random() < 0.6:
            raw = self._edit_frame(raw)
        if rng.random() < 0.03:
            wire = bytearray(raw)  # not COBS-encoded: its zeros split it
            self.ops["not COBS-encoded"] += 1
        else:
            wire = bytearray(framing.cobs_encode(raw))
        if rng.random() < 0.6:
            for _ in range(rng.randint(1, 2)):
                wire = self._edit_wire(wire)
        return bytes(wire) + b"\x00"

    def _signed_random(self, msg_type):
        """A frame of msg_type with a random payload under the session's valid MAC and a fresh seq."""
        rng = self.rng
        fields = schema.request_fields(msg_type)
        if rng.random() < 0.7:
            payload = pack(fields, random_values(fields, rng))
            if msg_type == codec.TELEMETRY and int.from_bytes(payload, "little") in TELEMETRY_RANGE:
                payload = bytes(4)  # interval 0: stops a stream (none runs)
        else:
            payload = rng.randbytes(rng.randrange(0, 24))
        link = self.fuzz.pump.link
        raw = frame_bytes(codec.PROTOCOL_VERSION, msg_type, 0, 0, payload[: framing.MAX_PAYLOAD])
        return resign(raw, link.session_mac, link.next_seq())

    def _edit_frame(self, raw):
        """Change a header field or the payload; usually fix the CRC after, so the change reaches the logic."""
        rng = self.rng
        op = rng.choice(("seq", "seq+1", "type", "length", "flags", "version", "payload", "cut payload", "grow"))
        self.ops["frame: " + op] += 1
        if len(raw) < 12:
            return raw
        if op == "seq":
            raw[3:7] = rng.getrandbits(32).to_bytes(4, "little")
        elif op == "seq+1":
            raw[3:7] = ((int.from_bytes(raw[3:7], "little") + 1) & framing.MAX_SEQ).to_bytes(4, "little")
        elif op == "type":
            raw[1] = rng.choice((rng.getrandbits(8), rng.choice(sorted(schema.FIELDS)), raw[1] | codec.REPLY))
        elif op == "length":
            raw[7] = rng.choice((rng.getrandbits(8), (raw[7] + rng.choice((-1, 1, 16, -16))) & 0xFF))
        elif op == "flags":
            raw[2] = rng.choice((rng.getrandbits(8), raw[2] ^ FLAG_MAC, 0x80 | raw[2]))
        elif op == "version":
            raw[0] = rng.choice((0, 1, 3, 0xFF, rng.getrandbits(8)))
            if raw[0] in TOLD_VERSIONS:
                raw[0] = 0xFF
        elif op == "payload" and len(raw) > 12:
            for _ in range(rng.randint(1, 3)):
                raw[8 + rng.randrange(len(raw) - 12)] ^= 1 << rng.randrange(8)
        elif op == "cut payload" and raw[7]:
            cut = rng.randint(1, raw[7])
            del raw[8 + raw[7] - cut : 8 + raw[7]]
            raw[7] -= cut
        elif op == "grow":
            extra = rng.randbytes(rng.randint(1, 40))
            at = 8 + raw[7]
            raw[at:at] = extra
            raw[7] = (raw[7] + len(extra)) & 0xFF
        if rng.random() < 0.85:
            raw[-4:] = zlib.crc32(raw[:-4]).to_bytes(4, "little")
        return raw

    def _edit_wire(self, wire):
        """Damage the encoded bytes as a line or an attacker might."""
        rng = self.rng
        op = rng.choice(("flip", "insert", "delete", "truncate", "splice", "replay", "junk", "oversize", "cut"))
        self.ops["wire: " + op] += 1
        n = len(wire)
        if op == "flip" and n:
            for _ in range(rng.randint(1, 4)):
                wire[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == "insert":
            wire[rng.randint(0, n) : rng.randint(0, n)] = bytes([rng.choice((0, rng.getrandbits(8)))])
        elif op == "delete" and n:
            at = rng.randrange(n)
            del wire[at : at + rng.randint(1, 4)]
        elif op == "truncate":
            del wire[rng.randint(0, n) :]
        elif op == "splice":
            other = framing.cobs_encode(rng.choice(self.corpus))
            wire = wire[: rng.randint(0, n)] + other[rng.randint(0, len(other)) :]
        elif op == "replay":
            wire = wire + b"\x00" + wire
        elif op == "junk":
            junk = rng.randbytes(rng.randint(1, 40))
            wire = wire + junk if rng.random() < 0.5 else junk + wire
        elif op == "oversize":
            fill = bytes(rng.randint(1, 255) for _ in range(max(0, framing.MAX_ENCODED - n) + rng.randint(1, 600)))
            wire = wire + fill
        elif op == "cut":  # a delimiter in the middle: two pieces
            wire[rng.randint(0, n) : rng.randint(0, n)] = b"\x00"
        return bytearray(wire)


# -- hypothesis strategies ---------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A frame drawn by hypothesis; the sequence number and MAC of a signed one are made when it is sent."""

    version: int
    msg_type: int
    flags: int | None  # None: FLAG_MAC if it has a MAC, else 0
    seq: int
    payload: bytes
    mac: str  # "none", "session" (valid, fresh seq) or "junk"
    damage: str
    where: int  # where the damage falls, and how much
    junk: bytes


def field_value(kind):
    if kind == "s":
        texts = st.one_of(st.sampled_from(TEXTS), st.text(max_size=30))
        return st.one_of(texts, st.sampled_from(NOT_UTF8), st.binary(max_size=100))
    if kind == "y":
        return st.binary(max_size=100)
    top = (1 << 8 * SIZES[kind]) - 1
    return st.one_of(st.integers(0, 3), st.integers(0, top), st.just(top))


@st.composite
def payloads(draw, msg_type):
    fields = schema.request_fields(msg_type) if msg_type in schema.FIELDS else ()
    if fields and draw(st.integers(0, 3)):
        values = [draw(field_value(kind)) for _name, kind in fields]
        if msg_type == codec.TELEMETRY:
            values = [draw(st.one_of(st.just(0), st.integers(1, 9), st.integers(3_600_001, 0xFFFFFFFF)))]
        payload = pack(fields, values)
        if len(payload) <= framing.MAX_PAYLOAD:
            return payload
    return draw(st.one_of(st.binary(max_size=24), st.binary(max_size=framing.MAX_PAYLOAD + 15)))


DAMAGE = ("none",) * 14 + ("crc", "length", "cobs", "raw", "truncate", "oversize", "junk")


def mostly(usual, other, one_in=8):
    """usual, but other one time in one_in."""
    return st.integers(1, one_in).flatmap(lambda k: other if k == 1 else st.just(usual))


@st.composite
def specs(draw):
    signed = draw(st.integers(0, 3)) == 0
    if signed:
        msg_type = draw(st.sampled_from(SAFE_WITH_MAC))
        version, flags, mac = codec.PROTOCOL_VERSION, None, "session"
    else:
        msg_type = draw(st.one_of(st.sampled_from(sorted(schema.FIELDS)), mostly(codec.HELLO, st.integers(0, 255), 4)))
        version = draw(mostly(codec.PROTOCOL_VERSION, st.integers(0, 255).filter(lambda v: v not in TOLD_VERSIONS)))
        flags = draw(mostly(None, st.integers(0, 255)))
        mac = draw(mostly("none", st.just("junk"), 4))
    return Spec(
        version=version,
        msg_type=msg_type,
        flags=flags,
        seq=draw(st.one_of(st.integers(0, 3), st.integers(0, framing.MAX_SEQ))),
        payload=draw(payloads(msg_type)),
        mac=mac,
        damage=draw(st.sampled_from(DAMAGE)),
        where=draw(st.integers(0, 1000)),
        junk=draw(st.binary(min_size=1, max_size=40)),
    )


soups = st.binary(min_size=1, max_size=600)  # raw bytes, zeros and all
batches = st.lists(st.one_of(specs(), specs(), specs(), soups), min_size=10, max_size=80)


def materialize(spec, link):
    """The unit to send for a Spec or a soup of bytes."""
    if isinstance(spec, bytes):
        return spec + b"\x00"
    seq = link.next_seq() if spec.mac == "session" else spec.seq
    flags = spec.flags if spec.flags is not None else (0 if spec.mac == "none" else FLAG_MAC)
    header = bytes([spec.version, spec.msg_type, flags]) + seq.to_bytes(4, "little") + bytes([len(spec.payload)])
    body = header + spec.payload
    if spec.mac == "session":
        body += link.session_mac.digest(body)[: auth.MAC_BYTES]
    elif spec.mac == "junk":
        body += spec.junk[:16].ljust(16, b"\x5a")
    raw = bytearray(with_crc(body))
    where = spec.where
    if spec.damage == "crc":
        raw[len(raw) - 4 + where % 4] ^= 1 << (where // 4 % 8)
    elif spec.damage == "length":
        raw[7] = (raw[7] + 1 + where % 255) & 0xFF
        raw[-4:] = zlib.crc32(raw[:-4]).to_bytes(4, "little")
    elif spec.damage == "raw":
        return bytes(raw) + b"\x00"
    wire = bytearray(framing.cobs_encode(raw))
    if spec.damage == "cobs":
        wire[where % len(wire)] = 1 + where % 255
    elif spec.damage == "truncate":
        del wire[where % len(wire) :]
    elif spec.damage == "oversize":
        wire += bytes((b % 255) + 1 for b in range(framing.MAX_ENCODED + where % 300))
    elif spec.damage == "junk":
        wire += spec.junk
    return bytes(wire) + b"\x00"


# -- the tests -----------------------------------------------------------------------


def report(name, fuzz, seconds, extra=None):
    print(
        f"\n{name}: {fuzz.frames} frames in {fuzz.units} units ({fuzz.skipped} skipped), {seconds:.1f} s, "
        f"{fuzz.frames / seconds:.0f} frames/s, {fuzz.checks} checks, pump time {fuzz.last_time / HOUR:.1f} h"
    )
    for key, count in sorted(fuzz.stats.items()):
        print(f"  {key}: {count}")
    for key, count in sorted((extra or {}).items()):
        print(f"  {key}: {count}")


def assert_counts(fuzz, minimum):
    """The tallies make sense: enough frames, all kinds of them, every one answered."""
    stats = fuzz.stats
    answered = stats["reply: answered"]
    errors = sum(count for key, count in stats.items() if key.startswith("reply: error"))
    assert answered + errors == fuzz.frames >= minimum  # one reply per frame: none dropped, none extra
    assert fuzz.skipped <= fuzz.units // 20
    assert stats["reply: error 8"] == 0  # no internal error
    for what in ("bad CRC", "bad COBS", "too long", "bad length", "bad version", "wrong MAC", "needs a key"):
        assert stats[what] > 0, what
    assert stats["malformed"] > 0 and stats["unknown type"] > 0
    served_signed = sum(count for key, count in stats.items() if key.startswith("served signed"))
    assert served_signed > fuzz.frames // 50  # handlers ran behind a valid MAC, on random payloads


@pytest.fixture
def fuzzed(sim, pump):
    return FuzzedPump(sim, pump, random.Random(SEED))


def test_hypothesis_frames_change_nothing_and_dosing_stays_exact(fuzzed):
    fuzzed.program(rate="2 mL/day")
    start = time.monotonic()

    @settings(
        max_examples=HYPOTHESIS_BATCHES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(batches)
    def fuzz(batch):
        fuzzed.send(materialize(spec, fuzzed.pump.link) for spec in batch)
        fuzzed.checkpoint()

    fuzz()
    fuzzed.checkpoint(force=True)
    report("hypothesis", fuzzed, time.monotonic() - start)
    assert_counts(fuzzed, 1_500 if not LONG else 25_000)


def test_mutated_frames_change_nothing_and_dosing_stays_exact(fuzzed):
    fuzzed.program(lines=MORPHINE)
    mutator = Mutator(fuzzed.rng, fuzzed)
    start = time.monotonic()
    while fuzzed.frames < MUTATED_FRAMES:
        if fuzzed.since_check == 0:
            mutator.new_corpus()  # under the new session
        fuzzed.send(mutator.unit() for _ in range(100))
        fuzzed.checkpoint()
    fuzzed.checkpoint(force=True)
    report("mutation", fuzzed, time.monotonic() - start, mutator.ops)
    assert_counts(fuzzed, MUTATED_FRAMES)
    assert fuzzed.stats["replayed"] > 0


def flood_block(fuzzed, mutator, units):
    """Mutated units and long runs of junk, none of which the pump may serve; and how many
    frames (non-empty runs between delimiters) it holds. Sent again and again, its signed
    frames are replays from the second time on."""
    rng = fuzzed.rng
    block = []
    frames = 0
    while len(block) < units:
        if rng.random() < 0.05:
            unit = bytes(rng.randint(1, 255) for _ in range(rng.randint(300, 3000))) + b"\x00"
        else:
            unit = mutator.unit()
        expected = fuzzed.model.unit(unit)
        if expected is not None:
            block.append(unit)
            frames += len(expected)
    return b"".join(block), frames


def test_a_flood_of_frames_is_answered_while_the_pump_doses_never_ahead(tmp_path):
    """Pump time follows the wall clock (speed 1) at 10 mL/h, a step every 18.75 ms,
    while frames arrive faster than the pump can read them: a block of mutated
    frames and junk written again and again on a file descriptor of its own, the
    replies counted as they come. Every frame gets its reply; the motor's tally
    file, read from outside the link, never runs ahead of the steps the wall clock
    owes; and at the end every step owed was made, exactly.

    How late steps come during a flood is a speed: `make bench` measures it
    (flood_lateness_ratio, against quiet windows of the same run; a link that held
    the pump until the pty ran dry, about every 4 KB, made steps about 15 ms late),
    and this test only reports it."""
    tally = tmp_path / "tally"
    with Simulator(speed=1, tally=tally) as sim, sim.pump() as pump:
        fuzzed = FuzzedPump(sim, pump, random.Random(SEED + 1), exact_motor=False)
        fuzzed.program(rate="10 mL/h")
        mutator = Mutator(fuzzed.rng, fuzzed)
        mutator.new_corpus()
        block, frames_per_block = flood_block(fuzzed, mutator, 2000)
        step_pl = fuzzed.info.step_volume_pl
        pump_us, wall0, uncertain_s = pump_clock(pump)  # pump time pump_us at wall time wall0

        def owed(wall):
            return expected_steps(fuzzed.rate, pump_us + round((wall - wall0) * S) - fuzzed.t0, step_pl)

        fd = os.open(sim.port, os.O_RDWR | os.O_NOCTTY)  # pumpctl's port stays open, unread meanwhile
        stop = threading.Event()
        written = threading.Event()
        sent = []  # frames in each whole block written
        replies = [0]

        def write():
            try:
                while not stop.is_set():
                    view = memoryview(block)
                    while view:
                        view = view[os.write(fd, view) :]
                    sent.append(frames_per_block)
            finally:
                written.set()

        def read():  # until every frame written is answered
            while not (written.is_set() and replies[0] >= sum(sent)) and time.monotonic() < deadline:
                if select.select([fd], [], [], 0.2)[0]:
                    replies[0] += os.read(fd, 65536).count(0)  # one delimiter ends each reply

        writer = threading.Thread(target=write, daemon=True)
        reader = threading.Thread(target=read, daemon=True)
        start = time.monotonic()
        deadline = start + FLOOD_SECONDS + 60
        writer.start()
        reader.start()
        worst_late_ms = 0.0
        worst_stall_ms = 0.0  # this machine's own: the longest this loop's 2 ms sleep overran
        samples = 0
        slept = None  # when this loop last went to sleep
        try:
            # FLOOD_SECONDS, and at least until the second block is through (its signed frames are
            # replays): a loaded machine reads a block of ~2,500 frames in more than 3 s (541 frames/s
            # on CI once). The reader's deadline bounds a pump that stops reading.
            while (time.monotonic() - start < FLOOD_SECONDS or len(sent) < 2) and time.monotonic() < deadline - 30:
                before = time.monotonic()
                if slept is not None:
                    worst_stall_ms = max(worst_stall_ms, (before - slept - 0.002) * 1000)
                made = read_tally(tally)  # the motor's own count, read past the link
                after = time.monotonic()
                assert made <= owed(after + 0.002 + uncertain_s), "the pump ran ahead of the prescription"
                if made < owed(before):  # step made + 1 was due by now: since when?
                    due_us = fuzzed.t0 + -(-(made + 1) * step_pl * codec.US_PER_MDAY // fuzzed.rate)
                    worst_late_ms = max(worst_late_ms, (pump_us + (before - wall0) * S - due_us) / 1000)
                samples += 1
                slept = time.monotonic()
                time.sleep(0.002)
        finally:
            stop.set()
            writer.join(40)
            reader.join(40)
            os.close(fd)
        seconds = time.monotonic() - start
        fuzzed.alive()
        assert replies[0] == sum(sent), f"{sum(sent)} frames sent, {replies[0]} replies"
        fuzzed.frames = sum(sent)
        fuzzed.units = 2000 * len(sent)
        fuzzed.check()
        extra = {
            "bytes sent": len(block) * len(sent),
            "tally samples": samples,
            "worst lateness of a step (ms)": round(worst_late_ms, 1),
            "worst stall of the test's own loop (ms)": round(worst_stall_ms, 1),
        }
        report("flood", fuzzed, seconds, extra)
        # How late steps came is a speed, measured in `make bench` (flood_lateness_ratio: against quiet
        # windows of the same run), not asserted here: on a shared machine a test beside this one stalls
        # the pump and this loop alike. Here: every frame answered, never ahead, every step owed at the end.
        assert samples > 100 and len(sent) >= 2
