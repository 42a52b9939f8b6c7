# The hardware watchdog (machine.WDT): once started it cannot be stopped or
# slowed down, and it resets the board unless fed within its timeout. So the
# board builds this object but does not start it: the firmware calls start()
# when it is ready to feed it, and should feed only after the dosing and
# sensor checks pass (DESIGN.md).
#
# Limits: on an RP2040 the watchdog counts a 24-bit value at 1 MHz (in
# MicroPython, 2 ticks per us on RP2040-E1 silicon), so its longest timeout is
# 8388 ms (peers.md, "Step timing"; the MicroPython rp2 port refuses more).
# The ESP32's task watchdog takes far longer timeouts; its board passes its
# own limit.

from firmware import const

RP2_MAX_TIMEOUT_MS = const(8388)


_service_timer = None  # the timer that feeds the watchdog at the REPL (keep_fed), once the pump has left


class Watchdog:
    def __init__(self, timeout_ms, max_timeout_ms=RP2_MAX_TIMEOUT_MS, port="an rp2", make_wdt=None, make_timer=None):
        """make_wdt(timeout_ms) -> a started machine.WDT; default: machine.WDT(timeout=timeout_ms).
        make_timer() -> a machine.Timer for keep_fed() (the board's: ports number them differently)."""
        if not isinstance(timeout_ms, int) or not 1 <= timeout_ms <= max_timeout_ms:
            raise ValueError("watchdog timeout must be 1..%d ms on %s, not %r" % (max_timeout_ms, port, timeout_ms))
        self.timeout_ms = timeout_ms
        self._make_wdt = make_wdt
        self._make_timer = make_timer
        self._wdt = None
        self._timer = None  # feeding the watchdog in service mode (keep_fed)

    @property
    def started(self):
        return self._wdt is not None

    def start(self):
        """Start the watchdog. It cannot be stopped afterwards: feed() it or the board resets."""
        if self._wdt is None:
            make = self._make_wdt
            if make is None:
                from machine import WDT

                self._wdt = WDT(timeout=self.timeout_ms)
            else:
                self._wdt = make(self.timeout_ms)

    def keep_fed(self):
        """The firmware left for the board's REPL (SERVICE, to be flashed). The watchdog
        cannot be stopped, and nothing at the REPL feeds it: a periodic timer does from
        now on, at half its timeout, so a flash is not cut short by a reset. Until the next
        reset, which boots the pump again (and starts the watchdog afresh). Nothing if it
        was never started, or without a timer (then the REPL has the timeout to finish)."""
        if self._wdt is None or self._timer is not None or self._make_timer is None:
            return False
        wdt = self._wdt

        def feed(_timer):
            wdt.feed()

        timer = self._make_timer()
        timer.init(period=max(self.timeout_ms // 2, 1), mode=timer.PERIODIC, callback=feed)
        self._timer = timer
        # Held by this module too, which the REPL keeps (firmware/main.py free_for_the_repl): the
        # pump's own objects go once it has left, and on an RP2040 a Timer nothing refers to is
        # collected and stops, so the watchdog bit in the middle of a flash (the emulated Pico).
        global _service_timer
        _service_timer = timer
        wdt.feed()
        return True

    def feed(self):
        """Feed it (nothing before start())."""
        wdt = self._wdt
        if wdt is not None:
            wdt.feed()
