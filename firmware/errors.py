# Refusals: a request the pump will not carry out, with the reason a person
# can act on. The link turns one into an ERR_BAD_VALUE reply naming the field.


class Refusal(Exception):
    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


def sentence(number, *values):
    """The token of pumpctl's sentence `number` with its values: sentence(2, 1999500, 2000000) is
    "{t2|1999500|2000000}" (pumpctl/sentences.py has the words). Made when a text needs it: a literal
    "{t2|%d|%d}" was one more interned name, on the heap for as long as the pump runs."""
    text = "{t%d" % number
    for v in values:
        text += "|%s" % (v,)
    return text + "}"


def explain(e):
    """An unexpected exception's text, with the file and line that raised it (failure.py, loaded
    for it: an internal error's reply, a failed start), or its type and message alone if there
    is no room left to load that."""
    try:
        from firmware import failure

        return failure.describe(e)
    except Exception:  # noqa: BLE001 - no room to load it: the type and the message still say much
        return "%s: %s" % (type(e).__name__, e)
