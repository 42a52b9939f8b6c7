# A stopped pump's service: leave for the board's REPL (a firmware update),
# set the device clock, and calibrate the volume per step from weighings.

from firmware import codec, eventlog
from firmware.commands import SAVES
from firmware.errors import Refusal
from firmware.scheduler import STEP_RADIX
from firmware.therapy import BOLUS_NONE

# A calibration (CALIBRATE) may move the volume per step at most this far from
# the board's nominal one: further off means another head or tubing, or a
# weighing gone wrong, not a calibration.
CALIBRATION_MAX_DEVIATION_PPM = 200_000  # 20 %
# And the weighings behind it may spread (largest minus smallest over the
# mean) at most this much: the flow-accuracy requirement is 5 % (GIP 1.2.1),
# so the calibration under it must be tighter.
CALIBRATION_MAX_SPREAD_PPM = 20_000  # 2 %
# A new volume per step further than this from the one in force is stored only when
# confirmed (CALIBRATE confirm=CAL_CONFIRM) after the pump has shown it for the same weighings.
CALIBRATION_CONFIRM_CHANGE_PPM = 20_000  # 2 %
# The fluid weighed is bench water: its density in ug/mL, 0 to 45 degC (0.9902..0.99997 g/mL). A
# host can move the result through the density by at most this range, 1 %.
CALIBRATION_MIN_DENSITY = codec.CAL_MIN_DENSITY_UG_PER_ML  # 990_000
CALIBRATION_MAX_DENSITY = codec.CAL_MAX_DENSITY_UG_PER_ML  # 1_000_000
CALIBRATION_MAX_WEIGHINGS = 8
CALIBRATION_MIN_STEPS = 100  # fewer steps weigh too little to measure a volume per step
CALIBRATION_MAX_STEPS = 16_777_216  # 2**24 steps: about 870 mL at 52 nL, more than any reservoir


# A stopped pump leaves its program for the board's
# MicroPython REPL, so that it can be flashed (`pumpctl flash` asks for it: the
# firmware turns Ctrl-C off, since frames may hold 0x03). The reply goes out
# first; the state is saved, the dosing task ends at its next turn, and the line
# belongs to the REPL from then on (with Ctrl-C): no further frame is answered
# until the board boots the firmware again.
#
# **Refusals:** `mode` "the pump is continuous: stop it first (pumpctl stop),
# then ask again" (flex likewise), or while a bolus runs or waits. Logged
# (event 16).
def service(pump, values):
    """Leave the pump program for the board's REPL, so it can be flashed. Only a stopped pump
    leaves: nothing is dosing or waiting to dose, so nothing is cut short. The reply goes out
    first; the state is saved (a durable command), and the dosing task ends at its next turn."""
    _refuse_unless_stopped(pump, "ask again")
    pump.settle()  # stopped already: nothing reserved goes into the save before the REPL
    pump.log_event(eventlog.EV_SERVICE, "left for the board's REPL (service: a firmware update)")
    pump.leaving = True
    pump.clock.wake()
    return ()


def _refuse_unless_stopped(pump, then):
    """Refuse (mode) unless nothing is dosing or waiting to dose: no rate, no bolus."""
    pump.tick()
    mode = pump.mode()
    if mode != codec.MODE_STOPPED or pump.sched.rate or pump.therapy.bolus_kind != BOLUS_NONE:
        raise Refusal(
            "mode",
            "the pump is {m%d}: stop it first (pumpctl stop), then %s" % (mode, then),
        )


# Stages one weighing for CALIBRATE: the pump's own
# delivered-step count (STATUS `steps`) when the vessel was tared and when it
# was weighed, and the mass it gained. Index 0 drops any staged weighings and
# starts afresh; then 1, 2, ... in order, at most `CALIBRATION_MAX_WEIGHINGS`
# (8). The pump may be dosing meanwhile; nothing changes until CALIBRATE. Staged
# weighings are not saved: a restart drops them.
#
# Request:
# index: the weighing's number: 0 starts afresh
# from_steps_hi: the step count at tare = hi * 2**29 + lo
# from_steps_lo: (below 2**29)
# to_steps_hi: the step count at weighing, the pump stopped
# to_steps_lo: (below 2**29)
# mass_ug: the mass dispensed, micrograms, above 0
#
# Reply:
# weighings: weighings staged now
# steps: the steps of this one
#
# **Refusals:** `index` "weighing N is out of order: the next is M" or "at most
# 8 weighings"; `to_steps` "step count N is beyond this pump's M: weigh steps it
# has made" or "N steps: weigh 100 to 16777216 steps"; `from_steps` "the steps
# from N were weighed already" (a weighing starts at or after the previous one's
# end); `mass_ug` "a mass of 0 ug". Not logged (CALIBRATE logs the weighings it
# stores).
def cal_weighing(pump, values):
    """Stage one weighing for CALIBRATE: the pump's own delivered-step counts when the vessel
    was tared and when it was weighed (values it reported in STATUS), and the mass gained. The
    pump checks the steps are its own: made already (not beyond its count now), at least
    CALIBRATION_MIN_STEPS, and after the previous weighing's. It cannot check the mass."""
    index, from_hi, from_lo, to_hi, to_lo, mass_ug = values
    if index == 0:
        pump.staging.weighings = []
    w = pump.staging.weighings
    if index != len(w):
        raise Refusal("index", "weighing %d is out of order: the next is %d (0 starts afresh)" % (index, len(w)))
    if index >= CALIBRATION_MAX_WEIGHINGS:
        raise Refusal("index", "at most %d weighings" % CALIBRATION_MAX_WEIGHINGS)
    if from_lo >= STEP_RADIX or to_lo >= STEP_RADIX:
        raise Refusal("to_steps", "a step count's low word must be below %d" % STEP_RADIX)
    pump.tick()
    start = from_hi * STEP_RADIX + from_lo
    end = to_hi * STEP_RADIX + to_lo
    made = pump.guard.delivered()
    if end > made:
        raise Refusal("to_steps", "step count %d is beyond this pump's %d: weigh steps it has made" % (end, made))
    if w and start < w[-1][1]:
        raise Refusal("from_steps", "the steps from %d were weighed already (to %d)" % (start, w[-1][1]))
    steps = end - start
    if not CALIBRATION_MIN_STEPS <= steps <= CALIBRATION_MAX_STEPS:
        raise Refusal(
            "to_steps",
            "%d steps: weigh %d to %d steps" % (steps, CALIBRATION_MIN_STEPS, CALIBRATION_MAX_STEPS),
        )
    if not mass_ug:
        raise Refusal("mass_ug", "a mass of 0 ug: weigh what the steps dispensed")
    w.append((start, end, mass_ug))
    return (len(w), steps)


# A stopped pump computes a new volume per step from the
# weighings staged with CAL_WEIGHING (`pumpctl calibrate`,
# `host/pumpctl/calibrate.py`): nothing states a volume per step. For each
# weighing it computes `mass_ug * 10**9 / (density_ug_per_ml * steps)` pL,
# rounded to the nearest pL (half up); their mean, rounded to the nearest pL;
# the spread, (largest - smallest) / mean, and the change from the volume in
# force, |new - previous| / previous, both in ppm rounded up. It refuses fewer
# than 2 weighings, a spread over `CALIBRATION_MAX_SPREAD_PPM` (2 %), a mean
# more than `CALIBRATION_MAX_DEVIATION_PPM` (20 %) from its board's volume, and
# a density outside `CAL_MIN_DENSITY_UG_PER_ML`..`CAL_MAX_DENSITY_UG_PER_ML`
# (bench water, 0 to 45 degC). A change over `CALIBRATION_CONFIRM_CHANGE_PPM`
# (2 %) is stored only with `confirm` 1 (`CAL_CONFIRM`), and only after the pump
# has shown it (a refusal of it with `confirm` 0, or `confirm` 2) for the same staged weighings
# and density: a review, then a confirmation. On storing, the pump re-bases its
# reservoir count at the old volume, rescales the dose guard's windows to steps
# of the new one (rounding up: never less drug than was delivered), logs each
# weighing (event 23: "weighing 1/4: 2000 steps (0..2000), 99820 ug, 50000 pL
# per step") and then the result ("step volume 50000 pL, was 52083 pL: 4
# weighings at 998200 ug/mL, spread 400 ppm, confirmed"), drops the staged
# weighings, and keeps the value across restarts. HELLO and STATUS report it as
# `step_volume_pl` from then on.
#
# Request:
# weighings: how many weighings are staged: 2 or more, and exactly those staged
# density_ug_per_ml: the water's density, ug/mL: 990000..1000000
# confirm: 0 (`CAL_STORE`): store unless the change is over 2 %; 1 (`CAL_CONFIRM`): store, confirming a change shown
#     for these weighings; 2 (`CAL_CHECK`): compute and answer, store nothing
#
# Reply:
# step_volume_pl: the mean volume per step the pump computed, pL
# previous_pl: the one in force before
# spread_ppm: (largest - smallest) / mean, ppm, rounded up
# change_ppm: |new - previous| / previous, ppm, rounded up
# stored: 1 if the new volume is in force now, 0 for a check
#
# **Refusals:** `mode` "the pump is continuous: stop it first (pumpctl stop),
# then calibrate"; `weighings` "N weighings are staged, not M" or "a calibration
# needs at least 2 weighings"; `density_ug_per_ml` "D ug/mL is not bench
# water"; `step_volume_pl` "N pL per step is more than 20 % from this board's M
# pL"; `spread_ppm` "the weighings spread X %, more than 2 %: weigh again";
# `confirm` "N pL per step, was M pL: a change of X % needs confirming
# (confirm=1)" (nothing stored; the pump has now shown it). Logged (event 23)
# and saved at once when stored.
#
# What the pump can check: that each weighing's steps are steps it made (not
# beyond its own delivered-step count), at least 100 of them, not counted twice,
# and the arithmetic. What it cannot: that the vessel was tared and weighed at
# those counts, that the mass is what the balance read, and that the fluid is
# water. Those rest on the clinician's key, the review of a large change and the
# log of the raw data.
def calibrate(pump, values):
    """A new volume per step, computed by the pump from the staged weighings (pumpctl
    calibrate): each weighing's mass_ug * 10**9 / (density * steps) pL, rounded to the nearest
    pL; their mean rounded to the nearest; the spread (largest - smallest) / mean and the change
    from the volume in force, in ppm rounded up. Only a stopped pump stores it; a change over
    CALIBRATION_CONFIRM_CHANGE_PPM only when confirmed. On storing, the reservoir count is
    re-based at the old volume, the guard's windows rescaled to the new steps (rounding up),
    the weighings and the result logged, and it is saved at once (a durable command)."""
    n, density, confirm = values
    _refuse_unless_stopped(pump, "calibrate")
    w = pump.staging.weighings
    if confirm > codec.CAL_CHECK:
        raise Refusal("confirm", "confirm must be 0 (store), 1 (confirm a change) or 2 (check)")
    if n != len(w):
        raise Refusal("weighings", "%d weighings are staged, not %d: stage each with CAL_WEIGHING" % (len(w), n))
    if n < 2:
        raise Refusal("weighings", "a calibration needs at least 2 weighings (at two or more rates), not %d" % n)
    if not CALIBRATION_MIN_DENSITY <= density <= CALIBRATION_MAX_DENSITY:
        raise Refusal(
            "density_ug_per_ml",
            "%d ug/mL is not bench water: give %d..%d" % (density, CALIBRATION_MIN_DENSITY, CALIBRATION_MAX_DENSITY),
        )
    per_step = []
    for start, end, mass_ug in w:  # exact: mass * 10**9 pL/mL over density * steps, to the nearest pL
        den = density * (end - start)
        per_step.append((2 * mass_ug * 1_000_000_000 + den) // (2 * den))
    new = (2 * sum(per_step) + n) // (2 * n)
    spread = -(-(max(per_step) - min(per_step)) * 1_000_000 // new)
    nominal = pump.board.STEP_VOLUME_PL
    if abs(new - nominal) * 1_000_000 > CALIBRATION_MAX_DEVIATION_PPM * nominal:
        raise Refusal(
            "step_volume_pl",
            "%d pL per step is more than %d %% from this board's %d pL: check the head and the tubing, "
            "then weigh again" % (new, CALIBRATION_MAX_DEVIATION_PPM // 10_000, nominal),
        )
    if spread > CALIBRATION_MAX_SPREAD_PPM:
        raise Refusal(
            "spread_ppm",
            "the weighings spread %d.%02d %%, more than %d %%: weigh again"
            % (spread // 10_000, spread // 100 % 100, CALIBRATION_MAX_SPREAD_PPM // 10_000),
        )
    previous = pump.sched.step_pl
    change = -(-abs(new - previous) * 1_000_000 // previous)
    staged = (tuple(w), density)
    shown = pump.staging.cal_shown == staged  # the same weighings, staged again, still match
    if confirm != codec.CAL_CONFIRM:  # shown: checked, or refused for want of a confirmation
        pump.staging.cal_shown = staged
    if confirm == codec.CAL_CHECK:
        return (new, previous, spread, change, 0)
    if change > CALIBRATION_CONFIRM_CHANGE_PPM and not (confirm == codec.CAL_CONFIRM and shown):
        raise Refusal(
            "confirm",
            "%d pL per step, was %d pL: a change of %d.%02d %% needs confirming (confirm=1)"
            % (new, previous, change // 10_000, change // 100 % 100),
        )
    left = pump.reservoir_nl()
    if left is not None:  # what the steps so far moved, at the volume they moved
        pump.fill_nl = left
        pump.fill_steps = pump.guard.delivered()
    pump.set_step_volume(new)
    pump.apply(pump.timebase.total_us())
    pump.monitors.set_marks()
    for i in range(n):
        start, end, mass_ug = w[i]
        pump.log_event(
            eventlog.EV_CALIBRATION,
            "weighing %d/%d: %d steps (%d..%d), %d ug, %d pL per step"
            % (i + 1, n, end - start, start, end, mass_ug, per_step[i]),
        )
    pump.log_event(
        eventlog.EV_CALIBRATION,
        "step volume %d pL, was %d pL: %d weighings at %d ug/mL, spread %d ppm%s"
        % (new, previous, n, density, spread, ", confirmed" if change > CALIBRATION_CONFIRM_CHANGE_PPM else ""),
    )
    pump.staging.weighings = []
    pump.staging.cal_shown = None
    return (new, previous, spread, change, 1)


# Sets the device clock, which flex schedules run on.
#
# Request:
# clock_s: local wall time now, seconds since 1970-01-01 00:00 (naive local time, no time zone)
#
# Reply:
# clock_s: the time set
#
# **Refusals:** none. Logged (event 8). A running flex schedule moves back
# onto the clock by at most half its last step per day (see the README).
def clock_set(pump, values):
    (clock_s,) = values
    pump.tick()
    now = pump.timebase.total_us()
    was_us = pump.therapy.clock_us(now)
    pump.therapy.set_clock(now, clock_s * 1_000_000)
    pump.set_event(pump.therapy.next_event(now))
    pump.run_events()
    pump.clock.wake()
    # Both values, as tokens pumpctl writes as dates and times (the old one to the second, rounded down).
    was = "not set" if was_us is None else "{d%d}" % (was_us // 1_000_000)
    pump.log_event(eventlog.EV_CLOCK, "clock set to {d%d}, was %s" % (clock_s, was))
    return (clock_s,)


COMMANDS = (
    (codec.SERVICE, service, SAVES),
    (codec.CLOCK_SET, clock_set, SAVES),
    (codec.CAL_WEIGHING, cal_weighing, 0),
    (codec.CALIBRATE, calibrate, SAVES),
)
