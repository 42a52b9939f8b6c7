"""pumpctl review, commit and discard: a program the pump holds staged, by this run or another (pumpctl
program --stage), read back, shown beside the running one, committed or dropped (a second clinician's check)."""

from __future__ import annotations

from .. import render
from ..client import Pump
from ..errors import UsageError
from ..replies import Staged
from .common import EXIT_OK, Command, emit, port_of, session_arguments
from .program import review_and_commit


def _the_staged(pump: Pump) -> Staged:
    staged = pump.staged()
    if staged is None:
        raise UsageError(
            "no program is staged (none was, it expired after 10 min, or it was committed or discarded): "
            "stage one with pumpctl program LINES --stage"
        )
    return staged


def cmd_review(args) -> int:
    with Pump(port_of(args), timeout=args.timeout) as pump:
        staged = _the_staged(pump)
        running = pump.review()
    human = render.side_by_side(running, staged.rows)
    if staged.warnings:
        human += f"\n{len(staged.warnings)} soft limit(s) passed: committing needs --confirm-soft"
    human += f"\nstaged (crc {staged.program_crc:08x}): pumpctl commit, or pumpctl discard"
    emit(
        args,
        human,
        {"program_crc": staged.program_crc, "lines": staged.lines, "rows": staged.rows, "warnings": staged.warnings},
        rich=lambda: render.review(render.review_rows(running, staged.rows)),
    )
    return EXIT_OK


def cmd_commit(args) -> int:
    with Pump(port_of(args), timeout=args.timeout) as pump:
        staged = _the_staged(pump)
        return review_and_commit(args, pump, pump.review(), staged, ours=False)


def cmd_discard(args) -> int:
    with Pump(port_of(args), timeout=args.timeout) as pump:
        staged = _the_staged(pump)
        pump.discard()
    emit(
        args,
        f"discarded the staged program (crc {staged.program_crc:08x}); the running program is unchanged",
        {"discarded": staged.program_crc, "lines": staged.lines},
    )
    return EXIT_OK


REVIEW = Command(
    "review",
    cmd_review,
    help="the staged program beside the running one (staged by any run: pumpctl program --stage)",
    epilog="""examples:
  pumpctl review              what is staged, beside what runs (no key needed)
  pumpctl program "drug morphine 20 mg/mL" "fill 20 mL" "basal 2 mg/day" --stage    stage one to review
  pumpctl commit              commit it after review (clinician key; --yes, --confirm-soft)
  pumpctl discard             drop it

A checked program stays staged for 10 min after the run that staged it ends, so another
clinician can check it before it is committed. COMMIT quotes the CRC of the lines read
back here, and the pump checks the program again against the pump as it is then.""",
)

COMMIT = Command(
    "commit",
    cmd_commit,
    help="commit the staged program after showing it beside the running one",
    epilog="""examples:
  pumpctl commit              asks before committing
  pumpctl commit --yes --confirm-soft""",
    arguments=session_arguments,
)

DISCARD = Command(
    "discard",
    cmd_discard,
    help="drop the staged program; the running one is unchanged",
    epilog="""examples:
  pumpctl discard""",
)
