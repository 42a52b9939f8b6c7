"""The record keeps the therapy (issue 20), end to end: the firmware on the MicroPython unix port with its
storage in a folder, a host on the pty. A thousand sessions of ordinary commands, each logging its start and
its end, push every session out of the RAM ring, and never a program commit out of the log: those are in the
therapy log in flash, read by the same EVENT, across a restart too. The device clock rides with each entry."""

import pytest
from pumpctl import Simulator

from firmware import eventlog

pytestmark = pytest.mark.micropython

SESSIONS = 1000


def test_a_thousand_sessions_leave_every_program_commit_in_the_log_and_say_what_left(tmp_path):
    with Simulator(storage=tmp_path / "pump", register=True) as sim, sim.pump() as pump:
        commits = []
        for i in range(SESSIONS):
            if i % 100 == 0:
                pump.set_rate(f"{1 + i // 100} mL/day")  # a program commit every hundred sessions
                commits.append(f"{1 + i // 100} mL/day")
            else:
                pump.authenticate("clinician")  # as every pumpctl command that may change something
                pump.therapy()
            pump.end_session()  # a session's two entries (started, ended) are all it logs
            if i == 500:
                pump.set_clock(1_717_223_400)  # 2024-06-01 06:30 local: entries from here on carry the clock
        events = pump.events()
        count = events[-1].index + 1
        assert count > 2 * SESSIONS  # two session entries each, at least
        programs = [e for e in events if e.code == eventlog.EV_PROGRAM]
        assert len(programs) == len(commits)
        assert all(f"rate set to {rate}" in e.text or rate in e.text for e, rate in zip(programs, commits, strict=True))
        indices = [e.index for e in events]
        gaps = [(a + 1, b - 1) for a, b in zip(indices, indices[1:], strict=False) if b > a + 1]
        assert gaps and sum(b - a + 1 for a, b in gaps) > SESSIONS  # the sessions left, and the host sees where
        sessions = [e for e in events if e.code == eventlog.EV_SESSION]
        assert len(sessions) <= eventlog.CAPACITY and all(e.index > count - eventlog.CAPACITY - 5 for e in sessions)
        boot = events[0]
        assert boot.index == 0 and boot.code == eventlog.EV_BOOT  # the first entry ever is still there
        clock = [e for e in events if e.code == eventlog.EV_CLOCK]
        assert clock and clock[0].clock_s is not None and abs(clock[0].clock_s - 1_717_223_400) <= 1
        assert programs[0].clock_s is None and programs[-1].clock_s is not None  # logged before / after the clock set

    # A restart from the same storage: the record and the therapy log both come back, numbering goes on.
    with Simulator(storage=tmp_path / "pump", keys=sim.keys, provision=False) as again, again.pump() as pump:
        after = pump.events()
        assert [e for e in after if e.code == eventlog.EV_PROGRAM] == programs
        # The newest sessions were in no save (a flood of frames makes no flash writes): they are gone, and the
        # numbering goes on from the last save, above every entry of the record.
        assert after[-1].text == "restart: resumed from the saved state" and after[-1].index > programs[-1].index


FLEX_PROGRAM = [
    "drug morphine 20 mg/mL",
    "fill 20 mL",
    "flex 00:00 2 mg/day",
    "flex 07:00 4 mg/day",
    "flex 12:00 3 mg/day",
    "flex 22:00 1 mg/day",
    "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day",
]


def test_a_program_longer_than_one_entry_is_logged_whole_a_line_never_cut(sim, pump):
    """The log's texts are 100 bytes: a commit's lines go on in entries "crc X continued: ...", so the
    record holds every flex step and the patient bolus, not "flex 00:0..."."""
    pump.set_clock(1_717_223_400)
    staged = pump.program(FLEX_PROGRAM, confirm_soft=True)
    crc = f"{staged.program_crc:08x}"
    entries = [e.text for e in pump.events() if e.code == eventlog.EV_PROGRAM and crc in e.text]
    assert len(entries) >= 2 and entries[0].startswith(f"crc {crc} library ")
    assert all(t.startswith(f"crc {crc} continued: ") for t in entries[1:])
    assert not any(t.endswith("...") for t in entries)  # (the pump's entries, of items, fit 100 bytes)
    logged = [ln for t in entries for ln in t.split(": ", 1)[1].split("; ")]
    assert logged == staged.lines  # every line, whole and in order
