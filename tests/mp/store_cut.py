# A power cut in the middle of a save, on the MicroPython unix port, armed
# from the command line as the simulated board is (boards/sim.py):
#
#   micropython store_cut.py PHASE --storage DIR [--cut-after-bytes K]
#
#   save-a    save record A
#   save-b    save record B (the power fails after K bytes, if armed)
#   save-bc   save B, then C (K counts across both files)
#   load      print the newest valid record: `load SEQ TAG:LEN:CRC ...`
#   options   how the board reads the storage options
#
# A save that returns prints `saved SEQ`. The save runs in a task of the pump's loop (firmware/tasks.py)
# with a `finally`; the main task prints once the loop has run on, and a
# sys.atexit handler prints at exit: after a power cut none of them may run
# (an exception in the save task, even SystemExit, would run the `finally`).
#
# The records are plain data, so the test can import this file to know where
# each byte of them falls.

RECORD_A = [(1, b"A" * 10), (2, bytes(range(200)))]
RECORD_B = [(1, b"b" * 12), (2, bytes(range(100, 250))), (3, b"")]
RECORD_C = [(4, b"c" * 30)]


def main():
    import binascii
    import sys

    import boards.sim
    from firmware import tasks
    from firmware.main import parse_options
    from firmware.store import Store

    phase = sys.argv[1]
    options = parse_options(sys.argv[2:])
    if phase == "options":
        print("storage", boards.sim.make({}).storage)
        try:
            boards.sim.make({"cut-after-bytes": "3"})
            print("cut without storage accepted")
        except ValueError as e:
            print("refused", e)
        hw = boards.sim.make(options)
        print("armed", type(hw.storage).__name__, hw.storage.cut_left)
        return
    store = Store(boards.sim.make(options).storage)
    if phase == "load":
        got = store.load()
        if got is None:
            print("load none")
        else:
            seq, sections = got
            print(
                "load",
                seq,
                " ".join(
                    "%d:%d:%08x" % (t, len(sections[t]), binascii.crc32(sections[t]) & 0xFFFFFFFF)
                    for t in sorted(sections)
                ),
            )
        return
    records = {"save-a": [RECORD_A], "save-b": [RECORD_B], "save-bc": [RECORD_B, RECORD_C]}[phase]
    sys.atexit(lambda: print("atexit ran"))

    async def save():
        try:
            for record in records:
                print("saved", store.save(record))
        finally:
            print("finally ran")

    async def pump():
        tasks.create_task(save())
        await tasks.sleep_ms(20)  # the loop runs on, whatever became of the save task
        print("tasks ran")

    tasks.run(pump())


if __name__ == "__main__":
    main()
