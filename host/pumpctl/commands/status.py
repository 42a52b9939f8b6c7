"""pumpctl status and therapy: what the pump is doing, and what its monitors see."""

from __future__ import annotations

import textwrap
from dataclasses import asdict
from fractions import Fraction

from firmware import codec

from .. import quantities, render, words
from ..client import Pump
from ..errors import UsageError
from ..schema import ALARM_PRIORITY
from .common import EXIT_OK, Command, emit, port_of, status_data


def bolus_parts(th) -> tuple[str, str]:
    """A running bolus as (its dose, what was given and is left; its rate and the time left), for the
    therapy table and the live view alike."""
    given = th.bolus_nl - th.bolus_left_nl
    return (
        f"{th.bolus} of {quantities.volume(th.bolus_nl * 1000)}: {quantities.volume(given * 1000)} given, "
        f"{quantities.volume(th.bolus_left_nl * 1000)} left",
        f"at {quantities.rate(th.bolus_rate_nl_per_day)} for {quantities.duration(th.bolus_left_s * 10**6)}",
    )


def cmd_status(args) -> int:
    with Pump(port_of(args), timeout=args.timeout) as pump:
        st = pump.status()
        th = pump.therapy()
    rate = quantities.rate(st.rate_nl_per_day) + f" ({st.rate_nl_per_day} nL/day)" if st.rate_nl_per_day else "-"
    lines = [
        f"pump time   {quantities.duration(st.time_us)}",
        f"mode        {st.mode}",
        f"rate        {rate}",
        f"delivered   {quantities.volume(st.delivered_pl)} "
        f"({st.steps} steps of {quantities.volume(st.step_volume_pl)})",
    ]
    lines += _watch_lines(th, st.time_us)
    emit(
        args,
        "\n".join(lines),
        dict(status_data(st), **_watch_data(th, st.time_us)),
        rich=lambda: render.fields(lines),
    )
    return EXIT_OK


def alarm_code_named(name: str) -> int:
    """An alarm's code from its name as a person types it: case, dashes and underscores
    ignored ("motor-stall", "battery eri"); all (or nothing) is 0, every alarm."""
    key = " ".join(name.lower().replace("-", " ").replace("_", " ").split())
    if key in ("", "all"):
        return codec.ALARM_NONE
    for code, n in words.ALARM_NAMES.items():
        if code and n.lower() == key:
            return code
    try:
        return words.alarm_code(name)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _alarm_label(name: str) -> str:
    try:
        code = alarm_code_named(name)
    except UsageError:
        return name
    return f"{name} ({words.PRIORITY_NAMES[ALARM_PRIORITY[code]]})"


def tones(th) -> str:
    if th.silenced_s:
        return f"silenced for {th.silenced_s} s more"
    if th.sounding != "none":
        return f"sounding at {th.sounding} priority"
    return "quiet"


def _watch_lines(th, now_us: int) -> list[str]:
    """What the monitors see, for status and therapy: reservoir (counted and sensed),
    the low-reservoir forecast, the battery, the latched alarms."""
    out = []
    sensor = f"sensor {quantities.volume_nl(th.sensor_nl)}" if th.sensor_nl is not None else "no sensor reading"
    if th.reservoir_nl is None:
        out.append(f"reservoir   not counted (no fill programmed); {sensor}")
    else:
        out.append(f"reservoir   {quantities.volume_nl(th.reservoir_nl)} counted, {sensor}")
        low = f"low level {quantities.volume_nl(th.low_nl)}"
        if th.low_in_s is None:
            out.append(f"            {low}: not within 400 days at this program")
        elif th.low_in_s == 0:
            out.append(f"            {low}: reached, refill")
        else:
            at = quantities.duration(now_us + th.low_in_s * 10**6)
            out.append(f"            {low} in {quantities.time_until(th.low_in_s)} (pump time {at})")
        dry = quantities.duration(th.empty_in_s * 10**6) if th.empty_in_s is not None else "beyond 400 days"
        empty = quantities.volume_nl(th.empty_nl)
        out.append(f"            delivery stops at {empty} (empty volume),")
        out.append(f"            all of it delivered in {dry}")
    if th.battery_permille is None:
        out.append("battery     no reading yet")
    else:
        pct = quantities.as_decimal(Fraction(th.battery_permille, 10), 1)
        left = f"about {th.battery_days} days left" if th.battery_days is not None else "life left not known yet"
        out.append(f"battery     {th.battery_permille} permille ({pct} %), {left}")
    if th.held:
        out.append("delivery    HELD by a motor fault until it clears (steps due meanwhile are not made up)")
    if th.alarms:
        out.append(f"alarms      {', '.join(_alarm_label(a) for a in th.alarms)}; tones {tones(th)} (pumpctl alarms)")
    else:
        out.append("alarms      none")
    return out


def _watch_data(th, now_us: int) -> dict:
    return {
        "reservoir_nl": th.reservoir_nl,
        "sensor_nl": th.sensor_nl,
        "low_nl": th.low_nl,
        "empty_nl": th.empty_nl,
        "low_in_s": th.low_in_s,
        "low_at_us": None if th.low_in_s is None else now_us + th.low_in_s * 10**6,
        "battery_permille": th.battery_permille,
        "battery_days": th.battery_days,
        "held": th.held,
        "alarms": th.alarms,
        "sounding": th.sounding,
        "silenced_s": th.silenced_s,
    }


def cmd_therapy(args) -> int:
    with Pump(port_of(args), timeout=args.timeout) as pump:
        now_us = pump.status().time_us
        th = pump.therapy()
        rows = pump.review()
    lines = [f"mode        {th.mode}   library {th.library} (hash {th.library_hash:08x})   alarm {th.alarm}"]
    lines.append(
        f"rate        {quantities.rate(th.rate_nl_per_day) if th.rate_nl_per_day else '-'}"
        f"   (basal {quantities.rate(th.basal_nl_per_day) if th.basal_nl_per_day else '-'})"
    )
    if th.bolus != "none":
        dose, pace = bolus_parts(th)
        lines += [f"bolus       {dose},", f"            {pace}"]  # two lines: within 80 columns
    if th.bridge:
        lines.append("bridge      old concentration still in the catheter, delivered at the old dose")
    lines += _watch_lines(th, now_us)
    # The guard's windows hold the doses of the fluid now in the pump: after a change of fluid, its
    # drugs' earlier doses rescaled to it, and nothing of a fluid without them (a saline rate before).
    lines += [
        f"dose guard  last 24 h {quantities.volume(th.day_nl * 1000)},"
        f" last hour {quantities.volume(th.hour_nl * 1000)}, refused {th.refused_steps} steps",
        "            in this fluid; earlier fluids count only for the drugs it holds",
    ]
    head = list(lines)
    lines.append("program")
    # Each line beside what it means, two spaces at least between them; within 80 columns, else the
    # meaning goes under its line, wrapped (a soft limit's sentence, a long patient-bolus line).
    for line, detail in rows:
        row = f"  {line:<44}  {detail}".rstrip()
        if len(row) <= 80:
            lines.append(row)
        else:
            lines.append(f"  {line}")
            lines += textwrap.wrap(detail, 80, initial_indent="      ", subsequent_indent="      ")
    emit(
        args,
        "\n".join(lines),
        dict(asdict(th), **_watch_data(th, now_us), time_us=now_us, program=[list(r) for r in rows]),
        rich=lambda: render.therapy(head, rows),
    )
    return EXIT_OK


STATUS = Command(
    "status",
    cmd_status,
    help="what the pump is doing",
    epilog="""examples:
  pumpctl --port /dev/ttyACM0 status    pump time, mode, rate, delivered, reservoir, battery, alarms
  pumpctl --json status                 the same as JSON, for scripts""",
)


THERAPY = Command(
    "therapy",
    cmd_therapy,
    help="the therapy in force: program, bolus, reservoir, battery, guard, alarms",
    epilog="""examples:
  pumpctl therapy             mode, rates, bolus, reservoir forecast, battery, last 24 h, the program
  pumpctl --json therapy""",
)
