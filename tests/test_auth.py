"""Authentication (firmware/auth.py): HMAC-SHA256 against RFC 4231 on all
three VMs, the pump's sessions, replay, rate limiting, the key record."""

import hashlib
import hmac
import os

import pytest
from vms import MP_DIR, run_unix, run_wasm32

from firmware import auth, codec
from firmware.auth import ROLE_CLINICIAN, ROLE_PATIENT, Authenticator, AuthError

RFC = {}
exec((MP_DIR / "rfc4231.py").read_text(), RFC)
CLINICIAN = bytes(range(32))
PATIENT = bytes(range(100, 132))
S = 1_000_000


@pytest.mark.parametrize("key_hex, data_hex, want", RFC["VECTORS"])
def test_hmac_matches_rfc_4231_and_the_standard_library(key_hex, data_hex, want):
    key, data = bytes.fromhex(key_hex), bytes.fromhex(data_hex)
    got = auth.hmac_sha256(key, data)
    assert got.hex()[: len(want)] == want
    assert got == hmac.new(key, data, hashlib.sha256).digest()


@pytest.mark.micropython
def test_hmac_matches_rfc_4231_on_the_unix_port():
    out = run_unix(MP_DIR / "hmac_vectors.py")
    assert out.split("\n")[:7] == [f"{i} ok" for i in range(1, 8)]


@pytest.mark.micropython32
def test_hmac_matches_rfc_4231_on_the_32_bit_vm():
    out = run_wasm32(MP_DIR / "hmac_vectors.py", MP_DIR / "rfc4231.py")
    assert out.split("\n")[:7] == [f"{i} ok" for i in range(1, 8)]


def test_same_bytes_compares_whole_strings():
    assert auth.same_bytes(b"abc", b"abc")
    assert not auth.same_bytes(b"abc", b"abd")
    assert not auth.same_bytes(b"abc", b"ab")


def pump_side(random=os.urandom):
    a = Authenticator(random)
    a.set_keys("pump-1", CLINICIAN, PATIENT)
    return a


def open_session(a, role=ROLE_CLINICIAN, key=CLINICIAN, now=0):
    """Run the host's side of a session against a; return the host's session Hmac."""
    nonce = a.begin(role, now)
    host_nonce = os.urandom(auth.NONCE_BYTES)
    answer = a.prove(role, host_nonce, auth.proof(key, role, nonce, host_nonce), now)
    assert answer == auth.pump_proof(key, role, nonce, host_nonce)
    return auth.Hmac(auth.session_key(key, role, nonce, host_nonce))


def signed_frame(session, seq, msg_type=codec.STATUS, payload=b""):
    """(signed bytes, mac) of a frame as the host would send it."""
    frame = codec.encode_frame(msg_type, seq, payload, session)
    dec = codec.FrameDecoder()
    for b in frame:
        if dec.feed(b):
            _t, _s, _p, mac, signed = dec.frame()
            return signed, mac
    raise AssertionError("no frame")


def test_a_session_accepts_rising_sequence_numbers_and_refuses_a_replay():
    a = pump_side()
    session = open_session(a)
    for seq in (1, 2, 7):
        signed, mac = signed_frame(session, seq)
        assert a.verify(signed, mac, seq, 0) == ROLE_CLINICIAN
    for seq in (7, 3):  # the same again, and an older one
        signed, mac = signed_frame(session, seq)
        with pytest.raises(AuthError, match="already used") as e:
            a.verify(signed, mac, seq, 0)
        assert e.value.code == codec.ERR_AUTH


def test_a_frame_under_another_key_or_altered_is_refused():
    a = pump_side()
    session = open_session(a)
    signed, mac = signed_frame(auth.Hmac(os.urandom(32)), 1)
    with pytest.raises(AuthError, match="MAC is wrong"):
        a.verify(signed, mac, 1, 0)
    signed, mac = signed_frame(session, 2, codec.SET_RATE, (1_000_000).to_bytes(4, "little"))
    altered = signed[:-4] + b"9" + signed[-3:]
    with pytest.raises(AuthError, match="MAC is wrong"):
        a.verify(altered, mac, 2, 0)
    assert a.verify(signed, mac, 2, 0) == ROLE_CLINICIAN  # the refusals did not use up seq 2


def test_a_wrong_key_is_refused_and_a_challenge_answers_once():
    a = pump_side()
    nonce = a.begin(ROLE_CLINICIAN, 0)
    host_nonce = bytes(16)
    with pytest.raises(AuthError, match="wrong key for the clinician role"):
        a.prove(ROLE_CLINICIAN, host_nonce, auth.proof(PATIENT, ROLE_CLINICIAN, nonce, host_nonce), 0)
    # The right proof for that nonce, replayed afterwards: the nonce is spent.
    with pytest.raises(AuthError, match="no challenge is waiting"):
        a.prove(ROLE_CLINICIAN, host_nonce, auth.proof(CLINICIAN, ROLE_CLINICIAN, nonce, host_nonce), 0)
    assert a.role == auth.ROLE_NONE


def test_the_patient_key_opens_only_a_patient_session():
    a = pump_side()
    open_session(a, ROLE_PATIENT, PATIENT)
    assert a.role == ROLE_PATIENT
    nonce = a.begin(ROLE_CLINICIAN, 0)
    with pytest.raises(AuthError, match="wrong key"):
        a.prove(ROLE_CLINICIAN, bytes(16), auth.proof(PATIENT, ROLE_CLINICIAN, nonce, bytes(16)), 0)
    assert a.role == ROLE_PATIENT  # a failed proof leaves the session as it was


def test_nonces_are_fresh():
    a = pump_side()
    nonces = {a.begin(ROLE_CLINICIAN, 0) for _ in range(100)}
    assert len(nonces) == 100 and all(len(n) == auth.NONCE_BYTES for n in nonces)


def test_failures_lock_out_for_longer_each_time_and_a_success_resets():
    a = pump_side()
    now = 0

    def fail():
        nonce = a.begin(ROLE_CLINICIAN, now)
        with pytest.raises(AuthError):
            a.prove(ROLE_CLINICIAN, bytes(16), auth.proof(b"wrong", ROLE_CLINICIAN, nonce, bytes(16)), now)

    for _ in range(auth.FREE_FAILURES):
        fail()
    fail()  # the first one that costs: 2 s
    with pytest.raises(AuthError, match="4 failed authentications in a row: try again in 2 s") as e:
        a.begin(ROLE_CLINICIAN, now)
    assert e.value.code == codec.ERR_LOCKED
    with pytest.raises(AuthError, match="try again in 1 s"):
        a.begin(ROLE_CLINICIAN, now + 2 * S - 1)
    now += 2 * S
    fail()  # 4 s
    with pytest.raises(AuthError, match="try again in 4 s"):
        a.begin(ROLE_CLINICIAN, now + 1)
    locks = []
    for _ in range(12):
        now += auth.LOCKOUT_MAX_US
        fail()
        locks.append(a._locked_until_us - now)
    assert locks[:4] == [8 * S, 16 * S, 32 * S, 64 * S]
    assert max(locks) == auth.LOCKOUT_MAX_US == locks[-1]
    now += auth.LOCKOUT_MAX_US
    open_session(a, now=now)
    assert a.failures == 0
    fail()  # free again
    a.begin(ROLE_CLINICIAN, now)


def test_an_idle_session_ends_after_the_timeout():
    a = pump_side()
    session = open_session(a, now=0)
    signed, mac = signed_frame(session, 1)
    a.verify(signed, mac, 1, auth.SESSION_TIMEOUT_US - 1)  # just in time: it restarts the clock
    signed, mac = signed_frame(session, 2)
    with pytest.raises(AuthError, match="no session") as e:
        a.verify(signed, mac, 2, 2 * auth.SESSION_TIMEOUT_US - 1)
    assert e.value.code == codec.ERR_NO_SESSION
    assert a.take_ended() == "no authenticated frame for 60 s"


def test_a_new_session_ends_the_old_one_and_its_frames():
    a = pump_side()
    old = open_session(a)
    open_session(a)
    assert a.take_ended() == "replaced by a new session"
    signed, mac = signed_frame(old, 5)
    with pytest.raises(AuthError, match="MAC is wrong"):
        a.verify(signed, mac, 5, 0)


def test_a_pump_without_keys_refuses_every_session():
    a = Authenticator(os.urandom)
    with pytest.raises(AuthError, match="no keys") as e:
        a.begin(ROLE_CLINICIAN, 0)
    assert e.value.code == codec.ERR_NO_KEYS


def test_the_key_record_round_trips_and_any_damage_is_found():
    record = auth.encode_keys("pump-1", CLINICIAN, PATIENT)
    assert auth.decode_keys(record) == ("pump-1", CLINICIAN, PATIENT)
    for i in range(len(record)):
        for bit in range(8):
            damaged = bytearray(record)
            damaged[i] ^= 1 << bit
            assert auth.decode_keys(damaged) is None, (i, bit)
    for cut in range(len(record)):
        assert auth.decode_keys(record[:cut]) is None
    assert auth.decode_keys(None) is None


def test_a_masked_key_is_recovered_only_with_the_session_and_seq():
    session = auth.Hmac(os.urandom(32))
    new_key = os.urandom(32)
    masked = auth.xor_bytes(new_key, auth.wrap_pad(session, ROLE_PATIENT, 9))
    assert masked != new_key
    assert auth.xor_bytes(masked, auth.wrap_pad(session, ROLE_PATIENT, 9)) == new_key
    assert auth.xor_bytes(masked, auth.wrap_pad(session, ROLE_PATIENT, 10)) != new_key
    assert auth.xor_bytes(masked, auth.wrap_pad(auth.Hmac(os.urandom(32)), ROLE_PATIENT, 9)) != new_key
