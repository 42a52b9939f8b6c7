"""The user's pumpctl config file: the keys of each pump, by device id.

    ~/.config/pumpctl/config.toml   ($XDG_CONFIG_HOME, or $PUMPCTL_CONFIG for another file)

    [defaults]
    port = "/dev/ttyACM0"          # used when neither --port nor PUMPCTL_PORT is given

    [pumps."sim-3f9a01c2"]
    clinician_key = "64 hex digits"
    patient_key = "64 hex digits"

The keys never cross the link (firmware/auth.py). Like ssh, pumpctl refuses
to use keys from a file that others can read, and writes it with mode 600 in
a folder of mode 700. Writers take a lock, so simulators started at once by
separate processes can all register their keys.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import stat
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from firmware import auth, keyring

from .errors import ConfigError

_ROLE_FIELDS = {auth.ROLE_CLINICIAN: "clinician_key", auth.ROLE_PATIENT: "patient_key"}
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,40}$")


@dataclass(frozen=True)
class PumpKeys:
    """The keys the host holds for one pump; a patient's device holds only the patient key."""

    device_id: str
    clinician_key: bytes | None = None
    patient_key: bytes | None = None

    def key(self, role: int) -> bytes | None:
        return self.clinician_key if role == auth.ROLE_CLINICIAN else self.patient_key

    def __repr__(self) -> str:  # never print a key by accident
        held = [name for name, k in (("clinician", self.clinician_key), ("patient", self.patient_key)) if k]
        return f"PumpKeys({self.device_id!r}, holds {' and '.join(held) or 'no'} key)"


def new_keys(device_id: str) -> PumpKeys:
    """Fresh random keys for a pump about to be provisioned."""
    if not _ID.match(device_id):
        raise ConfigError(f"device id {device_id!r}: use 1-40 letters, digits or . _ : -")
    clinician = secrets.token_bytes(auth.KEY_BYTES)
    patient = secrets.token_bytes(auth.KEY_BYTES)
    return PumpKeys(device_id, clinician, patient)


def provisioning_file(keys: PumpKeys) -> bytes:
    """The file written to the pump's storage (keyring.PROVISION_FILE) when it is flashed."""
    if keys.clinician_key is None or keys.patient_key is None:
        raise ConfigError("provisioning needs both keys")
    return keyring.encode_keys(keys.device_id, keys.clinician_key, keys.patient_key)


def config_path() -> Path:
    explicit = os.environ.get("PUMPCTL_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "pumpctl" / "config.toml"


def _read(path: Path, for_keys: bool) -> dict:
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    if for_keys and st.st_mode & 0o077:
        raise ConfigError(
            f"{path} holds pump keys but others can read it (mode {stat.S_IMODE(st.st_mode):o}): run chmod 600 {path}"
        )
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


def _hex_key(text, where: str) -> bytes | None:
    if text is None:
        return None
    try:
        key = bytes.fromhex(text)
    except (TypeError, ValueError):
        key = b""
    if len(key) != auth.KEY_BYTES:
        raise ConfigError(f"{where}: a key is {2 * auth.KEY_BYTES} hex digits")
    return key


def load_keys(device_id: str, path: Path | None = None) -> PumpKeys | None:
    """The keys held for device_id, or None if the config has none for it."""
    path = path or config_path()
    entry = _read(path, for_keys=True).get("pumps", {}).get(device_id)
    if entry is None:
        return None
    where = f'{path} [pumps."{device_id}"]'
    return PumpKeys(
        device_id,
        _hex_key(entry.get("clinician_key"), where),
        _hex_key(entry.get("patient_key"), where),
    )


def known_devices(path: Path | None = None) -> dict[str, PumpKeys]:
    path = path or config_path()
    pumps = _read(path, for_keys=True).get("pumps", {})
    return {device_id: load_keys(device_id, path) for device_id in pumps}  # type: ignore[misc]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = os.open(str(path) + ".lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write(path: Path, data: dict) -> None:
    lines = ["# pumpctl: the keys of each pump, by device id. Keep this file private (mode 600).", ""]
    for key, value in data.items():
        if key != "pumps" and isinstance(value, str):
            lines.append(f"{key} = {_toml_string(value)}")
    defaults = {k: v for k, v in _defaults(data).items() if isinstance(v, str)}
    if defaults:
        lines += ["", "[defaults]"] + [f"{k} = {_toml_string(v)}" for k, v in sorted(defaults.items())]
    for device_id, entry in sorted(data.get("pumps", {}).items()):
        lines += ["", f"[pumps.{_toml_string(device_id)}]"]
        for name in ("clinician_key", "patient_key"):
            if entry.get(name):
                lines.append(f"{name} = {_toml_string(entry[name])}")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # whole or not at all


def save_keys(keys: PumpKeys, path: Path | None = None) -> Path:
    """Add or replace the keys held for keys.device_id."""
    path = path or config_path()
    with _locked(path):
        data = _read(path, for_keys=True)
        entry = {}
        for role, name in _ROLE_FIELDS.items():
            key = keys.key(role)
            if key is not None:
                entry[name] = key.hex()
        data.setdefault("pumps", {})[keys.device_id] = entry
        _write(path, data)
    return path


def forget_keys(device_ids: list[str], path: Path | None = None) -> list[str]:
    """Remove the keys held for each of device_ids; return those it held (the others were not there)."""
    path = path or config_path()
    with _locked(path):
        data = _read(path, for_keys=True)
        pumps = data.get("pumps", {})
        gone = [d for d in device_ids if d in pumps]
        for device_id in gone:
            del pumps[device_id]
        if gone:
            _write(path, data)
    return gone


def _defaults(data: dict) -> dict:
    table = data.get("defaults")
    return table if isinstance(table, dict) else {}


def check_port(port: str) -> str:
    """port itself, if it can be saved as the default; ConfigError if not."""
    if not port or port != port.strip() or any(ord(c) < 32 or ord(c) == 127 for c in port):
        raise ConfigError(f"port {port!r}: give a device path or a pyserial URL, without spaces around it")
    return port


def default_port(path: Path | None = None) -> str | None:
    """The port saved by `pumpctl ports --set-default` ([defaults] port), or None.

    The file holds keys, so the same rule holds as for reading them: a file
    others can read (or write: they could point pumpctl at their own server)
    is refused."""
    path = path or config_path()
    value = _defaults(_read(path, for_keys=True)).get("port")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f'{path} [defaults] port: a port is a string, such as "/dev/ttyACM0"')
    try:
        return check_port(value)
    except ConfigError as e:
        raise ConfigError(f"{path} [defaults]: {e}") from None


def set_default_port(port: str | None, path: Path | None = None) -> Path:
    """Save port as the default ([defaults] port); None removes it. Keeps the keys."""
    path = path or config_path()
    if port is not None:
        check_port(port)
    with _locked(path):
        data = _read(path, for_keys=True)
        defaults = dict(_defaults(data))
        if port is None:
            defaults.pop("port", None)
        else:
            defaults["port"] = port
        data["defaults"] = defaults
        _write(path, data)
    return path
