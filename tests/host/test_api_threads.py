"""Several pumps at once from one Python program (one Pump per port, each in its own thread), and
threads sharing one Pump: nothing steps on anything else. Real firmware on the unix port behind
real ptys (host/pumpctl/sim.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from pumpctl import Pump
from pumpctl.client import expected_steps
from pumpctl.sim import Simulator

DAY = 24 * 3600 * 10**6


@pytest.fixture
def sims():
    started = [Simulator(register=True).start() for _ in range(3)]
    yield started
    for sim in started:
        alive = sim.running()
        sim.stop()
        assert alive, sim.stderr_text()


def test_three_pumps_driven_at_once_each_deliver_exactly_what_they_owe(sims):
    rates = ["0.5 mL/day", "2 mL/day", "1 mL/h"]

    def drive(sim, rate):
        with Pump(sim.port) as pump:
            set_ = pump.set_rate(rate)
            for _ in range(4):
                pump.sim_advance(DAY // 4)
                pump.therapy()
                pump.events()
            st = pump.status()
            return set_, st

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(drive, sims, rates))
    for (set_, st), _rate in zip(results, rates, strict=True):
        assert st.steps == expected_steps(set_.rate_nl_per_day, st.time_us - set_.effective_us, st.step_volume_pl)
    assert [r[0].rate_nl_per_day for r in results] == [500_000, 2_000_000, 24_000_000]


def test_threads_sharing_one_pump_take_turns_so_no_frame_session_or_program_interleaves(sims):
    sim = sims[0]
    errors = []
    with Pump(sim.port) as pump:

        def worker(k):
            try:
                for i in range(9):
                    lines = ["drug none", "fill 20 mL", f"basal {k + 1}.{i + 1} mL/day"]  # as the pump writes it
                    staged = pump.stage(lines)  # a program is several frames: all of one thread's, in order
                    assert staged.lines == lines, (k, i, staged.lines)
                    assert pump.status().mode in ("stopped", "continuous")
                    pump.therapy()
                    pump.events(max(0, pump.status().steps - 5))
                    pump.discard()
            except Exception as e:  # collected: a failure in a thread must fail the test
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        assert pump.status().mode == "stopped"
        # every session started was one of this Pump's: no refusal was logged
        assert not [e.text for e in pump.events() if e.text.startswith("refused")]
