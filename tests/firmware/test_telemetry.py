"""The telemetry stream's code is on the heap only while a stream runs (firmware/telemetry.py).

The firmware's PumpApp on CPython on the stand-in board of tests/protocol_examples.py, no asyncio tasks
running (as the heap bench runs it): a stop drops the stream at once. With the tasks running (the unix
port, tests/e2e/test_security_e2e.py), the stream's task drops it when it ends."""

import sys
import types

import pytest
from protocol_examples import _Clock, _Faults, _MemoryStorage, _Motor, _random_bytes, _Serial

import boards.sim as sim_board
import firmware
from firmware import codec
from firmware.app import PumpApp
from firmware.errors import Refusal


@pytest.fixture
def app(monkeypatch):
    """A booted pump, firmware.telemetry not loaded (as after boot)."""
    monkeypatch.delitem(sys.modules, "firmware.telemetry", raising=False)
    monkeypatch.delattr(firmware, "telemetry", raising=False)
    hw = types.SimpleNamespace(
        clock=_Clock(),
        motor=_Motor(),
        serial=_Serial(),
        random_bytes=_random_bytes,
        storage=_MemoryStorage(),
        key_storage=None,
        faults=_Faults(),
        sim=True,
    )
    return PumpApp(sim_board, hw)


def loaded():
    return "firmware.telemetry" in sys.modules or hasattr(firmware, "telemetry")


def telemetry(app, interval_ms):
    return app.commands.get(codec.TELEMETRY)((interval_ms,))


def test_an_idle_pump_holds_no_telemetry_code(app):
    assert app.telemetry is None and not loaded()


def test_a_stream_loads_its_code_and_a_stop_forgets_it(app):
    assert telemetry(app, 1000) == (1000,)
    assert loaded()
    sample = app.telemetry.sample()
    assert sample[6] == codec.NO_TIME  # the clock was never set: no device time in it
    assert telemetry(app, 250) == (250,) and app.telemetry.ms == 250  # changed, not started again
    assert telemetry(app, 0) == (0,)
    assert app.telemetry is None and not loaded()
    assert telemetry(app, 500) == (500,)  # a new stream: loaded again, counting afresh
    assert app.telemetry.ms == 500 and app.telemetry.sent == 0 and app.telemetry.dropped == 0


def test_a_stop_with_no_stream_and_a_refused_interval_load_nothing(app):
    assert telemetry(app, 0) == (0,)
    with pytest.raises(Refusal, match="interval 5 ms is outside 10..3600000 ms"):
        telemetry(app, 5)
    assert app.telemetry is None and not loaded()
