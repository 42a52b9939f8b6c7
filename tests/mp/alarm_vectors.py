# The alarm set (firmware/alarms.py) on any VM: the same script on CPython, the
# unix port and the 32-bit VM must print the same lines. The queries the
# dosing and tones tasks make every turn (mask, sounding, silenced_us) run
# under the heap lock where there is one.
from heaplock import heap_lock_works, lock, unlock

from firmware import codec
from firmware.alarms import SILENCE_US, AlarmSet
from firmware.restore import restore_alarms

BIG = 40 * 86_400_000_000  # 40 days of pump time in us: a long int on a 32-bit port


def show(a, now, what):
    entries = [a.entry(i) for i in range(a.count())]
    print(what, a.mask, a.highest(), a.bolus_blocker(), a.sounding(now), a.silenced_us(now), entries)


a = AlarmSet()
show(a, 0, "empty")
print("raised", a.raise_alarm(codec.ALARM_RESERVOIR_LOW, BIG, "low reservoir", active=True))
print("again", a.raise_alarm(codec.ALARM_RESERVOIR_LOW, BIG + 5, "low reservoir"))
show(a, BIG, "low")
print("ack", a.acknowledge(codec.ALARM_RESERVOIR_LOW))
show(a, BIG, "low acked, still present")
print("silence", a.silence(BIG))
show(a, BIG + SILENCE_US - 1, "silenced")
show(a, BIG + SILENCE_US, "silence over")
a.silence(BIG + 1)
print("raised", a.raise_alarm(codec.ALARM_STALL, BIG + 2, "motor stall", active=True))
show(a, BIG + 3, "a new alarm ends the silence")
print("restart", a.raise_alarm(codec.ALARM_RESTART, BIG + 4, "restart"))
show(a, BIG + 4, "three")
print("clear", a.clear(codec.ALARM_RESERVOIR_LOW), a.clear(codec.ALARM_RESERVOIR_LOW))
show(a, BIG + 5, "low gone: it was acknowledged")
print("ack all", a.acknowledge())
show(a, BIG + 6, "stall stays: still present")
print("clear", a.clear(codec.ALARM_STALL))
show(a, BIG + 7, "none")
a.raise_alarm(codec.ALARM_CLOCK_JUMP, BIG, "clock jump")
a.raise_alarm(codec.ALARM_BATTERY_EOS, BIG, "end of service", active=True)
saved = a.saved()
b = AlarmSet()
restore_alarms(b, saved)
print("restored", b.saved() == saved, b.mask == a.mask, b.silenced_us(0))
try:
    restore_alarms(b, ["99 0 0 0 unknown"])
except ValueError as e:
    print("refused", e)

# The per-turn queries allocate nothing.
locked = heap_lock_works()
lock()
try:
    total = 0
    for i in range(1000):
        total += a.sounding(i) + a.mask + a.silenced_us(i)
finally:
    unlock()
print("per-turn", total, locked or "no heap lock here")
