# A deliberately wrong program reaches the therapy (as if a bug skipped the
# library check: it was checked against a library with a 10x morphine limit)
# and runs for two days on the sim board. The dose guard, configured from
# the pump's own library, must hold every 24 h window at the real limit,
# raise the dose-limit alarm and cancel the running bolus.
from lenient_library import lenient_library

import boards.sim as board
from firmware.app import PumpApp
from firmware.commands.program import check_admission
from firmware.program import build_program

hw = board.make({})
app = PumpApp(board, hw)
lenient = lenient_library()
# The items pumpctl sends for: drug morphine 20 mg/mL; fill 20 mL; basal 30 mg/day; bolus 5 mg over 20 h
ITEMS = [
    (1, "morphine", 0, 20000000, 0, 0, 0, 0, 0, 0),
    (3, "", 0, 20000000, 0, 0, 0, 0, 0, 0),
    (8, "", 1, 30000000, 0, 0, 0, 0, 0, 0),
    (10, "", 1, 5000000, 0, 72000, 0, 0, 0, 0),
]
wrong = build_program(ITEMS, lenient)
app.tick()
# Before it runs: the guard's own admission check refuses the wrong program
# (its bolus first), then without the bolus (its day), from its limits alone.
for key, program in (("with_bolus", wrong), ("basal_only", build_program(ITEMS[:3], lenient))):
    try:
        check_admission(app, program, app.timebase.total_us())
        print("admission_" + key, "accepted")
    except Exception as e:
        print("admission_" + key, e.field + ":", e.message)
app.put_in_force(wrong, app.timebase.total_us())
print("limit", app.guard.day_limit, app.guard.hour_limit)
clock = hw.clock
per_minute = []
last = 0
bolus_at_alarm = None
for minute in range(2 * 24 * 60):
    clock.advance(60_000_000)
    app.tick()
    total = app.guard.delivered()
    per_minute.append(total - last)
    last = total
    if app.alarm and bolus_at_alarm is None:
        bolus_at_alarm = (minute, app.therapy.bolus_kind)
worst = 0
window = sum(per_minute[:1440])
worst = window
for i in range(1440, len(per_minute)):
    window += per_minute[i] - per_minute[i - 1440]
    worst = max(worst, window)
motor = hw.motor.steps_hi * 536870912 + hw.motor.steps_lo
print("alarm", app.alarm, "tripped", app.guard.tripped, "refused", app.guard.refused_steps > 0)
print("worst_24h_steps", worst, "motor_equals_guard", motor == app.guard.delivered())
print("bolus_after_alarm", bolus_at_alarm[1] if bolus_at_alarm else None, "alarm_minute", bolus_at_alarm[0])
# "{t51}": bolus cancelled by the alarm (pumpctl.sentences)
print("cancel_logged", any(app.log.get(i) and app.log.get(i)[3] == "{t51}" for i in range(app.log.count)))
