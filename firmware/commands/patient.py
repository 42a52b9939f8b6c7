# The patient's bolus: a family of one command, so that the patient's request loads only this (the
# programming family is several KB of code to load on a board, more than a patient's command may
# cost beside its own dose guard check).

from firmware import codec, eventlog
from firmware.commands import SAVES
from firmware.errors import Refusal
from firmware.lazy import call


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
        reason = pump.therapy.patient_refusal(now)
    if reason is None:
        candidate = pump.therapy.fork()
        candidate.start_patient_bolus(now)
        try:
            pump.admit(candidate, now)
        except Refusal as e:
            reason = e.message
    if reason is not None:
        pump.log_event(eventlog.EV_PATIENT_REFUSED, reason)
        raise Refusal("patient-bolus", reason)
    pump.therapy.start_patient_bolus(now)
    pump.apply(now)
    t = pump.therapy
    pump.log_event(eventlog.EV_BOLUS, "patient bolus {n%d}" % t.bolus_volume_nl)  # pumpctl writes "10 uL"
    call("firmware.forecast", "log_low", pump, now)  # the reservoir, and when it reaches the low volume
    return (t.bolus_volume_nl, -(-(t.bolus_end - now) // 1_000_000))


COMMANDS = ((codec.PATIENT_BOLUS, patient_bolus, SAVES),)
