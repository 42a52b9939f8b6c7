# Sessions (auth.py): begin, prove, end, and a key change. Resident
# (commands/__init__.py): a session opens before every change.

from firmware import auth, codec, eventlog
from firmware.commands import SAVES
from firmware.errors import Refusal


def auth_begin(pump, values):
    (role,) = values
    return (pump.auth.begin(role, pump.now_us()),)


def auth_prove(pump, values):
    role, pump_nonce, host_nonce, proof = values
    now = pump.now_us()
    try:
        pump_proof = pump.auth.prove(role, pump_nonce, host_nonce, proof, now)
    except auth.AuthError as e:
        if pump.auth.failures:
            e.message = "%s (%d failed since the last login)" % (e.message, pump.auth.failures)
        raise
    pump.check_session()  # a session it replaced
    pump.log_event(eventlog.EV_SESSION, "%s session started" % auth.ROLE_NAMES[role])
    return (pump_proof, auth.SESSION_TIMEOUT_US // 1_000_000)


def auth_end(pump, values):
    pump.auth.end("ended by the host")
    pump.check_session()
    return ()


def key_change(pump, values):
    role, masked = values
    if role != auth.ROLE_PATIENT and role != auth.ROLE_CLINICIAN:
        raise Refusal("role", "role %d does not exist: 1 is the patient, 2 the clinician" % role)
    if len(masked) != auth.KEY_BYTES:
        raise Refusal("masked_key", "the masked key must be %d bytes" % auth.KEY_BYTES)
    new_key = auth.xor_bytes(masked, auth.wrap_pad(pump.auth.session_mac, role, pump.link.seq))
    a = pump.auth
    clinician = new_key if role == auth.ROLE_CLINICIAN else a.key(auth.ROLE_CLINICIAN)
    patient = new_key if role == auth.ROLE_PATIENT else a.key(auth.ROLE_PATIENT)
    if clinician == patient:
        raise Refusal("masked_key", "the clinician and patient keys must differ")
    if pump.key_store is None:
        raise Refusal("masked_key", "this pump has nowhere to keep a new key")
    pump.key_store.save(((auth.KEY_SECTION, auth.encode_keys(a.device_id, clinician, patient)),))
    a.set_keys(a.device_id, clinician, patient)
    pump.log_event(eventlog.EV_KEYS, "%s key changed" % auth.ROLE_NAMES[role])
    return (role,)


COMMANDS = (
    (codec.AUTH_BEGIN, auth_begin, 0),
    (codec.AUTH_PROVE, auth_prove, 0),
    (codec.AUTH_END, auth_end, 0),
    (codec.KEY_CHANGE, key_change, SAVES),
)
