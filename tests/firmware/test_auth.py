"""Authentication (firmware/auth.py): HMAC-SHA256 against RFC 4231 on all
three VMs, the pump's sessions, replay, challenges nobody can spoil, the key record."""

import hashlib
import hmac
import os
import re
from contextlib import contextmanager

import pytest
from pumpctl.words import render
from vms import MP_DIR, run_unix, run_wasm32

from firmware import auth, codec, framing, keyring
from firmware.auth import ROLE_CLINICIAN, ROLE_PATIENT, Authenticator, AuthError


@contextmanager
def refused(match):
    """An AuthError whose reason, as pumpctl shows it (the pump writes a sentence's token), says match."""
    with pytest.raises(AuthError) as e:
        yield e
    assert re.search(match, render(e.value.message)), render(e.value.message)


RFC = {}
exec((MP_DIR / "rfc4231.py").read_text(), RFC)
CLINICIAN = bytes(range(32))
PATIENT = bytes(range(100, 132))
S = 1_000_000


@pytest.mark.parametrize("key_hex, data_hex, want", RFC["VECTORS"])
def test_hmac_matches_rfc_4231_and_the_standard_library(key_hex, data_hex, want):
    key, data = bytes.fromhex(key_hex), bytes.fromhex(data_hex)
    got = auth.Hmac(key).digest(data)  # a one-shot HMAC: the pump keeps no function for it
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
    answer = a.prove(role, nonce, host_nonce, auth.proof(key, role, nonce, host_nonce), now)
    assert answer == auth.pump_proof(key, role, nonce, host_nonce)
    return auth.Hmac(auth.session_key(key, role, nonce, host_nonce))


def signed_frame(session, seq, msg_type=codec.STATUS, payload=b""):
    """(signed bytes, mac) of a frame as the host would send it."""
    frame = framing.encode_frame(msg_type, seq, payload, session)
    dec = framing.FrameDecoder()
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
        with refused("already used") as e:
            a.verify(signed, mac, seq, 0)
        assert e.value.code == codec.ERR_AUTH


def test_a_frame_under_another_key_or_altered_is_refused():
    a = pump_side()
    session = open_session(a)
    signed, mac = signed_frame(auth.Hmac(os.urandom(32)), 1)
    with refused("MAC is wrong"):
        a.verify(signed, mac, 1, 0)
    signed, mac = signed_frame(session, 2, codec.SET_RATE, (1_000_000).to_bytes(4, "little"))
    altered = signed[:-4] + b"9" + signed[-3:]
    with refused("MAC is wrong"):
        a.verify(altered, mac, 2, 0)
    assert a.verify(signed, mac, 2, 0) == ROLE_CLINICIAN  # the refusals did not use up seq 2


def test_a_wrong_key_is_refused_and_a_challenge_opens_one_session_at_most():
    a = pump_side()
    nonce = a.begin(ROLE_CLINICIAN, 0)
    host_nonce = bytes(16)
    with refused("wrong key for the clinician role"):
        a.prove(ROLE_CLINICIAN, nonce, host_nonce, auth.proof(PATIENT, ROLE_CLINICIAN, nonce, host_nonce), 0)
    assert a.role == auth.ROLE_NONE and a.failures == 1
    right = auth.proof(CLINICIAN, ROLE_CLINICIAN, nonce, host_nonce)
    a.prove(ROLE_CLINICIAN, nonce, host_nonce, right, 0)  # a wrong proof did not spend the challenge
    a.end("ended by the host")
    # The right proof replayed: the challenge opened its session.
    with refused("older than the last login, or was used"):
        a.prove(ROLE_CLINICIAN, nonce, host_nonce, right, 0)
    assert a.role == auth.ROLE_NONE


def test_a_challenge_is_the_pumps_for_its_role_and_lives_30_s():
    a = pump_side()
    nonce = a.begin(ROLE_CLINICIAN, 0)
    forged = nonce[:8] + bytes(8)
    for n, role in (
        (forged, ROLE_CLINICIAN),
        (nonce, ROLE_PATIENT),
        (pump_side().begin(ROLE_CLINICIAN, 0), ROLE_CLINICIAN),
    ):
        key = CLINICIAN if role == ROLE_CLINICIAN else PATIENT
        with refused("not a challenge this pump gave the"):
            a.prove(role, n, bytes(16), auth.proof(key, role, n, bytes(16)), 0)
    late = auth.CHALLENGE_TTL_US + S
    with refused("more than 30 s old"):
        a.prove(ROLE_CLINICIAN, nonce, bytes(16), auth.proof(CLINICIAN, ROLE_CLINICIAN, nonce, bytes(16)), late)
    a.prove(ROLE_CLINICIAN, nonce, bytes(16), auth.proof(CLINICIAN, ROLE_CLINICIAN, nonce, bytes(16)), late - S)
    assert a.failures == 0  # none of these was a wrong key


def test_the_patient_key_opens_only_a_patient_session():
    a = pump_side()
    open_session(a, ROLE_PATIENT, PATIENT)
    assert a.role == ROLE_PATIENT
    nonce = a.begin(ROLE_CLINICIAN, 0)
    with refused("wrong key"):
        a.prove(ROLE_CLINICIAN, nonce, bytes(16), auth.proof(PATIENT, ROLE_CLINICIAN, nonce, bytes(16)), 0)
    assert a.role == ROLE_PATIENT  # a failed proof leaves the session as it was


def test_nonces_are_fresh():
    a = pump_side()
    nonces = {a.begin(ROLE_CLINICIAN, 0) for _ in range(100)}
    assert len(nonces) == 100 and all(len(n) == auth.NONCE_BYTES for n in nonces)


def test_no_flood_of_failures_or_challenges_keeps_the_key_holder_out():
    """A keyless host that fails thousands of proofs and asks for a challenge between the
    clinician's AUTH_BEGIN and AUTH_PROVE: the clinician's proof is still taken, at once."""
    a = pump_side()
    clinician_nonce = a.begin(ROLE_CLINICIAN, 0)
    for i in range(2000):
        n = a.begin(ROLE_CLINICIAN, i)
        with refused("wrong key"):
            a.prove(ROLE_CLINICIAN, n, bytes(16), os.urandom(32), i)
    assert a.failures == 2000
    host_nonce = os.urandom(16)
    a.prove(
        ROLE_CLINICIAN,
        clinician_nonce,
        host_nonce,
        auth.proof(CLINICIAN, ROLE_CLINICIAN, clinician_nonce, host_nonce),
        2000,
    )
    assert a.role == ROLE_CLINICIAN and a.failures == 0


def test_a_new_boot_secret_voids_every_challenge_signed_before():
    """A restart (a new Authenticator) or a counter run out draws a new secret."""
    a = pump_side()
    nonce = a.begin(ROLE_CLINICIAN, 0)
    restarted = pump_side()
    with refused("not a challenge this pump gave"):
        restarted.prove(ROLE_CLINICIAN, nonce, bytes(16), auth.proof(CLINICIAN, ROLE_CLINICIAN, nonce, bytes(16)), 0)
    a._issued = auth._MAX_COUNTER  # a flood of 2**30 challenges: the counter starts again under a new secret
    fresh = a.begin(ROLE_CLINICIAN, 0)
    assert int.from_bytes(fresh[4:8], "little") == 1
    with refused("not a challenge this pump gave"):
        a.prove(ROLE_CLINICIAN, nonce, bytes(16), auth.proof(CLINICIAN, ROLE_CLINICIAN, nonce, bytes(16)), 0)
    a.prove(ROLE_CLINICIAN, fresh, bytes(16), auth.proof(CLINICIAN, ROLE_CLINICIAN, fresh, bytes(16)), 0)


def test_an_idle_session_ends_after_the_timeout():
    a = pump_side()
    session = open_session(a, now=0)
    signed, mac = signed_frame(session, 1)
    a.verify(signed, mac, 1, auth.SESSION_TIMEOUT_US - 1)  # just in time: it restarts the clock
    signed, mac = signed_frame(session, 2)
    with refused("no session") as e:
        a.verify(signed, mac, 2, 2 * auth.SESSION_TIMEOUT_US - 1)
    assert e.value.code == codec.ERR_NO_SESSION
    assert render(a.take_ended()) == "no authenticated frame for 60 s"


def test_a_new_session_ends_the_old_one_and_its_frames():
    a = pump_side()
    old = open_session(a)
    open_session(a)
    assert render(a.take_ended()) == "replaced by a new session"
    signed, mac = signed_frame(old, 5)
    with refused("MAC is wrong"):
        a.verify(signed, mac, 5, 0)


def test_a_pump_without_keys_refuses_every_session():
    a = Authenticator(os.urandom)
    with refused("no keys") as e:
        a.begin(ROLE_CLINICIAN, 0)
    assert e.value.code == codec.ERR_NO_KEYS


def test_the_key_record_round_trips_and_any_damage_is_found():
    record = keyring.encode_keys("pump-1", CLINICIAN, PATIENT)
    assert keyring.decode_keys(record) == ("pump-1", CLINICIAN, PATIENT)
    for i in range(len(record)):
        for bit in range(8):
            damaged = bytearray(record)
            damaged[i] ^= 1 << bit
            assert keyring.decode_keys(damaged) is None, (i, bit)
    for cut in range(len(record)):
        assert keyring.decode_keys(record[:cut]) is None
    assert keyring.decode_keys(None) is None


def test_a_masked_key_is_recovered_only_with_the_session_and_seq():
    session = auth.Hmac(os.urandom(32))
    new_key = os.urandom(32)
    masked = keyring.xor_bytes(new_key, keyring.wrap_pad(session, ROLE_PATIENT, 9))
    assert masked != new_key
    assert keyring.xor_bytes(masked, keyring.wrap_pad(session, ROLE_PATIENT, 9)) == new_key
    assert keyring.xor_bytes(masked, keyring.wrap_pad(session, ROLE_PATIENT, 10)) != new_key
    assert keyring.xor_bytes(masked, keyring.wrap_pad(auth.Hmac(os.urandom(32)), ROLE_PATIENT, 9)) != new_key
