"""Exceptions of the pumpctl API, one per kind of failure a caller can act on."""

from firmware import codec

from . import words


class PumpError(Exception):
    """Base of every error pumpctl raises on purpose."""


class LinkError(PumpError):
    """The serial link failed: port missing or busy, no reply, garbage."""


class NoReply(LinkError):
    """The pump did not answer in time."""


class GarbledReply(NoReply):
    """No pump answered, but something on the port did: bytes that are not pump frames
    (another device, a board at its REPL, a wrong baud rate) or our own frames echoed back."""


class NotStarted(LinkError):
    """The board answers, but its pump firmware failed to start (firmware.codec.ERR_NOT_STARTED): the
    motor is off and every command is refused; `reason` is the firmware's own (a MemoryError...)."""

    def __init__(self, reason: str):
        self.reason = words.render(reason)
        super().__init__(
            f"the pump's firmware failed to start: {self.reason}; its motor is off and it takes no command. "
            "Flash it again (pumpctl flash), and see the README for what a board needs"
        )


class PumpRefused(PumpError):
    """The pump answered with a refusal; nothing was changed. Except for an internal error
    (`internal`: ERR_INTERNAL, a bug or a full heap in the pump, or a read-back that differs
    from what was sent): the pump failed while it acted, so what it changed is not known.

    `code` is the wire error code, `field` the request field at fault (may be
    empty) and `reason` the pump's own explanation (its tokens rendered: words.render).
    """

    def __init__(self, code: int, field: str, reason: str):
        self.code = code
        self.code_name = words.ERROR_NAMES.get(code, f"error {code}")
        self.field = field
        self.reason = reason = words.render(reason)
        self.internal = code == codec.ERR_INTERNAL
        where = f" ({field})" if field else ""
        hint = ""
        if code == codec.ERR_UNKNOWN_COMMAND:  # a command newer than the pump's firmware (same protocol)
            hint = "; the pump's firmware is older than this pumpctl (pumpctl flash updates it)"
        super().__init__(f"pump {'failed' if self.internal else 'refused'}{where}: {reason}{hint}")


class AuthError(PumpError):
    """Authentication is impossible or failed: no key held for this pump, a
    wrong key, or a pump that could not prove it holds the key."""


class ConfigError(PumpError):
    """The config file is unreadable, malformed, or readable by others."""


class UsageError(PumpError):
    """The caller asked for something unclear: a bad duration, no port."""


class LineRefused(UsageError):
    """A program line that does not read (pumpctl reads a program's text and sends numbers): nothing
    was sent to the pump. `field` names what is wrong, as a pump's refusal does, `reason` says why."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}; nothing was sent to the pump")


class BalanceError(PumpError):
    """The lab balance failed: port absent or busy, no reply in time, an error or
    overload status, or a reply the driver cannot read (the reply is quoted)."""


class SimulatorError(PumpError):
    """The simulated pump could not be started or stopped."""


class FlashError(LinkError):
    """Flashing a board failed: the port is absent or busy, no MicroPython REPL answers on it,
    it is another kind of board, a file could not be compiled, or a copied file's hash differs."""
