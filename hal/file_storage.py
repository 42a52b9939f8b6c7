# Storage on a filesystem: the storage driver of hal/__init__.py over plain
# open()/write()/readinto()/seek() and os.stat(), the calls that MicroPython
# offers on a board's littlefs (rp2, ESP32) and on the unix port, and that
# CPython offers too.
#
# Durability. end() flushes and closes the file. On MicroPython's unix port
# flush() is an fsync(2) and write() goes straight to write(2) (no buffer in
# between: checked with strace); on littlefs, closing commits the file (until
# then a power cut leaves its previous contents: littlefs is copy-on-write,
# which is only ever better than the torn prefix the interface allows). On
# CPython, where flush() only empties Python's buffer, end() also calls
# os.fsync().
#
# Reads. read_into() keeps the last file it read open, so the many small
# reads of one record allocate nothing but what readinto() itself does; it is
# closed before any write begins, and reopened when another file is read.

import os

_PATHS = 6


class FileStorage:
    def __init__(self, directory):
        """Files live in directory, which is created if missing (its parent must exist)."""
        self.directory = directory
        try:
            os.stat(directory)
        except OSError:
            os.mkdir(directory)
        self._file = None  # the file being written, between begin() and end()
        self._reader = None  # the file last read, kept open
        self._reader_name = None
        # The paths of the last _PATHS names used, made once while they are in use: the store's two
        # slots are read a few bytes at a time. Bounded, as the therapy log has 32 files of its own.
        self._names = [""] * _PATHS  # "" names no file
        self._paths = [""] * _PATHS
        self._next = 0  # the slot the next new name takes

    def _path(self, name):
        names = self._names
        for i in range(_PATHS):
            if names[i] == name:
                return self._paths[i]
        i = self._next
        self._next = (i + 1) % _PATHS
        names[i] = name
        path = self.directory + "/" + name
        self._paths[i] = path
        return path

    def _close_reader(self):
        reader = self._reader
        if reader is not None:
            self._reader = None
            self._reader_name = None
            reader.close()

    def begin(self, name):
        """Start rewriting file name: it is truncated at once."""
        if self._file is not None:
            raise OSError("storage: a file is already being written: end() it first")
        self._close_reader()
        self._file = open(self._path(name), "wb")

    def extend(self, name):
        """Start appending to file name (made if missing): its bytes stay, and until end()
        returns it may hold them and any prefix of what is appended (a power cut tears it)."""
        if self._file is not None:
            raise OSError("storage: a file is already being written: end() it first")
        self._close_reader()
        self._file = open(self._path(name), "ab")

    def append(self, data):
        """Append data (bytes, bytearray or a memoryview of bytes) to the file being written."""
        self._file.write(data)

    def end(self):
        """Flush and close the file being written: durable when this returns."""
        f = self._file
        self._file = None
        try:
            f.flush()
            fsync = getattr(os, "fsync", None)  # CPython; on MicroPython flush() syncs
            if fsync is not None:
                fsync(f.fileno())
        finally:
            f.close()

    def read_into(self, name, offset, buf):
        """Read len(buf) bytes of file name at offset into buf; return how many
        (fewer only where the file ends; 0 if it is missing)."""
        reader = self._reader
        if reader is None or self._reader_name != name:
            self._close_reader()
            try:
                reader = open(self._path(name), "rb")
            except OSError:
                return 0
            self._reader = reader
            self._reader_name = name
        reader.seek(offset)
        n = reader.readinto(buf)
        return n if n else 0

    def size(self, name):
        """File name's length in bytes, or -1 if it is missing."""
        try:
            return os.stat(self._path(name))[6]
        except OSError:
            return -1
