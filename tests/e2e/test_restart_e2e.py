"""A power cut, end to end: the real firmware on the MicroPython unix port with its state in a folder, killed with
SIGKILL or by a save cut short mid-write, then started again on the same folder. It must come back with its
program, its totals and its log, resume at its last save, and never have moved more than the program asked."""

import re
from fractions import Fraction

import pytest
from pumpctl import LinkError, PumpRefused, Simulator, library_file

from firmware import framing

pytestmark = pytest.mark.micropython

S = 1_000_000
MIN = 60 * S
HOUR = 60 * MIN
STEP_PL = 52_083
BASAL = ["drug morphine 20 mg/mL", "fill 20 mL", "basal 10 mg/day"]  # 0.5 mL/day: 400 steps an hour
RATE_NL_PER_DAY = 500_000
RESERVE_MAX_STEPS = 384  # firmware/app.py


def owed(run_us):
    """Steps the basal owes over run_us of pump time: floor(volume / step)."""
    return Fraction(RATE_NL_PER_DAY * run_us, 86_400_000) // STEP_PL


class Life:
    """One run of the firmware on the storage folder: a simulator and a host connection."""

    def __init__(self, folder, **options):
        self.sim = Simulator(storage=folder, **options).start()
        self.pump = self.sim.pump()

    def kill(self):
        """Pull the plug: SIGKILL, nothing runs after it."""
        self.sim.proc.kill()
        self.pump.close(end_session=False)
        self.sim.proc.wait(5)
        self.sim.stop()

    def end(self):
        self.pump.close()
        self.sim.stop()


@pytest.fixture
def lives(tmp_path):
    started = []

    def start(**options):
        if started:  # the same pump again: it keeps the keys it was provisioned with
            options = dict(options, keys=started[0].sim.keys, provision=False)
        life = Life(tmp_path / "pump", **options)
        started.append(life)
        return life

    yield start
    for life in started:
        if life.sim.running():
            life.end()


def restart_reserved_steps(events):
    text = next(ev.text for ev in reversed(events) if ev.text.startswith("firmware ") and "resumed" in ev.text)
    return int(re.search(r"up to (\d+) reserved steps", text).group(1))


def test_after_a_kill_the_pump_resumes_its_program_at_its_last_save_and_never_moves_more_than_owed(lives):
    first = lives()
    pump = first.pump
    staged = pump.stage(BASAL)
    t0 = pump.commit(staged)
    pump.sim_advance(95 * MIN)
    moved_before = pump.sim_state().motor_steps
    assert moved_before == owed(95 * MIN) == pump.status().steps
    lines_before = pump.running_lines()
    events_before = pump.events()
    first.kill()

    second = lives()
    pump = second.pump
    resumed = pump.status()
    th = pump.therapy()
    assert th.alarm == "restart" and th.mode == "continuous"
    assert pump.running_lines() == lines_before
    # It resumes at its last save: within the last reservation (10 min of this program) before the kill.
    assert t0 + 85 * MIN <= resumed.time_us <= t0 + 95 * MIN
    assert resumed.steps <= moved_before  # the count at that save
    reserved = restart_reserved_steps(pump.events())
    assert 0 < reserved <= RESERVE_MAX_STEPS
    # Every event up to the save is back, unchanged; then the restart.
    events_after = pump.events()
    kept = [ev for ev in events_before if ev.time_us <= resumed.time_us]
    assert events_after[: len(kept)] == kept
    assert events_after[-2].text.startswith("passed: ")  # the power-on self-test
    assert events_after[-1].text == "restart: resumed from the saved state"
    # An hour on. The program's time resumed at the save, so the prescription is what the program owes up to its
    # time now: the motor, over both lives, moved no more than that (the steps it may have moved between the save
    # and the cut are not moved again), and at most the reservation plus one step less. Nor more than the program
    # owes for the time the pump really ran.
    pump.sim_advance(60 * MIN)
    moved = moved_before + pump.sim_state().motor_steps
    prescribed = owed(pump.status().time_us - t0)
    assert moved <= prescribed
    assert prescribed - moved <= reserved + 1
    assert moved <= owed(95 * MIN + 60 * MIN)
    # The pump's own count, on its own timeline, is the program's exact due (less the partial step it held).
    count = pump.status().steps
    assert owed(pump.status().time_us - t0) - 1 <= count <= owed(pump.status().time_us - t0)


def test_after_a_stop_and_a_kill_the_next_programs_first_steps_are_moved_by_the_motor(lives):
    """Issue 24: a stop settles the reservation in its own save. Before, the restart credited the steps reserved
    before the stop (up to 384): the next program's first steps were counted by the pump and never moved."""
    first = lives()
    pump = first.pump
    pump.commit(pump.stage(BASAL))
    pump.sim_advance(95 * MIN)  # a reservation made 5 min ago, most of it not yet moved
    pump.stop()
    stopped_at = pump.status().time_us
    pump.sim_advance(10 * MIN)
    first.kill()

    pump = lives().pump
    status = pump.status()
    assert status.time_us == stopped_at  # the stop's save
    text = next(ev.text for ev in reversed(pump.events()) if "resumed at its last save" in ev.text)
    assert text.endswith("resumed at its last save; no step was reserved"), text
    assert "reserved steps" not in text
    pump.ack_alarm("restart")
    count0, motor0 = status.steps, pump.sim_state().motor_steps
    t0 = pump.commit(pump.stage(BASAL))
    pump.sim_advance(60 * MIN)
    moved = pump.sim_state().motor_steps - motor0
    counted = pump.status().steps - count0
    assert moved == counted == owed(pump.status().time_us - t0) == 400  # every step counted was moved


def test_a_patient_bolus_lockout_and_the_guards_day_survive_a_kill(lives):
    first = lives()
    pump = first.pump
    pump.commit(pump.stage([*BASAL, "patient-bolus 0.2 mg over 10 min lockout 2 h max 4 per day"]), confirm_soft=True)
    pump.sim_advance(3 * HOUR)
    pump.patient_bolus()
    pump.sim_advance(30 * MIN)
    day_nl_before = pump.therapy().day_nl
    first.kill()

    pump = lives().pump
    assert pump.therapy().day_nl >= day_nl_before - RESERVE_MAX_STEPS * STEP_PL // 1000
    with pytest.raises(PumpRefused, match="alarm is active"):
        pump.patient_bolus()  # no bolus during the restart alarm
    assert [a.name for a in pump.alarms()] == ["restart"]
    assert pump.ack_alarm("restart") == 1
    assert pump.alarms() == []
    with pytest.raises(PumpRefused, match="locked out"):
        pump.patient_bolus()  # the bolus 30 min before the cut still locks the next one out


def test_a_save_cut_short_mid_write_leaves_the_previous_state_and_a_complete_one_the_new(lives, tmp_path):
    # The first boot saves one record; measure it, then cut the commit's save halfway through, then not at all.
    first = lives()
    first.end()
    boot_record = max(f.stat().st_size for f in (tmp_path / "pump").iterdir())
    # The restart writes one record (with its alarm), the commit the second: cut that one halfway.
    cut = lives(cut_after_bytes=(boot_record + 400) + boot_record // 2)
    with pytest.raises((LinkError, PumpRefused, OSError)):
        cut.pump.commit(cut.pump.stage(BASAL))
    cut.sim.proc.wait(5)
    assert cut.sim.proc.returncode == -9
    cut.end()
    pump = lives().pump
    assert pump.therapy().mode == "stopped"  # the commit never became durable
    assert pump.running_lines() == []


def test_a_saved_state_this_firmware_cannot_use_starts_the_pump_stopped_with_the_restart_alarm(lives, tmp_path):
    from firmware.persist import FORMAT, TAG_META
    from firmware.store import Store
    from hal.file_storage import FileStorage

    first = lives()
    first.pump.commit(first.pump.stage(BASAL))
    first.end()
    # A well-formed record of a format this firmware does not read (as a newer firmware's, after a downgrade).
    store = Store(FileStorage(str(tmp_path / "pump")))
    seq, sections = store.load()
    sections[TAG_META] = bytes(sections[TAG_META]).replace(b"format %d\n" % FORMAT, b"format 99\n")
    store.save(sorted(sections.items()))

    pump = lives().pump
    th = pump.therapy()
    assert (th.mode, th.alarm, th.rate_nl_per_day) == ("stopped", "restart", 0)
    texts = [ev.text for ev in pump.events()]
    assert texts[-3].startswith("passed: ")  # the power-on self-test
    assert texts[-2].startswith(f"stopped: saved state {seq + 1} not restored (ValueError: state format 99")
    assert texts[-1] == "restart: saved state lost, stopped"


def test_a_program_saved_by_the_firmware_before_that_cannot_be_read_is_not_run_and_the_guard_keeps_its_day(
    lives, tmp_path
):
    """After an update from protocol 8's firmware: a record that holds the program's lines without the values
    that firmware made of them (this one has no parser to read lines) comes up stopped, saying to send the
    program again; the dose guard's history is kept, so the day's dose cannot be given twice."""
    from firmware.persist import TAG_PROGRAM, TAG_PROGRAM_ITEMS
    from firmware.store import Store
    from hal.file_storage import FileStorage

    first = lives()
    first.pump.commit(first.pump.stage(BASAL))
    first.pump.sim_advance(3 * 3_600_000_000)
    day_nl = first.pump.therapy().day_nl
    first.end()
    store = Store(FileStorage(str(tmp_path / "pump")))
    _seq, sections = store.load()
    del sections[TAG_PROGRAM_ITEMS]
    sections[TAG_PROGRAM] = "\n".join(BASAL).encode()  # as that firmware wrote its lines, here without its values
    store.save(sorted(sections.items()))

    pump = lives().pump
    th = pump.therapy()
    assert (th.mode, th.alarm, th.rate_nl_per_day) == ("stopped", "program not read", 0)
    assert "restart" in [a.name for a in pump.alarms()]  # the restart is latched too
    assert day_nl * 9 // 10 <= th.day_nl <= day_nl  # the guard's 24 h (to its last save): what was given still counts
    assert "the saved program could not be read after an update: send it again" in [e.text for e in pump.events()]
    assert pump.running_lines() == []


def test_a_site_library_and_the_program_checked_against_it_survive_a_kill(lives):
    site = [
        "morphine", "20 mg/mL", "3 mg/day", "5 mg/day", "0.5 mg/h", "1 mg/h", "0.5 mg", "1 mg",
        "0 mg", "0 min", "0", "a site's own limits",
    ]  # fmt: skip
    first = lives()
    first.pump.load_library("site-7", [site])
    staged = first.pump.stage(["drug morphine 20 mg/mL", "fill 20 mL", "basal 4 mg/day"])
    first.pump.commit(staged, confirm_soft=True)
    first.kill()

    pump = lives().pump
    version, (held,) = pump.library()
    # The pump holds numbers: they read back as the same limits (the source note is the file's, not the pump's).
    assert version == "site-7" and library_file.parse_entry(held) == library_file.parse_entry(site)
    assert held[4:6] == ["500 mcg/h", "1 mg/h"]
    assert pump.therapy().library_hash == framing.library_hash([library_file.parse_entry(site)])
    assert pump.running_lines() == ["drug morphine 20 mg/mL", "basal 4 mg/day"]
    with pytest.raises(PumpRefused, match="hard limit of 5 mg/day"):
        pump.stage(["basal 6 mg/day"])


def test_a_departed_drugs_day_survives_a_kill_and_comes_back_whole_at_a_hundredth_of_its_strength(lives):
    """Issue 18 across a power cut: 14.958 mg of morphine at 20 mg/mL, a refill
    to drug none, a kill; after the restart morphine returns at 0.2 mg/mL and a
    program adding 8.33 mg within the day is refused: the departed record, in
    the saved state, came back whole."""
    first = lives(board_args=["--reservoir-ml", "40"])
    pump = first.pump
    midnight = 1_699_920_000
    pump.set_clock(midnight + 14 * 3600)
    flex = ["drug morphine 20 mg/mL", "fill 20 mL", "flex 00:00 1 uL/day", "flex 14:00 35.9 mg/day"]
    pump.commit(pump.stage(flex), confirm_soft=True)
    pump.sim_advance(10 * HOUR)
    pump.commit(pump.stage(["drug none", "fill 20 mL", "stop"]))
    first.kill()

    pump = lives(board_args=["--reservoir-ml", "40"]).pump
    assert pump.ack_alarm("restart") == 1
    pump.commit(pump.stage(["drug morphine 0.2 mg/mL", "fill 40 mL", "stop"]))
    with pytest.raises(PumpRefused, match="the dose guard"):
        pump.commit(
            pump.stage(
                ["drug morphine 0.2 mg/mL", "flex 00:00 1 uL/day", "flex 01:00 20000 mcg/day", "flex 11:00 1 uL/day"]
            )
        )
    assert pump.therapy().mode == "stopped"


def test_a_bolus_running_at_a_kill_is_cancelled_by_the_restart_alarm_and_its_line_leaves_the_program(lives):
    first = lives()
    pump = first.pump
    pump.commit(pump.stage([*BASAL, "bolus 0.2 mg over 1 h"]), confirm_soft=True)  # 10 uL
    pump.sim_advance(30 * MIN)
    assert pump.therapy().bolus == "bolus"
    first.kill()

    pump = lives().pump
    th = pump.therapy()
    assert th.bolus == "none" and th.rate_nl_per_day == RATE_NL_PER_DAY
    assert pump.running_lines() == ["drug morphine 20 mg/mL", "basal 10 mg/day"]  # the bolus's line left with it
    assert "bolus cancelled by the alarm" in [ev.text for ev in pump.events()]
    pump.ack_alarm("restart")
    # The same line again is a new dose, shown as one: the read-back never shows a bolus that no longer runs.
    staged = pump.stage([*pump.running_lines(), "bolus 0.2 mg over 1 h"])
    assert ("bolus 200 mcg over 1 h", "new dose: 10 uL = morphine 200 mcg") in staged.rows
    pump.discard()
