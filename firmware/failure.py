# What an internal error says (link.py's ERR_INTERNAL): the exception's type, where it was
# raised (its innermost frame: "firmware/x.py line N, in f") and its message, so a bug report or a
# full heap on a board names the place that failed. Imported only when a command fails that
# way (errors.explain: the link's ERR_INTERNAL, a failed start), so it takes no heap until then.
#
# Code loaded into RAM from .mpy files is compiled without line numbers (pumpctl flash: they
# would be heap), and MicroPython then gives line 1 in every frame; no module of the firmware has
# code on its first line (a comment or a docstring opens each), so line 1 is said as no line:
# "firmware/x.py, in f".

import sys


def describe(e):
    """'TYPE in FILE line N, in F: message' for exception e (without the place if it cannot be told)."""
    return "%s%s: %s" % (type(e).__name__, _where(e), e)


def _where(e):
    """The text ' in FILE line N, in F', or "" if it cannot be told (no traceback, or no room left to read it)."""
    try:
        tb = getattr(e, "__traceback__", None)  # CPython
        if tb is not None:
            while tb.tb_next is not None:
                tb = tb.tb_next
            code = tb.tb_frame.f_code
            return _place(code.co_filename, str(tb.tb_lineno), code.co_name)
        import io

        out = io.StringIO()
        # MicroPython: 'File "firmware/x.py", line N, in f' lines, innermost last
        sys.print_exception(e, out)  # pyright: ignore[reportArgumentType]
        last = ""
        for line in out.getvalue().split("\n"):  # pyright: ignore[reportAttributeAccessIssue]
            if line.startswith('  File "'):
                last = line
        name, _, rest = last[8:].partition('", line ')
        line, _, function = rest.partition(", in ")
        return _place(name, line, function) if rest else ""
    except Exception:  # noqa: BLE001 - a MemoryError here must not hide the first one
        return ""


def _place(path, line, function):
    where = _module_path(path) if line == "1" else "%s line %s" % (_module_path(path), line)  # 1: none known
    return " in %s, in %s" % (where, function) if function else " in " + where


def _module_path(path):
    """firmware/x.py of any path to it (a board's, the unix port's, CPython's absolute one), or of the
    module name a flashed .mpy gives as its source (firmware.x: pumpctl flash compiles it so)."""
    if "/" not in path and "." in path and not path.endswith(".py"):
        path = path.replace(".", "/") + ".py"
    return "/".join(path.split("/")[-2:])
