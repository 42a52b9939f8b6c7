# The guard's saved state on a MicroPython VM: a day of deliveries across a
# change of fluid, saved, restored into a fresh guard, and compared: the
# windows, the counts and what it lets through next must be the same.
from firmware.guard import DoseGuard
from firmware.guard_records import restore_guard

MDAY = 86_400_000
A = (("a", 100_000, 5_000, 400, 300),)
B = (("b", 100_000, 5_000, 400, 300),)


def drive(g, t0, n):
    total = 0
    for k in range(n):
        t = t0 + k * 7_000_000
        total += g.permit(t // MDAY, t % MDAY, 3)
    return total


g = DoseGuard(10_000)
g.set_fluid(A)
got = drive(g, 0, 2000)
g.set_fluid(B)  # a departs: its totals are kept for its return
got += drive(g, 2000 * 7_000_000, 300)
ints, departed, ring = g.saved_state()
h = DoseGuard(10_000)
restore_guard(h, ints, departed, bytes(ring), B)
now = 2300 * 7_000_000
print("saved", len(bytes(ring)), got)
print("windows", g.window_steps(now // MDAY, now % MDAY) == h.window_steps(now // MDAY, now % MDAY), h.day_sum)
print("same", g.delivered() == h.delivered(), g.tripped == h.tripped, g.refused_steps == h.refused_steps)
g.set_fluid(A)
h.set_fluid(A)
print("back", g.window_steps(now // MDAY, now % MDAY) == h.window_steps(now // MDAY, now % MDAY))
print("next", drive(g, now, 500) == drive(h, now, 500))
