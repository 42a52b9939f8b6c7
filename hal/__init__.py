# Hardware abstraction: the only layer that touches the board (`machine`,
# `rp2`, stdio). Each driver offers a small interface the firmware core uses:
#
#   clock   ticks_us() -> int            wrapping tick counter, like time.ticks_us
#           ticks_diff(a, b) -> int      signed difference, valid within 2**29
#           async sleep_us(us)           wait up to us microseconds of pump time
#           wake()                       end a running sleep_us early (program changed)
#   motor   step(n)                      issue n steps (n >= 0), moved one after
#                                        another behind any still moving; returns
#                                        at once. A step once issued finishes: a
#                                        normal suspend issues no more and lets
#                                        the step in motion complete
#           halt()                       stop at once (a fault): the step in motion
#                                        and any queued behind it are dropped
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
# sim/ holds physical models of the same parts for the simulated board.
