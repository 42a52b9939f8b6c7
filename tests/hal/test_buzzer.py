"""hal/buzzer.py: the alarm patterns of each priority."""

from pathlib import Path

import pytest
from hal_fakes import PWM

ROOT = Path(__file__).resolve().parents[2]


class _Tasks:
    """The pump's loop (firmware/tasks.py) for play(): each sleep noted, none waited."""

    def __init__(self):
        self.slept = []

    async def sleep_ms(self, ms):
        self.slept.append(ms)


def _run(coro):
    """Run a coroutine that never waits (its awaits all return at once)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the coroutine waited")


@pytest.mark.parametrize("priority,pulses", [(3, 10), (2, 3), (1, 2)])
def test_buzzer_patterns(monkeypatch, priority, pulses):
    import hal.buzzer as bz

    aio = _Tasks()
    monkeypatch.setattr(bz, "tasks", aio)
    pwm = PWM()
    b = bz.Buzzer(pwm)
    _run(b.play(priority))
    assert pwm.calls.count(("duty", 32768)) == pulses and pwm.calls[-1] == ("duty", 0)
    assert ("freq", 880) in pwm.calls
    if priority == 3:  # two bursts of 5: a longer gap between them
        gaps = [ms for ms in aio.slept if ms != 150]
        assert gaps == [100] * 4 + [400] + [100] * 4
    with pytest.raises(ValueError, match=r"priority must be 1 \(low\), 2 \(medium\) or 3 \(high\) for the buzzer"):
        _run(b.play(4))
