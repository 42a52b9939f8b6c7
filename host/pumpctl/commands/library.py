"""pumpctl library: show the drug library, or load a site's library (staged, reviewed, committed)."""

from __future__ import annotations

import argparse
import json
import re

from .. import render
from ..client import Pump
from ..errors import PumpRefused, UsageError
from ..library_file import LibraryTextError
from .common import EXIT_OK, EXIT_REFUSED, Command, confirm, emit, port_of


def _read_library(args, pump: Pump):
    """pump.library(), with a bar on a terminal: one request per drug."""
    with render.progress("reading the drug library", lambda d, t: f"{d}/{t} drugs", not args.json) as bar:
        return pump.library(progress=bar)


def library_changes(old: list, new: list) -> list[dict]:
    """The rows of a library review from the two libraries as the pump holds them
    (Pump.library_fields): each changed field of the staged library beside the one in
    force, then each drug the staged library drops."""
    in_force = {(f.drug, f.field): f.text for f in old}
    used = {f.drug for f in old if f.in_use}
    rows = []
    for f in new:
        if f.changed and f.field != "name":
            rows.append(
                {
                    "drug": f.drug,
                    "field": f.field,
                    "in_force": in_force.get((f.drug, f.field)),
                    "new": f.text,
                    "hard_limit_raised": f.raised,
                    "running_program": f.in_use,
                }
            )
    kept = {f.drug for f in new}
    for name in dict.fromkeys(f.drug for f in old):
        if name not in kept:
            rows.append(
                {
                    "drug": name,
                    "field": "(drug removed)",
                    "in_force": "",
                    "new": None,
                    "hard_limit_raised": False,
                    "running_program": name in used,
                }
            )
    return rows


def _library_table(rows: list[dict]) -> str:
    head = ("drug", "field", "in force", "new", "")
    cells = [head]
    for r in rows:
        mark = []
        if r["hard_limit_raised"]:
            mark.append("HARD LIMIT RAISED")
        if r["running_program"]:
            mark.append("affects the running program")
        cells.append(
            (
                r["drug"],
                r["field"],
                "-" if r["in_force"] is None else r["in_force"],
                "-" if r["new"] is None else r["new"],
                "; ".join(mark),
            )
        )
    widths = [max(len(c[k]) for c in cells) for k in range(4)]
    return "\n".join(
        "  " + "  ".join(c[k].ljust(widths[k]) for k in range(4)) + ("  " + c[4] if c[4] else "") for c in cells
    ).rstrip()


def _refused_by_library(pump: Pump, e: PumpRefused) -> PumpRefused:
    """A library refused at staging because of the running therapy: say which program line (a refusal
    of the pump's: exit 1, nothing changed)."""
    what = e.field[len("running ") :]
    named = _lines_named(pump.running_lines(), what, e.reason)
    text = f"library refused: the running program would not be valid under it ({what}): {e.reason}"
    if named:
        text += "\n  the running program's line: " + "; ".join(named)
    text += "\n  change the running program first (pumpctl program), then load the library again"
    return PumpRefused(e.code, "", text)


def _lines_named(lines: list[str], field: str, message: str) -> list[str]:
    """The program lines a refusal (its field and message) is about: the lines its field
    names (a daily dose: every dosing line), and the drug lines of the drugs it names."""
    keys = set(field.split())
    if "daily" in keys:
        keys |= {"basal", "flex", "bolus", "patient-bolus", "prime"}
    said = set(re.findall(r"[a-z0-9-]+", f"{field} {message}"))
    out = []
    for ln in lines:
        word, _, rest = ln.partition(" ")
        if word == "drug" and rest.split(" ", 1)[0] in said or word != "drug" and word in keys:
            out.append(ln)
    return out


def _load_library(args, pump: Pump, version: str, entries: list[list[str]]) -> int:
    """Stage the library, show each changed limit beside the one in force, commit on confirmation
    (and with --confirm-raise when a hard limit is raised), as a program session does."""
    th = pump.therapy()
    _v, old = pump.library_fields()
    try:
        with render.progress("sending the drug library", lambda d, t: f"{d}/{t} drugs", not args.json) as bar:
            staged = pump.stage_library(version, entries, progress=bar)
    except LibraryTextError as e:
        raise UsageError(f"{args.file}: {e.message}; nothing was sent to the pump") from None
    except PumpRefused as e:
        if e.field.startswith("running "):
            raise _refused_by_library(pump, e) from None
        raise
    _v, new = pump.library_fields(staged=True)
    rows = library_changes(old, new)
    data = {
        "version": staged.version,
        "library_hash": staged.library_hash,
        "in_force": {"version": th.library, "library_hash": th.library_hash},
        "changed": staged.changed,
        "raised": staged.raised,
        "changes": rows,
        "committed": False,
    }
    if not args.json:
        render.show(
            f"library {staged.version} (hash {staged.library_hash:08x}) beside the one in force: "
            f"{staged.changed} field(s) changed, {staged.raised} hard limit(s) raised\n" + _library_table(rows)
        )
        if staged.raised:
            render.warn(f"{staged.raised} hard limit(s) raised; committing needs --confirm-raise")
    if staged.raised and not args.confirm_raise:
        if args.json:
            print(json.dumps(data, indent=2))
        raise UsageError("hard limits raised: not committed (add --confirm-raise after checking them)")
    if not confirm(args, "commit this library?", _LIBRARY_NOT_COMMITTED):
        render.warn("not committed; the library in force is unchanged")
        if args.json:
            print(json.dumps(data, indent=2))
        return EXIT_REFUSED
    pump.commit_library(staged, confirm_raise=args.confirm_raise)
    data["committed"] = True
    emit(
        args,
        f"library {staged.version} committed; read back and identical (hash {staged.library_hash:08x})",
        data,
        style=render.OK,
    )
    return EXIT_OK


_LIBRARY_NOT_COMMITTED = "not committed: review the library above, then run again with --yes to commit it"


def cmd_library(args) -> int:
    from ..library_file import LIBRARY_FIELDS

    with Pump(port_of(args), timeout=args.timeout) as pump:
        if args.action == "load":
            if not args.file:
                raise UsageError("library load needs a FILE (see docs/drug-library.md)")
            try:
                doc = json.load(open(args.file, encoding="utf-8"))
                entries = [[str(d[f]) for f in LIBRARY_FIELDS] for d in doc["drugs"]]
                version = str(doc["version"])
            except OSError as e:
                raise UsageError(f"cannot read {args.file}: {e.strerror}; check the path") from None
            except json.JSONDecodeError as e:
                raise UsageError(
                    f"{args.file} is not JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                    "a library file is JSON (the format: docs/drug-library.md)"
                ) from None
            except (ValueError, KeyError, TypeError) as e:
                raise UsageError(
                    f"{args.file} is not a drug library file: missing or bad {e} (the format: docs/drug-library.md)"
                ) from None
            return _load_library(args, pump, version, entries)
        version, entries = _read_library(args, pump)
        library_hash = pump.therapy().library_hash
    sources = factory_sources(version, library_hash)
    drugs = [dict(zip(LIBRARY_FIELDS, e, strict=True)) for e in entries]
    for d in drugs:
        if d["name"] in sources:
            d["source"] = sources[d["name"]]
    emit(
        args,
        library_text(version, library_hash, entries, sources),
        {"version": version, "library_hash": library_hash, "drugs": drugs},
        rich=lambda: render.library(version, entries),
    )
    return EXIT_OK


def factory_sources(version: str, library_hash: int) -> dict[str, str]:
    """The source notes of the factory library's drugs, if the pump holds that library (its version and
    content hash): the pump keeps numbers only, so its words are the host's (firmware/druglib.py's table)."""
    from firmware import druglib

    if version != druglib.DEFAULT_LIBRARY_VERSION or library_hash != druglib.DEFAULT_LIBRARY_HASH:
        return {}
    return {entry[0]: entry[-1] for entry in druglib.DEFAULT_LIBRARY}


def library_text(version: str, library_hash: int, entries: list[list[str]], sources: dict[str, str]) -> str:
    """The library as plain text within 80 columns: a block per drug, each limit on its own line under
    a soft and a hard column, the patient bolus spelled out, and its source where the host knows it."""
    import textwrap

    out = [f"drug library {version} (hash {library_hash:08x})", f"{'':<22}{'soft':<16}hard"]
    for e in entries:
        out.append(f"{e[0]:<22}concentration at most {e[1]}")
        for what, soft, hard in (("daily dose", e[2], e[3]), ("rate", e[4], e[5]), ("bolus", e[6], e[7])):
            if soft.split()[0] == hard.split()[0] == "0":
                out.append(f"  {what:<20}none allowed")  # ziconotide: no bolus at all
            else:
                out.append(f"  {what:<20}{soft:<16}{hard}")
        if e[10] != "0":
            out.append(f"  {'patient bolus':<20}{e[8]} at most, lockout {e[9]}, at most {e[10]} a day")
        else:
            out.append(f"  {'patient bolus':<20}none allowed")
        if e[0] in sources:
            out += textwrap.wrap(sources[e[0]], 80, initial_indent=f"  {'source':<20}", subsequent_indent=" " * 22)
    return "\n".join(out)


def _library_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("action", choices=["show", "load"], nargs="?", default="show")
    s.add_argument("file", nargs="?", help="JSON library file, for load")
    s.add_argument("--yes", action="store_true", help="commit without asking (after reviewing)")
    s.add_argument("--confirm-raise", action="store_true", help="confirm hard limits raised (loosened)")


LIBRARY = Command(
    "library",
    cmd_library,
    help="show the drug library, or load a site's library",
    epilog="""examples:
  pumpctl library                              the library in force: limits per drug
  pumpctl library load site-library.json       stage it, review each changed limit beside the one
                                               in force, commit on confirmation (format:
                                               docs/drug-library.md)
  pumpctl library load site.json --yes --confirm-raise
                                               commit without asking, and with hard limits raised

The library must carry a new version. A raised hard limit (a higher limit, a shorter lockout, a
new drug) needs --confirm-raise. A library under which the running program would be refused is
not staged: change the program first.""",
    arguments=_library_arguments,
)
