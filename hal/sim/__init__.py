# Simulated parts, used by boards/sim.py: a virtual clock (clock.py), a
# stepper model (motor.py) and its step tally (tally.py), storage that can
# lose its power mid-write (storage.py), and the monitored parts with the
# faults the host can inject into them: the reservoir and its sensor
# (reservoir.py), the battery (battery.py), the stall line, encoder and
# occlusion input (monitors.py), the buzzer (buzzer.py), the watchdog
# (watchdog.py) and the fault plan that drives them all at exact pump times
# (faults.py).
# They run on the MicroPython unix port (a 64-bit host); the firmware they
# serve is the same code that runs on a Pico.
