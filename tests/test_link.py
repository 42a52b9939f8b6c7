"""The command link's dispatch, on CPython with a recording serial port."""

from firmware import codec
from firmware.errors import Refusal
from firmware.link import Link


class RecordingSerial:
    def __init__(self):
        self.sent = bytearray()

    def write(self, data):
        self.sent += data


def exchange(handlers, frame):
    serial = RecordingSerial()
    link = Link(serial, handlers)
    for b in frame:
        link.receive(b)
    dec = codec.FrameDecoder()
    replies = [dec.frame() for b in serial.sent if dec.feed(b)]
    return link, replies


def error_of(reply):
    msg_type, seq, payload = reply
    assert msg_type == codec.ERROR
    return seq, codec.decode_fields(codec.reply_fields(codec.ERROR), payload)


def test_a_reply_echoes_the_request_sequence_number():
    handlers = {codec.STOP: lambda values: (1, 2)}
    link, [reply] = exchange(handlers, codec.encode_frame(codec.STOP, 4242))
    assert reply == (codec.STOP | codec.REPLY, 4242, codec.encode_fields(codec.reply_fields(codec.STOP), (1, 2)))
    assert link.frames_handled == 1


def test_a_simulator_command_on_a_real_board_is_not_supported():
    _, [reply] = exchange({}, codec.encode_frame(codec.SIM_ADVANCE, 9, b"\0" * 8))
    seq, (code, field, message) = error_of(reply)
    assert (seq, code) == (9, codec.ERR_NOT_SUPPORTED)
    assert "sim-advance is not offered by this board" in message


def test_a_refusal_names_the_field():
    def refuse(values):
        raise Refusal("rate", "rate 12 mL/h is above the pump maximum")

    _, [reply] = exchange({codec.SET_RATE: refuse}, codec.encode_frame(codec.SET_RATE, 3, b"\x01x"))
    assert error_of(reply) == (3, [codec.ERR_BAD_VALUE, "rate", "rate 12 mL/h is above the pump maximum"])


def test_a_failing_handler_is_reported_as_an_internal_error_and_the_link_goes_on():
    calls = []

    def broken(values):
        calls.append(values)
        raise ZeroDivisionError("division by zero")

    handlers = {codec.STATUS: broken, codec.STOP: lambda values: (0, 0)}
    frames = codec.encode_frame(codec.STATUS, 1) + codec.encode_frame(codec.STOP, 2)
    link, [first, second] = exchange(handlers, frames)
    assert error_of(first) == (1, [codec.ERR_INTERNAL, "", "ZeroDivisionError: division by zero"])
    assert second[:2] == (codec.STOP | codec.REPLY, 2)
    assert (link.frames_handled, link.frames_refused) == (1, 1)
