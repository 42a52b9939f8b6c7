# The patient's bolus: a family of one command, so that the patient's request loads only this (the
# programming family is several KB of code to load on a board, more than a patient's command may
# cost beside its own dose guard check).

from firmware import codec, eventlog
from firmware.commands import SAVES
from firmware.errors import Refusal
from firmware.lazy import call
from firmware.program import US_PER_DAY
from firmware.therapy import BOLUS_NONE, BOLUS_PATIENT, US_PER_MIN


# The patient asks for the bolus the running program
# allows (its `patient-bolus` line).
#
# Reply:
# volume_nl: volume of the bolus, nL
# duration_s: it runs over this many seconds (rounded up)
#
# **Refusals** (field `patient-bolus`, each also logged as event 5): "no
# bolus while an alarm is active (...)"; "the program allows no patient
# bolus"; "a bolus is running or waiting" (or patient-bolus, prime); "a
# bridge after a refill is running"; "locked out for another N min"; "N of M
# patient boluses already taken in the last 24 h"; the dose guard's
# refusals.
def patient_bolus(pump, values):
    pump.tick()
    now = pump.timebase.total_us()
    reason = pump.bolus_refusal()
    if reason is None:
        reason = _refusal(pump.therapy, now)
    if reason is None:
        candidate = pump.therapy.fork()
        _start(candidate, now)
        try:
            pump.admit(candidate, now)
        except Refusal as e:
            reason = e.message
    if reason is not None:
        pump.log_event(eventlog.EV_PATIENT_REFUSED, reason)
        raise Refusal("patient-bolus", reason)
    _start(pump.therapy, now)
    pump.apply(now)
    t = pump.therapy
    pump.log_event(eventlog.EV_BOLUS, "patient bolus {n%d}" % t.bolus_volume_nl)  # pumpctl writes "10 uL"
    call("firmware.forecast", "log_low", pump, now)  # the reservoir, and when it reaches the low volume
    return (t.bolus_volume_nl, -(-(t.bolus_end - now) // 1_000_000))


# The therapy's side of a patient bolus, here rather than in therapy.py: only this command asks.


def _refusal(t, now):
    """Why a patient bolus cannot start now on therapy t (text), or None if it can."""
    p = t.program
    if p is None or p.patient is None:
        return "the program allows no patient bolus"
    if t.bolus_kind != BOLUS_NONE:
        return "a {b%d} is running or waiting" % t.bolus_kind
    if t.bridge_drugs is not None:
        return "a bridge after a refill is running"
    _kind, _amount, _dur, lockout_us, max_per_day = p.patient
    times = t.patient_times = [x for x in t.patient_times if x > now - US_PER_DAY]
    if times and now < times[-1] + lockout_us:
        wait = times[-1] + lockout_us - now
        return "locked out for another %d min" % -(-wait // US_PER_MIN)
    if len(times) >= max_per_day:
        return "%d of %d patient boluses already taken in the last 24 h" % (len(times), max_per_day)
    return None


def _start(t, now):
    """Start the program's patient bolus on therapy t now (_refusal found none)."""
    p = t.program
    kind, amount, duration_us, _lockout, _count = p.patient  # pyright: ignore (_refusal checked it)
    t._start_bolus(BOLUS_PATIENT, now, p.volume(kind, amount, t.fluid()), duration_us)
    t.patient_times.append(now)


COMMANDS = ((codec.PATIENT_BOLUS, patient_bolus, SAVES),)
