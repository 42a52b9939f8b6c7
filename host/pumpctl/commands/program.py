"""pumpctl program, bolus, prime, patient-bolus and refill: a program staged, reviewed beside the
running one, and committed on confirmation (the programming session)."""

from __future__ import annotations

import argparse
import difflib
import re

from .. import quantities, render
from ..client import DELIVERY_WORDS, NO_DRUG_LIMITS, Pump, read_rate
from ..errors import PumpError, PumpRefused, UsageError
from ..replies import program_lines
from .common import EXIT_OK, EXIT_REFUSED, Command, confirm, emit, port_of, session_arguments, volume_nl_arg

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


def review_rows(running: list[tuple[str, str]], staged: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(mark, running, staged) rows: the two programs aligned line by line, every field with its
    unit as the pump understood it; '*' marks a changed row, "! " starts a soft limit's."""
    import difflib

    def show(row):
        line, detail = row
        if line == "soft limit":
            return f"! {detail}"
        return f"{line}  [{detail}]" if line and detail else line or detail

    left = [show(r) for r in running]
    right = [show(r) for r in staged]
    out = []
    matcher = difflib.SequenceMatcher(a=[r[0] for r in running], b=[r[0] for r in staged], autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        for k in range(max(a1 - a0, b1 - b0)):
            a = left[a0 + k] if a0 + k < a1 else ""
            b = right[b0 + k] if b0 + k < b1 else ""
            out.append((" " if op == "equal" else "*", a, b))
    return out


PLAIN_WIDTH = 80  # plain text fits 80 columns (a terminal's rich view fits its own width)


def side_by_side(running: list[tuple[str, str]], staged: list[tuple[str, str]]) -> str:
    """The running and the staged program next to each other (review_rows) as plain text; one above
    the other when side by side would pass PLAIN_WIDTH columns, each row wrapped to fit."""
    rows = review_rows(running, staged)
    width = max([len("running"), *(len(a) for _, a, _ in rows)]) + 2
    out = [f"  {'running':<{width}}staged", f"  {'-' * (width - 2):<{width}}{'-' * 6}"]
    out += [f"{mark} {a:<{width}}{b}".rstrip() for mark, a, b in rows]
    if max(len(line) for line in out) <= PLAIN_WIDTH:
        return "\n".join(out)
    import textwrap

    def block(title: str, cells: list[tuple[str, str]]) -> list[str]:
        lines = [title]
        for mark, text in cells:
            lines += textwrap.wrap(text, PLAIN_WIDTH, initial_indent=f"{mark} ", subsequent_indent="    ") or [mark]
        return lines

    running_rows = [(mark, a) for mark, a, _ in rows if a]
    staged_rows = [(mark, b) for mark, _, b in rows if b]
    return "\n".join(block("  running", running_rows) + block("  staged (* a row that changes)", staged_rows))


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
        render.show(side_by_side(running, staged.rows), lambda: render.review(review_rows(running, staged.rows)))
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


REFILL_EPILOG = """examples:
  pumpctl refill --removed "1.8 mL" --fill "20 mL"
  pumpctl refill --removed "1.8 mL" --fill "20 mL" --drug "morphine 10 mg/mL" --bridge "0.25 mL"
  pumpctl refill --removed "0.9 mL" --fill "20 mL" --basal "4 mg/day"    with a new basal

The refill program is the running program's lines (on a stopped pump, the last
program that dosed, which the pump keeps: pumpctl resume) with the fill, the volume
removed and (with --drug) the drug lines replaced. The pump compares the volume
removed with what it counted was left: if they part by more than 1 mL per 20 mL
of reservoir, the review shows a "refill discrepancy" warning (was the drug
injected into the pocket?) and committing needs --confirm-soft. It is staged
and reviewed beside the running program, and committed only with --yes or a y
at the prompt.

A new concentration leaves the old solution in the catheter: give --bridge with
the catheter's and path's volume, and the pump delivers it at the old dose first.
"""


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


_BASAL_WORDS = ("basal", "flex", "stop")


BRIDGE_NOTE = (
    "bridge bolus offered: the concentration changed ({old} -> {new}).\n"
    "  The catheter and the pump's path still hold the old solution; the new program would push\n"
    "  it out at the rate worked out for the new concentration, a different dose until the path\n"
    "  is flushed. Run again with --bridge VOLUME, the volume of the catheter and the path (for\n"
    '  example --bridge "0.25 mL"): the pump delivers that volume at the old dose first.'
)


DISCREPANCY_NOTE = (
    "refill discrepancy: the volume removed is not what the pump counted was left. Before going on,\n"
    "  check for a refill into the pocket (drug injected into the tissue, not the reservoir):\n"
    "  watch the patient; commit only once that is ruled out (--confirm-soft)."
)


def _drug_lines(lines: list[str]) -> dict[str, str]:
    """{drug name: its line} of the drug lines among canonical program lines."""
    out = {}
    for ln in lines:
        words = ln.split()
        if len(words) >= 3 and words[0] == "drug":
            out[words[1]] = " ".join(words[2:])
    return out


def refill_lines(base: list[str], fill: str, removed: str, drugs: list[str], basal: str | None, bridge: str | None):
    """A refill program: the running program's lines (base, without the one-off lines) with its
    drug lines replaced by drugs (if any), the basal by basal (if given), and fill, removed and
    bridge lines added."""
    keep_drugs = not drugs
    out = [ln for ln in base if ln.split(" ", 1)[0] == "drug"] if keep_drugs else [f"drug {d}" for d in drugs]
    out += [f"fill {fill}", f"removed {removed}"]
    for ln in base:
        word = ln.split(" ", 1)[0]
        if word == "drug" or (basal is not None and word in _BASAL_WORDS) or (bridge is not None and word == "bridge"):
            continue
        out.append(ln)
    if basal is not None:
        out.append(f"basal {basal}")
    if bridge is not None:
        out.append(f"bridge {bridge}")
    return out


def _doses(lines: list[str]) -> bool:
    return any(ln.split(" ", 1)[0] in ("basal", "flex") for ln in lines)


def cmd_refill(args) -> int:
    with Pump(port_of(args), timeout=args.timeout) as pump:
        running = pump.review()
        base = _base_lines(pump)
        if not _doses(base):
            # Stopped (by a stop, an empty reservoir, a fault): the refill runs the last program again, which
            # the pump kept (its drug lines replaced by --drug, its basal by --basal), through the same checks.
            base = pump.last_lines() or base
        if not any(ln.split(" ", 1)[0] in _BASAL_WORDS for ln in base) and args.basal is None:
            raise UsageError(
                "the pump runs no program and keeps none it stopped: give the basal "
                'with --basal (for example --basal "2 mg/day"), or program it with pumpctl program'
            )
        lines = refill_lines(base, args.fill, args.removed, args.drug or [], args.basal, args.bridge)

        def notes(running_rows, staged):
            out = []
            old = _drug_lines(program_lines(running_rows))
            new = _drug_lines(staged.lines)
            if any(w.startswith("refill discrepancy") for w in staged.warnings):
                out.append(DISCREPANCY_NOTE)
            changed = [(n, old[n], new[n]) for n in new if n in old and old[n] != new[n]]
            if changed and args.bridge is None:
                n, a, b = changed[0]
                out.append(BRIDGE_NOTE.format(old=f"{n} {a}", new=f"{n} {b}"))
            elif args.drug and not old and args.bridge is None:
                out.append(
                    "the running program does not say which drug the path holds: if this refill changes the "
                    "concentration, a bridge bolus is offered (--bridge VOLUME, the catheter's and path's volume)"
                )
            return out

        def fill_a_simulator():
            """On a simulator, the clinician's hands: its reservoir now holds the fill (FAULT_FILL)."""
            if pump.hello().board != "sim":
                return None
            pump.sim_fault("fill", 0, volume_nl_arg("--fill", args.fill))
            return (
                f"simulator: its reservoir filled to {args.fill}, as a clinician fills a real one "
                "(its sensor reads it at the pump's next monitor turn, within a minute of pump time)"
            )

        return _session(args, pump, lines, notes=notes, running=running, before_commit=fill_a_simulator)


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


def _refill_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--removed", required=True, metavar="VOLUME", help='volume drawn out of the reservoir before filling: "1.8 mL"'
    )
    s.add_argument("--fill", required=True, metavar="VOLUME", help='volume the reservoir now holds: "20 mL"')
    s.add_argument(
        "--drug",
        action="append",
        metavar="DRUG",
        help='the new solution, "morphine 10 mg/mL" (repeat for a blend; default: the same as before)',
    )
    s.add_argument("--basal", metavar="DOSE/TIME", help='a new basal: "2 mg/day" (default: the running program\'s)')
    s.add_argument(
        "--bridge", metavar="VOLUME", help='after a concentration change: the catheter and path volume, "0.25 mL"'
    )
    session_arguments(s)


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


REFILL = Command(
    "refill",
    cmd_refill,
    help="refill the reservoir: the running program with a new fill (and drug), checked against the count",
    epilog=REFILL_EPILOG,
    arguments=_refill_arguments,
)
