"""The words the pump leaves to the host: display names of the wire's codes, and the
rendering of the pump's own texts, and the codes of the names a user types (alarm_code, fault_code).

The pump owns numbers, the host owns words (DESIGN.md): every byte of text in the
firmware costs RAM on a board with 229 KB of heap, and nothing here. The codes are
the wire's (firmware/codec.py, the one definition both sides import); their names
live here, on the host only (the commands' are the codec constants' names, read from
its source), and docs/protocol.md lists both (tests/tree/test_protocol_doc.py checks the
page against these tables).

Where a pump text names a code (a refusal, an event log entry, an alarm's cause), the
pump writes a token of one letter and the code's number in braces, "{a7}", and the
host renders it with render(): "{a7}" is the alarm 7's name, "sensor fault". Every
text pumpctl shows or returns from the pump passes through render() (errors.PumpRefused,
client.Pump's events, alarms and review rows), so a user reads the same sentence as
before. A code the host has no name for is shown as its number ("alarm 99").
"""

import re

from firmware import codec

from . import formats, quantities
from .library_file import mass_rate


# The message types by the codec's constant names ({code: "SILENCE"}), read from its "Message types"
# block: CPython sees the constants, while the pump keeps only their numbers (issue 21).
def _message_constants() -> dict[int, str]:
    from pathlib import Path

    text = Path(codec.__file__).read_text(encoding="utf-8")
    block = text[text.index("# Message types.") : text.index("\nREPLY = ")]
    return {getattr(codec, n): n for n in re.findall(r"^([A-Z][A-Z0-9_]+) = const\(", block, re.M)}


MESSAGE_NAMES = _message_constants()

# Command names (message types), as pumpctl and docs/protocol.md name them: the constant's name in
# lower case with dashes (codec.SILENCE: "silence"); ERROR and TELEMETRY_DATA are no commands.
COMMAND_NAMES = {
    code: name.lower().replace("_", "-")
    for code, name in MESSAGE_NAMES.items()
    if code not in (codec.ERROR, codec.TELEMETRY_DATA)
}

# Error codes carried by ERROR.
ERROR_NAMES = {
    codec.ERR_BAD_FRAME: "bad frame",
    codec.ERR_TOO_LONG: "frame too long",
    codec.ERR_BAD_VERSION: "bad protocol version",
    codec.ERR_UNKNOWN_COMMAND: "unknown command",
    codec.ERR_MALFORMED: "malformed",
    codec.ERR_BAD_VALUE: "bad value",
    codec.ERR_NOT_SUPPORTED: "not supported",
    codec.ERR_INTERNAL: "internal error",
    codec.ERR_NEED_KEY: "needs a key",
    codec.ERR_AUTH: "authentication failed",
    codec.ERR_NO_SESSION: "no session",
    codec.ERR_LOCKED: "locked out",
    codec.ERR_NO_KEYS: "no keys",
    codec.ERR_NOT_STARTED: "firmware not started",
}

# Mode codes in STATUS, THERAPY and telemetry.
MODE_NAMES = {codec.MODE_STOPPED: "stopped", codec.MODE_CONTINUOUS: "continuous", codec.MODE_FLEX: "flex"}

# Bolus kinds in THERAPY (firmware/therapy.py BOLUS_*).
BOLUS_KIND_NAMES = {0: "none", 1: "bolus", 2: "patient-bolus", 3: "prime"}

# Alarm codes (codec.ALARM_*).
ALARM_NAMES = {
    codec.ALARM_NONE: "none",
    codec.ALARM_DOSE_LIMIT: "dose limit",
    codec.ALARM_MOTOR_FAULT: "motor fault",
    codec.ALARM_RESTART: "restart",
    codec.ALARM_RESERVOIR_LOW: "low reservoir",
    codec.ALARM_RESERVOIR_EMPTY: "empty reservoir",
    codec.ALARM_SENSOR_DISAGREE: "reservoir sensor disagrees",
    codec.ALARM_SENSOR_FAULT: "sensor fault",
    codec.ALARM_BATTERY_ERI: "battery ERI",
    codec.ALARM_BATTERY_LOW: "critical low battery",
    codec.ALARM_BATTERY_EOS: "battery end of service",
    codec.ALARM_STALL: "motor stall",
    codec.ALARM_OCCLUSION: "occlusion",
    codec.ALARM_STEP_UNCONFIRMED: "step not confirmed",
    codec.ALARM_CLOCK_JUMP: "clock jump",
    codec.ALARM_WATCHDOG: "watchdog",
    codec.ALARM_SELF_TEST: "self-test failed",
    codec.ALARM_PROGRAM_UNREAD: "program not read",
}

# Alarm priorities (codec.PRIORITY_*, schema.ALARM_PRIORITY), and THERAPY's `sounding`.
PRIORITY_NAMES = {codec.PRIORITY_LOW: "low", codec.PRIORITY_MEDIUM: "medium", codec.PRIORITY_HIGH: "high"}

# SIM_FAULT kinds (codec.FAULT_*); hal/sim/faults.py holds the same names for the
# simulated board's own messages (tests/tree/test_protocol_doc.py checks they agree).
FAULT_NAMES = {
    codec.FAULT_MOTOR: "motor",
    codec.FAULT_STALL: "stall",
    codec.FAULT_OCCLUSION: "occlusion",
    codec.FAULT_ENCODER: "encoder",
    codec.FAULT_CLOCK_JUMP: "clock-jump",
    codec.FAULT_SENSOR_STUCK: "sensor-stuck",
    codec.FAULT_BATTERY: "battery",
    codec.FAULT_TASK: "task",
    codec.FAULT_FILL: "fill",
    codec.FAULT_LEAK: "leak",
}

# Event codes in EVENT (firmware/eventlog.py EV_*), by the name `pumpctl log` shows.
EVENT_NAMES = {
    1: "boot",  # EV_BOOT
    2: "program",  # EV_PROGRAM
    3: "therapy",  # EV_THERAPY
    4: "bolus",  # EV_BOLUS
    5: "patient-refused",  # EV_PATIENT_REFUSED
    6: "alarm",  # EV_ALARM
    7: "ack",  # EV_ACK
    8: "clock",  # EV_CLOCK
    9: "library",  # EV_LIBRARY
    10: "stop",  # EV_STOP
    11: "fault",  # EV_FAULT
    12: "restart",  # EV_RESTART
    13: "session",  # EV_SESSION
    14: "security",  # EV_SECURITY
    15: "keys",  # EV_KEYS
    16: "service",  # EV_SERVICE
    17: "alarm-clear",  # EV_ALARM_CLEAR
    18: "self-test",  # EV_SELF_TEST
    19: "refill",  # EV_REFILL
    20: "silence",  # EV_SILENCE
    21: "recovery",  # EV_RECOVERY
    22: "battery",  # EV_BATTERY
    23: "calibration",  # EV_CALIBRATION
}

# Why the dose guard refused steps (firmware/guard.py LIMIT_*), as its texts name them.
LIMIT_NAMES = {
    0: "none",  # LIMIT_NONE
    1: "daily hard limit",  # LIMIT_DAY
    2: "hourly hard limit",  # LIMIT_HOUR
    3: "pump step-rate cap",  # LIMIT_BUCKET
    4: "bolus hard limit",  # LIMIT_BOLUS
}

# The link's roles (auth.ROLE_*): what a session's key lets it do.
ROLE_NAMES = {0: "none", 1: "patient", 2: "clinician"}

# The tokens a pump text may hold: {letter: (table, what a code without a name is called)}.
TOKENS = {
    "a": (ALARM_NAMES, "alarm"),
    "b": (BOLUS_KIND_NAMES, "bolus kind"),
    "c": (COMMAND_NAMES, "command"),
    "l": (LIMIT_NAMES, "limit"),
    "m": (MODE_NAMES, "mode"),
    "o": (ROLE_NAMES, "role"),
}
_TOKEN = re.compile(r"\{([abclmo])([0-9]{1,3})\}")

# The tokens of a quantity a pump text holds in the pump's units, "{r15000000}", and how pumpctl
# writes it (the library's limits, commands/library.py): letter -> formatter of the number.
QUANTITY_TOKENS = {
    "g": formats.format_mass,  # ng
    "k": formats.format_concentration,  # ng/mL
    "r": lambda n: formats.format_dose_rate(formats.DOSE_MASS, n),  # ng/day, per day
    "h": mass_rate,  # ng/day, per hour where exact
    "s": lambda n: formats.format_duration(n * 1_000_000),  # s
    "v": quantities.rate,  # nL/day, per hour from 1 mL/h where exact (as pumpctl shows a rate)
    "n": formats.format_volume,  # nL
    "d": lambda n: _wall_clock(n),  # the device clock: local seconds since 1970
    "u": quantities.time_until,  # s until a level is reached: "36 days", "1.8 hours"
}
_QUANTITY = re.compile(r"\{([gkrhsvdnu])([0-9]{1,12})\}")


def _wall_clock(s: int) -> str:
    """A device clock reading (local wall time as seconds since 1970) as a date and time."""
    import datetime as dt

    return (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=s)).strftime("%Y-%m-%d %H:%M:%S")


def _name(m: re.Match) -> str:
    table, what = TOKENS[m[1]]
    code = int(m[2])
    return table.get(code, f"{what} {code}")


def _quantity(m: re.Match) -> str:
    return QUANTITY_TOKENS[m[1]](int(m[2]))


# A field of a message that did not fit, "{f8194}": msg_type << 8 | its place (framing.py), named by
# the host's schema (the pump holds no field names).
_FIELD = re.compile(r"\{f([0-9]{1,5})\}")


def _field(m: re.Match) -> str:
    from .schema import field_name

    n = int(m[1])
    return field_name(n) or f"field {n & 0xFF} of message 0x{n >> 8:02x}"


def render(text: str) -> str:
    """A pump text as a person reads it: each token "{a7}" replaced by the name of its code,
    each "{r15000000}" by its quantity ("15 mg/day")."""
    if "{" not in text:
        return text
    from . import program_words  # a program's refusals and warnings, and the log's program items
    from .sentences import expand  # the running pump's own sentences

    text = expand(text)
    text = program_words.LOG_ITEM.sub(program_words.log_line, program_words.TOKEN.sub(program_words.sentence, text))
    return _FIELD.sub(_field, _QUANTITY.sub(_quantity, _TOKEN.sub(_name, text)))


def token(letter: str, code: int) -> str:
    """The token a pump text names code by (for tests and tools that build pump texts)."""
    if letter not in TOKENS:
        raise ValueError(f"no token letter {letter!r}: one of {', '.join(sorted(TOKENS))}")
    return "{%s%d}" % (letter, code)


def alarm_code(name: str) -> int:
    """An alarm's code from its name (ALARM_NAMES, case and dashes ignored); ValueError if none."""
    key = name.lower().replace("-", " ").replace("_", " ")
    for code, n in ALARM_NAMES.items():
        if n.lower() == key:
            return code
    if key in ("all", "every", "0"):
        return codec.ALARM_NONE
    raise ValueError(f"no alarm is called {name!r}: " + ", ".join(sorted(n for c, n in ALARM_NAMES.items() if c)))


def fault_code(name: str) -> int:
    for code, n in FAULT_NAMES.items():
        if n == name:
            return code
    raise ValueError(f"no simulator fault is called {name!r}: " + ", ".join(FAULT_NAMES.values()))
