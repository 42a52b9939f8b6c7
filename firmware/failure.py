# What an internal error says (link.py's ERR_INTERNAL): the exception's type, where it was
# raised (its innermost frame: "firmware/x.py line N") and its message, so a bug report or a
# full heap on a board names the line that failed. Imported only when a command fails that
# way (errors.explain: the link's ERR_INTERNAL, a failed start), so it takes no heap until then.

import sys


def describe(e):
    """'TYPE in FILE line N: message' for exception e (without the place if it cannot be told)."""
    return "%s%s: %s" % (type(e).__name__, _where(e), e)


def _where(e):
    """The text ' in FILE line N', or "" if it cannot be told (no traceback, or no room left to read it)."""
    try:
        tb = getattr(e, "__traceback__", None)  # CPython
        if tb is not None:
            while tb.tb_next is not None:
                tb = tb.tb_next
            return " in %s line %d" % (_module_path(tb.tb_frame.f_code.co_filename), tb.tb_lineno)
        import io

        out = io.StringIO()
        # MicroPython: 'File "firmware/x.py", line N, in f' lines, innermost last
        sys.print_exception(e, out)  # pyright: ignore[reportArgumentType]
        last = ""
        for line in out.getvalue().split("\n"):  # pyright: ignore[reportAttributeAccessIssue]
            if line.startswith('  File "'):
                last = line
        name, _, rest = last[8:].partition('", line ')
        return " in %s line %s" % (_module_path(name), rest.partition(",")[0]) if rest else ""
    except Exception:  # noqa: BLE001 - a MemoryError here must not hide the first one
        return ""


def _module_path(path):
    """firmware/x.py of any path to it (a board's, the unix port's, CPython's absolute one), or of the
    module name a flashed .mpy gives as its source (firmware.x: pumpctl flash compiles it so)."""
    if "/" not in path and "." in path and not path.endswith(".py"):
        path = path.replace(".", "/") + ".py"
    return "/".join(path.split("/")[-2:])
