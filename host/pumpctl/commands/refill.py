"""pumpctl refill: the running program (or the last one that dosed) with a new fill, the volume
removed and, with --drug, a new solution, staged, reviewed beside the running one and committed on
confirmation through the programming session (program.py), with the notes a refill needs: a
volume removed that is not what the pump counted, a concentration change that needs a bridge."""

from __future__ import annotations

import argparse

from ..client import Pump
from ..errors import UsageError
from ..replies import program_lines
from .common import Command, port_of, session_arguments, volume_nl_arg
from .program import _base_lines, _doses, _session

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


REFILL = Command(
    "refill",
    cmd_refill,
    help="refill the reservoir: the running program with a new fill (and drug), checked against the count",
    epilog=REFILL_EPILOG,
    arguments=_refill_arguments,
)
