# Boots a board: picks the board file, builds its hardware, runs the pump.
#
#   micropython -m firmware.main --board sim [--speed N] [--storage DIR [--cut-after-bytes N]]
#
# On a real board this file is copied to the root as main.py and runs at
# power-up with the board named in its config (the flashing issue).

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
    board = __import__("boards." + name, None, None, ("NAME",), 0)
    hw = board.make(options)

    from firmware.app import PumpApp

    app = PumpApp(board, hw)
    if getattr(hw, "sim", False):
        # The simulator's launcher waits for this line on stderr, which is
        # not the link; a real board has nowhere to print it.
        sys.stderr.write("pump ready: board %s, step %d pL\n" % (board.NAME, board.STEP_VOLUME_PL))
    app.run()


if __name__ == "__main__":
    main()
