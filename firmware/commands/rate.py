# A plain rate: a family of one command, so that a bench engineer's rate loads only this, not the
# programming family's code (several KB to load on a board).

from firmware import codec, eventlog
from firmware.commands import SAVES
from firmware.errors import Refusal
from firmware.lazy import call
from firmware.scheduler import MAX_RATE_NL_PER_DAY, MIN_RATE_NL_PER_DAY


# Runs a plain continuous volume rate now, for a pump
# with no drug in its reservoir (bench water, saline). A pump holding a drug
# is programmed with doses through STAGE_ITEM, STAGE and COMMIT.
#
# Request:
# rate_nl_per_day: the rate, nL/day: pumpctl reads what a person typed (a plain decimal, a point, no sign, no
#     exponent, a leading zero; `nL`, `uL` or `mL` per `s`, `min`, `h` or `day`; `firmware/units.py` `parse_rate`,
#     exact, rounded down only below 1 nL/day) and refuses anything unclear in full words before it sends anything
#
# Reply:
# rate_nl_per_day: the rate the pump now runs, nL/day (pumpctl checks it is the one sent)
# effective_mday: pump time the new rate took effect, millidays
# effective_us: and microseconds
#
# **Refusals** (field `rate`): "a rate of zero is not a program; stop the pump
# instead"; "240000001 nL/day is outside the pump's range of 1000 to 240000000
# nL/day (1 uL/day to 10 mL/h)"; "the pump holds morphine: program it with a
# dose in a programming session". (Until protocol 7 the rate travelled as text
# and the pump read it: a reason then could be cut at 100 bytes.)
#
# **Notes:** the running program becomes a basal of N nL/day; the scheduler
# carries the partial step over exactly.
def set_rate(pump, values):
    rate = values[0]  # nL/day, as pumpctl read it from what was typed
    if pump.therapy.drugs:
        raise Refusal(
            "rate", "the pump holds %s: program it with a dose in a programming session" % pump.therapy.drugs[0][0]
        )
    if not rate:
        raise Refusal("rate", "a rate of zero is not a program; stop the pump instead")
    # The pump's range, checked here too (check() would refuse it, with the program's words): a number
    # out of range is refused before the program's checks are loaded for it.
    if not MIN_RATE_NL_PER_DAY <= rate <= MAX_RATE_NL_PER_DAY:
        raise Refusal(
            "rate",
            "%d nL/day is outside the pump's range of %d to %d nL/day (1 uL/day to 10 mL/h)"
            % (rate, MIN_RATE_NL_PER_DAY, MAX_RATE_NL_PER_DAY),
        )
    # Straight to its program: a drug-free basal in range, which no check of a program's refuses
    # (program_write.plain_rate); the motor and monitors are asked before any change.
    program = call("firmware.program_write", "plain_rate", rate, pump.library.version)
    why = pump.monitors.dosing_refusal()
    if why is not None:
        raise Refusal("rate", why)
    pump.tick()
    pump.put_in_force(program, pump.timebase.total_us())
    pump.log_event(eventlog.EV_PROGRAM, "rate set to {v%d}" % rate)  # pumpctl writes "0.5 mL/day"
    return (rate, pump.timebase.mday, pump.timebase.us)


COMMANDS = ((codec.SET_RATE, set_rate, SAVES),)
