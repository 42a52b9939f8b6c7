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
# Memory: a family's code is on the heap only while it is used. The boot reads
# which family serves which code from _ROUTES, without importing any. A family
# is imported when one of its commands arrives and stays until a command of
# another family does: the heap holds at most one of them (with the families it
# imports, its USES: commit.py imports program.py's checks). The reads and the
# sessions are families like the others (they were kept loaded once: 1.9 KB
# more at a programming session's peak, for a load of about 1 KB of code now
# and then at a HELLO, a STATUS or a session's start).
# Adding a command: its wire definition (codec.py: its constant and its record in
# MESSAGES), a row and a handler in its family, its code in _ROUTES, its pumpctl
# command; nothing else.
# The host derives the rest: the command's name from the constant's (pumpctl.words),
# its section in docs/protocol.md from the record and the comment right above the
# handler (what it does, each field's meaning, refusals: tests/protocol_messages.py;
# a comment costs the pump nothing, where a docstring costs a byte of line table;
# regenerate the page with tests/protocol_examples.py --write). Adding a family: its
# module, its name below and its line in _ROUTES.

import sys

from firmware import codec, const
from firmware.lazy import drop, forget

SAVES = const(1)
STAGED_TTL_US = 600_000_000  # an uncommitted program or library is dropped after 10 min (GIP 2.2.5)
# Every board's (the sim adds "sim"). A command that does not need a family's code has its own: a
# rate, a patient's bolus and a stop load no programming code.
FAMILIES = ("status", "session", "program", "commit", "rate", "patient", "stop", "alarms", "library", "service", "keys")
_PACKAGE = const("firmware.commands.")
_CODES = const(0x80)  # request codes are 0x01..0x7F (codec: a reply's code has 0x80 set)
_SAVES_BIT = const(0x80)
# Each family's request codes, in the order of FAMILIES and then "sim" (which the sim board adds): a
# count, then that many codes, a code | _SAVES_BIT where the command saves. The same codes and flags as
# the rows of the family's COMMANDS (tests/firmware/test_command_routes.py). One bytes constant (in flash
# on a board with ROMFS): the boot routes every command without importing a family, whose code (and
# interned names) then comes only with its first command: 23 KB less garbage at a boot, 19 KB at a restart.
_ROUTES = const(
    b"\x04\x01\x02\x30\x31"  # status: HELLO, STATUS, EVENT, TELEMETRY
    b"\x03\x08\x09\x0a"  # session: AUTH_BEGIN, AUTH_PROVE, AUTH_END
    b"\x02\x20\x21"  # program: STAGE_ITEM, STAGE
    b"\x03\x22\xa3\x24"  # commit: REVIEW, COMMIT (saves), DISCARD
    b"\x01\x90"  # rate: SET_RATE (saves)
    b"\x01\xa5"  # patient: PATIENT_BOLUS (saves)
    b"\x01\x91"  # stop: STOP (saves)
    b"\x05\x03\x32\x93\x15\x18"  # alarms: THERAPY, ALARMS, ACK_ALARM (saves), SILENCE, TONE_TEST
    b"\x04\x28\x2b\xa9\x2a"  # library: LIB_DRUG, LIB_STAGE, LIB_COMMIT (saves), LIB_GET
    b"\x04\x94\x92\x17\x96"  # service: SERVICE (saves), CLOCK_SET (saves), CAL_WEIGHING, CALIBRATE (saves)
    b"\x01\x8b"  # keys: KEY_CHANGE (saves)
    b"\x04\x60\x61\xe2\x63"  # sim: SIM_ADVANCE, SIM_STATE, SIM_FAULT (saves), SIM_FAULTS
)


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
        self._loaded = None  # the name of the family loaded, or None
        self._module = None  # and its module
        for f in range(len(families)):
            name = families[f]
            at = _routes_of(name)
            for i in range(at + 1, at + 1 + _ROUTES[at]):
                code = _ROUTES[i]
                self._index[code & ~_SAVES_BIT] = f + 1 | code & _SAVES_BIT

    def get(self, code):
        """Command code's handler(values), or None if this board serves no such command."""
        entry = self._index[code] if 0 <= code < _CODES else 0
        if not entry:
            return None
        if code != codec.STAGE_ITEM and code != codec.STAGE:
            self._pump.staging.release_checks()  # a session's other commands run without them
        name = self._families[(entry & ~_SAVES_BIT) - 1]
        saves = entry & _SAVES_BIT
        if name != self._loaded:  # not in memory: it takes the place of the one that is
            if self._loaded is not None:
                uses = getattr(self._module, "USES", ())  # the families it imported go with it
                self._module = None
                _forget(self._loaded)
                self._loaded = None
                for f in uses:
                    if f != name:
                        _forget(f)
            self._module = _load(name)
            self._loaded = name
        module = self._module
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


def _routes_of(name):
    """Where family `name`'s line starts in _ROUTES (its count); ValueError for no such family."""
    if name == "sim":
        number = len(FAMILIES)
    else:
        number = FAMILIES.index(name)
    at = 0
    for _ in range(number):
        at += 1 + _ROUTES[at]
    return at


def _load(name):
    __import__(_PACKAGE + name)
    return sys.modules[_PACKAGE + name]


def _forget(name):
    """Drop a family's module, so its code can be collected (imported again when needed)."""
    drop(_PACKAGE + name)
