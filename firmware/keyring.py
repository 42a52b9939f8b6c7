# The keys at rest and in a change: the provisioning file a flash writes, the record of the pump's
# key store, and the pad that masks a new key on the link (auth.py has the sessions and why). Shared,
# like auth.py, by the firmware and the host. The pump needs this only at its boot and in a
# KEY_CHANGE, so it is not among the modules a running pump keeps: the boot imports it
# (lazy.TRANSIENT: forgotten with the boot) and the keys family (commands/keys.py) looks it up for
# one command. Pure: no I/O.

import binascii

from firmware import const
from firmware.auth import KEY_BYTES

_WRAP = const(b"pump-wrap-1")


def wrap_pad(session_mac, role, seq):
    """The 32-byte pad that masks a new key in KEY_CHANGE frame `seq`: new key XOR pad."""
    return session_mac.digest(_WRAP, bytes((role, seq & 0xFF, (seq >> 8) & 0xFF, (seq >> 16) & 0xFF, seq >> 24)))


def xor_bytes(a, b):
    out = bytearray(len(a))
    for i in range(len(a)):
        out[i] = a[i] ^ b[i]
    return bytes(out)


# -- the provisioning file -----------------------------------------------------
#
# PROVISION_FILE on the pump's storage, written when the pump is flashed:
#
#   offset  size  field
#   0       4     b"PKY\x01"
#   4       1     length N of the device id, 1..MAX_DEVICE_ID
#   5       N     device id, ASCII
#   5+N     32    clinician key
#   37+N    32    patient key
#   69+N    4     CRC-32 of bytes 0..68+N, little-endian
#
# At boot the pump moves valid keys from it into its own crash-safe key
# store and empties it; a later flash provisions again.

PROVISION_FILE = "provision.key"
KEY_SLOTS = ("keys.0", "keys.1")  # the pump's key store (store.py record slots)
KEY_SECTION = const(1)
_MAGIC = const(b"PKY\x01")
MAX_DEVICE_ID = const(40)


def encode_keys(device_id, clinician_key, patient_key):
    raw = device_id.encode()
    if not 0 < len(raw) <= MAX_DEVICE_ID:
        raise ValueError("device id must be 1..%d bytes" % MAX_DEVICE_ID)
    if len(clinician_key) != KEY_BYTES or len(patient_key) != KEY_BYTES:
        raise ValueError("keys must be %d bytes" % KEY_BYTES)
    body = _MAGIC + bytes((len(raw),)) + raw + bytes(clinician_key) + bytes(patient_key)
    crc = binascii.crc32(body) & 0xFFFFFFFF
    return body + bytes((crc & 0xFF, (crc >> 8) & 0xFF, (crc >> 16) & 0xFF, crc >> 24))


def key_record(device_id, clinician_key, patient_key):
    """The key store's record of these keys: its sections, for Store.save."""
    return ((KEY_SECTION, encode_keys(device_id, clinician_key, patient_key)),)


def decode_keys(data):
    """(device_id, clinician_key, patient_key), or None if data is not a valid key record."""
    if data is None or len(data) < 5 or bytes(data[:4]) != _MAGIC:
        return None
    n = data[4]
    if not 0 < n <= MAX_DEVICE_ID or len(data) != 5 + n + 2 * KEY_BYTES + 4:
        return None
    body = 5 + n + 2 * KEY_BYTES
    crc = data[body] | data[body + 1] << 8 | data[body + 2] << 16 | data[body + 3] << 24
    if crc != binascii.crc32(bytes(data[:body])) & 0xFFFFFFFF:
        return None
    try:
        device_id = bytes(data[5 : 5 + n]).decode()
    except Exception:
        return None
    return device_id, bytes(data[5 + n : 5 + n + KEY_BYTES]), bytes(data[5 + n + KEY_BYTES : body])
