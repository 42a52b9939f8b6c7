# A delayed bolus that a wrong program (checked against a 10x library, as in
# wrong_program.py) scheduled 30 h ahead, beyond what the commit's admission
# can see. When it is due, the pump checks it again against the last 24 h as
# they stand: 14.5 mg of basal in the day window plus a 1 mg bolus would pass
# morphine's 15 mg/day, so it does not start, and the dose-limit alarm rises.
from lenient_library import lenient_library

import boards.sim as board
from firmware.app import PumpApp
from firmware.commands.program import check_admission
from firmware.program import build_program

hw = board.make({})
app = PumpApp(board, hw)
lenient = lenient_library()
# The items pumpctl sends for: drug morphine 20 mg/mL; fill 20 mL; basal 14.5 mg/day; bolus 1 mg over 1 h after 30 h
wrong = build_program(
    [
        (1, "morphine", 0, 20000000, 0, 0, 0, 0, 0, 0),
        (3, "", 0, 20000000, 0, 0, 0, 0, 0, 0),
        (8, "", 1, 14500000, 0, 0, 0, 0, 0, 0),
        (10, "", 1, 1000000, 0, 3600, 0, 108000, 0, 0),
    ],
    lenient,
)
app.tick()
check_admission(app, wrong, app.timebase.total_us())  # the next 24 h hold no bolus: admitted
app.put_in_force(wrong, app.timebase.total_us())
clock = app.clock


def run_minutes(minutes):
    # A minute at a time: the tick counter's differences are valid within 2**29 us.
    for _ in range(minutes):
        clock.advance(60_000_000)
        app.tick()


run_minutes(30 * 60 - 1)
print("waiting", app.therapy.bolus_kind, app.alarm)
before = app.guard.delivered()
run_minutes(1)
print("at_start", app.therapy.bolus_kind, app.alarm)
run_minutes(60)
print("hour_steps", app.guard.delivered() - before)
for i in range(app.log.count):
    entry = app.log.get(i)
    # "{t53}": delayed bolus not started: why; "{t54}": its dose-limit alarm (pumpctl.sentences)
    if entry and ("{t53}" in entry[3] or "{t54}" in entry[3]):
        print("logged_%d" % entry[2], entry[0] * 86_400_000 + entry[1], entry[3])
