"""End to end: firmware on the MicroPython unix port with the simulated board,
the host over a pty through pyserial. Delivered volume is checked against the
exact prescription at every status read."""

import pytest
from frames import raw_frame
from oracle import ExactPrescription
from pumpctl import PumpRefused, schema
from pumpctl.errors import UsageError

from firmware import codec, framing

pytestmark = pytest.mark.micropython

S = 1_000_000  # us per second
HOUR = 3600 * S
DAY = 24 * HOUR


class Tracked:
    """A pump and the exact prescription it should be following."""

    def __init__(self, pump):
        self.pump = pump
        start = pump.status()
        self.step_pl = start.step_volume_pl
        self.exact = ExactPrescription(self.step_pl, start.time_us)
        self.steps0 = start.steps

    def set_rate(self, text):
        result = self.pump.set_rate(text)
        self.exact.set_rate(result.effective_us, result.rate_nl_per_day)
        return result

    def stop(self):
        self.exact.set_rate(self.pump.stop(), 0)

    def advance_and_check(self, duration_us):
        status = self.pump.sim_advance(duration_us)
        owed = self.exact.steps_at(status.time_us)
        assert status.steps - self.steps0 == owed, f"at {status.time_us} us: {status.steps} steps, owed {owed}"
        return status


def test_hello_names_the_board_and_its_limits(pump):
    info = pump.hello()
    assert info.protocol == codec.PROTOCOL_VERSION
    assert info.board == "sim"
    assert info.platform.startswith("micropython")
    assert info.step_volume_pl == 52_083
    assert (info.min_rate_nl_per_day, info.max_rate_nl_per_day) == (1_000, 240_000_000)


def test_a_day_of_morphine_at_half_a_ml_per_day_is_exact(pump):
    t = Tracked(pump)
    result = t.set_rate("0.5 mL/day")
    assert (result.rate_nl_per_day, result.rounded) == (500_000, False)
    status = t.advance_and_check(DAY)
    assert status.time_us - result.effective_us == DAY
    assert status.steps == 9600  # floor(500 uL / 52.083 nL)
    assert status.mode == "continuous"
    assert pump.sim_state().motor_steps == status.steps  # the motor model made every step


def test_a_sequence_of_rate_changes_stays_exact(pump):
    t = Tracked(pump)
    for text, duration in [
        ("0.5 mL/day", 3 * HOUR + 1234567),
        ("10 mL/h", 90 * S + 17),  # the fastest rate
        ("1 uL/day", 2 * DAY + 5),  # the slowest: 75 min between steps, longer than a ticks wrap
        ("0.3333333 uL/min", 7 * HOUR),  # finer than 1 nL/day: rounded down
        ("48 uL/day", DAY // 7),
    ]:
        t.set_rate(text)
        t.advance_and_check(duration)
        t.advance_and_check(1)  # and one microsecond later


def test_stopping_keeps_the_partial_step_and_resuming_completes_it(pump):
    t = Tracked(pump)
    t.set_rate("1 mL/h")
    t.advance_and_check(10 * S + 123)
    t.stop()
    stopped = t.advance_and_check(30 * DAY)
    assert stopped.mode == "stopped" and stopped.rate_nl_per_day == 0
    t.set_rate("1 mL/h")
    t.advance_and_check(HOUR)


def test_thirty_days_at_the_slowest_rate_across_many_ticks_wraps(pump):
    t = Tracked(pump)
    t.set_rate("1 uL/day")
    status = t.advance_and_check(30 * DAY)  # 2414 wraps of a 2**30 us tick counter
    assert status.steps == (30 * 1_000_000) // 52_083


def test_the_host_can_leave_and_come_back_while_the_pump_doses(sim):
    with sim.pump() as first:
        t = Tracked(first)
        t.set_rate("0.5 mL/day")
        t.advance_and_check(HOUR)
        first.link.send_raw(b"\x03\x01\x01")  # half a frame, then gone
    with sim.pump() as second:
        t.pump = second
        status = t.advance_and_check(HOUR)
        assert status.rate_nl_per_day == 500_000


# -- bad input: each gets a clear error reply and the program is kept -----


def flip_a_bit(frame, index):
    damaged = bytearray(frame)
    damaged[index] ^= 0x10
    return bytes(damaged)


def set_rate_payload(nl_per_day):
    return schema.encode_fields(schema.request_fields(codec.SET_RATE), [nl_per_day])


# What a person types is read by pumpctl: a rate it cannot read is refused before anything is sent.
BAD_RATE_TEXTS = {
    "rate above the maximum": ("12 mL/h", "above the pump maximum of 10 mL/h"),
    "rate below the minimum": ("0.5 uL/day", "below the pump minimum of 1 uL/day"),
    "unknown unit": ("5 mg/day", "unknown unit 'mg/day'; give a volume per time: nL, uL or mL per s, min, h or day"),
    "comma decimal": ("1,5 mL/h", "use a point as the decimal separator"),
    "naked decimal": (".5 mL/h", "write a leading zero"),
    "negative": ("-1 mL/h", "must not be negative"),
}


@pytest.mark.parametrize("case", sorted(BAD_RATE_TEXTS))
def test_a_rate_pumpctl_cannot_read_is_refused_whole_before_anything_is_sent(pump, case):
    text, reason = BAD_RATE_TEXTS[case]
    t = Tracked(pump)
    t.set_rate("0.5 mL/day")
    t.advance_and_check(HOUR)
    seq = pump.link._seq
    with pytest.raises(UsageError) as refused:
        pump.set_rate(text)
    assert str(refused.value).startswith("rate: ") and reason in str(refused.value)
    assert str(refused.value).endswith("; nothing was sent to the pump")  # the whole reason: never cut at 100 bytes
    assert pump.link._seq == seq  # no frame went out
    status = pump.status()
    assert (status.mode, status.rate_nl_per_day) == ("continuous", 500_000)
    t.advance_and_check(5 * HOUR)


BAD_INPUTS = {
    "rate above the maximum": ("rate", 240_000_001, codec.ERR_BAD_VALUE, "outside the pump's range of 1000 to"),
    "rate below the minimum": ("rate", 999, codec.ERR_BAD_VALUE, "outside the pump's range of 1000 to 240000000"),
    "rate of zero": ("rate", 0, codec.ERR_BAD_VALUE, "a rate of zero is not a program; stop the pump instead"),
    "payload cut short": (
        "raw",
        raw_frame(codec.PROTOCOL_VERSION, codec.EVENT, 500, b"\x09ab"),
        codec.ERR_MALFORMED,
        "missing field",
    ),
    "extra payload": (
        "raw",
        raw_frame(codec.PROTOCOL_VERSION, codec.STATUS, 500, b"\x01"),
        codec.ERR_MALFORMED,
        "unexpected bytes",
    ),
    "unknown command": (
        "raw",
        raw_frame(codec.PROTOCOL_VERSION, 0x42, 500),
        codec.ERR_UNKNOWN_COMMAND,
        "unknown command 0x42",
    ),
    "no key": (
        "raw",
        raw_frame(codec.PROTOCOL_VERSION, codec.SET_RATE, 500, set_rate_payload(1_000_000)),
        codec.ERR_NEED_KEY,
        "clinician",
    ),
    "protocol version 1": (
        "raw",
        raw_frame(1, codec.SET_RATE, 500, set_rate_payload(1_000_000)),
        codec.ERR_BAD_VERSION,
        "version 1",
    ),
    "unknown flags": (
        "raw",
        raw_frame(codec.PROTOCOL_VERSION, codec.STATUS, 500, flags=0x80),
        codec.ERR_MALFORMED,
        "unknown flags 0x80",
    ),
    "flipped bit": (
        "raw",
        flip_a_bit(raw_frame(codec.PROTOCOL_VERSION, codec.SET_RATE, 500, set_rate_payload(240_000_000)), 9),
        codec.ERR_BAD_FRAME,
        "",
    ),
    "truncated frame": (
        "raw",
        raw_frame(codec.PROTOCOL_VERSION, codec.SET_RATE, 500, set_rate_payload(240_000_000))[:-3] + b"\x00",
        codec.ERR_BAD_FRAME,
        "",
    ),
    "oversized frame": ("raw", b"\x07" * 600 + b"\x00", codec.ERR_TOO_LONG, "longer than"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_refused_with_a_reason_and_the_program_is_kept(pump, case):
    kind, data, code, reason = BAD_INPUTS[case]
    t = Tracked(pump)
    t.set_rate("0.5 mL/day")
    t.advance_and_check(HOUR)
    with pytest.raises(PumpRefused) as refused:
        if kind == "rate":  # a number pumpctl would not send: the pump checks its own range
            pump._request(codec.SET_RATE, (data,))
        else:
            pump.link.send_raw(data)
            pump.link.timeout = 0.5  # a frame the pump could not read gets no other reply
            pump.link.await_reply(codec.SET_RATE, 500)
    pump.link.timeout = 2.0
    assert refused.value.code == code
    assert reason in refused.value.reason
    if kind == "rate":
        assert refused.value.field == "rate"
    status = pump.status()
    assert (status.mode, status.rate_nl_per_day) == ("continuous", 500_000)
    t.advance_and_check(5 * HOUR)  # still dosing the old program, exactly


def test_text_that_is_not_utf8_is_refused_as_malformed_in_words_the_host_can_read(pump):
    # MicroPython's decode() takes overlong forms and surrogates: the pump once
    # staged such a line, then refused the program in a message pumpctl could
    # not decode (found by the link fuzz, test_fuzz_link.py). Now a drug's name is
    # a program's one text.
    t = Tracked(pump)
    t.set_rate("0.5 mL/day")
    for raw in (b"basal 0\xc0\xae5 mL/day", b"basal 1 mL/day\xed\xa0\x80", b"\xf4\x90\x80\x80"):
        with pytest.raises(PumpRefused) as refused:
            item = bytes([0, codec.ITEM_DRUG, len(raw)]) + raw + bytes(24)  # its numbers all 0
            pump.link.request(codec.STAGE_ITEM, payload=item)
        assert (refused.value.code, refused.value.reason) == (codec.ERR_MALFORMED, "field drug is not UTF-8 text")
    with pytest.raises(PumpRefused) as refused:
        pump.link.request(codec.STAGE)
    assert "the program is empty" in refused.value.reason  # nothing was staged
    t.advance_and_check(HOUR)


def test_line_noise_never_stops_the_pump(pump):
    import random

    rng = random.Random(7)
    t = Tracked(pump)
    t.set_rate("2 mL/day")
    for _ in range(20):
        pump.link.send_raw(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) + b"\x00")
        t.advance_and_check(rng.randrange(1, HOUR))
    status = pump.status()
    assert status.rate_nl_per_day == 2_000_000


def test_a_host_that_sends_but_does_not_read_never_stops_the_dosing(tmp_path):
    # Requests by the thousand and no reply read: once the line back is full,
    # the pump must stop reading (the host's writes wait) rather than wait in
    # write() with the dosing task behind it, as it once did (found by the link
    # fuzz, test_fuzz_link.py: dosing stopped until the host read again).
    import os
    import threading
    import time

    from pumpctl import Simulator

    from hal.sim.tally import read_tally

    def steps_moved():  # the motor's own count, read past the link
        return read_tally(tally)

    tally = tmp_path / "tally"
    with Simulator(speed=1, tally=tally) as sim, sim.pump() as pump:
        t = Tracked(pump)
        t.set_rate("10 mL/h")  # a step every 18.75 ms of wall time
        fd = os.open(sim.port, os.O_RDWR | os.O_NOCTTY)
        requests = b"".join(framing.encode_frame(codec.STATUS, seq) for seq in range(1, 5001))  # 200 KB of replies

        def send():
            view = memoryview(requests)
            while view:
                view = view[os.write(fd, view) :]

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        time.sleep(0.5)  # the line back fills up
        before = steps_moved()
        time.sleep(1.0)
        moved = steps_moved() - before
        replies = 0
        deadline = time.monotonic() + 20
        while replies < 5000 and time.monotonic() < deadline:  # now read: every request is answered
            replies += os.read(fd, 65536).count(0)
        sender.join(5)
        os.close(fd)
        assert moved >= 40, f"{moved} steps in a second while the host did not read; 53 were owed"
        assert replies == 5000
        status = pump.status()
        assert status.steps - t.steps0 == t.exact.steps_at(status.time_us)


# -- pump time that follows the wall clock (pumpctl sim --speed N) ----------


def wait_for(condition, pump, timeout_s=20.0):
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = pump.status()
        if condition(status):
            return status
        time.sleep(0.02)
    raise AssertionError(f"gave up after {timeout_s} s; last status {status}")


def test_with_a_speed_pump_time_runs_by_itself_and_dosing_stays_exact():
    from pumpctl import Simulator

    with Simulator(speed=3600) as sim, sim.pump() as pump:
        t = Tracked(pump)
        t.set_rate("10 mL/h")
        status = wait_for(lambda s: s.steps >= 50, pump)  # no advance: the clock runs
        assert status.steps - t.steps0 == t.exact.steps_at(status.time_us)


def test_a_new_rate_wakes_a_pump_that_was_sleeping_until_its_next_step():
    import time

    from pumpctl import Simulator

    with Simulator(speed=1) as sim, sim.pump() as pump:
        t = Tracked(pump)
        t.set_rate("1 uL/day")  # next step in 75 min: the dosing task sleeps for minutes
        wait_for(lambda s: s.time_us > 200_000, pump)
        t.set_rate("10 mL/h")  # a step every 18.75 ms: the dosing task must wake for this
        # Watch the motor model only: sim-state does not run the dosing tick
        # itself, as status does, so steps here come from the dosing task.
        deadline = time.monotonic() + 10
        while pump.sim_state().motor_steps < 3:
            assert time.monotonic() < deadline, "the dosing task slept through the new rate"
            time.sleep(0.02)
        status = pump.status()
        assert status.steps - t.steps0 == t.exact.steps_at(status.time_us)


def test_service_leaves_for_the_repl_only_when_stopped(tmp_path):
    from pumpctl import Simulator
    from pumpctl.errors import LinkError

    with Simulator(storage=tmp_path / "pump") as sim:
        with sim.pump() as pump:
            pump.set_rate("1 mL/h")
            with pytest.raises(PumpRefused, match=r"the pump is continuous: stop it first"):
                pump.service()
            assert pump.status().mode == "continuous"  # refused: nothing changed
            pump.stop()
            try:
                pump.service()
            except LinkError:
                # The simulator's process ends when the firmware returns, closing the pty, which can
                # beat the reply to the host (a board stays, at its REPL): the exit is what counts here.
                pass
            pump.close(end_session=False)
        sim.proc.wait(5)  # the firmware returned: on a board, to its REPL
        assert sim.proc.returncode == 0, sim.stderr_text()
    with Simulator(storage=tmp_path / "pump", provision=False, keys=sim.keys) as again, again.pump() as pump:
        texts = [e.text for e in pump.events()]
    assert any("left for the board's REPL" in t for t in texts), texts
