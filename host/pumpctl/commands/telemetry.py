"""pumpctl telemetry: stream samples from the pump (lines, JSON, CSV, or a live view)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from .. import quantities
from ..client import Pump
from ..errors import LinkError, UsageError
from .common import EXIT_OK, Command, duration_us_arg, port_of


def cmd_telemetry(args) -> int:
    import time

    from ..telemetry_csv import TelemetryCsv

    interval_ms = duration_us_arg(args.interval) // 1000
    if args.live and args.json:
        raise UsageError("--live and --json: choose one (--json prints each sample as a JSON line)")
    if args.csv == "-" and (args.live or args.json):
        raise UsageError("--csv - writes the CSV on stdout instead of the lines: not with --live or --json")
    with Pump(port_of(args), timeout=args.timeout) as pump:
        record = TelemetryCsv(args.csv, pump.status().step_volume_pl) if args.csv else None
        if args.live:
            from .. import live

            try:
                return live.run(pump, interval_ms, count=args.count, record=record)
            finally:
                if record is not None:
                    record.close()
                    print(f"{record.rows} samples written to {args.csv}", file=sys.stderr)
        pump.start_telemetry(interval_ms)
        shown = 0
        last_seq = None
        lost = 0
        alive_at = time.monotonic()
        try:
            while args.count is None or shown < args.count:
                sample = pump.telemetry(timeout=max(2.0, 3 * interval_ms / 1000))
                if time.monotonic() - alive_at > 2:
                    pump.keep_alive()  # the pump stops streaming to a host silent for 10 s
                    alive_at = time.monotonic()
                if sample is None:
                    raise LinkError("the pump stopped sending telemetry")
                if last_seq is not None and sample.seq != last_seq + 1:
                    lost += sample.seq - last_seq - 1
                last_seq = sample.seq
                shown += 1
                if record is not None:
                    record.write(sample)
                if args.csv == "-":
                    pass  # the CSV is the output
                elif args.json:
                    print(json.dumps(asdict(sample)), flush=True)
                else:
                    if shown == 1:  # what each column is, once (the lines fit 80 columns)
                        print(
                            f"{'sample':>6}  {'pump time':>18}  {'mode':<10}  {'rate':>11}  {'steps':>8}  "
                            f"{'reservoir':<10}  alarm"
                        )
                    reservoir = "-" if sample.reservoir_nl is None else quantities.volume(sample.reservoir_nl * 1000)
                    rate = quantities.rate(sample.rate_nl_per_day) if sample.rate_nl_per_day else "-"
                    print(
                        f"{sample.seq:6d}  {quantities.duration(sample.time_us):>18}  {sample.mode:<10}  {rate:>11}  "
                        f"{sample.steps:8d}  {reservoir:<10}  {sample.alarm}",
                        flush=True,
                    )
        except KeyboardInterrupt:
            pass
        finally:
            if record is not None:
                record.close()
            pump.stop_telemetry()
    if not args.json:
        print(f"{shown} samples, {lost} lost on the way", file=sys.stderr)
    if record is not None and args.csv != "-":
        print(f"{record.rows} samples written to {args.csv}", file=sys.stderr)
    return EXIT_OK


def _telemetry_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--interval", default="1s", help="time between samples, with unit (10ms .. 1h; default 1s)")
    s.add_argument("--count", type=int, help="stop after this many samples (default: until Ctrl-C, or q in --live)")
    s.add_argument("--live", action="store_true", help="a live view of the pump, redrawn in place, with keys")
    s.add_argument("--csv", metavar="FILE", help="also record every sample to FILE as CSV (- : on stdout, instead)")


TELEMETRY = Command(
    "telemetry",
    cmd_telemetry,
    help="stream samples from the pump: time, mode, rate, steps, reservoir, alarm",
    epilog="""examples:
  pumpctl telemetry --interval 1s --count 10      one line a sample
  pumpctl telemetry --live                        a live view, redrawn in place (keys below);
                                                  its last frame stays on the terminal after
  pumpctl telemetry --live --csv run.csv          the same, every sample also recorded
  pumpctl telemetry --csv - --interval 100ms      the CSV on stdout instead of the lines
  pumpctl --json telemetry --count 5              one JSON object a line

--live shows pump time, mode, rate, delivered (steps x step volume, exact),
reservoir (counted, sensor, when the low level comes), battery, latched
alarms by priority (high red, medium yellow, low cyan) and their tones, the
session and the samples received and lost. Keys: q quits, s silences the
alarm tones (patient key), a acknowledges every alarm (clinician key).
Ctrl-C quits too; a link that fails ends it with a message (exit 3).

--csv columns: seq, time_s (pump time, exact), mode, rate_nl_per_day, steps,
delivered_pl, reservoir_nl, sensor_nl, day_nl, hour_nl, battery_permille,
alarm, alarms (';' between), session, dropped; one row a sample, flushed.""",
    arguments=_telemetry_arguments,
)
