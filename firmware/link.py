# The command link: bytes in, frames decoded, each checked for its session
# MAC and the role its command needs, one handler per command, and a reply or
# an error for every frame, including corrupt ones.
#
# A handler receives the request's decoded fields and returns its reply's
# fields. It must check everything before it changes anything, and raise
# Refusal to refuse: a refused request leaves the pump exactly as it was.
#
# Security (auth.py): a frame with a MAC must verify against the live
# session and carry a new sequence number; its reply (or refusal) is MAC'd
# with the session key. A command that needs a role (codec.role_needed) runs only in a
# session of that role or above. Every security refusal is reported to
# `security(text)` for the event log.
#
# The link never holds the dosing task for long: run() yields after each
# frame it serves and after every _BURST bytes, however fast bytes arrive.
# Nor does it wait in write() for a host that sends but does not read: before
# a delimiter that may end a frame, run() waits (yielding) until the line can
# take the reply, and reads nothing more meanwhile, so the host waits instead.

from firmware import codec, const, framing
from firmware.auth import ROLE_NONE, AuthError
from firmware.errors import Refusal, sentence
from firmware.framing import FrameError

_BURST = const(64)
_WRITE_WAIT_MS = const(5)  # how often run() looks again whether a host that stopped reading reads again
_OLDEST_ERROR = const(8)  # the oldest protocol whose ERROR has the fields of this one's (code, field, message, more)


class Link:
    def __init__(self, serial, handlers, auth=None, now_us=None, security=None, pause=None, explain=None):
        """auth: the pump's Authenticator (None: no authentication, every command
        open; unit tests only). now_us(): pump time. security(text): called for
        each refusal of an authentication or of a command's role. pause(ms=0): an
        awaitable that lets the other tasks run for ms (tasks.sleep_ms).
        explain(e): the text of an ERR_INTERNAL for exception e (None: its type and message)."""
        self._serial = serial
        self._handlers = handlers  # msg_type -> handler(values) -> reply values
        self._auth = auth
        self._now_us = now_us
        self._security = security
        self._pause = pause
        self._explain = explain
        self._decoder = framing.FrameDecoder()
        self.frames_handled = 0
        self.frames_refused = 0
        self.seq = 0  # of the frame being served (KEY_CHANGE's pad uses it)
        self.role = ROLE_NONE  # that the frame being served was authenticated with
        self.host_seen = False  # set at each byte received; the telemetry stream reads it

    async def run(self):
        """Serve the host forever; reads never block the dosing task."""
        serial = self._serial
        while True:
            b = await serial.read_byte()
            n = 0
            while b >= 0:
                while not b and not serial.write_ready():
                    await self._pause(_WRITE_WAIT_MS)  # the reply would wait in write(), and the dosing task with it
                if self.receive(b) or n >= _BURST:
                    await self._pause()  # let the dosing task run between frames
                    n = 0
                n += 1
                b = serial.read_ready()

    def receive(self, byte):
        """Take one byte from the host; answer a frame once it is complete.
        Returns True when it served a frame."""
        self.host_seen = True
        if self._decoder.feed(byte):
            self._serve_frame()
            return True
        return False

    def _serve_frame(self):
        seq = 0
        reply_mac = None
        self.role = ROLE_NONE
        try:
            msg_type, seq, payload, mac, signed = self._decoder.frame()
            self.seq = seq
            auth = self._auth
            if mac is not None:
                if auth is None:
                    # this pump does not authenticate frames
                    raise FrameError(codec.ERR_NOT_SUPPORTED, sentence(92), seq)
                self.role = auth.verify(signed, mac, seq, self._now_us())
                reply_mac = auth.session_mac  # the reply proves it came from the pump
            elif auth is not None:
                auth.expire(self._now_us())
            handler = self._handlers.get(msg_type)
            if handler is None:
                raise self._no_handler(msg_type, seq)
            needed = codec.role_needed(msg_type) if auth is not None else ROLE_NONE
            if self.role < needed:
                # The command needs a session with the role's key; this frame has no MAC (t93), or the key of
                # its session's role (t94). pumpctl.sentences.
                if self.role == ROLE_NONE:
                    raise FrameError(codec.ERR_NEED_KEY, sentence(93, msg_type, needed), seq)
                raise FrameError(codec.ERR_NEED_KEY, sentence(94, msg_type, needed, self.role), seq)
            values = framing.decode_request(msg_type, payload)
            reply = framing.encode_reply(msg_type, handler(values))
        except AuthError as e:
            self._refuse(seq, e.code, "", e.message, reply_mac, security=True)
            return
        except FrameError as e:
            if e.code == codec.ERR_BAD_VERSION:
                self._refuse_version(e)
                return
            self._refuse(e.seq or seq, e.code, "", e.message, reply_mac, security=e.code == codec.ERR_NEED_KEY)
            return
        except Refusal as e:
            self._refuse(seq, codec.ERR_BAD_VALUE, e.field, e.message, reply_mac)
            return
        except Exception as e:  # a bug or a full heap, not the host's fault; say so, and where, and go on
            what = self._explain(e) if self._explain is not None else "%s: %s" % (type(e).__name__, e)
            self._refuse(seq, codec.ERR_INTERNAL, "", what, reply_mac)
            return
        self.frames_handled += 1
        # A handler may have ended the session (AUTH_END): the reply still
        # goes out under the key its request came with.
        self._serial.write(framing.encode_frame(msg_type | codec.REPLY, seq, reply, reply_mac))

    def _no_handler(self, msg_type, seq):
        if codec.is_message(msg_type) and msg_type != codec.ERROR and msg_type != codec.TELEMETRY_DATA:
            return FrameError(codec.ERR_NOT_SUPPORTED, sentence(91, msg_type), seq)  # not offered by this board
        return FrameError(codec.ERR_UNKNOWN_COMMAND, sentence(90, "%02x" % msg_type), seq)  # unknown command 0x..

    def _refuse(self, seq, code, field, message, reply_mac=None, security=False):
        self.frames_refused += 1
        if security and self._security is not None:
            self._security(message)
        payload = framing.encode_reply(codec.ERROR, framing.error_values(code, field, message))
        self._serial.write(framing.encode_frame(codec.ERROR, seq, payload, reply_mac))

    def _refuse_version(self, e):
        """A frame of another protocol version: refused saying which side to update. A host of an older
        version from _OLDEST_ERROR on reads an ERROR in its own version (the ERROR's fields are the same
        since), so it shows the reason; a newer one reads this pump's version and tells it apart itself."""
        self.frames_refused += 1
        ours = codec.PROTOCOL_VERSION
        if _OLDEST_ERROR <= e.version < ours:
            message = "this pump speaks protocol %d, newer than this host's %d: update pumpctl" % (ours, e.version)
            version = e.version
        else:
            message = e.message
            version = ours
        payload = framing.encode_reply(codec.ERROR, framing.error_values(codec.ERR_BAD_VERSION, "", message))
        self._serial.write(framing.encode_frame(codec.ERROR, e.seq, payload, None, version))

    def send(self, msg_type, seq, values):
        """Send an unasked frame (telemetry)."""
        payload = framing.encode_reply(msg_type, values)
        self._serial.write(framing.encode_frame(msg_type, seq, payload))
