import gc
import os
import pathlib
import signal
import sys

import pytest
from hypothesis import HealthCheck, settings

_TESTS = pathlib.Path(__file__).parent
sys.path.insert(0, str(_TESTS))  # tests/ helpers: oracle, scenarios, vms
# The tests mirror the sources (firmware, hal, host), with e2e for the whole stack and tree for checks of the
# repository itself. A few share a fixture module across folders (test_e2e's Tracked, test_boot_memory's
# stand-in Board), imported by its name as before.
for _folder in ("firmware", "hal", "host", "e2e", "tree"):
    sys.path.insert(1, str(_TESTS / _folder))

# A run started as a background job (`make test &`, a runner without a terminal) inherits SIGINT ignored, and
# every pumpctl and simulator it starts would too: the tests that press Ctrl-C would wait for nothing. Take
# Ctrl-C back for this process, so the processes it starts get the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Default: enough examples to cover the ranges in a few seconds.
# PUMP_TEST_PROFILE=long (make test-long): many more, for a night run.
settings.register_profile("default", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("PUMP_TEST_PROFILE", "default"))


@pytest.fixture(autouse=True, scope="module")
def _old_objects_out_of_collections():
    """The firmware collects before each lazy import (lazy.call: a board's heap needs it), and on
    CPython a full collection walks every object the worker holds: after a few hundred tests 20-100
    ms each, most of test_boot_memory's minute. What is alive when a test file starts is collected
    once and frozen (gc.freeze: out of later collections, never freed); what the file makes is
    collected as before."""
    gc.collect()
    gc.freeze()
    yield


@pytest.fixture(autouse=True, scope="session")
def private_config(tmp_path_factory):
    """pumpctl's config file (the keys of each pump) in a folder of the test run,
    never the user's own."""
    path = tmp_path_factory.mktemp("config") / "config.toml"
    old = os.environ.get("PUMPCTL_CONFIG")
    os.environ["PUMPCTL_CONFIG"] = str(path)
    yield path
    if old is None:
        del os.environ["PUMPCTL_CONFIG"]
    else:
        os.environ["PUMPCTL_CONFIG"] = old


@pytest.fixture
def flashed_tree(tmp_path, monkeypatch):
    """flashed_tree(files) -> the FlashError pumpctl flash's compile_module raises for files[0] of a source tree of
    files ({"firmware/x.py": text}, with firmware/__init__.py), which board_build reads as the project's; None if
    it compiles. For the build passes' refusals (inline_consts, arg_names, attr_names)."""
    from pumpctl import board_build
    from pumpctl.errors import FlashError

    def compile_first(files):
        root = tmp_path / "tree"
        (root / "firmware").mkdir(parents=True, exist_ok=True)
        (root / "firmware" / "__init__.py").write_text("")
        for name, text in files.items():
            (root / name).write_text(text)
        monkeypatch.setattr(board_build, "ROOT", root)
        (tmp_path / "work").mkdir(exist_ok=True)
        try:
            board_build.compile_module(root / next(iter(files)), None, tmp_path / "work")
        except FlashError as e:
            return e
        return None

    return compile_first


@pytest.fixture
def rewrite_every_source():
    """rewrite_every_source(rewrite) -> how many of firmware/, hal/ and boards/ sources rewrite(source, path)
    changed, each checked to keep its lines (tracebacks) and to compile. For the build passes."""
    root = _TESTS.parent

    def count_changed(rewrite):
        changed = 0
        for folder in ("firmware", "hal", "boards"):
            for path in sorted((root / folder).rglob("*.py")):
                source = path.read_text()
                out = rewrite(source, str(path))
                assert len(out.splitlines()) == len(source.splitlines()), path
                compile(out, str(path), "exec")
                changed += out != source
        return changed

    return count_changed


@pytest.fixture
def built_and_plain(tmp_path):
    """built_and_plain("firmware/x.py") -> (its .mpy as pumpctl flash builds it, as mpy-cross alone compiles it)."""
    import subprocess

    from pumpctl import board_build

    def both(name):
        built = board_build.compile_module(board_build.ROOT / name, None, tmp_path)
        plain = tmp_path / "plain.mpy"
        command = [board_build.mpy_cross_command(), "-o", str(plain), name]
        subprocess.run(command, cwd=board_build.ROOT, check=True)
        return built, plain.read_bytes()

    return both


@pytest.fixture
def sim():
    """The real firmware on the MicroPython unix port, behind a pty, its keys
    provisioned and saved in the test run's config file (as `pumpctl sim` does)."""
    from pumpctl.sim import Simulator

    simulator = Simulator(register=True).start()
    yield simulator
    alive = simulator.running()
    simulator.stop()
    assert alive, "the firmware died during the test:\n" + simulator.stderr_text()


@pytest.fixture
def pump(sim):
    """A host connection to the simulated pump, through pyserial."""
    with sim.pump() as connection:
        yield connection
