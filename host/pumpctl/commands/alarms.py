"""pumpctl alarms and fault: the latched alarms (acknowledge, silence, test the tones), and the simulator's
fault injection."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from fractions import Fraction

from firmware import codec

from .. import quantities, render, words
from ..client import Pump
from ..errors import UsageError
from .common import EXIT_OK, EXIT_REFUSED, Command, duration_us_arg, emit, port_of, volume_nl_arg
from .status import alarm_code_named, tones

_PRIORITY_ORDER = {"high": 0, "medium": 1, "low": 2}


_ALARM_HEAD = ("priority", "alarm", "state", "acknowledged", "raised at pump time", "cause")


def _alarm_rows(alarms) -> list[tuple[str, ...]]:
    """One row per alarm (the columns of _ALARM_HEAD), highest priority first, then oldest."""
    return [
        (
            a.priority,
            a.name,
            "active" if a.active else "cleared",
            "yes" if a.acknowledged else "no",
            quantities.duration(a.raised_us),
            a.text,
        )
        for a in sorted(alarms, key=lambda a: (_PRIORITY_ORDER.get(a.priority, 3), a.raised_us))
    ]


def _alarm_table(alarms) -> list[str]:
    rows = _alarm_rows(alarms)
    head = _ALARM_HEAD
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    return [
        "  ".join(f"{cell:<{w}}" for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in [head, *rows]
    ]


def _alarms_data(alarms, th) -> dict:
    return {
        "alarms": [asdict(a) for a in alarms],
        "highest": th.alarm,
        "sounding": th.sounding,
        "silenced_s": th.silenced_s,
    }


def cmd_alarms(args) -> int:
    name = " ".join(args.name)
    if args.action != "ack" and name:
        raise UsageError(f"alarms {args.action} takes no alarm name (got {name!r}); acknowledge with: alarms ack NAME")
    code = alarm_code_named(name) if args.action == "ack" else codec.ALARM_NONE
    with Pump(port_of(args), timeout=args.timeout) as pump:
        if args.action == "ack":
            done = pump.ack_alarm(code)
            left = pump.alarms()
            th = pump.therapy()
            still = [a for a in left if a.acknowledged]
            what = "every latched alarm" if code == codec.ALARM_NONE else words.ALARM_NAMES[code]
            human = [f"acknowledged {done} alarm{'s' if done != 1 else ''} ({what})"]
            if still:
                human.append(
                    "still latched until their condition clears: "
                    + ", ".join(f"{a.name} ({a.priority})" for a in still)
                )
            waiting = [a for a in left if not a.acknowledged]
            if waiting:
                human.append("not acknowledged: " + ", ".join(f"{a.name} ({a.priority})" for a in waiting))
            if not left:
                human.append("no alarm latched now")
            emit(
                args, "\n".join(human), dict(_alarms_data(left, th), acknowledged=done), rich=lambda: render.done(human)
            )
            return EXIT_OK
        if args.action == "silence":
            seconds = pump.silence()
            th = pump.therapy()
            emit(
                args,
                f"alarm tones silenced for {seconds} s; the alarms stay latched (pumpctl alarms), "
                "and a new alarm sounds at once",
                {"silenced_s": seconds, "alarms": th.alarms},
                style=render.OK,
            )
            return EXIT_OK
        if args.action == "test-tones":
            return _test_tones(args, pump)
        alarms = pump.alarms()
        th = pump.therapy()
    if alarms:
        human = _alarm_table(alarms) + ["", f"tones: {tones(th)}"]
    else:
        human = ["no alarm latched", "tones: quiet"]
    emit(
        args,
        "\n".join(human),
        _alarms_data(alarms, th),
        rich=lambda: render.alarms(_ALARM_HEAD, _alarm_rows(alarms), tones(th)) if alarms else render.done(human),
    )
    # A script reads the exit code: 0 is "nothing latched", never "there are alarms" (issue 23).
    return EXIT_REFUSED if alarms else EXIT_OK


# What each priority's tone sounds like (hal/buzzer.py PATTERNS), for the person listening to a tone test.
TONE_PATTERNS = {"low": "2 pulses", "medium": "3 pulses", "high": "two bursts of 5 pulses"}


def _test_tones(args, pump) -> int:
    """TONE_TEST: the pump sounds each alarm priority's tone once, low first, for the person at the
    pump to hear that its speaker works (IEC 60601-1-8: the operator can check the alarm signals)."""
    pump.request(codec.TONE_TEST)
    sounded = [words.PRIORITY_NAMES[p] for p in (codec.PRIORITY_LOW, codec.PRIORITY_MEDIUM, codec.PRIORITY_HIGH)]
    human = ["the pump sounds each alarm priority's tone once, about a second apart:"]
    human += [f"  {name:<7} {TONE_PATTERNS[name]}" for name in sounded]
    human.append("if one is missing or does not sound like this, the pump's speaker needs service")
    emit(args, "\n".join(human), {"tones": sounded}, style=render.OK)
    return EXIT_OK


# What each fault's value means, when one is needed, and when the pump notices.
_FAULT_VALUE = {
    "clock-jump": "seconds the tick counter leaps (or a duration: 2min)",
    "battery": "the charge it drops to, permille (or 5%)",
    "fill": "the volume the reservoir now holds, nL (or 20 mL)",
    "leak": "the volume lost, nL (or 0.5 mL)",
}


_FAULT_NOTICED = {
    "motor": "the pump stops at once (motor fault, high)",
    "stall": "the pump notices when a step is due (motor stall, high)",
    "occlusion": "pressure builds over the next steps until the occlusion input trips (occlusion, high)",
    "encoder": "the pump notices at the next steps (step not confirmed, high)",
    "clock-jump": "the pump notices at its next tick (clock jump, medium)",
    "sensor-stuck": "the reading parts from the count as delivery goes on (reservoir sensor disagrees)",
    "battery": "the pump notices at its next battery check, once a minute (battery ERI, medium; or worse)",
    "task": "the next battery read fails, and the monitoring task with it (watchdog, high)",
    "fill": "the reservoir sensor sees it at its next reading; program the refill (pumpctl refill)",
    "leak": "the reservoir sensor sees it at its next reading (reservoir sensor disagrees, medium)",
}


_ON_OFF_FAULTS = ("stall", "occlusion", "encoder", "sensor-stuck")


def _fault_value(kind: str, text: str | None) -> int:
    if text is None:
        if kind in _FAULT_VALUE:
            raise UsageError(f"fault {kind} needs --value: {_FAULT_VALUE[kind]}")
        return 1
    t = text.strip()
    if t.isascii() and t.isdigit() and kind != "battery":
        return int(t)
    if kind == "clock-jump":
        us = duration_us_arg(t)
        if us % 10**6:
            raise UsageError(f"--value {text!r}: the clock jumps whole seconds")
        return us // 10**6
    if kind == "battery":
        num = t.replace("permille", "").replace("%", "").strip()
        try:
            value = Fraction(num) * (10 if t.endswith("%") else 1)
        except ValueError:
            value = None
        if value is None or value.denominator != 1 or not 0 <= value <= 1000:
            raise UsageError(f"--value {text!r}: give the charge in permille (0-1000) or percent (50 or 5%)")
        return int(value)
    if kind in ("fill", "leak"):
        return volume_nl_arg("--value", t)
    raise UsageError(f"--value {text!r}: give a whole number (1 starts the condition, 0 ends it)")


def _fault_at_s(text: str | None) -> int:
    if text is None:
        return 0
    t = text.strip()
    if t.isascii() and t.isdigit():
        return int(t)
    us = duration_us_arg(t)
    if us % 10**6:
        raise UsageError(f"--at {text!r}: give whole seconds of pump time since boot")
    return us // 10**6


def _value_shown(kind: str, value: int) -> str:
    """A fault's value as it was typed: a volume, seconds, permille, or 1/0 (the condition starts/ends)."""
    if kind in ("fill", "leak"):
        return quantities.volume_nl(value)
    if kind == "clock-jump":
        return f"{value} s"
    if kind == "battery":
        return f"{value} permille"
    return str(value)


def _as_typed(text: str) -> str:
    return f'"{text}"' if " " in text else text


def _fault_list(args) -> int:
    with Pump(port_of(args), timeout=args.timeout) as pump:
        now_us = pump.status().time_us
        pending = pump.sim_faults()
    rows = [
        f"{i:3d}  at pump time {quantities.duration(at)} (in {quantities.duration(at - now_us)})  {kind}"
        + ("" if kind == "motor" else " --value " + _as_typed(_value_shown(kind, value)))
        for i, kind, value, at in pending
    ]
    emit(
        args,
        "\n".join(rows) if rows else "no fault is pending (pumpctl fault KIND --at SECONDS schedules one)",
        {"now_us": now_us, "pending": [{"index": i, "kind": k, "value": v, "at_us": at} for i, k, v, at in pending]},
    )
    return EXIT_OK


def _fault_cancel(args) -> int:
    text = (args.value or "").strip()
    if not (text.isascii() and text.isdigit()):
        raise UsageError("fault cancel needs --value N: the number pumpctl fault list shows")
    with Pump(port_of(args), timeout=args.timeout) as pump:
        kind, value, at = pump.sim_cancel_fault(int(text))
    shown = "" if kind == "motor" else f" (value {_value_shown(kind, value)})"
    emit(
        args,
        f"cancelled fault {kind}{shown} due at pump time {quantities.duration(at)}; "
        "the others stay (pumpctl fault list)",
        {"cancelled": {"kind": kind, "value": value, "at_us": at}},
    )
    return EXIT_OK


def cmd_fault(args) -> int:
    if args.kind == "list":
        return _fault_list(args)
    if args.kind == "cancel":
        return _fault_cancel(args)
    value = _fault_value(args.kind, args.value)
    at_s = _fault_at_s(args.at)
    with Pump(port_of(args), timeout=args.timeout) as pump:
        now_us = pump.status().time_us
        if args.at is not None and at_s * 10**6 < now_us:  # a time asked for that has passed: not "now" silently
            raise UsageError(
                f"--at {args.at}: pump time {quantities.duration(at_s * 10**6)} has passed (it is "
                f"{quantities.duration(now_us)}); give a later time, or no --at for now"
            )
        at_us = pump.sim_fault(args.kind, at_s, value)
    when = (
        f"now (pump time {quantities.duration(at_us)})"
        if at_us <= now_us
        else f"at pump time {quantities.duration(at_us)}, in {quantities.duration(at_us - now_us)}"
    )
    shown = f" (value {_value_shown(args.kind, value)})" if args.kind != "motor" else ""
    noticed = _FAULT_NOTICED[args.kind]
    if args.kind in _ON_OFF_FAULTS and value == 0:
        noticed = "the condition ends; the pump sees it at its next check and clears the alarm's condition"
    emit(
        args,
        f"fault {args.kind}{shown} {'injected' if at_us <= now_us else 'scheduled'} {when}: {noticed}; "
        "see pumpctl alarms",
        {"kind": args.kind, "code": words.fault_code(args.kind), "value": value, "at_us": at_us, "now_us": now_us},
    )
    return EXIT_OK


_ALARM_NAMES = ", ".join(n.replace(" ", "-") for c, n in sorted(words.ALARM_NAMES.items()) if c)


def _alarms_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("action", choices=["show", "ack", "silence", "test-tones"], nargs="?", default="show")
    s.add_argument("name", nargs="*", help="for ack: the alarm's name, or all (default)")


ALARMS = Command(
    "alarms",
    cmd_alarms,
    help="the latched alarms; acknowledge them, silence the tones, or test them",
    epilog=f"""examples:
  pumpctl alarms                       priority, name, active or cleared, acknowledged, raised at, cause
  pumpctl alarms ack                   acknowledge every latched alarm (clinician key)
  pumpctl alarms ack motor-stall       just one ("motor stall" quoted works too)
  pumpctl alarms silence               the tones stop for 2 min (patient key); the alarms stay
  pumpctl alarms test-tones            each priority's tone once, low first: is the speaker working? (patient key)

An alarm stays latched until its condition has cleared AND it is acknowledged.
A new alarm ends a silence. Alarm names: {_ALARM_NAMES}.""",
    arguments=_alarms_arguments,
)


_FAULT_LINES = "\n".join(f"  {n:<13} {_FAULT_NOTICED[n]}" for n in words.FAULT_NAMES.values())


def _fault_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "kind",
        choices=[*words.FAULT_NAMES.values(), "list", "cancel"],
        metavar="KIND",
        help="the fault (see below); list: the faults still to come; cancel --value N: drop one of them",
    )
    s.add_argument("--at", metavar="SECONDS", help="pump time since boot it takes effect, seconds (default now)")
    s.add_argument("--value", metavar="N", help="what it does (see below)")


FAULT = Command(
    "fault",
    cmd_fault,
    help="simulator only: inject a fault (motor, stall, battery, ...) now or at a pump time",
    epilog=f"""examples:
  pumpctl fault motor                  the motor driver fails now
  pumpctl fault stall --at 600         the rotor stops turning at pump time 600 s
  pumpctl fault stall --value 0        it turns again
  pumpctl fault battery --value 50     the charge drops to 50 permille (5 %)
  pumpctl fault clock-jump --value 90  the tick counter leaps 90 s
  pumpctl fault leak --value "2 mL"    the reservoir loses 2 mL, not through the pump
  pumpctl fault list                   the faults still to come, numbered, soonest first
  pumpctl fault cancel --value 0       drop the soonest of them

kinds:
{_FAULT_LINES}

--value: 1 starts the condition, 0 ends it (stall, occlusion, encoder, sensor-stuck);
clock-jump (seconds, at most 500), battery, fill and leak need one.""",
    arguments=_fault_arguments,
)
