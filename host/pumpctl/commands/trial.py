"""pumpctl trial start|score|report: the screening trial's pain scores on the command line (the record,
its file: pumpctl.trial; its report: pumpctl.trial_report).

On the command line `trial score` needs `--phase`: the phase decides which
mean a score counts in, so it decides the verdict, and the tool cannot know
when the trial began. A default ("baseline until the first trial score")
would silently file the first trial score as baseline whenever the flag is
forgotten, which the record's ordering rules (pumpctl.trial) cannot catch; a required flag costs
a few keystrokes and makes every entry say what it is.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from ..trial import (
    PHASES,
    SCORE_MAX,
    SCORE_MIN,
    PainScore,
    TrialError,
    TrialRecord,
    _fmt_time,
    load,
    parse_score,
    parse_time,
    save,
)
from ..trial_report import SUCCESS_PERCENT, report
from .common import AFTER_COMMAND, Command


def _now() -> datetime:
    """Local wall-clock time now, to the minute (tests replace this)."""
    return datetime.now().replace(second=0, microsecond=0)


def _json_wanted(args) -> bool:
    return bool(getattr(args, "json", False))


def _counts(record: TrialRecord) -> str:
    return f"{len(record.phase_scores('baseline'))} baseline, {len(record.phase_scores('trial'))} trial scores"


def cmd_trial_start(args) -> int:
    record = TrialRecord(patient=args.patient, note=args.note)
    save(record, args.file, new=True)
    if _json_wanted(args):
        print(json.dumps(dict(record.to_json(), file=args.file), indent=2, ensure_ascii=False))
    else:
        who = f" (patient {record.patient})" if record.patient else ""
        print(f"started trial record {args.file}{who}")
        print(f"next: pumpctl trial score {args.file} SCORE --phase baseline")
    return 0


def cmd_trial_score(args) -> int:
    record = load(args.file)
    value = parse_score(args.score)
    now = _now()
    if args.at is None:
        when = now
    else:
        when = parse_time(args.at)
        if when > now:
            raise TrialError(f"time {args.at!r} is in the future (now is {_fmt_time(now)})")
    entry = PainScore(time=when, score=value, phase=args.phase, note=args.note)
    record.add_score(entry)
    save(record, args.file)
    if _json_wanted(args):
        print(json.dumps(dict(entry.to_json(), file=args.file), indent=2, ensure_ascii=False))
    else:
        print(
            f"recorded {entry.phase} score {entry.score} at {_fmt_time(entry.time)} in {args.file} ({_counts(record)})"
        )
    return 0


def cmd_trial_report(args) -> int:
    result = report(load(args.file))
    if _json_wanted(args):
        print(json.dumps(dict(result.to_json(), file=args.file), indent=2, ensure_ascii=False))
    else:
        print(result.text(args.file))
    return 0


def _trial_arguments(p: argparse.ArgumentParser) -> None:
    """`trial start|score|report`: each sets func(args) -> exit code."""
    sub = p.add_subparsers(dest="trial_command", required=True, metavar="TRIAL_COMMAND")

    s = sub.add_parser(
        "start",
        parents=[AFTER_COMMAND],
        help="create a new trial record (never overwrites)",
        epilog="examples:\n"
        "  pumpctl trial start trial.json --patient P-017 --note 'morphine 0.5 mg/day'\n"
        "  pumpctl trial start trial.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("file", metavar="FILE", help="the JSON file to create")
    s.add_argument("--patient", help="patient label (free text; avoid names, the file is plain JSON)")
    s.add_argument("--note", help="drug or program note (free text)")
    s.set_defaults(func=cmd_trial_start)

    s = sub.add_parser(
        "score",
        parents=[AFTER_COMMAND],
        help="record one pain score",
        epilog="examples:\n"
        "  pumpctl trial score trial.json 8 --phase baseline --at 2024-05-01T08:00\n"
        "  pumpctl trial score trial.json 3 --phase trial              (now)\n\n"
        "--phase is required: it decides which mean the score counts in, and the tool cannot know\n"
        "when the trial began.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("file", metavar="FILE", help="the trial record")
    s.add_argument(
        "score", metavar="SCORE", help=f"pain on the numeric rating scale, a whole number {SCORE_MIN} to {SCORE_MAX}"
    )
    s.add_argument("--phase", required=True, choices=PHASES, help="baseline (before the trial) or trial")
    s.add_argument("--at", metavar="ISO_TIME", help="local time to the minute, 2024-05-01T08:30 (default: now)")
    s.add_argument("--note", help="note on this score (free text)")
    s.set_defaults(func=cmd_trial_score)

    s = sub.add_parser(
        "report",
        parents=[AFTER_COMMAND],
        help="means, reduction from baseline and whether the trial succeeded",
        epilog="examples:\n  pumpctl trial report trial.json\n  pumpctl --json trial report trial.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("file", metavar="FILE", help="the trial record")
    s.set_defaults(func=cmd_trial_report)


TRIAL = Command(
    "trial",
    None,  # its subcommands set func
    help="record pain scores of a screening trial and report the reduction",
    description="Keep the 0-10 pain scores of a screening trial in a JSON file (mode 0600) and report\n"
    f"the reduction from baseline; success is a mean reduction of at least {SUCCESS_PERCENT}%.",
    epilog="examples:\n"
    "  pumpctl trial start trial.json --patient P-017 --note 'morphine 0.5 mg/day'\n"
    "  pumpctl trial score trial.json 8 --phase baseline --at 2024-05-01T08:00\n"
    "  pumpctl trial score trial.json 3 --phase trial              (now)\n"
    "  pumpctl trial report trial.json",
    arguments=_trial_arguments,
)
