# Boots a board: picks the board file, builds its hardware, runs the pump.
#
#   micropython -m firmware.main --board sim [--speed N] [--storage DIR [--cut-after-bytes N]]
#
# On a real board this file is copied to the root as main.py and runs at
# power-up with the board named in its config (pumpctl flash writes both).

import sys


def parse_options(args):
    """Read "--key value" pairs into a dict of strings."""
    options = {}
    i = 0
    while i < len(args):
        key = args[i]
        if not key.startswith("--") or i + 1 >= len(args):
            raise ValueError("expected --option value, got %r" % key)
        options[key[2:]] = args[i + 1]
        i += 2
    return options


def main(args=None):
    if args is None:
        args = sys.argv[1:]
    options = parse_options(args)
    name = options.get("board", "sim")
    # The wire codec first, while the heap is whole: the pump needs it anyway, and a board that
    # cannot start needs it to say why (failed_to_start keeps it; importing it then may not fit).
    import firmware.framing  # noqa: F401

    board = __import__("boards." + name, None, None, ("NAME",), 0)
    hw = None
    try:
        hw = board.make(options)
        from firmware.app import PumpApp

        app = PumpApp(board, hw)
    except Exception as e:  # MemoryError too: the pump cannot run; say why (and where) on the link
        halt(getattr(hw, "motor", None))  # first of all
        sim = board.NAME == "sim"
        hw = board = None
        # What the failed start made goes next: a full heap may have no room for the code that reads
        # where it failed (failure.py). MicroPython's traceback is the files, lines and functions, no
        # frame, so it survives that.
        forget_the_start()
        try:
            from firmware.errors import explain  # a few hundred bytes, most often loaded already

            why = explain(e)
        except MemoryError:  # not even that fits
            why = "%s: %s" % (type(e).__name__, e)
        e = None
        failed_to_start(why, sim)
        return
    if getattr(hw, "sim", False):
        # The simulator's launcher waits for this line on stderr, which is
        # not the link; a real board has nowhere to print it.
        sys.stderr.write("pump ready: board %s, step %d pL\n" % (board.NAME, board.STEP_VOLUME_PL))
    app.run()
    app = hw = board = None
    free_for_the_repl()


def free_for_the_repl():
    """The pump left for the board's REPL (SERVICE, to be flashed): its tasks, objects and modules go, so
    the REPL has the heap whole. (The tasks still queued when run() returns, the link's, the
    telemetry's, the monitors', were dropped by it: tasks.run. Left queued, as asyncio left them,
    they held the pump, and on the emulated Pico a flash then failed to find 1 KB in a heap cut
    into pieces by the pump's objects.)"""
    import gc

    for name in list(sys.modules):  # but this module, and the watchdog's, whose timer feeds it (hal/watchdog.py)
        if name.split(".")[0] in ("firmware", "hal", "boards") and name not in ("firmware.main", "hal.watchdog"):
            del sys.modules[name]
    gc.collect()


def forget_the_start():
    """Drop the modules a failed start imported, but for the codec the answer needs, and collect."""
    import gc

    keep = (
        "firmware",
        "firmware.main",
        "firmware.codec",
        "firmware.framing",
        "firmware.auth",
        "firmware.errors",
        "micropython",
    )
    for name in list(sys.modules):
        if name not in keep:
            del sys.modules[name]
    gc.collect()


def halt(motor):
    """The motor of a start that failed off (None: the board was not built)."""
    if motor is not None:
        try:
            motor.halt()
        except Exception:
            pass  # a board whose driver failed: its enable line's pull-up keeps the driver off


def failed_to_start(why, sim):
    """The link answering why the start failed (its motor off and its memory freed before).
    sim: stderr is not the link (the simulator's launcher reads it); on a board it is the link."""
    if sim:
        sys.stderr.write("pump failed to start: %s\n" % why)
    try:
        from firmware.boot_failure import serve
    except MemoryError:  # not even the codec fits: the motor is off; the board's REPL takes the line
        return
    serve(why)


if __name__ == "__main__":
    main()
