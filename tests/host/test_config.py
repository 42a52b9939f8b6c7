"""The host's config file of pump keys: private, whole, shared by processes."""

import os
import subprocess
import sys

import pytest
from pumpctl import ConfigError, PumpKeys, config


def test_keys_round_trip_and_the_file_is_private(tmp_path):
    path = tmp_path / "sub" / "config.toml"
    keys = config.new_keys("pump-7")
    config.save_keys(keys, path)
    assert config.load_keys("pump-7", path) == keys
    assert config.load_keys("pump-8", path) is None
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700


def test_a_file_others_can_read_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "config.toml"
    config.save_keys(config.new_keys("pump-7"), path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match=f"others can read it .mode 644.: run chmod 600 {path}"):
        config.load_keys("pump-7", path)


def test_a_malformed_key_is_named(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[pumps."pump-7"]\nclinician_key = "abcd"\n')
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match=r'\[pumps."pump-7"\]: a key is 64 hex digits'):
        config.load_keys("pump-7", path)


def test_a_key_is_never_printed():
    keys = config.new_keys("pump-7")
    assert keys.clinician_key.hex() not in repr(keys) and "holds clinician and patient key" in repr(keys)
    assert repr(PumpKeys("p", patient_key=bytes(32))) == "PumpKeys('p', holds patient key)"


def test_a_patient_device_holds_only_the_patient_key(tmp_path):
    path = tmp_path / "config.toml"
    config.save_keys(PumpKeys("pump-7", patient_key=bytes(range(32))), path)
    assert config.load_keys("pump-7", path) == PumpKeys("pump-7", None, bytes(range(32)))


def test_processes_saving_at_once_all_keep_their_keys(tmp_path):
    path = tmp_path / "config.toml"
    script = (
        "import sys\nfrom pumpctl import config\n"
        "for i in range(20):\n"
        "    config.save_keys(config.new_keys(f'pump-{sys.argv[1]}-{i}'), config.Path(sys.argv[2]))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n), str(path)]) for n in range(4)]
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    assert len(config.known_devices(path)) == 80


def test_a_device_id_must_be_plain():
    with pytest.raises(ConfigError, match="device id"):
        config.new_keys('pump "7"')
