"""The running pump's own sentences are pumpctl's (pumpctl.sentences): the pump writes a token,
"{t2|1999500|2000000}", and a person reads the sentence it stood for before (issue 19: a sentence
in a module the pump keeps loaded is heap on a board for as long as it runs)."""

import ast
import re
from pathlib import Path

import pytest
from pumpctl import sentences, words

ROOT = Path(__file__).resolve().parents[2]
# A token as the firmware writes it: its number, then a "|%d" or "|%s" per value.
WRITTEN = re.compile(r"\{t([0-9]+)((?:\|%[0-9]*[dsx])*)\}")


def written_tokens():
    """(file, number, values) of every sentence token a firmware, hal or board source writes: as a
    literal ("{t2|%d|%d}"), as a call of firmware.errors.sentence (sentence(2, left, low)), or as the
    number an alarm's clearing gives (PumpApp.clear_alarm(code, 12): its text is sentence 12)."""
    found = []
    for folder in ("firmware", "hal", "boards"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text()
            name = path.relative_to(ROOT).as_posix()
            for m in WRITTEN.finditer(text):
                found.append((name, int(m[1]), m[2].count("|")))
            tree = ast.parse(text)
            # clear_alarm makes the sentence its callers number (read above, at each call)
            inside = {
                id(call)
                for f in ast.walk(tree)
                if isinstance(f, ast.FunctionDef) and f.name == "clear_alarm"
                for call in ast.walk(f)
            }
            for node in ast.walk(tree):
                if id(node) in inside:
                    continue
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "clear_alarm":
                    number = node.args[1]
                    assert isinstance(number, ast.Constant) and type(number.value) is int, (name, node.lineno)
                    found.append((name, number.value, 0))
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "sentence":
                    # A number the scan cannot read (a variable) would escape these checks.
                    number = node.args[0]
                    assert isinstance(number, ast.Constant) and type(number.value) is int, (name, node.lineno)
                    assert not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)
                    found.append((name, number.value, len(node.args) - 1))
            if name != "firmware/errors.py":  # sentence() itself writes "{t%d"
                assert not re.search(r"\{t%", text), path  # nor a token made by hand from a number
    return found


def test_every_sentence_the_firmware_writes_is_here_with_as_many_values():
    found = written_tokens()
    assert {f for f, _n, _v in found} >= {
        "firmware/monitors.py",
        "firmware/battery.py",
        "firmware/motor_watch.py",
        "firmware/auth.py",
        "firmware/link.py",
        "firmware/app.py",
    }
    for path, number, values in found:
        assert number in sentences.SENTENCES, f"{path}: sentence {number} is not in pumpctl.sentences"
        assert sentences.SENTENCES[number].count("%s") == values, f"{path}: sentence {number} takes other values"


def test_no_sentence_is_left_unused():
    assert set(sentences.SENTENCES) == {n for _f, n, _v in written_tokens()}


@pytest.mark.parametrize(
    "pump_text, shown",
    [
        ("{t2|1999500|2000000}", "low reservoir: 1.9995 mL left (low level 2 mL): refill soon"),
        ("{t1}", "stopped: the reservoir reached its empty volume"),
        ("{t4|5000}", "clock jump of 5000 ms: not counted as pump time; motor halted, dosing goes on"),
        ("{t9}bus error 5", "sensor fault: bus error 5"),
        (
            "{t13}firmware/app.mpy changed{t14}",
            "the power-on self-test failed (firmware/app.mpy changed): the pump cannot dose until a restart passes it",
        ),
        ("{t27|180|?}", "battery ERI: 180 permille, about ? days left: plan the replacement"),
        ("{a12}{t30}", "occlusion: motor halted, delivery held until the occlusion clears"),
        ("{a11}{t33|90|12|625}", "motor stall over after 90 s: delivery resumes; 12 steps (625 nL) not made up"),
        ("{t35}{t36})", "motor fault: stopped at once (the driver failed)"),
        ("{b1}{t40|12500|25000}", "bolus cancelled: 12.5 uL of 25 uL not given"),
        ("{t41}; {t42}", "bridge done: new concentration in the catheter; flex day starts"),
        ("{t76|2}", "wrong key for the clinician role"),
        ("{t93|17|2}", "stop needs a session with the clinician key (this frame has no MAC)"),
        ("{t94|17|2|1}", "stop needs a session with the clinician key (this frame has the patient key)"),
        ("{t90|3f}", "unknown command 0x3f"),
        ("{t57}{t78|60}", "session ended: no authenticated frame for 60 s"),
        ("{o1} session started", "patient session started"),
        # A sentence this pumpctl does not know, or with other values: its number and values, not nothing.
        ("{t999|5}", "pump text 999 5"),
        ("{p999|5}", "program refusal 999 5"),  # a program's refusal the same way (program_words)
        ("{t2|5}", "pump text 2 5"),
        ("{t} {t1x} braces {} stay", "{t} {t1x} braces {} stay"),
    ],
)
def test_a_person_reads_the_sentence(pump_text, shown):
    assert words.render(pump_text) == shown


def test_the_firmware_s_sentence_makes_the_token_a_person_reads():
    from firmware.errors import sentence

    assert sentence(2, 1999500, 2000000) == "{t2|1999500|2000000}"
    assert sentence(1) == "{t1}" and sentence(90, "3f") == "{t90|3f}"
    assert words.render(sentence(2, 1999500, 2000000)) == "low reservoir: 1.9995 mL left (low level 2 mL): refill soon"
