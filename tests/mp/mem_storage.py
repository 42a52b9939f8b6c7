# An in-memory storage driver (the interface in hal/__init__.py) for tests,
# on CPython and on both MicroPython VMs.
#
# cut_after: after that many more appended bytes (across appends and files),
# every further byte is silently dropped: the file keeps a torn prefix and
# the writer does not notice, as if the power had failed and come back with
# the same program state (harsher than a real cut, which ends the writer).
#
# truncate: begin() empties the file, as the interface says. False leaves the
# old bytes beyond those written in place (a raw in-place writer: a torn
# write then leaves the new record's prefix followed by the old one's tail).


class MemStorage:
    def __init__(self, cut_after=None, truncate=True):
        self.files = {}
        self.cut_after = cut_after
        self.truncate = truncate
        self.appended = 0  # bytes appended in all, dropped ones included
        self.writes = []  # names begun, in order
        self._name = None
        self._pos = 0

    def begin(self, name):
        if self._name is not None:
            raise OSError("storage: a file is already being written")
        self._name = name
        self.writes.append(name)
        if self.truncate or name not in self.files:
            self.files[name] = bytearray()
        self._pos = 0

    def extend(self, name):
        if self._name is not None:
            raise OSError("storage: a file is already being written")
        self._name = name
        self.writes.append(name)
        f = self.files.setdefault(name, bytearray())
        self._pos = len(f)

    def append(self, data):
        f = self.files[self._name]
        n = len(data)
        self.appended += n
        keep = n
        if self.cut_after is not None:
            keep = min(n, self.cut_after)
            self.cut_after -= keep
        if not keep:
            return
        data = memoryview(data)[:keep]
        pos = self._pos
        inside = min(keep, len(f) - pos)  # bytes that overwrite old ones (truncate=False)
        if inside > 0:
            f[pos : pos + inside] = data[:inside]
        else:
            inside = 0
        f.extend(data[inside:])
        self._pos = pos + keep

    def end(self):
        self._name = None

    def read_into(self, name, offset, buf):
        f = self.files.get(name)
        if f is None:
            return 0
        n = min(len(buf), len(f) - offset)
        if n <= 0:
            return 0
        buf[:n] = memoryview(f)[offset : offset + n]
        return n

    def size(self, name):
        f = self.files.get(name)
        return -1 if f is None else len(f)


def pattern(n, seed):
    """n deterministic bytes (every value stays a small int on a 32-bit port)."""
    b = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 75 + 74) % 65537
        b[i] = x & 0xFF
    return b
