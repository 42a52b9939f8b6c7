# Hardware abstraction: the only layer that touches the board (`machine`,
# `rp2`, stdio). Each driver offers a small interface the firmware core uses:
#
#   clock   ticks_us() -> int            wrapping tick counter, like time.ticks_us
#           ticks_diff(a, b) -> int      signed difference, valid within 2**29
#           sleep_us(us) -> awaitable    wait up to us microseconds of pump time (a plain function
#                                        returning one of tasks.py's waits: an async def would make a
#                                        coroutine object at every turn of the dosing loop)
#           wake()                       end a running sleep_us early (program changed)
#   motor   step(n)                      issue n steps (n >= 0), moved one after
#                                        another behind any still moving; returns
#                                        at once. A step once issued finishes: a
#                                        normal suspend issues no more and lets
#                                        the step in motion complete
#           halt()                       stop at once (a fault): the step in motion
#                                        and any queued behind it are dropped
#           poll(), backlog() -> int     (optional) a driver that hands steps on to its
#                                        hardware as room frees there: poll() does, and
#                                        backlog() says how many still wait; the dosing
#                                        task polls each turn, at least every 20 ms while
#                                        steps wait
#   serial  async read_byte() -> int     next byte from the host, waiting for it
#           read_ready() -> int          next byte if one is waiting, else -1
#           write(data)                  send bytes to the host
#           write_ready() -> bool        True if write() would not wait now
#           release()                    (optional) the firmware leaves for the REPL: give the
#                                        line back to it, Ctrl-C included
#   random_bytes(n) -> bytes             n bytes from the board's entropy source
#                                        (hal/entropy.py): session nonces
#   key_storage                          a storage driver (below) for the keys: the
#                                        provisioning file and the key store; None if
#                                        the board keeps no keys (then nothing needing
#                                        a key can be done)
#   storage begin(name)                  start rewriting file `name`: it is truncated,
#                                        and until end() returns it may hold any prefix
#                                        of what was appended (a power cut tears it)
#           extend(name)                 start appending to file `name` (made if
#                                        missing): until end() returns it holds its
#                                        old bytes and any prefix of what was appended
#           append(data)                 append bytes, a bytearray or a memoryview of
#                                        bytes to the file being written
#           end()                        flush and close it; durable when it returns
#           read_into(name, offset, buf) -> n
#                                        read len(buf) bytes at offset into buf, in
#                                        place (no buffer allocated); n is less only
#                                        where the file ends: 0 past its end or if the
#                                        file is missing
#           size(name) -> int            the file's length in bytes, or -1 if missing
#           One file is written at a time; names are plain file names (no folders).
#           A board without storage has hw.storage = None.
#
# The monitors (read by firmware/monitors.py), each optional: hw.X = None where the board has none.
#   reservoir volume_nl(density_mg_per_ml) -> int or None
#                                        the reservoir's contents in nL as the sensor
#                                        measures them (a load cell: mass / density);
#                                        None if no reading is ready now. Never blocks.
#   battery soc_permille() -> int        state of charge, 0..1000
#           voltage_mv() -> int          the cell's voltage
#           Either may raise OSError (a bus error): the firmware counts it a sensor fault.
#   stall   stalled() -> bool            the driver's stall line was active since clear()
#           clear()                      forget the stalls seen (before a recovery probe)
#   encoder missing(steps_issued) -> int encoder pulses owed by the steps issued since
#                                        restart() and not seen (0: every step confirmed)
#           restart(steps_issued)        count afresh from this step total
#   occlusion occluded() -> bool         the occlusion input (pressure or motor load) is active
#   buzzer  async play(priority)         sound one alarm pattern: 1 low, 2 medium, 3 high
#           silence()
#   watchdog start(), feed()             a hardware watchdog: once started it resets the
#                                        board unless fed within its timeout
#   reset_cause() -> str                 why the board last started: "power", "watchdog",
#                                        "reset" (a soft or hard reset) or "unknown"
#   firmware_check() -> list or None     the problems found checking the firmware's files
#                                        against the manifest written when it was flashed
#                                        ([] all match); None if there is no manifest (a
#                                        simulator run from the source tree)
#   motor_check() -> str or None         why the motor driver does not respond (None: it does)
#   clock.running() -> bool              the tick counter advances (checked at power-on)
#
# sim/ holds physical models of the same parts for the simulated board.
