"""The command link's dispatch, on CPython with a recording serial port."""

from pumpctl import schema, words

from firmware import codec, framing
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
    dec = framing.FrameDecoder()
    replies = [dec.frame()[:3] for b in serial.sent if dec.feed(b)]  # (type, seq, payload)
    return link, replies


def error_of(reply):
    msg_type, seq, payload = reply
    assert msg_type == codec.ERROR
    code, field, message, more = schema.decode_fields(schema.reply_fields(codec.ERROR), payload)
    return seq, [code, field, words.render(message + more)]  # the message as the host shows it


def test_a_reply_echoes_the_request_sequence_number():
    handlers = {codec.STOP: lambda values: (1, 2)}
    link, [reply] = exchange(handlers, framing.encode_frame(codec.STOP, 4242))
    assert reply == (codec.STOP | codec.REPLY, 4242, schema.encode_fields(schema.reply_fields(codec.STOP), (1, 2)))
    assert link.frames_handled == 1


def test_a_simulator_command_on_a_real_board_is_not_supported():
    _, [reply] = exchange({}, framing.encode_frame(codec.SIM_ADVANCE, 9, b"\0" * 8))
    seq, (code, field, message) = error_of(reply)
    assert (seq, code) == (9, codec.ERR_NOT_SUPPORTED)
    assert "sim-advance is not offered by this board" in message


def test_a_refusal_names_the_field():
    def refuse(values):
        raise Refusal("rate", "rate 12 mL/h is above the pump maximum")

    frame = framing.encode_frame(codec.SET_RATE, 3, (288_000_000).to_bytes(4, "little"))
    _, [reply] = exchange({codec.SET_RATE: refuse}, frame)
    assert error_of(reply) == (3, [codec.ERR_BAD_VALUE, "rate", "rate 12 mL/h is above the pump maximum"])


def test_a_failing_handler_is_reported_as_an_internal_error_and_the_link_goes_on():
    calls = []

    def broken(values):
        calls.append(values)
        raise ZeroDivisionError("division by zero")

    handlers = {codec.STATUS: broken, codec.STOP: lambda values: (0, 0)}
    frames = framing.encode_frame(codec.STATUS, 1) + framing.encode_frame(codec.STOP, 2)
    link, [first, second] = exchange(handlers, frames)
    assert error_of(first) == (1, [codec.ERR_INTERNAL, "", "ZeroDivisionError: division by zero"])
    assert second[:2] == (codec.STOP | codec.REPLY, 2)
    assert (link.frames_handled, link.frames_refused) == (1, 1)


# -- sessions and roles (firmware/auth.py) --------------------------------------

import os  # noqa: E402

from firmware import auth  # noqa: E402

CLINICIAN_KEY = bytes(range(32))
PATIENT_KEY = bytes(range(1, 33))


class Secured:
    """A link with an Authenticator, a clock and a record of security refusals."""

    def __init__(self, handlers):
        self.serial = RecordingSerial()
        self.auth = auth.Authenticator(os.urandom)
        self.auth.set_keys("pump-1", CLINICIAN_KEY, PATIENT_KEY)
        self.now = 0
        self.refusals = []
        self.link = Link(self.serial, handlers, self.auth, lambda: self.now, self.refusals.append)
        self.dec = framing.FrameDecoder()

    def send(self, frame):
        """Frames the link sent back, as (type, seq, payload, mac, signed)."""
        start = len(self.serial.sent)
        for b in frame:
            self.link.receive(b)
        return [self.dec.frame() for b in self.serial.sent[start:] if self.dec.feed(b)]

    def session(self, role, key):
        nonce = self.auth.begin(role, self.now)
        host_nonce = bytes(16)
        self.auth.prove(role, nonce, host_nonce, auth.proof(key, role, nonce, host_nonce), self.now)
        return auth.Hmac(auth.session_key(key, role, nonce, host_nonce))


def changes():
    done = []
    return done, {
        codec.STOP: lambda v: done.append("stop") or (0, 0),
        codec.PATIENT_BOLUS: lambda v: done.append("patient bolus") or (1, 2),
        codec.STATUS: lambda v: (0, 0, 0, 0, 0, 0, 1),
    }


def test_a_command_that_changes_the_pump_needs_a_session_of_its_role():
    done, handlers = changes()
    s = Secured(handlers)
    [reply] = s.send(framing.encode_frame(codec.STOP, 5))
    seq, (code, _field, message) = error_of(reply[:3])
    assert (seq, code) == (5, codec.ERR_NEED_KEY)
    assert "stop needs a session with the clinician key (this frame has no MAC)" in message
    patient = s.session(auth.ROLE_PATIENT, PATIENT_KEY)
    [reply] = s.send(framing.encode_frame(codec.STOP, 6, b"", patient))
    assert "stop needs a session with the clinician key (this frame has the patient key)" in error_of(reply[:3])[1][2]
    [reply] = s.send(framing.encode_frame(codec.PATIENT_BOLUS, 7, b"", patient))
    assert reply[0] == codec.PATIENT_BOLUS | codec.REPLY
    assert done == ["patient bolus"]
    assert len(s.refusals) == 2


def test_reading_needs_no_key():
    _done, handlers = changes()
    s = Secured(handlers)
    [reply] = s.send(framing.encode_frame(codec.STATUS, 1))
    assert reply[0] == codec.STATUS | codec.REPLY and reply[3] is None  # no session: no MAC


def test_replies_in_a_session_carry_its_mac_and_refusals_of_bad_macs_do_not():
    done, handlers = changes()
    s = Secured(handlers)
    clinician = s.session(auth.ROLE_CLINICIAN, CLINICIAN_KEY)
    [reply] = s.send(framing.encode_frame(codec.STOP, 1, b"", clinician))
    _t, _seq, _p, mac, signed = reply
    assert mac == clinician.digest(signed)[:16]
    [replayed] = s.send(framing.encode_frame(codec.STOP, 1, b"", clinician))
    seq, (code, _f, message) = error_of(replayed[:3])
    assert code == codec.ERR_AUTH and "already used" in words.render(message)
    assert replayed[3] is None  # refused by the session check: a refusal the session does not vouch for
    forged = auth.Hmac(os.urandom(32))
    [refused] = s.send(framing.encode_frame(codec.STOP, 2, b"", forged))
    assert error_of(refused[:3])[1][0] == codec.ERR_AUTH and refused[3] is None
    assert done == ["stop"]
    assert [words.render(r).split(":")[0] for r in s.refusals] == [
        "sequence 1 was already used (last 1)",
        "the frame's MAC is wrong",
    ]


def test_a_session_silent_past_the_timeout_is_over():
    done, handlers = changes()
    s = Secured(handlers)
    clinician = s.session(auth.ROLE_CLINICIAN, CLINICIAN_KEY)
    s.now = auth.SESSION_TIMEOUT_US
    [reply] = s.send(framing.encode_frame(codec.STOP, 1, b"", clinician))
    assert error_of(reply[:3])[1][0] == codec.ERR_NO_SESSION
    assert done == []


def test_a_reason_of_up_to_200_bytes_is_never_cut_and_a_longer_one_ends_at_200():
    """Issue 22: a pump refusal was cut at the wire's 100 bytes. ERROR carries it in two parts."""
    long = "the reason, said whole: " + "x" * 150 + " end"  # 178 bytes
    longer = "y" * 300

    def refuse(text):
        def handler(values):
            raise Refusal("rate_nl_per_day", text)

        return handler

    for text, shown in ((long, long), (longer, "y" * 200), ("short", "short")):
        _, [reply] = exchange({codec.STOP: refuse(text)}, framing.encode_frame(codec.STOP, 5))
        _seq, (code, field, message) = error_of(reply)
        assert (code, field, message) == (codec.ERR_BAD_VALUE, "rate_nl_per_day", shown)
        assert len(reply[2]) <= framing.MAX_PAYLOAD


def _answer_to_version(version, monkeypatch, reader):
    """The pump's answer to a STATUS in protocol version, read by a host of protocol reader."""
    serial = RecordingSerial()
    link = Link(serial, {codec.STATUS: lambda values: ()})
    for b in framing.encode_frame(codec.STATUS, 7, b"", None, version):
        link.receive(b)
    with monkeypatch.context() as m:
        m.setattr(codec, "PROTOCOL_VERSION", reader)  # the host's end of the line
        dec = framing.FrameDecoder()
        [reply] = [dec.frame()[:3] for b in serial.sent if dec.feed(b)]
    assert link.frames_refused == 1 and link.frames_handled == 0
    return error_of(reply)


def test_an_older_hosts_frame_is_refused_in_its_own_version_saying_to_update_pumpctl(monkeypatch):
    # protocol 8's pumpctl reads an ERROR of its own version: its user reads which side to update
    ours = codec.PROTOCOL_VERSION
    assert _answer_to_version(8, monkeypatch, 8) == (
        7,
        [codec.ERR_BAD_VERSION, "", f"this pump speaks protocol {ours}, newer than this host's 8: update pumpctl"],
    )


def test_a_newer_hosts_frame_is_refused_in_the_pumps_own_version(monkeypatch):
    # a newer pumpctl reads the pump's version from the frame and says to flash the pump (transport.py)
    ours = codec.PROTOCOL_VERSION
    assert _answer_to_version(ours + 1, monkeypatch, ours) == (
        7,
        [codec.ERR_BAD_VERSION, "", f"protocol version {ours + 1} is not supported; this side speaks {ours}"],
    )
