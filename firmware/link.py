# The command link: bytes in, frames decoded, one handler per command, and a
# reply or an error for every frame, including corrupt ones.
#
# A handler receives the request's decoded fields and returns its reply's
# fields. It must check everything before it changes anything, and raise
# Refusal to refuse: a refused request leaves the pump exactly as it was.

from firmware import codec
from firmware.codec import FrameError
from firmware.errors import Refusal


class Link:
    def __init__(self, serial, handlers):
        self._serial = serial
        self._handlers = handlers  # msg_type -> handler(values) -> reply values
        self._decoder = codec.FrameDecoder()
        self.frames_handled = 0
        self.frames_refused = 0

    async def run(self):
        """Serve the host forever; reads never block the dosing task."""
        serial = self._serial
        while True:
            b = await serial.read_byte()
            while b >= 0:
                self.receive(b)
                b = serial.read_ready()

    def receive(self, byte):
        """Take one byte from the host; answer a frame once it is complete."""
        if self._decoder.feed(byte):
            self._serve_frame()

    def _serve_frame(self):
        seq = 0
        try:
            msg_type, seq, payload = self._decoder.frame()
            handler = self._handlers.get(msg_type)
            if handler is None:
                raise self._no_handler(msg_type, seq)
            values = codec.decode_fields(codec.request_fields(msg_type), payload)
            reply = codec.encode_fields(codec.reply_fields(msg_type), handler(values))
        except FrameError as e:
            self._refuse(e.seq or seq, e.code, "", e.message)
            return
        except Refusal as e:
            self._refuse(seq, codec.ERR_BAD_VALUE, e.field, e.message)
            return
        except Exception as e:  # a bug, not the host's fault; say so and go on
            self._refuse(seq, codec.ERR_INTERNAL, "", "%s: %s" % (type(e).__name__, e))
            return
        self.frames_handled += 1
        self._serial.write(codec.encode_frame(msg_type | codec.REPLY, seq, reply))

    def _no_handler(self, msg_type, seq):
        if msg_type in codec.FIELDS and msg_type != codec.ERROR:
            return FrameError(
                codec.ERR_NOT_SUPPORTED,
                "command %s is not offered by this board" % codec.COMMAND_NAMES.get(msg_type),
                seq,
            )
        return FrameError(codec.ERR_UNKNOWN_COMMAND, "unknown command 0x%02x" % msg_type, seq)

    def _refuse(self, seq, code, field, message):
        self.frames_refused += 1
        payload = codec.encode_fields(codec.reply_fields(codec.ERROR), (code, codec.clip(field), codec.clip(message)))
        self._serial.write(codec.encode_frame(codec.ERROR, seq, payload))
