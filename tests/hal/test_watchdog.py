"""hal/watchdog.py: the timeout an RP2040 can hold, started only when asked, fed in service mode."""

import sys
from pathlib import Path

import pytest

from hal.watchdog import Watchdog

ROOT = Path(__file__).resolve().parents[2]


# -- watchdog, buzzer, clock -----------------------------------------------------


def test_watchdog_refuses_a_timeout_the_rp2_cannot_hold_and_starts_only_when_asked():
    with pytest.raises(ValueError, match=r"^watchdog timeout must be 1..8388 ms on an rp2, not 10000$"):
        Watchdog(10_000)
    made = []

    class WDT:
        fed = 0

        def feed(self):
            WDT.fed += 1

    w = Watchdog(8_388, make_wdt=lambda ms: made.append(ms) or WDT())
    w.feed()  # not started: nothing
    assert not w.started and made == []
    w.start()
    w.start()
    w.feed()
    assert made == [8_388] and WDT.fed == 1 and w.started


def test_in_service_mode_a_timer_feeds_the_watchdog_at_half_its_timeout():
    class WDT:
        fed = 0

        def feed(self):
            WDT.fed += 1

    class Timer:
        PERIODIC = 1
        made = []

        def __init__(self):
            Timer.made.append(self)

        def init(self, period, mode, callback):
            self.period, self.mode, self.callback = period, mode, callback

    w = Watchdog(8_388, make_wdt=lambda ms: WDT(), make_timer=Timer)
    assert w.keep_fed() is False and Timer.made == []  # never started: nothing to keep fed
    w.start()
    assert w.keep_fed() is True and WDT.fed == 1  # fed at once, then by the timer
    [timer] = Timer.made
    assert (timer.period, timer.mode) == (4_194, Timer.PERIODIC)
    # held by the module, which the REPL keeps, not only by the pump's objects, which go (firmware/main.py)
    assert sys.modules[Watchdog.__module__]._service_timer is timer
    for _ in range(3):
        timer.callback(timer)
    assert WDT.fed == 4
    assert w.keep_fed() is False and len(Timer.made) == 1  # one timer, however often asked
    untimed = Watchdog(100, make_wdt=lambda ms: WDT())
    untimed.start()
    assert untimed.keep_fed() is False  # a board without a timer: the REPL has the timeout to finish
