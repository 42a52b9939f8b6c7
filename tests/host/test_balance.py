"""The balance drivers against recorded replies over a real pty, and the
simulated balance weighing what a tally file says the motor moved.

The transcripts are (request, reply) pairs as bytes on the wire: the driver
opens the pty's slave side with pyserial, exactly as it opens a real
balance's port; a small thread on the master side checks each request
against the transcript and sends its reply (None: stays silent)."""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from decimal import ROUND_HALF_UP, Decimal

import pytest
import serial
from pumpctl.balance import MtSicsBalance, Reading, SbiBalance, open_balance
from pumpctl.errors import BalanceError
from pumpctl.simbalance import STEP_RADIX, SimulatedBalance

FAST_S = 1.0  # timeout when the reply comes at once
SILENT_S = 0.2  # timeout when it never comes


class ScriptedBalance:
    """Answers each request (a line ending LF) with the transcript's reply, on a pty."""

    def __init__(self, transcript: list[tuple[bytes, bytes | None]]):
        self.transcript = list(transcript)
        self.requests: list[bytes] = []
        self.mismatches: list[str] = []
        master, slave = os.openpty()
        tty.setraw(slave)
        self.master, self.slave = master, slave
        self.port = os.ttyname(slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def send(self, data: bytes) -> None:
        """Bytes the balance sends unasked (stale output, an auto-print)."""
        os.write(self.master, data)

    def _serve(self) -> None:
        pending = b""
        while not self._stop.is_set():
            if not select.select([self.master], [], [], 0.02)[0]:
                continue
            pending += os.read(self.master, 1024)
            while b"\n" in pending:
                request, pending = pending.split(b"\n", 1)
                request += b"\n"
                self.requests.append(request)
                if not self.transcript:
                    self.mismatches.append(f"unexpected request {request!r}")
                    continue
                expected, reply = self.transcript.pop(0)
                if request != expected:
                    self.mismatches.append(f"expected {expected!r}, got {request!r}")
                if reply is not None:
                    os.write(self.master, reply)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self.slave)
        assert not self.mismatches, self.mismatches


@pytest.fixture
def scripted():
    """scripted(transcript) -> a ScriptedBalance, closed (and checked) after the test."""
    made = []

    def make(transcript):
        made.append(ScriptedBalance(transcript))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


def mt(scripted, transcript, timeout=FAST_S) -> tuple[MtSicsBalance, ScriptedBalance]:
    fake = scripted(transcript)
    return MtSicsBalance(fake.port, timeout=timeout), fake


def sbi(scripted, transcript, timeout=FAST_S, **kwargs) -> tuple[SbiBalance, ScriptedBalance]:
    fake = scripted(transcript)
    return SbiBalance(fake.port, timeout=timeout, **kwargs), fake


# --- MT-SICS: readings -----------------------------------------------------


@pytest.mark.parametrize(
    "request_, reply, mass_g, stable, unit",
    [
        (b"SI\r\n", b"S S     100.00 g\r\n", "100.00", True, "g"),
        (b"SI\r\n", b"S D     100.01 g\r\n", "100.01", False, "g"),
        (b"SI\r\n", b"S S    -0.0082 g\r\n", "-0.0082", True, "g"),
        (b"SI\r\n", b"S S   1234.567 mg\r\n", "1.234567", True, "mg"),
        (b"SI\r\n", b"S D   0.125000 kg\r\n", "125.000000", False, "kg"),
        (b"SI\r\n", b"S S     25.00000 g   \r\n", "25.00000", True, "g"),  # unit field padded
    ],
)
def test_mt_sics_read_gives_the_mass_in_grams_and_stability(scripted, request_, reply, mass_g, stable, unit):
    balance, _ = mt(scripted, [(request_, reply)])
    with balance:
        reading = balance.read()
    assert reading == Reading(Decimal(mass_g), stable, unit, reply.decode().rstrip())
    assert str(reading.mass_g) == mass_g  # exact: no float on the way


def test_mt_sics_stable_read_sends_s(scripted):
    balance, fake = mt(scripted, [(b"S\r\n", b"S S      12.34 g\r\n")])
    with balance:
        assert balance.read(stable=True).mass_g == Decimal("12.34")
    assert fake.requests == [b"S\r\n"]


def test_mt_sics_drops_stale_input_before_each_command(scripted):
    balance, fake = mt(scripted, [(b"SI\r\n", b"S S       1.00 g\r\n")])
    with balance:
        fake.send(b"S D       9.99 g\r\nS S       9.98 g\r\n")  # left over from an earlier stream
        time.sleep(0.05)
        assert balance.read().mass_g == Decimal("1.00")


def test_mt_sics_zero_tare_and_serial_number(scripted):
    balance, fake = mt(
        scripted,
        [
            (b"Z\r\n", b"Z A\r\n"),
            (b"T\r\n", b"T S     100.00 g\r\n"),
            (b"I4\r\n", b'I4 A "0123456789"\r\n'),
        ],
    )
    with balance:
        balance.zero()
        balance.tare()
        assert balance.serial_number() == "0123456789"
    assert fake.requests == [b"Z\r\n", b"T\r\n", b"I4\r\n"]


# --- MT-SICS: errors, each with what to do ------------------------------------

MT_ERRORS = [
    ("read", b"SI\r\n", b"S I\r\n", ["cannot weigh now", "S I", "wait and try again"]),
    ("read", b"SI\r\n", b"S L\r\n", ["refused to weigh", "S L", "logical error"]),
    ("read", b"SI\r\n", b"S +\r\n", ["the balance is overloaded (S +): take weight off the pan"]),
    ("read", b"SI\r\n", b"S -\r\n", ["underloaded (S -)", "pan is in place"]),
    ("zero", b"Z\r\n", b"Z I\r\n", ["cannot zero now", "Z I"]),
    ("zero", b"Z\r\n", b"Z +\r\n", ["cannot zero", "above its zero range (Z +)", "take weight off"]),
    ("zero", b"Z\r\n", b"Z -\r\n", ["below its zero range (Z -)"]),
    ("tare", b"T\r\n", b"T I\r\n", ["cannot tare now (T I"]),
    ("tare", b"T\r\n", b"T +\r\n", ["above its tare range (T +)"]),
    ("serial_number", b"I4\r\n", b"I4 I\r\n", ["cannot report its serial number now (I4 I"]),
    ("read", b"SI\r\n", b"ES\r\n", ["did not understand SI (ES, syntax error)", "speaks MT-SICS"]),
    ("zero", b"Z\r\n", b"ET\r\n", ["received Z garbled (ET, transmission error)", "baud rate"]),
    ("tare", b"T\r\n", b"EL\r\n", ["refused T (EL, logical error)"]),
    # Replies that are no MT-SICS reply to this command: quoted.
    ("read", b"SI\r\n", b"hello\r\n", ["reply to SI is not the MT-SICS reply expected: 'hello'"]),
    ("read", b"SI\r\n", b"T S     100.00 g\r\n", ["reply to SI", "'T S     100.00 g'"]),
    ("read", b"SI\r\n", b"S S     1O0.00 g\r\n", ["'S S     1O0.00 g'"]),  # a letter O
    ("read", b"SI\r\n", b"S S         12 pcs\r\n", ["unit 'pcs', which is not g, mg or kg"]),
    ("zero", b"Z\r\n", b"Z D\r\n", ["reply to Z", "'Z D'"]),
    ("serial_number", b"I4\r\n", b"I4 A 0123456789\r\n", ["reply to I4", "'I4 A 0123456789'"]),
    ("read", b"SI\r\n", b"S S     10", ["incomplete reply", "'S S     10'"]),  # truncated: no line end
]


@pytest.mark.parametrize("method, request_, reply, fragments", MT_ERRORS)
def test_mt_sics_errors_say_what_happened_and_what_to_do(scripted, method, request_, reply, fragments):
    balance, _ = mt(scripted, [(request_, reply)], timeout=FAST_S if reply.endswith(b"\n") else SILENT_S)
    with balance, pytest.raises(BalanceError) as caught:
        getattr(balance, method)()
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_mt_sics_silence_times_out_with_advice(scripted):
    balance, fake = mt(scripted, [(b"SI\r\n", None)], timeout=SILENT_S)
    started = time.monotonic()
    with balance, pytest.raises(BalanceError) as caught:
        balance.read()
    assert time.monotonic() - started < SILENT_S + 0.5
    assert str(caught.value) == (
        f"no reply from the balance on {fake.port} within 0.2 s: check the cable, the baud rate "
        "(MT-SICS default 9600 8N1) and that it speaks MT-SICS"
    )


def test_mt_sics_stream_yields_readings_and_is_cancelled_by_si(scripted):
    stream_lines = b"S D      10.01 g\r\nS D      10.03 g\r\nS S      10.04 g\r\nS S      10.04 g\r\n"
    balance, fake = mt(
        scripted,
        [
            (b"SIR\r\n", stream_lines),
            (b"SI\r\n", b"S S      10.04 g\r\n"),  # cancels SIR; drained when the stream closes
            (b"SI\r\n", b"S S      10.05 g\r\n"),
        ],
    )
    with balance:
        readings = []
        for reading in balance.stream():
            readings.append(reading)
            if len(readings) == 3:
                break
        assert [r.mass_g for r in readings] == [Decimal("10.01"), Decimal("10.03"), Decimal("10.04")]
        assert [r.stable for r in readings] == [False, False, True]
        assert balance.read().mass_g == Decimal("10.05")  # nothing of the stream left over
    assert fake.requests == [b"SIR\r\n", b"SI\r\n", b"SI\r\n"]


def test_mt_sics_stream_raises_on_overload(scripted):
    balance, _ = mt(scripted, [(b"SIR\r\n", b"S D     219.99 g\r\nS +\r\n"), (b"SI\r\n", b"S +\r\n")])
    with balance:
        stream = balance.stream()
        assert next(stream).mass_g == Decimal("219.99")
        with pytest.raises(BalanceError, match=r"overloaded \(S \+\)"):
            next(stream)


# --- Opening the port --------------------------------------------------------


def test_absent_port_says_so(tmp_path):
    missing = str(tmp_path / "ttyUSB9")
    with pytest.raises(BalanceError, match="there is no such port: check that the balance is plugged in"):
        MtSicsBalance(missing)


def test_busy_port_says_so(scripted):
    fake = scripted([])
    with MtSicsBalance(fake.port):
        with pytest.raises(BalanceError, match="the port is busy: another program"):
            SbiBalance(fake.port)


def test_open_balance_picks_the_protocol(scripted):
    fake = scripted([])
    with open_balance(fake.port) as balance:
        assert isinstance(balance, MtSicsBalance)
    with open_balance(fake.port, "sbi", timeout=0.5) as balance:
        assert isinstance(balance, SbiBalance) and balance.timeout == 0.5
    with pytest.raises(ValueError, match="'ohaus'.*mt-sics, sbi"):
        open_balance(fake.port, "ohaus")


# --- Sartorius SBI -----------------------------------------------------------

ESC_P = b"\x1bP\r\n"

SBI_READINGS = [
    # 16 characters: sign, 9 of value, space, 3 of unit, CR LF.
    (b"+   123.56 g  \r\n", "123.56", True, "g"),
    (b"-     0.25 g  \r\n", "-0.25", True, "g"),
    (b"+ 1234.567 mg \r\n", "1.234567", True, "mg"),
    (b"+    1.250 kg \r\n", "1250.000", True, "kg"),
    (b"+   123.50    \r\n", "123.50", False, ""),  # blank unit: unstable
    # 22 characters: a 6-character ID first.
    (b"N     +   123.56 g  \r\n", "123.56", True, "g"),
    (b"G     -    12.30 g  \r\n", "-12.30", True, "g"),
    (b"G#    +   1255.7 g  \r\n", "1255.7", True, "g"),
    (b"N     +  45.1234    \r\n", "45.1234", False, ""),
]


@pytest.mark.parametrize("reply, mass_g, stable, unit", SBI_READINGS)
def test_sbi_read_gives_the_mass_in_grams_and_stability(scripted, reply, mass_g, stable, unit):
    assert len(reply) in (16, 22)  # the transcript itself is well formed
    balance, fake = sbi(scripted, [(ESC_P, reply)])
    with balance:
        reading = balance.read()
    assert reading == Reading(Decimal(mass_g), stable, unit, reply.decode()[:-2])
    assert fake.requests == [ESC_P]


def test_sbi_unstable_reading_takes_the_last_printed_unit(scripted):
    balance, _ = sbi(scripted, [(ESC_P, b"+  1200.00 mg \r\n"), (ESC_P, b"+  1201.50    \r\n")])
    with balance:
        assert balance.read().mass_g == Decimal("1.20000")
        unstable = balance.read()
    assert unstable.mass_g == Decimal("1.20150") and not unstable.stable and unstable.unit == ""


def test_sbi_stable_read_polls_through_busy_and_unstable_replies(scripted):
    balance, fake = sbi(
        scripted,
        [
            (ESC_P, b"Stat                \r\n"),  # busy (taring): no value
            (ESC_P, b"N     +    99.98    \r\n"),
            (ESC_P, b"N     +   100.00 g  \r\n"),
        ],
    )
    with balance:
        reading = balance.read(stable=True)
    assert reading.mass_g == Decimal("100.00") and reading.stable
    assert fake.requests == [ESC_P] * 3


def test_sbi_stable_read_gives_up_at_the_timeout(scripted):
    balance, _ = sbi(scripted, [(ESC_P, b"+   123.50    \r\n")] * 4, timeout=0.3)
    with balance, pytest.raises(BalanceError) as caught:
        balance.read(stable=True)
    assert "no stable reading from the balance" in str(caught.value)
    assert "'+   123.50    ', unstable" in str(caught.value)
    assert "drafts and vibration" in str(caught.value)


def test_sbi_tare_and_zero_send_esc_u_and_esc_v_then_confirm(scripted):
    balance, fake = sbi(
        scripted,
        [
            (b"\x1bU\r\n", None),  # SBI acknowledges nothing
            (ESC_P, b"N     +     0.00 g  \r\n"),
            (b"\x1bV\r\n", None),
            (ESC_P, b"G     +     0.00 g  \r\n"),
        ],
    )
    with balance:
        balance.tare()
        balance.zero()
    assert fake.requests == [b"\x1bU\r\n", ESC_P, b"\x1bV\r\n", ESC_P]


def test_sbi_serial_number(scripted):
    balance, fake = sbi(scripted, [(b"\x1bx2_\r\n", b"Ser.no      34309393\r\n")])
    with balance:
        assert balance.serial_number() == "34309393"
    assert fake.requests == [b"\x1bx2_\r\n"]


SBI_ERRORS = [
    # Special codes, 22- and 16-character forms.
    (b"Stat        High    \r\n", ["overloaded (Stat        High)", "take weight off the pan"]),
    (b"Stat        Low     \r\n", ["underloaded", "pan is in place"]),
    (b"Stat      Cal. Ext. \r\n", ["being calibrated or adjusted (Stat      Cal. Ext.)"]),
    (b"Stat     Err 123    \r\n", ["error 123 (Stat     Err 123)", "troubleshooting"]),
    (b"Stat     ERR  02    \r\n", ["error 02"]),
    (b"Stat     APP.ERR    \r\n", ["reports an error (Stat     APP.ERR)"]),
    (b"         H    \r\n", ["overloaded (H)"]),
    (b"         L    \r\n", ["underloaded (L)"]),
    (b"         C    \r\n", ["calibrated or adjusted (C)"]),
    (b"Err 54        \r\n", ["error 54"]),
    (b"Stat                \r\n", ["shows no weight now (Stat: busy"]),
    # Malformed.
    (b"+ 123.5 g\r\n", ["has 11 characters, not SBI's 16 or 22", "'+ 123.5 g'"]),
    (b"+   12x.56 g  \r\n", ["not an SBI reading: '+   12x.56 g  '"]),
    (b"+   1.2.34 g  \r\n", ["not an SBI reading"]),
    (b"Qnt   +       12 pcs\r\n", ["labelled 'Qnt', not a gross or net weight"]),
    (b"+      100 pcs\r\n", ["unit 'pcs', which is not g, mg or kg"]),
    (b"N     +   12", ["incomplete reply", "'N     +   12'"]),  # truncated
]


@pytest.mark.parametrize("reply, fragments", SBI_ERRORS)
def test_sbi_errors_say_what_happened_and_what_to_do(scripted, reply, fragments):
    balance, _ = sbi(scripted, [(ESC_P, reply)], timeout=FAST_S if reply.endswith(b"\n") else SILENT_S)
    with balance, pytest.raises(BalanceError) as caught:
        balance.read()
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_sbi_overload_during_tare_raises(scripted):
    balance, _ = sbi(scripted, [(b"\x1bU\r\n", None), (ESC_P, b"Stat        High    \r\n")])
    with balance, pytest.raises(BalanceError, match="overloaded"):
        balance.tare()


def test_sbi_silence_times_out_with_advice(scripted):
    balance, fake = sbi(scripted, [(ESC_P, None)], timeout=SILENT_S)
    with balance, pytest.raises(BalanceError) as caught:
        balance.read()
    message = str(caught.value)
    assert message.startswith(f"no reply from the balance on {fake.port} within 0.2 s: check the cable")
    assert "7 data bits, odd parity" in message and "SBI mode" in message


# --- The simulated balance -----------------------------------------------------


def write_tally(path, steps: int) -> None:
    """Rewrite the motor's 22-byte record in place, as hal/sim/tally.py does."""
    hi, lo = divmod(steps, STEP_RADIX)
    with open(path, "r+b" if path.exists() else "wb", buffering=0) as f:
        f.write(b"%010d %010d\n" % (hi, lo))


def exact_g(steps: int, step_volume_pl: int, density="0.9982", readability="0.00001") -> Decimal:
    mass_g = Decimal("25.00000") + Decimal(density) * steps * step_volume_pl / 10**9
    return mass_g.quantize(Decimal(readability), rounding=ROUND_HALF_UP)


@pytest.fixture
def tally(tmp_path):
    path = tmp_path / "tally"
    write_tally(path, 0)
    return path


def simulated(tally, **kwargs) -> SimulatedBalance:
    kwargs.setdefault("step_volume_pl", 52_083)
    return SimulatedBalance(tally, **kwargs)  # started by `with`


def test_simulated_reading_follows_the_steps_exactly_without_noise_or_pulsation(tally):
    with simulated(tally, noise_sd_g=0, pulsation_depth=0) as scale, MtSicsBalance(scale.port) as balance:
        for steps in (0, 1, 7, 9600, 123_457):
            write_tally(tally, steps)
            assert balance.read().mass_g == exact_g(steps, 52_083)
    # Both words of the record count: hi * 2**29 + lo.
    with simulated(tally, step_volume_pl=100, noise_sd_g=0, pulsation_depth=0) as scale:
        with MtSicsBalance(scale.port) as balance:
            write_tally(tally, STEP_RADIX + 5)
            assert balance.read().mass_g == exact_g(STEP_RADIX + 5, 100)


def test_simulated_reading_is_within_noise_of_the_truth(tally):
    write_tally(tally, 4000)
    with simulated(tally) as scale, MtSicsBalance(scale.port) as balance:
        readings = [balance.read().mass_g for _ in range(30)]
        true_g = scale.true_mass_g()
    assert all(abs(r - true_g) <= Decimal("0.00011") for r in readings)  # 5 sd + half a digit
    assert len(set(readings)) > 1  # noisy
    mean_g = sum(readings) / len(readings)
    assert abs(mean_g - true_g) < Decimal("0.00002")


def test_simulated_missing_or_empty_tally_is_zero_steps(tmp_path):
    path = tmp_path / "none"
    with simulated(path, noise_sd_g=0) as scale, MtSicsBalance(scale.port) as balance:
        assert balance.read().mass_g == Decimal("25.00000")
        path.write_bytes(b"")
        assert balance.read().mass_g == Decimal("25.00000")
        assert scale.true_mass_g() == Decimal("25.00000")


def test_simulated_zero_tare_and_reset(tally):
    write_tally(tally, 1000)
    with simulated(tally, noise_sd_g=0, pulsation_depth=0) as scale, MtSicsBalance(scale.port) as balance:
        gross_g = exact_g(1000, 52_083)
        balance.tare()
        assert balance.read().mass_g == 0
        write_tally(tally, 3000)
        net_g = balance.read(stable=True).mass_g
        assert net_g == exact_g(3000, 52_083) - gross_g
        assert net_g > Decimal("0.1")
        balance.zero()  # zero clears the tare and makes the load 0
        assert balance.read().mass_g == 0 and scale.tare_g == 0
        write_tally(tally, 4000)
        balance.tare()
        assert balance.serial_number() == "SIM0000001"
        with serial.serial_for_url(scale.port, timeout=FAST_S) as raw:
            raw.write(b"@\r\n")
            assert raw.readline() == b'I4 A "SIM0000001"\r\n'
        assert scale.tare_g == 0  # @ cleared the tare, not the zero point
        assert balance.read().mass_g == exact_g(4000, 52_083) - exact_g(3000, 52_083)


def test_simulated_pulsation_averages_out_over_whole_pulses(tally):
    pulse = 40
    with simulated(tally, step_volume_pl=1_000_000, noise_sd_g=0, steps_per_pulse=pulse) as scale:
        with MtSicsBalance(scale.port) as balance:
            for pulses in (1, 2, 5, 250):
                write_tally(tally, pulses * pulse)
                assert balance.read().mass_g == exact_g(pulses * pulse, 1_000_000)
                assert scale.true_mass_g() == Decimal("25") + Decimal("0.9982") * pulses * pulse / 1000
            # Within a pulse the step increment swings by about +-depth around s.
            masses = []
            for steps in range(pulse + 1):
                write_tally(tally, steps)
                masses.append(balance.read().mass_g)
    step_g = Decimal("0.9982") * 1_000_000 / 10**9
    ratios = [float((b - a) / step_g) for a, b in zip(masses, masses[1:], strict=False)]
    assert max(ratios) == pytest.approx(1.3, abs=0.02)
    assert min(ratios) == pytest.approx(0.7, abs=0.02)
    assert sum(ratios) / len(ratios) == pytest.approx(1.0, abs=0.001)


def test_simulated_overload_above_capacity(tally):
    with simulated(tally, noise_sd_g=0, pulsation_depth=0, step_volume_pl=1_000_000_000) as scale:  # 1 mL a step
        with MtSicsBalance(scale.port) as balance:
            write_tally(tally, 194)
            assert balance.read().mass_g < 220
            write_tally(tally, 200)  # 25 g + 199.6 g
            with pytest.raises(BalanceError, match=r"overloaded \(S \+\)"):
                balance.read()
            with pytest.raises(BalanceError, match=r"above its zero range \(Z \+\)"):
                balance.zero()


def test_simulated_unknown_command_is_a_syntax_error(tally):
    with simulated(tally) as scale:
        with serial.serial_for_url(scale.port, timeout=FAST_S) as raw:
            for command in (b"XYZ\r\n", b"si\r\n", b'D "hi"\r\n'):
                raw.write(command)
                assert raw.readline() == b"ES\r\n"
            raw.write(b"TAC\r\n")
            assert raw.readline() == b"TAC A\r\n"


def test_simulated_stability_and_stream_through_the_driver(tally):
    with simulated(tally, noise_sd_g=0, pulsation_depth=0) as scale, MtSicsBalance(scale.port) as balance:
        write_tally(tally, 500)
        assert not balance.read().stable  # the pump just moved
        assert balance.read(stable=True).stable
        seen = []
        for reading in balance.stream():
            seen.append(reading.mass_g)
            if len(seen) == 2:
                write_tally(tally, 1500)
            if len(seen) == 5:
                break
        assert seen[0] == exact_g(500, 52_083)
        assert seen[-1] == exact_g(1500, 52_083)
        assert balance.read().mass_g == exact_g(1500, 52_083)  # the stream ended cleanly
