# hal/parts.py for what only the esp32 port has: the RMT channel of the step driver.


def esp32_rmt_factory(channel, step, clock_div):
    """A callable returning a fresh esp32.RMT on the STEP pin, idle low (hal/esp32_stepper.py halts by
    deinit()-ing the channel and asking for a new one)."""

    def make():
        import esp32
        from machine import Pin

        return esp32.RMT(channel, pin=Pin(step, Pin.OUT, value=0), clock_div=clock_div, idle_level=False)

    return make
