# Authentication of the link: HMAC-SHA256 and the one session the pump holds
# at a time. Shared, like the codec, by the firmware and the host, so both
# compute the same proofs and MACs. The keys at rest (the provisioning file,
# the key store's record) and a key change's mask are keyring.py's.
#
# Keys. Each pump has two 32-byte keys, a clinician key and a patient key,
# written to its storage when it is flashed (a provisioning file, keyring.py) and
# kept by the host in a user config file. No key ever crosses the link: a
# session proves knowledge of one, and a key change sends the new key masked
# with a pad only the holder of the session key can compute.
#
# A session (docs/protocol.md has the exchange in hex):
#   host -> AUTH_BEGIN(role)                 pump -> pump_nonce (16 bytes, below)
#   host -> AUTH_PROVE(role, pump_nonce, host_nonce, proof)
#           proof = HMAC(key, "pump-auth-1" | role | pump_nonce | host_nonce)
#   pump -> (pump_proof, timeout_s), pump_proof = HMAC(key, "pump-ok-1" | role | pump_nonce | host_nonce)
#   both:   session_key = HMAC(key, "pump-session-1" | role | pump_nonce | host_nonce)
# From then on each frame the host sends carries a MAC: the first MAC_BYTES of
# HMAC(session_key, frame header and payload), and a sequence number above every
# one the session has accepted; the pump MACs its replies to them the same way. A
# frame with a wrong MAC, a reused or older sequence number, or no live session is
# refused. A session ends when the host ends it, when a new one is proven, or when
# no authenticated frame has come for SESSION_TIMEOUT_US of pump time.
#
# Challenges the pump need not remember, so that nobody can spoil another's
# login. A pump nonce is its issue time (pump time, s), a counter and a tag:
#   pump_nonce = issued_s (4, LE) | counter (4, LE) | HMAC(boot secret, "pump-nonce-1" | role | those 8)[:8]
# The boot secret is 32 random bytes drawn at each start, never stored or sent.
# So any number of challenges may be out at once: a second AUTH_BEGIN, from
# anyone, leaves the first one valid. A proof is taken for a nonce this pump
# issued since it started, for the same role, at most CHALLENGE_TTL_US old, and
# with a counter above the one of the last successful login (so a correct proof
# replayed, or one for an older challenge, is refused: a nonce opens one session
# at most). A wrong proof changes nothing but the count of failures: there is no
# lockout, since a lockout would keep the key holders out as well as the keyless
# (guessing a 32-byte key is hopeless; the limit that matters is work, below).
#
# What a host without a key can make the pump do: per frame, at most two
# HMAC-SHA256 (AUTH_PROVE: the nonce's tag, then the proof), and no flash write
# (its failures go to the RAM event log, rate-limited, and reach flash with the
# next save the therapy makes). A restart draws a new boot secret: no challenge,
# proof or session outlives it, so nothing of this needs to survive one.
#
# Pure: no I/O. Random bytes come from a function the board gives.

import hashlib

from firmware import const
from firmware.errors import sentence

KEY_BYTES = const(32)
NONCE_BYTES = const(16)
PROOF_BYTES = const(32)
MAC_BYTES = const(16)  # HMAC-SHA256 truncated to 128 bits (RFC 2104 section 5 allows it)
_BLOCK = const(64)  # SHA-256 block size

ROLE_NONE = const(0)  # read-only: status, therapy, log, telemetry
ROLE_PATIENT = const(1)  # also the patient bolus the clinician allowed
ROLE_CLINICIAN = const(2)  # everything
# Their names are the host's (pumpctl.words.ROLE_NAMES): a pump text names a role by the token "{o<code>}".

SESSION_TIMEOUT_US = const(60_000_000)  # a session ends after 60 s of pump time with no authenticated frame
CHALLENGE_TTL_US = const(30_000_000)  # a challenge is answered within 30 s of pump time
_MAX_COUNTER = const(0x3FFFFFFF)  # challenges a boot secret signs (small ints); then a new secret

_AUTH = const(b"pump-auth-1")
_OK = const(b"pump-ok-1")
_SESSION = const(b"pump-session-1")
_NONCE = const(b"pump-nonce-1")
_TAG_BYTES = const(8)


class Hmac:
    """HMAC-SHA256 (RFC 2104) with one key, its padded blocks made once.

    MicroPython's sha256 objects cannot be copied, so every digest hashes
    the two 64-byte pads again; parts are hashed in turn, never joined."""

    def __init__(self, key):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        self._inner = bytearray(_BLOCK)
        self._outer = bytearray(_BLOCK)
        for i in range(_BLOCK):
            k = key[i] if i < len(key) else 0
            self._inner[i] = k ^ 0x36
            self._outer[i] = k ^ 0x5C

    def digest(self, *parts):
        inner = hashlib.sha256(self._inner)
        for part in parts:
            inner.update(part)
        outer = hashlib.sha256(self._outer)
        outer.update(inner.digest())
        return outer.digest()


def same_bytes(a, b):
    """Compare two byte strings in time that does not depend on where they differ."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def _context(role, pump_nonce, host_nonce):
    return bytes((role,)), pump_nonce, host_nonce


def proof(key, role, pump_nonce, host_nonce):
    """What the host sends to prove it holds the role's key."""
    return Hmac(key).digest(_AUTH, *_context(role, pump_nonce, host_nonce))


def pump_proof(key, role, pump_nonce, host_nonce):
    """What the pump answers to prove it holds the same key."""
    return Hmac(key).digest(_OK, *_context(role, pump_nonce, host_nonce))


def session_key(key, role, pump_nonce, host_nonce):
    return Hmac(key).digest(_SESSION, *_context(role, pump_nonce, host_nonce))


def _put_u32(buf, at, v):
    for i in range(4):
        buf[at + i] = (v >> (8 * i)) & 0xFF


def _get_u32(buf, at):
    return buf[at] | buf[at + 1] << 8 | buf[at + 2] << 16 | buf[at + 3] << 24


class AuthError(Exception):
    """A refused authentication step or authenticated frame; `code` is a codec ERR_* value."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


# Error codes, the same numbers as codec's (which imports nothing of this).
ERR_AUTH = const(10)
ERR_NO_SESSION = const(11)
ERR_NO_KEYS = const(13)


class Authenticator:
    """The pump's side: keys, the challenges it signs, the one live session.

    Times are pump time in us (a non-decreasing int). random_bytes(n) gives
    n fresh random bytes (the board's entropy source)."""

    def __init__(self, random_bytes):
        self._random = random_bytes
        self.device_id = ""
        self._keys = None  # (clinician key, patient key), or None if not provisioned
        self._new_secret()
        self.role = ROLE_NONE  # of the live session, ROLE_NONE if none
        self.session_mac = None  # Hmac with the session key
        self.last_seq = 0  # highest sequence number the session accepted
        self._last_us = 0  # pump time of the session's last authenticated frame
        self.failures = 0  # failed proofs since the last login (counted, never a lockout)
        self.ended = None  # why the last session ended (a short text), until read by take_ended()

    def _new_secret(self):
        """A boot secret: every challenge signed with the one before is void."""
        self._secret = Hmac(bytes(self._random(KEY_BYTES)))
        self._issued = 0  # counter of the last challenge signed, 0.._MAX_COUNTER
        self._login = 0  # counter of the challenge of the last login (0: none yet)

    def set_keys(self, device_id, clinician_key, patient_key):
        self.device_id = device_id
        self._keys = (bytes(clinician_key), bytes(patient_key))

    def provisioned(self):
        return self._keys is not None

    def key(self, role):
        return self._keys[0] if role == ROLE_CLINICIAN else self._keys[1]

    def _check_role(self, role):
        if role != ROLE_PATIENT and role != ROLE_CLINICIAN:
            raise AuthError(ERR_AUTH, sentence(70, role))  # no such role (pumpctl.sentences)
        if self._keys is None:
            raise AuthError(ERR_NO_KEYS, sentence(71))  # no keys: provision them

    def _tag(self, role, head):
        return self._secret.digest(_NONCE, bytes((role,)), head)[:_TAG_BYTES]

    def begin(self, role, now_us):
        """Sign a fresh challenge for role; returns the pump nonce. Nothing is remembered
        of it: any number may be out at once."""
        self._check_role(role)
        if self._issued == _MAX_COUNTER:
            self._new_secret()
        self._issued += 1
        head = bytearray(8)
        _put_u32(head, 0, now_us // 1_000_000)
        _put_u32(head, 4, self._issued)
        return bytes(head) + self._tag(role, head)

    def prove(self, role, pump_nonce, host_nonce, host_proof, now_us):
        """Check the host's proof of the challenge pump_nonce. On success start the
        session (ending any other) and return the pump's proof."""
        self._check_role(role)
        if len(pump_nonce) != NONCE_BYTES or len(host_nonce) != NONCE_BYTES:
            raise AuthError(ERR_AUTH, sentence(72, NONCE_BYTES))  # the nonces' length
        head = pump_nonce[:8]
        if not same_bytes(pump_nonce[8:], self._tag(role, head)):
            raise AuthError(ERR_AUTH, sentence(73, role))  # not a challenge this pump gave the role
        issued_s = _get_u32(head, 0)
        counter = _get_u32(head, 4)
        if counter <= self._login:
            raise AuthError(ERR_AUTH, sentence(74))  # older than the last login, or used
        if now_us // 1_000_000 - issued_s > CHALLENGE_TTL_US // 1_000_000:
            raise AuthError(ERR_AUTH, sentence(75, CHALLENGE_TTL_US // 1_000_000))  # the challenge is too old
        key = self.key(role)
        if not same_bytes(host_proof, proof(key, role, pump_nonce, host_nonce)):
            self.failures += 1
            raise AuthError(ERR_AUTH, sentence(76, role))  # wrong key for the role
        self.failures = 0
        self._login = counter
        if self.role != ROLE_NONE:
            self.end(sentence(77))  # replaced by a new session
        self.role = role
        self.session_mac = Hmac(session_key(key, role, pump_nonce, host_nonce))
        self.last_seq = 0
        self._last_us = now_us
        return pump_proof(key, role, pump_nonce, host_nonce)

    def expire(self, now_us):
        """End the session if it has been idle SESSION_TIMEOUT_US; True if it just ended."""
        if self.role != ROLE_NONE and now_us - self._last_us >= SESSION_TIMEOUT_US:
            self.end(sentence(78, SESSION_TIMEOUT_US // 1_000_000))  # no authenticated frame for .. s
            return True
        return False

    def end(self, why):
        self.role = ROLE_NONE
        self.session_mac = None
        self.last_seq = 0
        self.ended = why

    def take_ended(self):
        why = self.ended
        self.ended = None
        return why

    def verify(self, signed, mac, seq, now_us):
        """Check an authenticated frame: its MAC over `signed` and its sequence
        number. Returns the session's role; raises AuthError if refused."""
        self.expire(now_us)
        if self.role == ROLE_NONE:
            raise AuthError(ERR_NO_SESSION, sentence(79))  # no session is open
        if not same_bytes(mac, self.session_mac.digest(signed)[:MAC_BYTES]):
            raise AuthError(ERR_AUTH, sentence(80))  # the MAC is wrong
        if seq <= self.last_seq:
            raise AuthError(ERR_AUTH, sentence(81, seq, self.last_seq))  # a replayed sequence number
        self.last_seq = seq
        self._last_us = now_us
        return self.role
