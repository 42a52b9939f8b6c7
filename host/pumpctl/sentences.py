"""The sentences of the running pump's own texts (its alarms, log entries and the refusals of its
resident code), which it writes as a token: "{t2|1999500|2000000}" is sentence 2 with the values
1999500 and 2000000, and reads "low reservoir: 1.9995 mL left (low level 2 mL): refill soon".

The pump owns numbers, the host owns words (DESIGN.md): a sentence held by the pump is heap on a
board for as long as it runs (its module stays loaded), where a token is a few bytes; the
sentences are here, by number. A sentence's values are decimal numbers (or short words without
"|" or "}"), put in its %s in order; what they become is then rendered like any pump text
(words.render: "{n1999500}" a volume, "{a7}" an alarm's name). Free text (a driver's reason, a
self-test's finding) never goes in a token: the pump writes it beside one ("{t9}" + text).

Each number is written where the firmware uses it (tests/host/test_sentences.py checks that every
token the firmware writes has its sentence here, with as many values as it has %s, and that no
sentence here is unused). A number is never reused for another sentence: a log entry keeps its
token for months (the therapy log in flash).
"""

from __future__ import annotations

import re

from .schema import FRAME_SENTENCES

SENTENCES: dict[int, str] = {
    # firmware/monitors.py: the reservoir, the clock, the monitoring task, the sensors, dosing refused
    1: "stopped: the reservoir reached its empty volume",
    2: "low reservoir: {n%s} left (low level {n%s}): refill soon",
    3: "empty reservoir: {n%s} left, delivery stopped; refill it",
    4: "clock jump of %s ms: not counted as pump time; motor halted, dosing goes on",
    5: "clock jump of %s s",
    6: "monitoring task silent for %s s: dosing stopped",
    7: "watchdog: a task stopped reporting in; the board will reset",
    8: "the reservoir sensor gave no reading in 200 ms",
    9: "sensor fault: ",  # then what the sensor's read said
    10: "the sensors answer again",
    11: "reservoir sensor {n%s}, counted {n%s}: {n%s} apart",
    12: "the sensor and the count agree again",
    13: "the power-on self-test failed (",  # then its first finding, then sentence 14
    14: "): the pump cannot dose until a restart passes it",
    15: "the battery reached end of service: the pump cannot dose",
    16: "the motor driver does not respond: the pump cannot dose",
    17: "refilled",  # the reservoir's alarms cleared by a refill
    18: "this power-on self-test passed",  # the self-test's alarm cleared (boot.py)
    # firmware/battery.py
    20: "battery monitor: ",  # then the gauge's error
    21: "the charge is above the critical level again",
    22: "the charge is above end of service again",
    23: "the battery's life left is above the margin again",
    24: "end of service at %s permille: dosing stopped",
    25: "battery end of service: dosing stopped; replace the pump",
    26: "critical low battery: %s permille",
    27: "battery ERI: %s permille, about %s days left: plan the replacement",
    28: "ERI at %s permille, about %s days left",
    # firmware/motor_watch.py: after the fault's alarm token ("{a11}")
    30: ": motor halted, delivery held until the occlusion clears",
    31: ": motor halted, delivery held until a probe step turns the motor",
    32: ": delivery held",
    33: " over after %s s: delivery resumes; %s steps (%s nL) not made up",
    34: "the motor turns again",
    35: "motor fault: stopped at once (",  # then the driver's reason, or sentence 36, then ")"
    36: "the driver failed",
    37: "the driver responds again; program the pump to resume",
    # firmware/therapy.py: after the delivery's kind ("{b1}")
    40: " cancelled: {n%s} of {n%s} not given",
    41: "bridge done: new concentration in the catheter",
    42: "flex day starts",
    43: "trial ended: stopped",
    # firmware/app.py: the dose guard, boluses, sessions, security refusals
    50: "dose limit: {l%s}",
    51: "bolus cancelled by the alarm",
    52: "no bolus while an alarm is active ({a%s})",
    53: "delayed bolus not started: ",  # then why
    54: "dose limit: a delayed bolus would pass a limit",
    55: ": its session ended (",  # a staged program dropped: then why, then sentence 56
    56: "); stage it again",
    57: "session ended: ",  # then why
    58: "refused (+%s not logged): ",  # then why
    59: "the bolus of %s steps is above the bolus hard limit of %s steps; the dose guard refuses it",
    60: "with what was delivered in the last 24 h, this would pass the {l%s}; the dose guard refuses it",
    # firmware/auth.py: sessions and their frames
    70: "role %s does not exist: 1 is the patient, 2 the clinician",
    71: "this pump has no keys: provision them when flashing it",
    72: "the pump and host nonces must be %s bytes each",
    73: "not a challenge this pump gave the {o%s} role since it started: send auth-begin",
    74: "this challenge is older than the last login, or was used: send auth-begin",
    75: "the challenge is more than %s s old: send auth-begin",
    76: "wrong key for the {o%s} role",
    77: "replaced by a new session",
    78: "no authenticated frame for %s s",
    79: "no session is open (or it ended): authenticate again",
    80: "the frame's MAC is wrong: not from this session, or damaged",
    81: "sequence %s was already used (last %s): a replayed frame",
    # firmware/link.py: frames refused (a frame of another protocol version is refused in words: its
    # host may not know these)
    90: "unknown command 0x%s",
    91: "command {c%s} is not offered by this board",
    92: "this pump does not authenticate frames",
    93: "{c%s} needs a session with the {o%s} key (this frame has no MAC)",
    94: "{c%s} needs a session with the {o%s} key (this frame has the {o%s} key)",
    # firmware/commands/program.py: staging a program (its review's note on a running delivery, the
    # refusals of its own checks, a refill's log text)
    100: "item %s is out of order; the pump expects item %s",
    101: "waiting: starts in %s min",  # a delivery's state: 101 or 102
    102: "running: {n%s} of {n%s} left",
    103: ", unchanged",
    104: "a bridge is ",  # then its state, then sentence 105
    105: "; keep its line unchanged until it ends",
    106: "a {b%s} is ",  # then its state, then sentence 107
    107: "; one at a time: wait, or drop its line to cancel it",
    108: "a flex schedule runs on the device clock: set the clock first",
    109: "the reservoir is at its empty volume ({n%s} left): refill it first (pumpctl refill)",
    110: "fill {n%s} is more than this pump's {n%s} reservoir holds",
    111: "fill {n%s} is at or below the empty volume {n%s}: the pump would stop at once",
    112: "refill: removed {n%s} (not checked: no count), filled {n%s}",
    113: "refill: removed {n%s}, expected {n%s}, filled {n%s}",
    114: ": DISCREPANCY {n%s}",
    # firmware/framing.py: 120-135, pumpctl.schema.FRAME_SENTENCES (below)
}
SENTENCES.update(FRAME_SENTENCES)


def coded_token(letter: str) -> re.Pattern:
    """A token of a code and its values, "{<letter>N|value|...}" (a value holds no "|" and no "}")."""
    return re.compile(r"\{%s([0-9]{1,3})((?:\|[^|}]*)*)\}" % letter)


def words_of(m: re.Match, say, unknown: str) -> str:
    """The words of a coded token (m, its match): say(number, values), or, where say has none for
    them (None, or an IndexError, ValueError or TypeError: a newer firmware's code, values that do
    not fit), `unknown` with the number and the values, so a person still sees them."""
    number = int(m[1])
    values = m[2].split("|")[1:] if m[2] else []
    try:
        text = say(number, values)
    except (IndexError, ValueError, TypeError):
        text = None
    return text if text is not None else "%s %d%s" % (unknown, number, "".join(" " + v for v in values))


TOKEN = coded_token("t")


def _say(number: int, values: list[str]) -> str | None:
    text = SENTENCES.get(number)
    return None if text is None else text % tuple(values)  # TypeError if the values do not fit


def sentence(m: re.Match) -> str:
    """The sentence of a "{tN|value|...}" token."""
    return words_of(m, _say, "pump text")


def expand(text: str) -> str:
    """text with each sentence token replaced by its sentence (whose own tokens render after)."""
    return TOKEN.sub(sentence, text)
