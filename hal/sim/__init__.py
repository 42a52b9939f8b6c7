# Simulated parts: a virtual clock, a stepper model and storage that can
# lose its power mid-write, used by boards/sim.py.
# They run on the MicroPython unix port (a 64-bit host); the firmware they
# serve is the same code that runs on a Pico.
