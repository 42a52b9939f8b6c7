"""A session with a pump: the serial link, the keys and authentication, one command at a time.

Keys. Reading needs none. A command that changes the pump opens a session
first, with the clinician's key (the patient bolus: the patient's key if the
host holds it, least privilege); the keys come from `keys=` or from the
config file by the pump's device id (config.py). Then every frame carries a
MAC, and every reply must too. close() ends the session.

The commands themselves are the Pump's (client.py), built on PumpSession._request.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Self

from firmware import auth, codec, framing, keyring

from . import config, words
from .config import PumpKeys
from .errors import AuthError, LinkError, PumpRefused
from .replies import PumpInfo
from .schema import ROLE_NEEDED, encode_fields, request_fields
from .transport import SerialTransport

ROLES = {"patient": auth.ROLE_PATIENT, "clinician": auth.ROLE_CLINICIAN}


def _one_at_a_time(method):
    """Run the method holding the pump's lock: threads sharing one Pump take turns, so
    frames, sequence numbers, sessions and multi-frame operations (a program's lines, the
    log) never interleave. Pumps on different ports share nothing and run in parallel."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return run


class PumpSession:
    """The link to a pump on one serial port (a device path or a pyserial URL) and the session
    this host holds open on it: every request goes through _request, which authenticates first
    where the command needs a role."""

    def __init__(self, port: str, timeout: float = 2.0, keys: PumpKeys | None = None):
        """keys: the keys to use; None looks them up in the config file by the
        pump's device id when a command first needs one."""
        self.port = port
        self._keys = keys
        self.role = auth.ROLE_NONE  # of the session this host holds open
        self._lock = threading.RLock()  # one operation at a time on this port (_one_at_a_time)
        self._link = SerialTransport(port, timeout=timeout)

    def __enter__(self) -> Self:
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
                if self.hello().board == "sim":  # a simulator's keys are made when it starts: nothing to flash
                    raise AuthError(
                        f"no keys for simulator {device_id} in {config.config_path()} (forgotten, or another "
                        "user's config): start a new simulator with pumpctl sim, or use the config it started with"
                    )
                raise AuthError(
                    f"no keys for pump {device_id} in {config.config_path()}: add them there (they were saved "
                    "where it was flashed: pumpctl keys lists what this host holds), or flash it again"
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
        name = words.ROLE_NAMES[role_code]
        if key is None:
            raise AuthError(f"this host holds no {name} key for pump {self.keys().device_id}")
        self._link.session_mac = None
        self.role = auth.ROLE_NONE
        (pump_nonce,) = self._link.request(codec.AUTH_BEGIN, (role_code,))
        host_nonce = os.urandom(auth.NONCE_BYTES)
        proof = auth.proof(key, role_code, pump_nonce, host_nonce)
        try:
            pump_proof, _timeout_s = self._link.request(codec.AUTH_PROVE, (role_code, pump_nonce, host_nonce, proof))
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

    def request(self, msg_type: int, values=()) -> list:
        """Send any command by its code (codec.*) with its request's values, in a session of the role
        it needs (opened as needed); returns its reply's values. A pumpctl command sends the commands
        that need no more than one request this way (codec.MESSAGES says their fields)."""
        return self._request(msg_type, values)

    @_one_at_a_time
    def _request(self, msg_type: int, values=()) -> list:
        """Send a command, opening a session first if it needs one, and once
        more if the pump's session ended meanwhile (it refused, so nothing changed)."""
        needed = ROLE_NEEDED.get(msg_type, auth.ROLE_NONE)
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
        key travels masked (keyring.wrap_pad); returns the keys the host now holds,
        which it should save (config.save_keys)."""
        role_code = ROLES[role]
        new_key = new_key if new_key is not None else os.urandom(auth.KEY_BYTES)
        if len(new_key) != auth.KEY_BYTES:
            raise ValueError(f"a key is {auth.KEY_BYTES} bytes")
        if self.role < auth.ROLE_CLINICIAN:
            self.authenticate(auth.ROLE_CLINICIAN)
        seq = self._link.next_seq()
        masked = keyring.xor_bytes(new_key, keyring.wrap_pad(self._link.session_mac, role_code, seq))
        payload = encode_fields(request_fields(codec.KEY_CHANGE), (role_code, masked))
        session = self._link.session_mac
        self._link.send_raw(framing.encode_frame(codec.KEY_CHANGE, seq, payload, session))
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
