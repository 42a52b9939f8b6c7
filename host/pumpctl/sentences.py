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
}

# "{t<number>|<value>|...}": a value holds no "|" and no "}".
TOKEN = re.compile(r"\{t([0-9]{1,3})((?:\|[^|}]*)*)\}")


def sentence(m: re.Match) -> str:
    """The sentence of a "{tN|value|...}" token; one this pumpctl does not know, or whose values do
    not fit it, as its number and values (a newer firmware's: the person still sees them)."""
    number = int(m[1])
    values = tuple(m[2].split("|")[1:]) if m[2] else ()
    text = SENTENCES.get(number)
    if text is not None and text.count("%s") == len(values):
        return text % values
    return "pump text %d%s" % (number, "".join(" " + v for v in values))


def expand(text: str) -> str:
    """text with each sentence token replaced by its sentence (whose own tokens render after)."""
    return TOKEN.sub(sentence, text)
