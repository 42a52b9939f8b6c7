# Refusals: a request the pump will not carry out, with the reason a person
# can act on. The link turns one into an ERR_BAD_VALUE reply naming the field.


class Refusal(Exception):
    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message
