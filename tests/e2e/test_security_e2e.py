"""The link no one can misuse, end to end: the firmware on the MicroPython
unix port, an attacker and a host on the pty. Every attack is refused, logged,
and leaves the program as it was, dosing exactly on schedule."""

import os
import time
from contextlib import contextmanager

import pytest
from frames import seal
from pumpctl import AuthError, PumpKeys, PumpRefused, Simulator, schema, units
from test_e2e import HOUR, Tracked

from firmware import auth, codec, framing

pytestmark = pytest.mark.micropython

S = 1_000_000


def set_rate_frame(seq, text, session):
    """A SET_RATE frame as the host would send it for text ("10 mL/h"), MAC'd under session."""
    payload = schema.encode_fields(schema.request_fields(codec.SET_RATE), [units.parse_rate("rate", text)[0]])
    return framing.encode_frame(codec.SET_RATE, seq, payload, session)


def answer(pump, frame, seq, session=None):
    """Send frame as it is; return the reply's fields or the refusal."""
    pump.link.send_raw(frame)
    try:
        return pump.link.await_reply(codec.SET_RATE, seq, session)
    except PumpRefused as e:
        return e


def reforge_crc(frame):
    """Decode a frame, let the caller's damage stand, and give it a correct CRC again:
    what an attacker who knows the format (not the key) can do."""
    raw = framing.cobs_decode(frame[:-1], len(frame) - 1)
    return seal(bytes(raw[:-4]))


@contextmanager
def another_host(pump, keys):
    """The same line driven with other keys: another host (one port opens once)."""
    held = pump._keys
    pump.end_session()
    pump._keys = keys
    try:
        yield pump
    finally:
        pump.end_session()
        pump._keys = held


def security_events(pump, since):
    return [e.text for e in pump.events(since) if e.code == 14]


@pytest.fixture
def dosing(pump):
    """The pump dosing 2 mL/day under a clinician's program; the exact tracker."""
    t = Tracked(pump)
    t.set_rate("2 mL/day")
    t.advance_and_check(HOUR)
    return t


def unchanged(t, rate_nl_per_day=2_000_000):
    """The program is the one committed and still doses exactly."""
    th = t.pump.therapy()
    assert (th.mode, th.rate_nl_per_day) == ("continuous", rate_nl_per_day)
    t.advance_and_check(2 * HOUR)


def test_a_command_without_a_key_is_refused_logged_and_changes_nothing(pump, dosing):
    logged = pump.events()[-1].index + 1
    seq = pump.link.next_seq()
    refused = answer(pump, set_rate_frame(seq, "10 mL/h", None), seq)
    assert isinstance(refused, PumpRefused) and refused.code == codec.ERR_NEED_KEY
    assert "set-rate needs a session with the clinician key (this frame has no MAC)" in refused.reason
    assert security_events(pump, logged) == ["refused: " + refused.reason]
    unchanged(dosing)


def test_a_wrong_key_is_refused_logged_and_changes_nothing(sim, pump, dosing):
    logged = pump.events()[-1].index + 1
    wrong = PumpKeys(sim.keys.device_id, os.urandom(32), os.urandom(32))
    with another_host(pump, wrong) as intruder:
        with pytest.raises(AuthError, match="the pump refused the clinician key: wrong key for the clinician role"):
            intruder.set_rate("10 mL/h")
    assert security_events(pump, logged) == [
        "refused: wrong key for the clinician role (1 failed since the last login)"
    ]
    unchanged(dosing)


def test_the_patient_key_cannot_program_but_can_ask_for_the_patient_bolus(sim, pump):
    pca = "patient-bolus 0.2 mg over 10 min lockout 2 h max 4 per day"
    pump.program(["drug morphine 20 mg/mL", "fill 20 mL", "basal 2 mg/day", pca], confirm_soft=True)
    before = pump.review()
    patient_only = PumpKeys(sim.keys.device_id, patient_key=sim.keys.patient_key)
    with another_host(pump, patient_only) as patient:
        with pytest.raises(AuthError, match="holds no clinician key"):
            patient.set_rate("10 mL/h")  # the host will not even try
        patient.authenticate("patient")
        seq = patient.link.next_seq()
        session = patient.link.session_mac
        refused = answer(patient, set_rate_frame(seq, "10 mL/h", session), seq, session)
        assert refused.code == codec.ERR_NEED_KEY
        assert "needs a session with the clinician key (this frame has the patient key)" in refused.reason
        volume_nl, _s = patient.patient_bolus()
        assert volume_nl == 10_000  # 0.2 mg at 20 mg/mL
    assert pump.review() == before
    assert any(e.text.startswith("refused: set-rate needs") for e in pump.events())


def test_a_replayed_frame_is_refused_even_after_the_program_changed(pump, dosing):
    pump.authenticate("clinician")
    session = pump.link.session_mac
    seq = pump.link.next_seq()
    captured = set_rate_frame(seq, "3 mL/day", session)
    assert answer(pump, captured, seq, session)[0] == 3_000_000  # the genuine frame works once
    at_once = answer(pump, captured, seq, session)  # and not twice, even as the very next frame
    assert isinstance(at_once, PumpRefused) and at_once.code == codec.ERR_AUTH
    dosing.exact.set_rate(pump.status().time_us, 3_000_000)
    dosing.set_rate("2 mL/day")
    logged = pump.events()[-1].index + 1
    replay = answer(pump, captured, seq, session)
    assert isinstance(replay, PumpRefused) and replay.code == codec.ERR_AUTH
    assert f"sequence {seq} was already used" in replay.reason
    assert security_events(pump, logged) == ["refused: " + replay.reason]
    unchanged(dosing)


def test_a_valid_frame_with_one_bit_flipped_is_refused(pump, dosing):
    pump.authenticate("clinician")
    session = pump.link.session_mac
    seq = pump.link.next_seq()
    genuine = set_rate_frame(seq, "9 mL/h", session)
    raw = bytearray(framing.cobs_decode(genuine[:-1], len(genuine) - 1))
    raw[8] ^= 0x01  # the first payload byte: "9 mL/h" becomes another length
    flipped = framing.cobs_encode(bytes(raw)) + b"\x00"
    line_noise = answer(pump, flipped, seq)  # the CRC finds it
    assert isinstance(line_noise, PumpRefused) and line_noise.code == codec.ERR_BAD_FRAME
    raw = bytearray(framing.cobs_decode(genuine[:-1], len(genuine) - 1))
    raw[9] ^= 0x08  # "9" becomes "1": a forger who fixes the CRC
    forged = answer(pump, reforge_crc(framing.cobs_encode(bytes(raw)) + b"\x00"), seq)
    assert isinstance(forged, PumpRefused) and forged.code == codec.ERR_AUTH
    assert "MAC is wrong" in forged.reason
    unchanged(dosing)


def test_a_frame_of_an_ended_session_is_refused(pump, dosing):
    pump.authenticate("clinician")
    old = pump.link.session_mac
    seq = pump.link.next_seq()
    captured = set_rate_frame(seq + 1000, "5 mL/day", old)  # a later seq: not a replay within the session
    pump.end_session()
    no_session = answer(pump, captured, seq + 1000)
    assert isinstance(no_session, PumpRefused) and no_session.code == codec.ERR_NO_SESSION
    pump.authenticate("clinician")  # a new session: the old key no longer signs anything
    other_session = answer(pump, captured, seq + 1000)
    assert isinstance(other_session, PumpRefused) and other_session.code == codec.ERR_AUTH
    events = [e.text for e in pump.events()]
    assert "session ended: ended by the host" in events
    unchanged(dosing)


def test_a_flood_of_failed_proofs_and_challenges_never_keeps_the_clinician_from_stopping_the_pump(sim, pump, dosing):
    """The bound the pump promises (docs/protocol.md, the threat model): a correct proof opens the
    session at once, whatever a keyless host sent before or sends between the clinician's AUTH_BEGIN
    and AUTH_PROVE; so the stop takes effect at the pump time the clinician sends it (the simulator's
    clock stands still here: no wait of any length was needed)."""
    link = pump.link
    role = auth.ROLE_CLINICIAN
    key = sim.keys.clinician_key
    logged = pump.events()[-1].index + 1
    pump.end_session()

    def flood(n):
        for _ in range(n):
            (nonce,) = link.request(codec.AUTH_BEGIN, (role,))
            host_nonce = os.urandom(16)
            with pytest.raises(PumpRefused, match="wrong key for the clinician role") as e:
                link.request(codec.AUTH_PROVE, (role, nonce, host_nonce, os.urandom(32)))
            assert e.value.code == codec.ERR_AUTH

    flood(30)  # before the clinician comes
    (clinician_nonce,) = link.request(codec.AUTH_BEGIN, (role,))
    flood(30)  # between the clinician's AUTH_BEGIN and AUTH_PROVE, each with its own AUTH_BEGIN
    with pytest.raises(PumpRefused, match="not a challenge this pump gave"):  # a challenge of its own making
        link.request(codec.AUTH_PROVE, (role, clinician_nonce[:8] + bytes(8), bytes(16), os.urandom(32)))
    sent_at = pump.status().time_us
    host_nonce = os.urandom(16)
    pump_proof, _ = link.request(
        codec.AUTH_PROVE, (role, clinician_nonce, host_nonce, auth.proof(key, role, clinician_nonce, host_nonce))
    )
    assert pump_proof == auth.pump_proof(key, role, clinician_nonce, host_nonce)
    link.session_mac = auth.Hmac(auth.session_key(key, role, clinician_nonce, host_nonce))
    pump.role = role
    stopped_at = pump.stop()
    assert stopped_at == sent_at  # no lockout, no wait: the stop is at the pump time it was asked
    dosing.exact.set_rate(stopped_at, 0)
    assert pump.therapy().mode == "stopped"
    # The proof replayed opens nothing: the challenge has had its session.
    with pytest.raises(PumpRefused, match="older than the last login, or was used"):
        link.request(
            codec.AUTH_PROVE, (role, clinician_nonce, host_nonce, auth.proof(key, role, clinician_nonce, host_nonce))
        )
    # The failures were logged, a limited number one by one (no flood of the log, nor of flash).
    refused = security_events(pump, logged)
    assert 1 <= sum("wrong key" in t for t in refused) <= 10
    dosing.advance_and_check(HOUR)


def test_a_silent_host_loses_its_session_and_the_pump_doses_on(pump, dosing):
    pump.authenticate("clinician")
    staged = pump.stage(["basal 4 mL/day"])
    session = pump.link.session_mac
    pump.link.session_mac = None  # the host goes quiet: only the simulator's clock moves
    pump.role = auth.ROLE_NONE
    dosing.advance_and_check(auth.SESSION_TIMEOUT_US + S)
    seq = pump.link.next_seq()
    pump.link.send_raw(
        framing.encode_frame(
            codec.COMMIT,
            seq,
            schema.encode_fields(schema.request_fields(codec.COMMIT), (staged.program_crc, 0)),
            session,
        )
    )
    with pytest.raises(PumpRefused, match="no session") as ended:
        pump.link.await_reply(codec.COMMIT, seq, session)
    assert ended.value.code == codec.ERR_NO_SESSION
    # The checked program stays staged for another session to review and commit (or discard): the
    # silent host's session key opens nothing, and the program doses on unchanged meanwhile.
    assert pump.staged().lines == staged.lines
    pump.discard()
    unchanged(dosing)
    dosing.advance_and_check(24 * HOUR)


def test_a_pump_without_keys_can_be_read_but_not_changed(tmp_path):
    with Simulator(provision=False) as sim, sim.pump() as pump:
        assert pump.hello().device_id == ""
        assert pump.status().mode == "stopped"
        with pytest.raises(PumpRefused, match="this pump has no keys") as refused:
            pump.link.request(codec.AUTH_BEGIN, (auth.ROLE_CLINICIAN,))
        assert refused.value.code == codec.ERR_NO_KEYS
        assert any(e.text == "no keys: reading only until the pump is provisioned" for e in pump.events())


def test_a_changed_key_replaces_the_old_one_and_survives_a_restart(tmp_path):
    folder = tmp_path / "pump"
    with Simulator(storage=folder) as sim:
        with sim.pump() as pump:
            new = pump.change_key("patient")
            assert new.patient_key != sim.keys.patient_key and new.clinician_key == sim.keys.clinician_key
            with another_host(pump, sim.keys) as stale:  # the keys as they were
                with pytest.raises(AuthError, match="wrong key for the patient role"):
                    stale.authenticate("patient")
        first = sim.keys
    with Simulator(storage=folder, keys=new, provision=False) as again, again.pump() as pump:
        pump.authenticate("patient")
        assert pump.hello().device_id == first.device_id
        assert any(e.text == "patient key changed" for e in pump.events())


def test_telemetry_streams_every_sample_while_the_pump_doses_exactly(pump, dosing):
    pump.start_telemetry(20)
    samples = []
    deadline = time.monotonic() + 20
    while len(samples) < 40 and time.monotonic() < deadline:
        dosing.advance_and_check(HOUR // 8)  # dosing goes on; the stream takes nothing from it
        while (sample := pump.telemetry(timeout=0.05)) is not None:
            samples.append(sample)
    pump.stop_telemetry()
    assert len(samples) >= 40
    assert [s.seq for s in samples] == list(range(samples[0].seq, samples[0].seq + len(samples)))  # none lost
    assert all(s.dropped == 0 for s in samples)
    assert all(a.time_us <= b.time_us and a.steps <= b.steps for a, b in zip(samples, samples[1:], strict=False))
    assert {s.rate_nl_per_day for s in samples} == {2_000_000}
    time.sleep(0.1)
    while pump.telemetry(timeout=0.05) is not None:  # what was on the way when it stopped
        pass
    assert pump.telemetry(timeout=0.2) is None
    unchanged(dosing)


def test_telemetry_stops_when_the_host_goes_silent(pump):
    pump.start_telemetry(100)
    assert pump.telemetry(timeout=1) is not None
    time.sleep(10.5)  # the pump's hold time: 10 s without a byte from the host
    pump.link.telemetry.clear()
    while pump.telemetry(timeout=0.3) is not None:
        pass
    assert pump.telemetry(timeout=0.5) is None
    # The stream that ended by itself starts again when asked (its task dropped it: telemetry.py).
    pump.start_telemetry(100)
    assert pump.telemetry(timeout=1) is not None
    pump.stop_telemetry()


def test_telemetry_interval_outside_its_range_is_refused(pump):
    for interval in (1, 9, 3_600_001):
        with pytest.raises(PumpRefused, match="outside 10..3600000 ms"):
            pump.start_telemetry(interval)


def test_a_flood_of_refusals_is_logged_ten_in_a_row_then_counted(pump, dosing):
    first = pump.events()[-1].index + 1
    for _ in range(30):
        seq = pump.link.next_seq()
        assert answer(pump, set_rate_frame(seq, "10 mL/h", None), seq).code == codec.ERR_NEED_KEY
    assert len(security_events(pump, first)) == 10
    dosing.advance_and_check(60 * S)  # a minute earns one entry more, which counts the rest
    seq = pump.link.next_seq()
    answer(pump, set_rate_frame(seq, "10 mL/h", None), seq)
    flood = security_events(pump, first)
    assert len(flood) == 11 and flood[-1].startswith("refused (+20 not logged): set-rate needs")
    unchanged(dosing)


def test_a_restart_keeps_the_record_of_refusals_and_voids_every_challenge_given_before_it(tmp_path):
    """What the design keeps across a restart (docs/protocol.md): the keys and the log's record of the
    refused authentications saved with the state; what it drops: every challenge and session (a new
    boot secret), so nothing a host without the key gathered before the restart helps it after."""
    with Simulator(storage=tmp_path / "pump", register=True) as first, first.pump() as pump:
        link = pump.link
        role = auth.ROLE_CLINICIAN
        key = first.keys.clinician_key
        for _ in range(3):
            (nonce,) = link.request(codec.AUTH_BEGIN, (role,))
            with pytest.raises(PumpRefused, match="wrong key"):
                link.request(codec.AUTH_PROVE, (role, nonce, bytes(16), os.urandom(32)))
        (kept_nonce,) = link.request(codec.AUTH_BEGIN, (role,))  # a challenge answered only after the restart
        pump.set_rate("2 mL/day")  # a durable point: the record now holds the refusals
        refused = [e.text for e in pump.events() if e.code == 14]
        assert len(refused) == 3
        # A flood without a key writes nothing to flash (the bound of docs/protocol.md's threat model).
        files = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in (tmp_path / "pump").iterdir()}
        for _ in range(200):
            (nonce,) = link.request(codec.AUTH_BEGIN, (role,))
            with pytest.raises(PumpRefused):
                link.request(codec.AUTH_PROVE, (role, nonce, bytes(16), os.urandom(32)))
        assert {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in (tmp_path / "pump").iterdir()} == files
        pump.end_session()
    with Simulator(storage=tmp_path / "pump", keys=first.keys, provision=False) as again, again.pump() as pump:
        assert [e.text for e in pump.events() if e.code == 14] == refused
        host_nonce = os.urandom(16)
        with pytest.raises(PumpRefused, match="not a challenge this pump gave the clinician role since it started"):
            pump.link.request(
                codec.AUTH_PROVE, (role, kept_nonce, host_nonce, auth.proof(key, role, kept_nonce, host_nonce))
            )
        assert pump.therapy().rate_nl_per_day == 2_000_000  # and the key still opens a session and changes the pump
        pump.set_rate("3 mL/day")
