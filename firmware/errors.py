# Refusals: a request the pump will not carry out, with the reason a person
# can act on. The link turns one into an ERR_BAD_VALUE reply naming the field.


class Refusal(Exception):
    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


def explain(e):
    """An unexpected exception's text, with the file and line that raised it (failure.py, loaded
    for it: an internal error's reply, a failed start), or its type and message alone if there
    is no room left to load that."""
    try:
        from firmware import failure

        return failure.describe(e)
    except Exception:  # noqa: BLE001 - no room to load it: the type and the message still say much
        return "%s: %s" % (type(e).__name__, e)
