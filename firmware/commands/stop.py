# Stop: a family of one command, so that stopping the pump loads only this (a program family is several
# KB of code to load on a board; a stop should cost the least of any command, whatever came before it).

from firmware import codec, eventlog
from firmware.commands import SAVES
from firmware.therapy import BOLUS_NONE


# Stopped mode: no delivery; cancels any bolus. The step
# in motion finishes (a normal suspend).
#
# Reply:
# effective_mday: pump time it stopped, millidays
# effective_us: and microseconds
#
# **Refusals:** none. Logged (event 10).
def stop(pump, values):
    """A normal suspend: the step in progress finishes; any bolus is cancelled."""
    pump.tick()
    now = pump.timebase.total_us()
    t = pump.therapy
    why = "stopped by command"
    if t.bolus_kind != BOLUS_NONE:
        why += "; " + t.cancelled_text("{b%d}" % t.bolus_kind, now)
    t.stop(now)
    pump.apply(now)
    pump.log_event(eventlog.EV_STOP, why)
    return (pump.timebase.mday, pump.timebase.us)


COMMANDS = ((codec.STOP, stop, SAVES),)
