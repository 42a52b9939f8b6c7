# A plain continuous volume rate put in force now, for the tests and benches that dose a pump
# without a session (no drug in it; 0 stops). The pump itself never needs this: SET_RATE
# (firmware/commands/rate.py) is how a host sets a rate. Kept here, its bytecode is not on the
# pump's heap for the whole of its life (it was PumpApp.set_rate).
#
#   from rate_now import rate_now
#   rate_now(app, 500_000)  # 0.5 mL/day

from firmware.lazy import call


def rate_now(app, rate_nl_per_day):
    """Put a plain continuous rate of rate_nl_per_day nL/day in force at pump time now."""
    app.tick()
    program = call("firmware.program_check", "rate_program", rate_nl_per_day, app.library, app.therapy.drugs)
    app.put_in_force(program, app.timebase.total_us())
