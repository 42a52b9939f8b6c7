# Simulated storage with a power cut: files in a folder of the host (the
# FileStorage driver), and, when armed, the power fails after exactly
# cut_after_bytes more bytes have been appended, counted across appends and
# files from the moment it was armed.
#
# The append that reaches the cut writes only its bytes up to the cut, hands
# them to the OS (flush(): an fsync on the unix port), and the process dies
# there and then. A cut of 0 dies at the first append, writing nothing of it
# (the file begin() truncated stays empty); a cut that falls exactly at the
# end of an append writes all of it, then dies before anything else happens.
#
# How it dies. A power cut runs no more code: no `finally`, no atexit, no
# asyncio task, no flush of anything else. Tried on the installed unix port
# (MicroPython 1.29 preview): it has no os._exit, os.kill or ffi;
# sys.exit() and machine.soft_reset() raise SystemExit, which runs finally
# blocks and sys.atexit handlers; machine.mem8 needs /dev/mem (OSError).
# What it has is os.system(): `/bin/sh -c "kill -KILL $PPID"` is a child of
# this process, and SIGKILL cannot be caught, so the kernel ends the process
# while it waits in os.system, before any Python runs again (strace: the
# shell calls kill(<micropython's pid>, SIGKILL) while micropython sits in
# wait4, and micropython is "killed by SIGKILL"). The exit status is
# therefore -9 to subprocess (137 in a shell): CUT_SIGNAL. It works the same
# under CPython. Should the kill ever fail (no /bin/sh), power_cut() raises
# PowerCutFailed rather than carry on as if the power were still on.

import os

from hal.file_storage import FileStorage

CUT_SIGNAL = 9  # SIGKILL: the process ends with exit status -9 (subprocess) / 137 (shell)


class PowerCutFailed(BaseException):
    """The simulated power cut did not kill the process (not an Exception: nothing should catch it)."""


def power_cut():
    """End this process at once, as a power cut would: SIGKILL, no Python code after it."""
    status = os.system("kill -KILL $PPID")
    raise PowerCutFailed("simulated power cut: `kill -KILL $PPID` returned %r and the process lives on" % status)


class SimStorage(FileStorage):
    def __init__(self, directory, cut_after_bytes=None):
        super().__init__(directory)
        self.arm(cut_after_bytes)

    def arm(self, cut_after_bytes):
        """Cut the power after cut_after_bytes more appended bytes (None: never)."""
        if cut_after_bytes is not None and cut_after_bytes < 0:
            raise ValueError("cut_after_bytes must be None or >= 0")
        self.cut_left = cut_after_bytes  # bytes still to be appended before the cut

    def append(self, data):
        left = self.cut_left
        if left is None:
            self._file.write(data)
            return
        n = len(data)
        if n < left:
            self._file.write(data)
            self.cut_left = left - n
            return
        if left:
            self._file.write(memoryview(data)[:left])
        self._file.flush()
        power_cut()
