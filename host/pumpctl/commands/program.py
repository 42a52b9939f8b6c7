"""pumpctl program, bolus, prime, resume and patient-bolus: a program staged, reviewed beside the
running one, and committed on confirmation (the programming session; refill.py builds on it)."""

from __future__ import annotations

import argparse
import difflib
import re

from .. import quantities, render
from ..client import DELIVERY_WORDS, NO_DRUG_LIMITS, Pump, read_rate
from ..errors import PumpError, PumpRefused, UsageError
from .common import EXIT_OK, EXIT_REFUSED, Command, confirm, emit, port_of, session_arguments

PROGRAM_EPILOG = """program lines (doses in mg or mcg are of the first drug; volumes in mL or uL):
  drug NAME CONCENTRATION            drug morphine 20 mg/mL   (1-3 lines: a blend)
  fill VOLUME                        the reservoir now holds this (after a refill)
  basal DOSE/TIME                    basal 2 mg/day
  flex HH:MM DOSE/TIME               daily schedule step (first at 00:00, up to 24)
  bolus DOSE over TIME [after TIME]  on top of the basal
  prime VOLUME over TIME             fill the catheter, then back to the program
  bridge VOLUME                      after a refill with a new concentration
  removed VOLUME                     with fill: drawn out of the reservoir first (checked)
  low-reservoir VOLUME               the low-reservoir alarm's volume (default 2 mL)
  empty-reservoir VOLUME             delivery stops here (default 1 mL)
  patient-bolus DOSE over TIME lockout TIME max N per day
  trial TIME                         trial mode: stop after this
  stop                               stopped mode

examples:
  pumpctl program "drug morphine 20 mg/mL" "fill 20 mL" "basal 2 mg/day"
  pumpctl program --file night-and-day.txt --yes
  pumpctl program --file night-and-day.txt --stage     staged for pumpctl review, commit or discard
"""


def _session(args, pump: Pump, lines: list[str], notes=None, running=None, before_commit=None, data=None) -> int:
    """Stage lines, show them beside the running program, commit on confirmation.

    notes(running_rows, staged) gives lines to show after the review (and a
    "notes" list in --json output); running: the running program's review rows
    if the caller already read them; before_commit(): done once the commit is
    confirmed, just before it, returning a line to say (or None)."""
    running = pump.review() if running is None else running
    try:
        staged = pump.stage(lines)
    except PumpRefused as e:
        raise _with_a_near_name(pump, e) from None
    return review_and_commit(args, pump, running, staged, notes, before_commit, ours=True, data=data)


def review_and_commit(args, pump: Pump, running, staged, notes=None, before_commit=None, ours=True, data=None) -> int:
    """Show staged beside running, then commit it on confirmation. ours: this run staged it, so a
    refusal to commit discards it; a program another run staged (pumpctl commit) is left staged.
    With --stage (pumpctl program), the program stays staged for pumpctl review, commit or discard."""
    extra = notes(running, staged) if notes else []
    drug_limits = names_a_drug(staged.lines)
    if not args.json:
        render.show(
            render.side_by_side(running, staged.rows), lambda: render.review(render.review_rows(running, staged.rows))
        )
        for line in extra:
            render.warn(line)
        if not drug_limits:
            render.warn(NO_DRUG_LIMITS)
        if staged.warnings:
            needs = "confirmed by --confirm-soft" if args.confirm_soft else "committing needs --confirm-soft"
            render.warn(f"{len(staged.warnings)} soft limit(s) passed; {needs}")
    if getattr(args, "stage", False):
        emit(
            args,
            f"staged, not committed (crc {staged.program_crc:08x}): the pump holds it for 10 min\n"
            "for any clinician's pumpctl review, pumpctl commit or pumpctl discard",
            {"staged": True, "program_crc": staged.program_crc, "lines": staged.lines, "warnings": staged.warnings},
        )
        return EXIT_OK
    if staged.warnings and not args.confirm_soft:
        if ours:
            pump.discard()
        if any(w.startswith("refill discrepancy") for w in staged.warnings):
            raise UsageError(
                "not committed: the refill discrepancy above needs checking; add --confirm-soft once a "
                "refill into the pocket is ruled out"
            )
        raise UsageError("soft limits passed: not committed (add --confirm-soft after checking them)")
    if not confirm(args, "commit this program?"):
        if ours:
            pump.discard()
        render.warn("not committed; the running program is unchanged" + ("" if ours else " (it stays staged)"))
        return EXIT_REFUSED
    before = before_commit() if before_commit else None
    at = pump.commit(staged, confirm_soft=args.confirm_soft)
    data = dict(data or {})
    data.update(committed_us=at, program_crc=staged.program_crc, lines=staged.lines, warnings=staged.warnings)
    if before:
        data["before_commit"] = before
    data["drug_limits"] = drug_limits
    if notes:
        data["notes"] = extra
    human = f"committed at pump time {quantities.duration(at)}; read back and identical (crc {staged.program_crc:08x})"
    if before:
        human = f"{before}\n{human}"
    kept = delivery_kept(staged.rows)
    if kept:
        human += f"\nthe {kept} already running or waiting goes on unchanged: no new dose was given"
        data["unchanged"] = kept
    emit(args, human, data, style=render.OK)
    return EXIT_OK


_UNKNOWN_DRUG = re.compile(r"^drug '(.+)' is not in library ")


def _with_a_near_name(pump: Pump, refused: PumpRefused) -> PumpRefused:
    """A refusal of a drug the library lacks, with the library's nearest name if one is near ("did
    you mean morphine?"): the names are read from the pump (the refusal's own list may be cut)."""
    m = _UNKNOWN_DRUG.match(refused.reason)
    if refused.field != "drug" or not m:
        return refused
    try:
        names = [entry[0] for entry in pump.library()[1]]
    except PumpError:  # the names could not be read: the pump's own refusal, as it came
        return refused
    near = difflib.get_close_matches(m.group(1).lower(), names, n=1, cutoff=0.6)
    if not near:
        return refused
    return PumpRefused(refused.code, refused.field, f"{refused.reason} - did you mean {near[0]}")


_DELIVERING = ("basal", "flex", "bolus", "prime", "patient-bolus")


def names_a_drug(lines: list[str]) -> bool:
    """Whether the drug library limits a program (its canonical lines, the blend kept in the
    reservoir included): True if it names a drug, or delivers nothing; False for a program that
    delivers with no drug named (drug none, or no drug line), a bare volume rate."""
    words = [ln.split() for ln in lines if ln.strip()]
    if any(w[0] == "drug" and len(w) > 1 and w[1] != "none" for w in words):
        return True
    return not any(w[0] in _DELIVERING for w in words)


def delivery_kept(rows: list[tuple[str, str]]) -> str | None:
    """The kind of bolus (bolus, prime, bridge) that a staged program's review shows as the
    running one going on unchanged, or None (the pump marks its row "..., unchanged")."""
    for line, detail in rows:
        word = line.split(" ", 1)[0]
        if word in DELIVERY_WORDS and detail.endswith(", unchanged"):
            return word
    return None


def _base_lines(pump: Pump) -> list[str]:
    """The running program's lines to build a new session on: without the lines that act
    once (client.running_lines) nor a refill's `removed`, which belongs to its fill. A bolus,
    prime or bridge still running or waiting stays: committed again, it goes on unchanged."""
    return [ln for ln in pump.running_lines() if ln.split(" ", 1)[0] != "removed"]


def _with_delivery(base: list[str], line: str) -> list[str]:
    """base with line in place of a bolus, prime or bridge line: the same line again is the
    running one going on unchanged; another is a new dose (refused while one runs)."""
    return [ln for ln in base if ln.split(" ", 1)[0] not in DELIVERY_WORDS] + [line]


def _read_lines(path: str) -> list[str]:
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}; check the path") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a text file of program lines (UTF-8, one line each)") from None
    return [ln.split("#", 1)[0].strip() for ln in text.splitlines() if ln.split("#", 1)[0].strip()]


def cmd_program(args) -> int:
    if args.rate is None:
        lines = list(args.lines) + (_read_lines(args.file) if args.file else [])
        if not lines:
            raise UsageError(
                'give program lines (for example "drug morphine 20 mg/mL" "basal 2 mg/day"), --file or --rate'
            )
        with Pump(port_of(args), timeout=args.timeout) as pump:
            return _session(args, pump, lines)
    if args.lines or args.file:
        raise UsageError("--rate is a plain volume rate on its own; do not combine it with program lines")
    nl_per_day, rounded = read_rate(args.rate)  # a rate that does not read is refused before anything
    if rounded:
        render.warn(f"{args.rate} is finer than the pump's 1 nL/day: {quantities.rate(nl_per_day)}, the smaller dose")
    # Staged, reviewed beside what runs, and committed like every therapy change: the basal line of
    # the rate, written exactly (quantities.rate), which the pump reads with the same parser.
    with Pump(port_of(args), timeout=args.timeout) as pump:
        return _session(args, pump, [f"basal {quantities.rate(nl_per_day)}"], data={"rate_nl_per_day": nl_per_day})


def cmd_bolus(args) -> int:
    line = f"bolus {args.dose} over {args.over}" + (f" after {args.after}" if args.after else "")
    with Pump(port_of(args), timeout=args.timeout) as pump:
        return _session(args, pump, _with_delivery(_base_lines(pump), line))


def cmd_prime(args) -> int:
    with Pump(port_of(args), timeout=args.timeout) as pump:
        base = _base_lines(pump)
        if not _doses(base):  # a stopped pump primes and stays stopped: the catheter filled before therapy starts
            base = ["stop"]
        return _session(args, pump, _with_delivery(base, f"prime {args.volume} over {args.over}"))


def _doses(lines: list[str]) -> bool:
    return any(ln.split(" ", 1)[0] in ("basal", "flex") for ln in lines)


def cmd_resume(args) -> int:
    with Pump(port_of(args), timeout=args.timeout) as pump:
        if _doses(_base_lines(pump)):
            raise UsageError("the pump runs a program: there is nothing to resume (pumpctl therapy shows it)")
        last = pump.last_lines()
        if not last:
            raise UsageError(
                "the pump keeps no stopped program (none ever dosed, or a program has run since): "
                "program one with pumpctl program"
            )
        return _session(args, pump, last)


def cmd_patient_bolus(args) -> int:
    with Pump(port_of(args), timeout=args.timeout) as pump:
        volume_nl, duration_s = pump.patient_bolus()
    emit(
        args,
        f"patient bolus started: {quantities.volume(volume_nl * 1000)} over {quantities.duration(duration_s * 10**6)}",
        {"volume_nl": volume_nl, "duration_s": duration_s},
        style=render.OK,
    )
    return EXIT_OK


def _program_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("lines", nargs="*", help="program lines, each quoted")
    s.add_argument(
        "--stage",
        action="store_true",
        help="stage and review only: the pump holds it for pumpctl review, commit or discard (a second check)",
    )
    s.add_argument("--file", help="read program lines from a file (# starts a comment)")
    s.add_argument(
        "--rate",
        help='no drug in the pump: a plain volume rate ("0.5 mL/day"), at once; no drug-library limit applies',
    )
    session_arguments(s)


PROGRAM = Command(
    "program",
    cmd_program,
    help="stage a program, review it beside the running one, commit",
    epilog=PROGRAM_EPILOG,
    arguments=_program_arguments,
)


def _bolus_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("dose", help='dose with unit: "0.5 mg", "200 mcg", "25 uL"')
    s.add_argument("--over", required=True, help='duration with unit: "30 min"')
    s.add_argument("--after", help='delay with unit: "2 h" (default now)')
    session_arguments(s)


BOLUS = Command(
    "bolus",
    cmd_bolus,
    help="a single bolus on top of the running program",
    epilog="""examples:
  pumpctl bolus "0.5 mg" --over "30 min"                  now, reviewed beside the running program
  pumpctl bolus "0.5 mg" --over "30 min" --after "2 h" --yes""",
    arguments=_bolus_arguments,
)


def _prime_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("volume", help='volume with unit: "0.2 mL"')
    s.add_argument("--over", required=True, help='duration with unit: "20 min"')
    session_arguments(s)


PRIME = Command(
    "prime",
    cmd_prime,
    help="priming bolus: fill catheter and tubing, then back to the program",
    epilog="""examples:
  pumpctl prime "0.2 mL" --over "20 min"
  pumpctl prime "0.2 mL" --over "20 min" --yes       commit without asking""",
    arguments=_prime_arguments,
)


PATIENT_BOLUS = Command(
    "patient-bolus",
    cmd_patient_bolus,
    help="ask for the patient bolus the program allows",
    epilog="""examples:
  pumpctl patient-bolus       the dose and lockout the program's patient-bolus line allows (patient key)""",
)


RESUME = Command(
    "resume",
    cmd_resume,
    help="run again the program a stop ended: staged, reviewed and checked like a new one",
    epilog="""examples:
  pumpctl resume              the last program that dosed (its drug, basal or flex, patient bolus,
                              trial and reservoir levels), reviewed beside the stopped pump
  pumpctl resume --yes        commit without asking

The pump keeps the last program that dosed when a stop replaces it (pumpctl stop, a stop
program, an empty reservoir, a fault), across restarts. A bolus, prime or bridge is not run
again, nor a refill's fill and removed lines. The pump checks it as any new program: against
the library, the dose guard's last 24 h, and the reservoir (after an empty reservoir, refill:
pumpctl refill runs the same program with the new fill).""",
    arguments=session_arguments,
)
