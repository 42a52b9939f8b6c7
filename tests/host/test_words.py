"""The pump owns numbers, the host owns words (issues 19 and 21): the display names of the
wire's codes live in pumpctl.words, not in the firmware's codec; a pump text names a code
by a token ("{a7}") and pumpctl renders it, so a person reads the same sentence as before."""

import json
import re
from pathlib import Path

import pytest
from pumpctl import cli, schema, sentences, words

from firmware import auth, codec, eventlog, guard, therapy
from hal.sim import faults

ROOT = Path(__file__).resolve().parents[2]


# -- the tables agree with the firmware's numbers ------------------------------------------------


def constants(module, prefix, but=()):
    return {getattr(module, n): n for n in dir(module) if n.startswith(prefix) and n not in but}


def test_every_command_and_error_code_has_a_name_and_no_name_lacks_a_code():
    commands = {t for t in schema.FIELDS if t not in (codec.ERROR, codec.TELEMETRY_DATA)}
    assert set(words.COMMAND_NAMES) == commands
    assert set(words.ERROR_NAMES) == set(constants(codec, "ERR_"))
    assert len(set(words.COMMAND_NAMES.values())) == len(words.COMMAND_NAMES)


def test_the_names_keyed_by_number_follow_the_firmware_constants():
    assert set(words.EVENT_NAMES) == set(constants(eventlog, "EV_"))
    assert set(words.LIMIT_NAMES) == set(constants(guard, "LIMIT_"))
    assert set(words.BOLUS_KIND_NAMES) == set(constants(therapy, "BOLUS_", but=("BOLUS_NAMES",)))
    assert set(words.ALARM_NAMES) == {codec.ALARM_NONE} | set(schema.ALARM_PRIORITY)
    assert set(words.PRIORITY_NAMES) == set(constants(codec, "PRIORITY_"))
    assert set(words.MODE_NAMES) == set(constants(codec, "MODE_"))
    assert set(words.ROLE_NAMES) == set(constants(auth, "ROLE_"))


def test_the_simulated_board_names_its_faults_as_pumpctl_does():
    assert faults.FAULT_NAMES == words.FAULT_NAMES
    assert set(words.FAULT_NAMES) == set(constants(codec, "FAULT_"))


def test_the_codec_holds_no_words():
    """No table of names is left in the module the pump loads: its dicts map numbers to numbers
    or to field formats, and its only strings are the wire's field names and library keys."""
    assert not [n for n in dir(codec) if n.endswith("_NAMES")]
    for name in dir(codec):
        value = getattr(codec, name)
        if isinstance(value, dict) and name not in ("FIELDS", "__builtins__"):
            assert not any(isinstance(v, str) for v in value.values()), name
    assert not hasattr(therapy, "BOLUS_NAMES") and not hasattr(guard, "LIMIT_NAMES")
    assert not hasattr(auth, "ROLE_NAMES")


def firmware_tokens():
    """(file, letter) of every token a firmware, hal or board text writes: "{x%d}"."""
    found = []
    for folder in ("firmware", "hal", "boards"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for m in re.finditer(r"\{([a-su-z])%d\}", path.read_text()):  # {t..}: test_sentences.py
                found.append((path.relative_to(ROOT).as_posix(), m.group(1)))
    return found


def test_every_token_the_firmware_writes_is_one_pumpctl_renders():
    found = firmware_tokens()
    # A code or quantity a pump text names is a token of its own, or one in a sentence (pumpctl.sentences)
    # that the pump writes as the sentence's token with the number as a value.
    in_sentences = set(re.findall(r"\{([a-z])%s\}", " ".join(sentences.SENTENCES.values())))
    letters = {letter for _f, letter in found} | in_sentences
    assert "f" in letters  # framing's field that does not fit: the host names it (schema.field_name)
    assert letters - set(words.QUANTITY_TOKENS) - {"f"} == set(words.TOKENS)  # each code token used, none unknown
    assert letters & set(words.QUANTITY_TOKENS) == {"k", "v", "d", "n", "u"}  # the quantities a "%d" writes
    assert {f for f, _l in found} >= {"firmware/app.py", "firmware/motor_watch.py", "firmware/therapy.py"}


# -- rendering -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pump_text, shown",
    [
        (
            "{c17} needs a session with the clinician key (this frame has no MAC)",
            "stop needs a session with the clinician key (this frame has no MAC)",
        ),
        ("the {a11} alarm is not latched", "the motor stall alarm is not latched"),
        ("no bolus while an alarm is active ({a1})", "no bolus while an alarm is active (dose limit)"),
        ("dose limit: {l1}", "dose limit: daily hard limit"),
        ("a {b2} is running or waiting", "a patient-bolus is running or waiting"),
        ("the pump is {m1}: stop it first, then flash", "the pump is continuous: stop it first, then flash"),
        ("{a3}{a12} and {b3}", "restartocclusion and prime"),
        ("the {a99} alarm, {c255}", "the alarm 99 alarm, command 255"),  # a code without a name: its number
        ("{x1} {e4} {a} {a1234} {A1} {a-1} braces {} stay", "{x1} {e4} {a} {a1234} {A1} {a-1} braces {} stay"),
        # a field of a request (STAGE_ITEM's third), of a reply (THERAPY's first), of none
        ("field {f8194} is not UTF-8 text", "field drug is not UTF-8 text"),
        ("missing field {f33536}", "missing field mode"),
        ("missing field {f4}", "missing field field 4 of message 0x00"),
        ("no tokens", "no tokens"),
        ("fluid now morphine {k10000000}", "fluid now morphine 10 mg/mL"),
        ("rate set to {v500000}", "rate set to 0.5 mL/day"),
        ("clock set to {d1772352000}", "clock set to 2026-03-01 08:00:00"),
        (
            "low reservoir: {n1999500} left (low level {n2000000}): refill soon",
            "low reservoir: 1.9995 mL left (low level 2 mL): refill soon",
        ),
        ("reservoir {n20000000}; low level in {u3110400}", "reservoir 20 mL; low level in 36 days"),
        ("reservoir {n500}; low level in {u6480}", "reservoir 500 nL; low level in 1.8 hours"),
    ],
)
def test_render_replaces_each_token_by_its_name(pump_text, shown):
    assert words.render(pump_text) == shown


def test_a_token_is_what_render_reads_back():
    for letter, (table, _what) in words.TOKENS.items():
        for code, name in table.items():
            assert words.render(words.token(letter, code)) == name
    with pytest.raises(ValueError, match="no token letter 'z'"):
        words.token("z", 1)


def test_a_refusal_reads_as_the_pump_meant_it():
    from pumpctl import PumpRefused

    e = PumpRefused(codec.ERR_BAD_VALUE, "alarm", "the {a14} alarm is not latched")
    assert (e.reason, e.code_name, str(e)) == (
        "the clock jump alarm is not latched",
        "bad value",
        "pump refused (alarm): the clock jump alarm is not latched",
    )


# -- end to end: what pumpctl shows of the pump's texts -------------------------------------------


def run(sim, capsys, *argv):
    code = cli.main(["--port", sim.port, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.micropython
def test_pumpctl_shows_the_names_where_the_pump_sent_codes(sim, capsys):
    # A stall raises the motor-stall alarm; acknowledging another alarm is refused by that alarm's
    # name; once the rotor turns again the clearing and the acknowledgement are logged by name.
    assert run(sim, capsys, "program", "--rate", "1 mL/h", "--yes")[0] == 0
    assert run(sim, capsys, "fault", "stall")[0] == 0
    assert run(sim, capsys, "advance", "30s")[0] == 0
    code, _, err = run(sim, capsys, "alarms", "ack", "clock-jump")
    assert code == cli.EXIT_REFUSED
    assert "pump refused (alarm): the clock jump alarm is not latched" in err
    assert run(sim, capsys, "fault", "stall", "--value", "0")[0] == 0
    assert run(sim, capsys, "advance", "2min")[0] == 0
    code, out, _ = run(sim, capsys, "alarms", "ack", "motor-stall")
    assert code == 0 and "acknowledged 1 alarm (motor stall)" in out
    code, out, _ = run(sim, capsys, "--json", "log")
    events = json.loads(out)["events"]
    [ack] = [e for e in events if e["event"] == "ack"]
    assert ack["text"] == "motor stall"
    [cleared] = [e for e in events if e["event"] == "alarm-clear"]
    assert cleared["text"].startswith("motor stall: ")
    assert not [e for e in events if re.search(r"\{[a-z][0-9]+\}", e["text"])]
    code, out, _ = run(sim, capsys, "log")
    assert code == 0 and "{" not in out

    # A fault kind the pump does not have: it says the range by number, and injects nothing.
    from pumpctl import Pump, PumpRefused

    with Pump(sim.port) as pump:
        before = pump.sim_state()
        with pytest.raises(PumpRefused, match=r"^pump refused \(kind\): fault kind 12 does not exist \(0\.\.9\)$"):
            pump.sim_fault(12)
        assert pump.sim_state() == before
