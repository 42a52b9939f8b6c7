"""Steps a driver holds back for its hardware reach it after a stop (firmware/app.py tick_and_wait).

A PIO's TX FIFO or an RMT channel takes steps as room frees there; a driver keeps the rest as its backlog
and hands them on in poll(). It was polled only when new steps came, so steps held back when the pump
stopped stayed held: on the emulated Pico (whose PIO runs slower than real time) 14 steps the pump counted
as delivered were never sent. Each dosing turn now polls, and turns come at least every 20 ms while
steps wait. Here the hardware takes one step per 40 ms of pump time, slower than the pump issues them, and the pump
stops with steps waiting."""

import sys
import types

from protocol_examples import _Clock, _Faults, _MemoryStorage, _random_bytes, _Serial
from vms import MP_DIR

from boards import sim as sim_board
from firmware.app import PumpApp

sys.path.insert(0, str(MP_DIR))
from rate_now import rate_now  # noqa: E402  (tests/mp: shared with the VM scripts)

STEP_TIME_US = 40_000  # the hardware sends one step in this much pump time: 25 steps/s
HOUR = 3_600_000_000


class HeldBackMotor:
    """A driver in the manner of hal/rp2_stepper.PioStepper: steps issued go to a backlog; poll()
    hands on as many as the hardware has sent since (one per STEP_TIME_US of the clock)."""

    def __init__(self, clock):
        self.clock = clock
        self.issued = 0
        self.sent = 0
        self._backlog = 0
        self._last_us = 0

    def step(self, n):
        self.issued += n
        self._backlog += n
        self.poll()

    def poll(self):
        room = (self.clock.t - self._last_us) // STEP_TIME_US
        if room:
            self._last_us += room * STEP_TIME_US
            moved = min(room, self._backlog)
            self._backlog -= moved
            self.sent += moved

    def backlog(self):
        return self._backlog

    def halt(self):
        pass


def test_steps_held_back_when_the_pump_stops_are_all_sent():
    clock = _Clock()
    motor = HeldBackMotor(clock)
    hw = types.SimpleNamespace(
        clock=clock,
        motor=motor,
        serial=_Serial(),
        random_bytes=_random_bytes,
        storage=_MemoryStorage(),
        key_storage=None,
        faults=_Faults(),
        sim=True,
    )
    app = PumpApp(sim_board, hw)
    rate_now(app, 240_000_000)  # 10 mL/h: 53 steps/s, faster than the hardware sends them
    t_end = 60_000_000
    while clock.t < t_end:
        clock.t += min(max(app.tick_and_wait(), 1), t_end - clock.t)
    assert motor.backlog() > 1000  # a minute at 10 mL/h left far more waiting than sent
    rate_now(app, 0)
    waits = []
    while motor.backlog() and len(waits) < 100_000:
        wait = app.tick_and_wait()
        waits.append(wait)
        clock.t += wait
    assert motor.backlog() == 0 and motor.sent == motor.issued == app.sched.steps()
    # a turn at least every 20 ms while steps waited; then, none waiting, the long sleep of a stopped pump
    assert max(waits[:-1]) <= 20_000 < waits[-1]
