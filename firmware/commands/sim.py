# The simulator's own commands: run pump time forward, read the physical
# models, inject a fault. Loaded only on the sim board (its hardware says so).

from firmware import codec, const
from firmware.commands import SAVES
from firmware.errors import Refusal
from firmware.timebase import US_PER_MDAY

_MAX_SIM_ADVANCE_S = const(100 * 366 * 86_400)  # the longest pump time one SIM_ADVANCE may ask for: 100 years


# **Simulator only** (ERR_NOT_SUPPORTED on a real board): lets
# pump time run forward.
#
# Request:
# seconds: whole seconds of pump time to run, at most 3,162,240,000 (100 years)
# microseconds: and microseconds, 0..999,999
#
# Reply:
# target_mday: pump time the simulator will have reached when the time granted has run, millidays
# target_us: and microseconds
#
# **Refusals:** `microseconds` "microseconds N must be below 1000000";
# `seconds` "seconds N is more than 100 years".
#
# **Notes:** the reply comes at once; the time then runs as fast as the CPU
# allows. Poll STATUS until `time` reaches the target (pumpctl does). A
# request of 0 s and 0 us stops the time where it is: what was granted and
# has not run yet is dropped, and the target is now (`pumpctl advance` sends
# it on Ctrl-C).
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


# **Simulator only**: injects a fault (or a physical act) into
# the simulated board's models (`hal/sim/`) from a chosen pump time on. The
# firmware is not told: it finds out as it would on a board, through its
# monitors and the motor checks (a stall when a step is due, the battery at
# the next monitor turn, once a minute).
#
# Request:
# kind: the fault (table below)
# at_s: pump time since boot, whole seconds, it takes effect; 0 or a time past: now
# value: what it does, per kind (below); for most kinds 1 starts the condition and 0 ends it
#
# Reply:
# kind: the fault scheduled
# at_mday: pump time it takes effect, millidays
# at_us: and microseconds
#
# **Refusals:** `kind` "fault kind N does not exist (0..9)"; `value` the
# model's reason for a value it cannot take (a charge above 1000 ‰, a jump of
# more than 500 s, a fill above the capacity), or "at most 16 faults may be
# pending; 16 are".
#
# **Notes:** a fault that takes effect now is looked at at once (a motor fault
# latches its alarm before the reply); a later one when the pump reaches its
# time.
#
# | kind | constant | name (`pumpctl.words.FAULT_NAMES`) | what the model does; `value` |
# |---|---|---|---|
# | 0 | `FAULT_MOTOR` | motor | the motor driver fails outright: the motor stops at once, for good (value unused):
#     motor fault alarm |
# | 1 | `FAULT_STALL` | stall | the rotor stops turning (an MRI field, a jammed gear): the driver's stall line goes
#     active; 1 starts, 0 ends: motor stall alarm when a step is due |
# | 2 | `FAULT_OCCLUSION` | occlusion | the outlet is blocked: pressure builds over the next steps until the occlusion
#     input trips; 1 starts, 0 ends: occlusion alarm |
# | 3 | `FAULT_ENCODER` | encoder | the head stops turning without a stall signal: the encoder sees no pulses; 1
#     starts, 0 ends: step not confirmed alarm |
# | 4 | `FAULT_CLOCK_JUMP` | clock-jump | the tick counter jumps forward `value` seconds (at most 500) at once: clock
#     jump alarm |
# | 5 | `FAULT_SENSOR_STUCK` | sensor-stuck | the reservoir sensor's reading freezes where it is; 1 starts, 0 ends:
#     the sensor parts from the count as delivery goes on (reservoir sensor disagrees) |
# | 6 | `FAULT_BATTERY` | battery | the cell's charge drops to `value` ‰ at once (an early ERI; at or below 30
#     critical, at or below 10 end of service) |
# | 7 | `FAULT_TASK` | task | the next battery read raises a RuntimeError (once; value unused): the monitoring task
#     fails, the watchdog alarm follows |
# | 8 | `FAULT_FILL` | fill | not a fault: a person fills the reservoir, which now holds `value` nL (up to its
#     capacity; program the refill with a fill line) |
# | 9 | `FAULT_LEAK` | leak | the reservoir loses `value` nL at once, none of it through the pump (reservoir sensor
#     disagrees) |
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


# **Simulator only**: reads one of the faults SIM_FAULT
# scheduled that are still to come, soonest first, and with `cancel` drops it
# (`pumpctl fault list`, `pumpctl fault cancel --value N`).
#
# Request:
# index: the fault, 0 = the soonest
# cancel: 1: drop it (the others keep their order and times); 0: only read it
#
# Reply:
# pending: faults still to come (before a cancel)
# kind: the fault (SIM_FAULT's table); `NO_FAULT` (255) when `index` is not below `pending`
# value: its value
# at_mday: pump time it takes effect, millidays
# at_us: and microseconds
#
# **Refusals:** `index` "no fault N is pending: M are (pumpctl fault list)"
# (a cancel only; a read past the last answers `NO_FAULT`).
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


# **Simulator only**: the physical models' view of the motor,
# the reservoir, the battery, the buzzer and the watchdog.
#
# Reply:
# motor_steps_hi: steps the model motor made or is making (issued, less those dropped) = hi × 2^29 + lo
# motor_steps_lo:
# motor_in_motion: of those, steps not finished yet
# motor_dropped: steps dropped by halts (faults) before they finished
# motor_halts: times a fault halted the motor
# true_step_volume_pl: what one step really moves in the model, pL
# speed: 0: pump time moves only by SIM_ADVANCE; N: N times the wall clock
# true_reservoir_nl: what the modelled reservoir really holds, nL; NO_TIME on a board without a reservoir sensor (the
#     simulator fits one with `--reservoir-nl`, `pumpctl sim --reservoir`)
# battery_permille: the modelled cell's true charge, ‰; 0xFFFF if none is modelled
# buzzer_plays: alarm tone patterns the buzzer sounded since boot
# buzzer_priority: the priority of the last one: 1 low, 2 medium, 3 high; 0 none yet
# watchdog_feeds: times the firmware fed the hardware watchdog
#
# **Refusals:** none.
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
