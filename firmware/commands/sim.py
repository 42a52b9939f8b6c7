# The simulator's own commands: run pump time forward, read the physical
# models, inject a fault. Loaded only on the sim board (its hardware says so).

from firmware import codec
from firmware.commands import SAVES
from firmware.errors import Refusal
from firmware.timebase import US_PER_MDAY

_MAX_SIM_ADVANCE_S = 100 * 366 * 86_400  # the longest pump time one SIM_ADVANCE may ask for: 100 years


def sim_advance(pump, values):
    seconds, micros = values
    if micros >= 1_000_000:
        raise Refusal("microseconds", "microseconds %d must be below 1000000" % micros)
    if seconds > _MAX_SIM_ADVANCE_S:
        raise Refusal("seconds", "seconds %d is more than 100 years" % seconds)
    pump.tick()
    clock = pump.clock
    if seconds or micros:
        clock.grant(seconds * 1_000_000 + micros)
    else:  # 0 s: stop here, the time granted and not yet run dropped (pumpctl advance on Ctrl-C)
        clock.granted_us = 0
    target = pump.timebase.total_us() + clock.granted_us
    return (target // US_PER_MDAY, target % US_PER_MDAY)


def sim_fault(pump, values):
    """Inject a fault into the simulated board's models at pump time at_s (the past: now)."""
    kind, at_s, value = values
    if kind > codec.FAULT_LEAK:  # kinds are 0..FAULT_LEAK
        raise Refusal("kind", "fault kind %d does not exist (0..%d)" % (kind, codec.FAULT_LEAK))
    pump.tick()
    now = pump.timebase.total_us()
    at = at_s * 1_000_000
    delay = at - now if at > now else 0
    try:
        pump.hw.faults.schedule(kind, delay, value)
    except ValueError as e:
        raise Refusal("value", str(e)) from None
    if not delay:  # applied now: the firmware notices at once, as its next check would
        pump.tick()
        if kind == codec.FAULT_MOTOR:
            pump.monitors.motor_watch.driver_failed()
    at = now + delay
    return (kind, at // US_PER_MDAY, at % US_PER_MDAY)


def sim_faults(pump, values):
    """Pending fault `index` (0 = the soonest) as (pending, kind, value, at pump time), kind NO_FAULT past
    the last; with cancel=1 it is dropped (the reply says which), and an index past the last is refused."""
    index, cancel = values
    pump.tick()
    plan = pump.hw.faults
    n = plan.count()
    got = plan.pending_at(index)
    if got is None:
        if cancel:
            raise Refusal("index", "no fault %d is pending: %d are (pumpctl fault list)" % (index, n))
        return (n, codec.NO_FAULT, 0, 0, 0)
    kind, value, delay_us = got
    if cancel:
        plan.cancel(index)
    at = pump.timebase.total_us() + delay_us
    return (n, kind, value, at // US_PER_MDAY, at % US_PER_MDAY)


def sim_state(pump, values):
    hw = pump.hw
    m = hw.motor
    r = getattr(hw, "reservoir_model", None)  # the physical reservoir, with or without its sensor
    b = getattr(hw, "battery", None)
    buzzer = getattr(hw, "buzzer", None)
    wdt = getattr(hw, "watchdog", None)
    return (
        m.steps_hi,
        m.steps_lo,
        m.in_motion(),
        m.dropped,
        m.halts,
        m.true_step_pl,
        pump.clock.speed,
        r.true_nl() if r is not None else codec.NO_TIME,
        b.true_permille() if b is not None else codec.NO_PERMILLE,
        buzzer.plays if buzzer is not None else 0,
        buzzer.priority if buzzer is not None else 0,
        wdt.feeds if wdt is not None else 0,
    )


COMMANDS = (
    (codec.SIM_ADVANCE, sim_advance, 0),
    (codec.SIM_STATE, sim_state, 0),
    (codec.SIM_FAULT, sim_fault, SAVES),
    (codec.SIM_FAULTS, sim_faults, 0),
)
