import os
import pathlib
import sys

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # tests/ helpers: oracle, scenarios, vms

# Default: enough examples to cover the ranges in a few seconds.
# PUMP_TEST_PROFILE=long (make test-long): many more, for a night run.
settings.register_profile("default", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("PUMP_TEST_PROFILE", "default"))


@pytest.fixture
def sim():
    """The real firmware on the MicroPython unix port, behind a pty."""
    from pumpctl.sim import Simulator

    simulator = Simulator().start()
    yield simulator
    alive = simulator.running()
    simulator.stop()
    assert alive, "the firmware died during the test:\n" + simulator.stderr_text()


@pytest.fixture
def pump(sim):
    """A host connection to the simulated pump, through pyserial."""
    from pumpctl import Pump

    with Pump(sim.port) as connection:
        yield connection
