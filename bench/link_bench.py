"""Link figures for `make bench`: the firmware's serial link, measured end to end.

    .venv/bin/python bench/link_bench.py [--quick]

link_rtt_ratio          a STATUS round trip (pumpctl -> firmware on the unix port -> pumpctl) over a
                        pty, against a bare echo of the same byte counts on a pty set up the same way
                        (bench/mp/echo.py on the same VM), in the same run: what the firmware and
                        pumpctl add on top of the pty and the VM themselves.
telemetry_frames_per_s  telemetry frames received per second of wall time at the fastest interval the
                        firmware allows, while it doses, and whether any was lost.
flood_lateness_ratio    the latest a step came while frames flooded the link faster than the pump reads
                        them, against the latest one came in quiet windows of the same length, taken
                        in turn in the same run (pump time follows the wall clock, 10 mL/h: a step
                        every 18.75 ms; the motor's tally file is read past the link): whether the
                        link, which yields after each frame and every 64 bytes, holds the dosing up.
"""

from __future__ import annotations

import json
import os
import random
import select
import statistics
import sys
import threading
import time
from pathlib import Path

import serial
from pumpctl import expected_steps, pump_clock, schema
from pumpctl.sim import Simulator, find_micropython

from firmware import codec, framing
from firmware.commands.status import TELEMETRY_MIN_MS
from hal.sim.tally import read_tally

ECHO = Path(__file__).resolve().parent / "mp" / "echo.py"


class EchoSimulator(Simulator):
    """bench/mp/echo.py launched exactly as Simulator launches the firmware (same pty, raw mode, VM)."""

    def __init__(self, reply_len: int):
        super().__init__()
        self.reply_len = reply_len

    def command(self) -> list[str]:
        return [find_micropython(), str(ECHO), str(self.reply_len)]


def _percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def _summary(rtt_us: list[float]) -> dict:
    return {
        "samples": len(rtt_us),
        "median_us": round(statistics.median(rtt_us), 1),
        "p90_us": round(_percentile(rtt_us, 90), 1),
        "min_us": round(min(rtt_us), 1),
    }


def _echo_once(port: serial.Serial, request: bytes, reply_len: int) -> None:
    port.write(request)
    port.flush()
    reply = bytearray()
    # Read as pumpctl's transport does (whatever is waiting, at least a byte), not
    # byte by byte (read_until): the baseline should not carry host costs the pump's side lacks.
    while not reply.endswith(b"\x00"):
        got = port.read(max(1, port.in_waiting))
        if not got:
            raise TimeoutError("the echo program did not answer")
        reply += got
    assert len(reply) == reply_len, len(reply)


def link_rtt_ratio(quick: bool) -> dict:
    samples = 200 if quick else 2000
    block = 100  # alternate blocks of pump and echo round trips: machine noise hits both alike
    warmup = 50
    pump_us: list[float] = []
    echo_us: list[float] = []
    with Simulator() as sim, sim.pump() as pump:
        # Byte counts of one STATUS exchange: a reply's COBS length depends only on its raw length,
        # so a reply encoded from real values is as long as the pump's.
        request = framing.encode_frame(codec.STATUS, 1, b"")
        s = pump.status()
        fields = schema.reply_fields(codec.STATUS)
        values = (
            s.time_us // codec.US_PER_MDAY,
            s.time_us % codec.US_PER_MDAY,
            0,  # mode: one byte whatever its value
            s.rate_nl_per_day,
            s.steps // codec.STEP_RADIX,
            s.steps % codec.STEP_RADIX,
            s.step_volume_pl,
        )
        reply_len = len(framing.encode_frame(codec.STATUS | codec.REPLY, 1, schema.encode_fields(fields, values)))
        with (
            EchoSimulator(reply_len) as echo_sim,
            serial.Serial(
                echo_sim.port,
                baudrate=115200,
                timeout=2.0,
                exclusive=True,  # as pumpctl's transport opens it
            ) as echo,
        ):
            for _ in range(warmup):
                pump.status()
                _echo_once(echo, request, reply_len)
            while len(pump_us) < samples:
                for _ in range(block):
                    t = time.perf_counter_ns()
                    pump.status()
                    pump_us.append((time.perf_counter_ns() - t) / 1000)
                for _ in range(block):
                    t = time.perf_counter_ns()
                    _echo_once(echo, request, reply_len)
                    echo_us.append((time.perf_counter_ns() - t) / 1000)
    pump_s, echo_s = _summary(pump_us), _summary(echo_us)
    ratio = pump_s["median_us"] / echo_s["median_us"]
    return {
        "value": round(ratio, 2),
        "unit": "x",
        "baseline": f"echo of the same byte counts over a pty, same VM, same run: median {echo_s['median_us']} us "
        f"(pump STATUS median {pump_s['median_us']} us)",
        "goal": "<= 3",
        "met": ratio <= 3,
        "detail": {
            "request_bytes": len(request),
            "reply_bytes": reply_len,
            "block": block,
            "warmup": warmup,
            "pump_status_rtt": pump_s,
            "echo_rtt": echo_s,
        },
    }


def telemetry_frames_per_s(quick: bool) -> dict:
    interval_ms = TELEMETRY_MIN_MS
    requested_per_s = 1000 / interval_ms
    window_s = 2.0 if quick else 10.0
    keep_alive_s = 3.0  # the pump stops the stream after TELEMETRY_HOLD_MS (10 s) of host silence
    # speed=1: pump time follows the wall clock, so the pump doses while it streams, as on a board.
    with Simulator(speed=1) as sim, sim.pump() as pump:
        pump.set_rate("10 mL/h")  # the fastest rate: the most work for the dosing task meanwhile
        pump.start_telemetry(interval_ms)
        first = pump.telemetry(2.0)
        if first is None:
            raise RuntimeError("no telemetry came from the pump")
        t0 = last_alive = time.perf_counter()
        seqs, last = [first.seq], first
        while (now := time.perf_counter()) < t0 + window_s:
            if now - last_alive >= keep_alive_s:
                pump.keep_alive()
                last_alive = now
            sample = pump.telemetry(min(1.0, t0 + window_s - now))
            if sample is not None:
                seqs.append(sample.seq)
                last = sample
        elapsed_s = time.perf_counter() - t0
        pump.stop_telemetry()
    received = len(seqs) - 1  # frames after the one that opened the window
    gaps = sum(1 for a, b in zip(seqs, seqs[1:], strict=False) if b != a + 1)
    dropped = last.dropped - first.dropped
    per_s = received / elapsed_s
    ratio = per_s / requested_per_s
    return {
        "value": round(per_s, 1),
        "unit": "frames/s",
        "baseline": f"requested rate {requested_per_s:g} frames/s (interval {interval_ms} ms); "
        f"received {ratio:.3f} of it",
        "goal": f"no loss at the fastest interval ({requested_per_s:g} frames/s)",
        # Chosen: no sequence gap, no sample the pump counted as dropped, and at least 95 % of the
        # requested rate (a stream that slows down loses samples as surely as one that drops them).
        "met": gaps == 0 and dropped == 0 and ratio >= 0.95,
        "detail": {
            "received": received,
            "gaps": gaps,
            "dropped": dropped,
            "interval_ms": interval_ms,
            "requested_per_s": requested_per_s,
            "window_s": round(elapsed_s, 3),
            "ratio_to_requested": round(ratio, 3),
            "mode": last.mode,
            "steps_during_window": last.steps - first.steps,
            "pump_time_during_window_s": round((last.time_us - first.time_us) / 1e6, 3),
        },
    }


def _flood_block(rng: random.Random, frames: int) -> bytes:
    """Frames the pump must read and answer (STATUS, some with a wrong CRC), each after junk bytes."""
    out = []
    for seq in range(1, frames + 1):
        frame = bytearray(framing.encode_frame(codec.STATUS, seq))
        if seq % 4 == 0:
            frame[len(frame) // 2] ^= 0x5A  # damaged: refused, or its bytes read as junk until the next delimiter
        out.append(bytes(rng.randrange(1, 256) for _ in range(rng.randrange(0, 40))) + b"\x00")
        out.append(bytes(frame))
    return b"".join(out)


def _worst_lateness_ms(tally: Path, seconds: float, due_us, steps_owed) -> tuple[float, int]:
    """Sample the motor's tally every 2 ms for seconds: the latest any step came past its due time, ms."""
    worst, samples = 0.0, 0
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        made = read_tally(tally)
        if made < steps_owed(now):  # step made + 1 was due by now: since when?
            worst = max(worst, (now - due_us(made + 1)) * 1000)
        samples += 1
        time.sleep(0.002)
    return worst, samples


def flood_lateness_ratio(quick: bool) -> dict:
    window_s = 1.0 if quick else 4.0
    rounds = 1 if quick else 3
    tally = Path(os.environ.get("TMPDIR", "/tmp")) / f"flood-bench-{os.getpid()}.tally"
    with Simulator(speed=1, tally=tally) as sim, sim.pump() as pump:
        info = pump.hello()
        step_pl = info.step_volume_pl
        result = pump.set_rate("10 mL/h")
        rate, t0 = result.rate_nl_per_day, result.effective_us
        pump_us, wall0, _uncertain_s = pump_clock(pump)

        def steps_owed(wall: float) -> int:
            return expected_steps(rate, pump_us + round((wall - wall0) * 1e6) - t0, step_pl)

        def due_wall(step: int) -> float:  # the wall time step number `step` is due
            due_us = t0 + -(-step * step_pl * codec.US_PER_MDAY // rate)
            return wall0 + (due_us - pump_us) / 1e6

        block = _flood_block(random.Random(1), 200)
        fd = os.open(sim.port, os.O_RDWR | os.O_NOCTTY)  # pumpctl's port stays open, unread meanwhile
        quiet, flooded, sent_bytes, replies, samples = [], [], 0, 0, 0
        try:
            for _ in range(rounds):
                late, n = _worst_lateness_ms(tally, window_s, due_wall, steps_owed)
                quiet.append(late)
                samples += n
                stop = threading.Event()
                counts = [0, 0]  # bytes written, reply delimiters read

                def write(counts=counts, stop=stop):
                    while not stop.is_set():
                        view = memoryview(block)
                        while view and not stop.is_set():
                            wrote = os.write(fd, view)
                            counts[0] += wrote
                            view = view[wrote:]

                def read(counts=counts, stop=stop):
                    while not stop.is_set():
                        if select.select([fd], [], [], 0.05)[0]:
                            counts[1] += os.read(fd, 65536).count(0)

                threads = [threading.Thread(target=write, daemon=True), threading.Thread(target=read, daemon=True)]
                for t in threads:
                    t.start()
                late, n = _worst_lateness_ms(tally, window_s, due_wall, steps_owed)
                flooded.append(late)
                samples += n
                stop.set()
                for t in threads:
                    t.join(10)
                time.sleep(0.5)  # the pump answers what it had read before the next quiet window
                while select.select([fd], [], [], 0.2)[0]:
                    counts[1] += os.read(fd, 65536).count(0)
                sent_bytes += counts[0]
                replies += counts[1]
        finally:
            os.close(fd)
            tally.unlink(missing_ok=True)
    worst_quiet, worst_flooded = max(quiet), max(flooded)
    step_interval_ms = step_pl * codec.US_PER_MDAY / rate / 1000
    # Against the quiet windows' worst, but never less than a tenth of a step interval: on a quiet
    # machine steps come within a fraction of a millisecond, and a ratio of two such noises says nothing.
    floor_ms = max(worst_quiet, step_interval_ms / 10)
    ratio = worst_flooded / floor_ms
    return {
        "value": round(ratio, 2),
        "unit": "x",
        "baseline": f"the latest a step came in quiet windows of the same run, {worst_quiet:.1f} ms "
        f"(at least a tenth of the {step_interval_ms:.2f} ms between steps)",
        "goal": "<= 3",
        "met": ratio <= 3,
        "detail": {
            "flooded_worst_ms": [round(x, 2) for x in flooded],
            "quiet_worst_ms": [round(x, 2) for x in quiet],
            "window_s": window_s,
            "rounds": rounds,
            "bytes_sent": sent_bytes,
            "replies": replies,
            "tally_samples": samples,
            "step_interval_ms": round(step_interval_ms, 3),
        },
    }


def measure(quick: bool = False) -> dict[str, dict]:
    return {
        "link_rtt_ratio": link_rtt_ratio(quick),
        "telemetry_frames_per_s": telemetry_frames_per_s(quick),
        "flood_lateness_ratio": flood_lateness_ratio(quick),
    }


if __name__ == "__main__":
    print(json.dumps(measure(quick="--quick" in sys.argv), indent=2))
