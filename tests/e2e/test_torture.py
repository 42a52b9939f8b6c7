"""The torture test, short form (tests/torture.py; `make torture` runs the long one): the real firmware on the
MicroPython unix port, cut at random moments by SIGKILL and by saves torn at any byte while it doses, takes boluses,
is programmed and is refilled, then restarted on the same folder and checked after every cut. Fixed seeds."""

import os
import subprocess
import sys

import pytest
import torture
from pumpctl import Simulator
from torture import run

from hal.sim.tally import read_tally

pytestmark = pytest.mark.micropython

S = 1_000_000
HOUR = 3600 * S
STEP_PL = 52_083
JOBS = min(2, os.cpu_count() or 1)  # episodes run side by side: the wall time is mostly waiting on processes


@pytest.fixture
def busy_cores():
    """Every core busy for the test's duration (a busy-loop process each), as when `make torture` failed beside an
    emulator build (issue 24): the runner's margins (torture.START_TIMEOUT_S ...) must hold under load."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    yield
    for p in procs:
        p.kill()
        p.wait()


def check(fig, cuts_at_boot):
    """Every invariant held after every cut, and the run reached what it is meant to reach."""
    print("\n" + fig.report())
    assert fig.cuts >= 200
    if fig.violations:
        pytest.fail("\n" + fig.report() + "\n\nthe first violations:\n" + fig.details(), pytrace=False)
    assert fig.survived == fig.cuts
    assert fig.over_deliveries == 0 and fig.lost_log_entries == 0
    # The workload and the cuts reached what they are meant to reach.
    assert fig.storage_cuts >= 40 and fig.sigkills >= 80
    assert fig.sigkill_idle and fig.sigkill_dosing and fig.sigkill_command
    assert {"a commit", "a run of pump time"} <= set(fig.storage_cuts_in)
    assert fig.uncertain_took > 0 and fig.uncertain > fig.uncertain_took
    assert fig.boluses >= 10 and fig.refills >= 10 and fig.stops >= 10 and fig.acks >= 20
    assert 0 < fig.max_shortfall and fig.max_reserved > 0
    assert (fig.storage_cuts_at_boot >= 10) if cuts_at_boot else (fig.storage_cuts_at_boot == 0)


def test_the_tally_holds_what_the_motor_moved_after_a_sigkill(tmp_path):
    tally = tmp_path / "tally"
    sim = Simulator(storage=tmp_path / "state", tally=tally).start()
    try:
        with sim.pump() as pump:
            pump.commit(pump.stage(["drug morphine 20 mg/mL", "fill 20 mL", "basal 10 mg/day"]))
            pump.sim_advance(3 * HOUR)
            moved = pump.sim_state().motor_steps
            assert moved == 1200 == read_tally(tally)
            pump.sim_fault()  # a halt drops what is in motion (nothing, between steps at this rate)
            assert read_tally(tally) == pump.sim_state().motor_steps == moved
        sim.proc.kill()
        sim.proc.wait(5)
        assert read_tally(tally) == moved
    finally:
        sim.stop()


def test_a_second_cut_before_a_restarts_reserved_steps_come_due_does_not_move_them_again(tmp_path):
    """The shortest sequence the torture test found over-delivering (seed 2026, and most others, until fixed): a cut
    while dosing, then a second cut after the restart's saves and before the steps it counted as delivered have
    come due. The restart's saves must carry those steps on (they may have moved before the first cut), or the
    second restart moves them again."""
    state = tmp_path / "state"
    basal = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 10 mg/day"]  # 0.5 mL/day: 400 steps an hour
    moved = 0
    for life in range(3):
        tally = tmp_path / f"tally.{life}"
        sim = Simulator(storage=state, tally=tally).start()
        try:
            with sim.pump() as pump:
                if life == 0:
                    t0 = pump.commit(pump.stage(basal))
                    pump.sim_advance(95 * 60 * S)  # saved at the reservation 10 min before, then moved on
                elif life == 2:
                    pump.sim_advance(HOUR)
                    now = pump.status().time_us
            sim.proc.kill()  # life 1 is cut as soon as it has restarted (its saves are complete)
            sim.proc.wait(5)
        finally:
            sim.stop()
        moved += read_tally(tally)
    prescribed = (500_000 * (now - t0)) // (86_400_000 * STEP_PL)
    assert moved <= prescribed, f"the motor moved {moved} steps, {moved - prescribed} more than the {prescribed} owed"


def test_cuts_at_any_moment_never_over_deliver_lose_a_commit_or_a_log_entry(tmp_path, busy_cores):
    """The short form: 200 cuts, anywhere, including during a restart's own saves and before the steps a restart
    counted as delivered have come due (a second cut then). Under load: every core busy meanwhile."""
    check(
        run(200, seed=2026, episode_cuts=100, policy="any", jobs=JOBS, root=tmp_path, keep=tmp_path / "kept"),
        cuts_at_boot=True,
    )


def test_a_stop_then_a_cut_leaves_nothing_reserved_and_no_shortfall(tmp_path, busy_cores):
    """Policy "stop" (issue 24): each life stops the pump, runs on, then is cut. Every restart from a stopped save
    credits no step (the next program's first steps are moved), and the shortfall stays within the bound, to which a
    stopped restart adds no reserved step."""
    fig = run(40, seed=24, episode_cuts=20, policy="stop", jobs=JOBS, root=tmp_path, keep=tmp_path / "kept")
    print("\n" + fig.report())
    if fig.violations:
        pytest.fail("\n" + fig.report() + "\n\n" + fig.details(), pytrace=False)
    assert fig.stopped_restarts >= 20 and fig.stops >= 20 and fig.commits >= 20


def test_the_first_failed_episode_is_kept_with_its_state_and_how_to_replay_it(tmp_path, monkeypatch):
    real = torture.Episode._check_restart

    def failing(self):
        real(self)
        if self.cuts >= 2:
            self.violation("readable", "injected by the test")

    monkeypatch.setattr(torture.Episode, "_check_restart", failing)
    fig = run(4, seed=5, episode_cuts=2, policy="any", jobs=1, root=tmp_path / "run", keep=tmp_path / "kept")
    assert fig.failed() and len(fig.kept) == 1
    kept = tmp_path / "kept" / "episode-5-0"
    assert fig.kept[0] == str(kept) and sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["episode-5-0"]
    text = (kept / "episode.txt").read_text()
    assert "seed 5-0, policy any, failed at life" in text and "injected by the test" in text
    assert "replay: python tests/torture.py --replay 5-0 --cuts 2 --policy any" in text
    assert "the harness's log:" in text and "first program" in text
    assert {p.name for p in (kept / "state").iterdir()} >= {"state.0"}
