"""The Pump's drug-library commands: read the library in force or the staged one field by
field, stage a site's library beside the one in force, commit it (LIB_GET, LIB_DRUG,
LIB_STAGE, LIB_COMMIT). A site's texts become the pump's numbers in library_file.py."""

from __future__ import annotations

from typing import Callable

from firmware import codec, framing

from . import library_file
from .errors import PumpRefused
from .replies import LibraryField, StagedLibrary
from .session import PumpSession, _one_at_a_time

LIBRARY_FIELDS = library_file.LIBRARY_FIELDS


class LibraryCommands(PumpSession):
    """The drug library's commands of a Pump (client.py)."""

    @_one_at_a_time
    def library(self, progress: Callable[[int, int], None] | None = None) -> tuple[str, list[list[str]]]:
        """The drug library in force: (version, entries of 11 texts, LIBRARY_FIELDS order, as
        library_file writes the pump's numbers). progress(done, total) after each request (one per drug)."""
        version, fields = self.library_fields(staged=False, progress=progress)
        return version, _entries(fields)

    @_one_at_a_time
    def library_fields(
        self, staged: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> tuple[str, list[LibraryField]]:
        """The library in force (or the staged one) field by field, with what the pump says
        of each: changed, a hard limit raised (staged only), its drug in use."""
        which = codec.LIB_STAGED if staged else codec.LIB_IN_FORCE
        out = []
        version, n, d = "", 1, 0
        while d < n:
            reply = self._request(codec.LIB_GET, (d, which))
            version, n, name = reply[0], reply[1], reply[2]
            changed, raised, in_use = reply[-3:]
            texts = library_file.entry_texts(name, reply[3:-3])
            for f, field in enumerate(LIBRARY_FIELDS):
                out.append(
                    LibraryField(name, field, texts[f], bool(changed >> f & 1), bool(raised >> f & 1), bool(in_use))
                )
            d += 1
            if progress:
                progress(d, n)
        return version, out

    @_one_at_a_time
    def stage_library(
        self, version: str, entries: list[list[str]], progress: Callable[[int, int], None] | None = None
    ) -> StagedLibrary:
        """Send a library and have the pump check it beside the one in force (the first step);
        the library in force is unchanged. entries: each drug's texts as a site's file gives them
        (LIBRARY_FIELDS order, a source after them allowed), read here into the numbers the pump
        takes (library_file; a text that is no quantity of its kind raises LibraryTextError before
        anything is sent). progress(done, total) after each request.
        Raises PumpRefused: the library's own refusal, a version not new, or (field
        "running ...") the running therapy that the new library would refuse."""
        drugs = [library_file.parse_entry(fields) for fields in entries]
        total = len(drugs) + 1
        for d, (name, numbers) in enumerate(drugs):
            self._request(codec.LIB_DRUG, (d, name, *numbers))
            if progress:
                progress(d + 1, total)
        h, n, changed, raised, expires = self._request(codec.LIB_STAGE, (version, len(drugs)))
        if progress:
            progress(total, total)
        if h != framing.library_hash(drugs):
            raise PumpRefused(
                codec.ERR_INTERNAL,
                "library_hash",
                f"the pump holds library hash {h:08x}, not the {framing.library_hash(drugs):08x} sent",
            )
        return StagedLibrary(version, h, n, changed, raised, expires)

    @_one_at_a_time
    def commit_library(self, staged: StagedLibrary, confirm_raise: bool = False) -> None:
        """Put the staged library in force (the second step); read back its hash and version."""
        version, _n, h = self._request(codec.LIB_COMMIT, (staged.library_hash, 1 if confirm_raise else 0))
        th = self.therapy()
        if (version, h, th.library, th.library_hash) != (staged.version, staged.library_hash) * 2:
            raise PumpRefused(
                codec.ERR_INTERNAL,
                "library",
                f"read-back {th.library} {th.library_hash:08x} is not the library staged "
                f"({staged.version} {staged.library_hash:08x})",
            )

    @_one_at_a_time
    def load_library(
        self,
        version: str,
        entries: list[list[str]],
        progress: Callable[[int, int], None] | None = None,
        confirm_raise: bool = False,
    ) -> StagedLibrary:
        """Stage, then commit, a library in one call (scripts; people should review first)."""
        staged = self.stage_library(version, entries, progress)
        self.commit_library(staged, confirm_raise)
        return staged


def _entries(fields: list[LibraryField]) -> list[list[str]]:
    """LibraryField rows back into entries of their texts (LIBRARY_FIELDS order)."""
    n = len(LIBRARY_FIELDS)
    return [[f.text for f in fields[i : i + n]] for i in range(0, len(fields), n)]
