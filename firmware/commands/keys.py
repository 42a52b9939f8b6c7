# A key change: a family of its own (commands/__init__.py), so that the sessions' family, which
# stays on the heap, holds none of its code, and the keys' record (keyring.py) is loaded for the
# command only.

from firmware import auth, codec, eventlog
from firmware.commands import SAVES
from firmware.errors import Refusal
from firmware.lazy import values as values_of


# Replaces the clinician or the patient key.
#
# Request:
# role: whose key: 1 patient, 2 clinician
# masked_key: 32 bytes: the new key XOR HMAC-SHA256(session_key, "pump-wrap-1" || role || seq as u32 LE)
#
# Reply:
# role: the role whose key was replaced
#
# **Refusals:** `role` "role N does not exist: 1 is the patient, 2 the
# clinician"; `masked_key` "the masked key must be 32 bytes"; `masked_key`
# "the clinician and patient keys must differ"; `masked_key` "this pump has
# nowhere to keep a new key" (a board without key storage).
#
# **Notes:** see [KEY_CHANGE](#key_change-replacing-a-key). The device id
# stays.
def key_change(pump, values):
    role, masked = values
    if role != auth.ROLE_PATIENT and role != auth.ROLE_CLINICIAN:
        raise Refusal("role", "role %d does not exist: 1 is the patient, 2 the clinician" % role)
    if len(masked) != auth.KEY_BYTES:
        raise Refusal("masked_key", "the masked key must be %d bytes" % auth.KEY_BYTES)
    # keyring.py for this command only: a running pump does not keep it (lazy.values forgets it after)
    wrap_pad, xor_bytes, key_record, slots = values_of(
        "firmware.keyring", "wrap_pad", "xor_bytes", "key_record", "KEY_SLOTS"
    )
    new_key = xor_bytes(masked, wrap_pad(pump.auth.session_mac, role, pump.link.seq))
    a = pump.auth
    clinician = new_key if role == auth.ROLE_CLINICIAN else a.key(auth.ROLE_CLINICIAN)
    patient = new_key if role == auth.ROLE_PATIENT else a.key(auth.ROLE_PATIENT)
    if clinician == patient:
        raise Refusal("masked_key", "the clinician and patient keys must differ")
    storage = getattr(pump.hw, "key_storage", None)
    if storage is None:
        raise Refusal("masked_key", "this pump has nowhere to keep a new key")
    from firmware.store import Store  # loaded already (the guard imports it)

    Store(storage, slots).save(key_record(a.device_id, clinician, patient))
    a.set_keys(a.device_id, clinician, patient)
    pump.log_event(eventlog.EV_KEYS, "{o%d} key changed" % role)
    return (role,)


COMMANDS = ((codec.KEY_CHANGE, key_change, SAVES),)
