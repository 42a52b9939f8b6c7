# The commands the pump serves, by family: one module here per family, each
# listing its commands in COMMANDS, one row per command:
#
#     (code, handler, saves)
#
#   code     the message code (codec.*); its fields, and the role it needs
#            (codec.role_needed), are its wire definition in codec.py, which
#            the host reads too
#   handler  handler(pump, values) -> the reply's values; it checks everything
#            before it changes anything and raises Refusal to refuse
#   saves    SAVES if the command changes what a restart must know: the pump
#            saves after it succeeds (a refused command changed nothing)
#
# Memory: a family's code is on the heap only while it is used. At boot each
# family is imported once to read its rows, then forgotten unless it is
# _RESIDENT (the reads and the sessions, served all the time). Afterwards a
# family is imported when one of its commands arrives and stays until a
# command of another family does: the heap holds at most one of them.
# Adding a command: its wire definition (codec.py: its constant and its record in
# MESSAGES), a row and a handler in its family, its pumpctl command; nothing else.
# The host derives the rest: the command's name from the constant's (pumpctl.words),
# its section in docs/protocol.md from the record and the comment right above the
# handler (what it does, each field's meaning, refusals: tests/protocol_messages.py;
# a comment costs the pump nothing, where a docstring costs a byte of line table;
# regenerate the page with tests/protocol_examples.py --write). Adding a family: its
# module and its name below.

import sys

from firmware import codec, const
from firmware.lazy import forget

SAVES = const(1)
STAGED_TTL_US = 600_000_000  # an uncommitted program or library is dropped after 10 min (GIP 2.2.5)
# Every board's (the sim adds "sim"). A command that does not need a family's code has its own: a
# rate, a patient's bolus and a stop load no programming code.
FAMILIES = ("status", "session", "program", "rate", "patient", "stop", "alarms", "library", "service", "keys")
_RESIDENT = const(("status", "session"))
_PACKAGE = const("firmware.commands.")
_CODES = const(0x80)  # request codes are 0x01..0x7F (codec: a reply's code has 0x80 set)
_SAVES_BIT = const(0x80)


class Staging:
    """What a session staged, kept between its commands (their families come and go). When it
    ends, its drafts go (program lines not yet checked, library drugs, weighings); a checked
    program (STAGE) stays until it expires, is discarded, replaced or committed, so that another
    session (pumpctl review, commit, discard: another run, or a second clinician's check) can
    review and commit it: COMMIT needs the clinician key and the CRC of what was reviewed, and
    checks the program again against the pump as it is then."""

    def __init__(self):
        self.items = []  # STAGE_ITEM: the program's items so far (program_items.py), each a tuple of its numbers
        self.program = None  # STAGE: (Program, crc, expires pump us, refill text, delivery note, delivery verdict)
        self.dropped = ""  # why the last staged program was dropped, for COMMIT's refusal
        self.lib_drugs: list | None = None  # LIB_DRUG: the staged drugs (DrugLimits or None, by number), for LIB_STAGE
        self.library = None  # LIB_STAGE: (Library, fields changed, hard limits raised, expires pump us, what it read)
        self.weighings = []  # CAL_WEIGHING: (from_steps, to_steps, mass_ug), for CALIBRATE
        self.cal_shown = None  # (weighings, density) whose result CALIBRATE last showed (checked or refused)
        # The program's checks a STAGE_ITEM loaded for STAGE (commands/program.py _load_checks): which of
        # lazy.TRANSIENT were loaded before them (lazy.loaded()), or None while none are held.
        self.checks = None

    def release_checks(self):
        """Forget the program's checks a STAGE_ITEM loaded: after STAGE, at any other command, at the
        end of the session. Their code is on the heap only while a program is being staged."""
        if self.checks is not None:
            before = self.checks
            self.checks = None
            forget(before)

    def drop(self, why):
        """The session ended: its drafts go (why: for COMMIT's refusal); a checked program stays."""
        self.release_checks()
        if self.items and self.program is None:
            self.dropped = why
        self.items = []
        self.lib_drugs = None
        self.library = None


class Commands:
    """The link's handlers (get(code) -> handler(values)), each family imported when needed."""

    def __init__(self, pump, families, saving):
        """pump: what the handlers act on; saving: the board keeps its state (SAVES rows save)."""
        self._pump = pump
        self._saving = saving
        self._families = families
        # Byte `code` (a request's code is below 0x80, codec.REPLY): 0 if no family serves it, else
        # the family's number in families plus 1, with _SAVES_BIT if the command saves. A dict of
        # tuples took 0.8 KB for the whole life of the pump; this takes 0.1 KB.
        self._index = bytearray(_CODES)
        self._modules = {}  # family name -> module, of the resident ones and the one loaded
        self._loaded = None  # the name of the family loaded beside the resident ones
        for f in range(len(families)):
            name = families[f]
            module = _load(name)
            for row in module.COMMANDS:
                self._index[row[0]] = f + 1 | (_SAVES_BIT if row[2] else 0)
            if name in _RESIDENT:
                self._modules[name] = module
            else:
                _forget(name)

    def get(self, code):
        """Command code's handler(values), or None if this board serves no such command."""
        entry = self._index[code] if 0 <= code < _CODES else 0
        if not entry:
            return None
        if code != codec.STAGE_ITEM and code != codec.STAGE:
            self._pump.staging.release_checks()  # a session's other commands run without them
        name = self._families[(entry & ~_SAVES_BIT) - 1]
        saves = entry & _SAVES_BIT
        module = self._modules.get(name)
        if module is None:  # not in memory: it takes the place of the one that is
            if self._loaded is not None:
                del self._modules[self._loaded]
                _forget(self._loaded)
                self._loaded = None
            module = self._modules[name] = _load(name)
            self._loaded = name
        handler = None
        for row in module.COMMANDS:
            if row[0] == code:
                handler = row[1]
        pump = self._pump
        if saves and self._saving:

            def run_and_save(values):
                reply = handler(pump, values)
                pump.save()
                return reply

            return run_and_save
        return lambda values: handler(pump, values)


def _load(name):
    __import__(_PACKAGE + name)
    return sys.modules[_PACKAGE + name]


def _forget(name):
    """Drop a family's module, so its code can be collected (imported again when needed)."""
    sys.modules.pop(_PACKAGE + name, None)
    globals().pop(name, None)  # the package's attribute the import set
