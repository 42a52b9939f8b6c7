"""The wire codec: framing, checksum, fields, and what it refuses."""

import pytest
from frames import raw_frame, seal
from hypothesis import given
from hypothesis import strategies as st
from pumpctl import schema, words

from firmware import auth, codec, framing
from firmware.framing import FrameDecoder, FrameError

SESSION = auth.Hmac(bytes(range(32)))


def feed_all(data):
    """Feed bytes to a fresh decoder; return each frame or the FrameError it raised."""
    dec = FrameDecoder()
    out = []
    for b in data:
        if dec.feed(b):
            try:
                out.append(dec.frame())
            except FrameError as e:
                out.append(e)
    return out


@given(st.binary(max_size=700))
def test_cobs_round_trip_has_no_zero_bytes(data):
    enc = framing.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert bytes(framing.cobs_decode(enc, len(enc))) == data


def _values_for(fields, draw):
    values = []
    for _name, kind in fields:
        if kind == "s":
            values.append(framing.clip(draw(st.text(max_size=30)), 40))  # 5 texts of 40 bytes fit a payload
        elif kind == "y":
            values.append(draw(st.binary(max_size=framing.MAX_STRING)))
        else:
            values.append(draw(st.integers(0, (1 << (8 * {"B": 1, "H": 2, "I": 4}[kind])) - 1)))
    return values


@given(st.data(), st.sampled_from(sorted(schema.FIELDS)), st.booleans(), st.integers(0, framing.MAX_SEQ), st.booleans())
def test_every_message_round_trips(data, msg_type, is_reply, seq, with_mac):
    fields = schema.reply_fields(msg_type) if is_reply else schema.request_fields(msg_type)
    values = _values_for(fields, data.draw)
    single = msg_type in (codec.ERROR, codec.TELEMETRY_DATA)
    kind = msg_type | codec.REPLY if is_reply and not single else msg_type
    session = SESSION if with_mac else None
    wire = framing.encode_frame(kind, seq, schema.encode_fields(fields, values), session)
    [(got_type, got_seq, payload, mac, signed)] = feed_all(wire)
    assert (got_type, got_seq) == (kind, seq)
    assert schema.decode_fields(fields, payload) == values
    if with_mac:
        assert mac == SESSION.digest(signed)[: auth.MAC_BYTES]
        assert signed[8:] == payload  # after the 8-byte header
    else:
        assert mac is None and signed is None


@given(st.data(), st.sampled_from(sorted(schema.FIELDS)))
def test_the_pumps_walk_of_the_records_is_the_hosts_list_of_fields(data, msg_type):
    """The pump encodes and decodes in place from the message's record (encode_reply,
    decode_request); the host from [(name, kind), ...]: the same bytes and the same
    values, and the same refusal of a payload that does not fit (the pump's names the field by a
    token, "{f8194}", which pumpctl words as the host names it)."""
    reply = _values_for(schema.reply_fields(msg_type), data.draw)
    assert framing.encode_reply(msg_type, reply) == schema.encode_fields(schema.reply_fields(msg_type), reply)
    request = _values_for(schema.request_fields(msg_type), data.draw)
    payload = schema.encode_fields(schema.request_fields(msg_type), request)
    assert framing.decode_request(msg_type, payload) == request
    for damaged in (payload[:-1], payload + b"\x00"):
        if damaged == payload:
            continue
        with pytest.raises(FrameError) as by_pump:
            framing.decode_request(msg_type, damaged)
        with pytest.raises(FrameError) as by_host:
            schema.decode_fields(schema.request_fields(msg_type), damaged)
        assert by_pump.value.code == by_host.value.code
        assert words.render(by_pump.value.message) == by_host.value.message


def test_roles_priorities_and_messages_unknown_codes_get_none():
    """A code the codec does not know needs no role, has no priority, is no message (and
    request_fields refuses it), whatever its value, including a record's separators."""
    assert codec.role_needed(codec.SET_RATE) == auth.ROLE_CLINICIAN
    assert codec.role_needed(codec.PATIENT_BOLUS) == auth.ROLE_PATIENT
    assert codec.role_needed(codec.STATUS) == auth.ROLE_NONE
    assert codec.alarm_priority(codec.ALARM_MOTOR_FAULT) == codec.PRIORITY_HIGH
    assert codec.alarm_priority(codec.ALARM_RESTART) == codec.PRIORITY_LOW
    assert codec.alarm_priority(codec.ALARM_PROGRAM_UNREAD) == codec.PRIORITY_HIGH
    known = set(schema.FIELDS)
    for code in range(256):
        if code not in known:
            assert not codec.is_message(code) and codec.role_needed(code) == 0
            with pytest.raises(KeyError):
                schema.request_fields(code)
    assert all(codec.is_message(code) for code in known)
    for code in (-1, 0, codec.ALARM_PROGRAM_UNREAD + 1, 255):
        assert codec.alarm_priority(code) == 0


def test_the_mac_covers_the_header_and_payload_and_only_the_session_key_makes_it():
    payload = schema.encode_fields(schema.request_fields(codec.SET_RATE), [500_000])
    [(_t, _s, _p, mac, signed)] = feed_all(framing.encode_frame(codec.SET_RATE, 41, payload, SESSION))
    header = bytes([codec.PROTOCOL_VERSION, codec.SET_RATE, framing.FLAG_MAC, 41, 0, 0, 0, len(payload)])
    assert signed == header + payload
    other = auth.Hmac(bytes(32))
    assert mac == SESSION.digest(signed)[:16] != other.digest(signed)[:16]
    # Another seq, type or payload under the same key gives another MAC.
    for changed in (
        framing.encode_frame(codec.SET_RATE, 42, payload, SESSION),
        framing.encode_frame(codec.STOP, 41, payload, SESSION),
        framing.encode_frame(codec.SET_RATE, 41, payload[:-1] + b"h", SESSION),
    ):
        assert feed_all(changed)[0][3] != mac


def test_sequence_numbers_outside_32_bits_are_not_sent():
    with pytest.raises(FrameError):
        framing.encode_frame(codec.STATUS, 1 << 32)
    with pytest.raises(FrameError):
        framing.encode_frame(codec.STATUS, -1)


def test_the_largest_frame_fits_the_decoder_and_one_byte_more_does_not():
    biggest = framing.encode_frame(codec.STAGE_ITEM, framing.MAX_SEQ, b"x" * framing.MAX_PAYLOAD, SESSION)
    assert len(biggest) - 1 == framing.MAX_ENCODED
    [frame] = feed_all(biggest)
    assert frame[0] == codec.STAGE_ITEM and frame[2] == b"x" * framing.MAX_PAYLOAD
    [refused] = feed_all(biggest[:-1] + b"\x01\x00")
    assert refused.code == codec.ERR_TOO_LONG


@pytest.mark.parametrize("session", [None, SESSION], ids=["plain", "with MAC"])
def test_every_single_bit_flip_is_refused(session):
    wire = framing.encode_frame(
        codec.SET_RATE, 7, schema.encode_fields(schema.request_fields(codec.SET_RATE), [500_000]), session
    )
    for i in range(len(wire) - 1):  # every byte but the delimiter
        for bit in range(8):
            damaged = bytearray(wire)
            damaged[i] ^= 1 << bit
            results = feed_all(bytes(damaged))
            assert results, f"byte {i} bit {bit}: nothing came out"
            assert all(isinstance(r, FrameError) for r in results), f"byte {i} bit {bit} accepted: {results}"


def test_truncated_frames_are_refused():
    raw = framing.encode_frame(codec.STATUS, 1)
    for cut in range(1, len(raw) - 1):
        [result] = feed_all(raw[:-1][:-cut] + b"\x00")
        assert isinstance(result, FrameError)
        assert result.code == codec.ERR_BAD_FRAME


def test_an_oversized_frame_is_refused_and_the_next_frame_still_decodes():
    good = framing.encode_frame(codec.STATUS, 9)
    results = feed_all(b"\x05" * 400 + b"\x00" + good)
    assert isinstance(results[0], FrameError) and results[0].code == codec.ERR_TOO_LONG
    assert results[1] == (codec.STATUS, 9, b"", None, None)


def test_garbage_before_a_frame_costs_only_the_garbage():
    good = framing.encode_frame(codec.HELLO, 3)
    results = feed_all(b"hello pump\r\n\x00" + good)
    assert isinstance(results[0], FrameError)
    assert results[1] == (codec.HELLO, 3, b"", None, None)


def test_raw_frame_matches_the_codec():
    assert raw_frame(codec.PROTOCOL_VERSION, codec.STATUS, 77) == framing.encode_frame(codec.STATUS, 77)


@pytest.mark.parametrize("version", [codec.PROTOCOL_VERSION - 1, codec.PROTOCOL_VERSION + 1])
def test_a_frame_of_another_protocol_version_is_refused_with_its_sequence_number(version):
    [result] = feed_all(raw_frame(version, codec.STATUS, 77))
    assert isinstance(result, FrameError)
    assert result.code == codec.ERR_BAD_VERSION
    assert result.seq == 77
    assert f"version {version}" in result.message


def test_unknown_flags_are_refused_with_the_sequence_number():
    [result] = feed_all(raw_frame(codec.PROTOCOL_VERSION, codec.STATUS, 78, flags=0x02))
    assert isinstance(result, FrameError) and result.code == codec.ERR_MALFORMED and result.seq == 78


def test_a_mac_flag_without_a_mac_is_a_bad_frame():
    [result] = feed_all(raw_frame(codec.PROTOCOL_VERSION, codec.STATUS, 79, flags=framing.FLAG_MAC))
    assert isinstance(result, FrameError) and result.code == codec.ERR_BAD_FRAME


# A request of one text field (as a drug name of STAGE_ITEM), for the text checks.
TEXT_FIELD = (("line", "s"),)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "missing field line"),
        (b"\x05ab", "cut short"),
        (b"\x02\xff\xfe", "not UTF-8"),
        (b"\x01a\x00", "unexpected bytes"),
    ],
)
def test_payloads_that_do_not_fit_the_fields_are_malformed(payload, reason):
    with pytest.raises(FrameError) as e:
        schema.decode_fields(TEXT_FIELD, payload)
    assert e.value.code == codec.ERR_MALFORMED
    assert reason in e.value.message


# Not UTF-8, though MicroPython's decode() takes them: overlong forms ("\xc0\xae"
# is "." to a lax decoder), a surrogate, a code point past U+10FFFF. Found by
# the link fuzz (test_fuzz_link.py): the pump took such a line, then refused it
# in a message pumpctl could not read. tests/mp/wire_vectors.py runs them on both VMs.
NOT_UTF8 = [
    b"0\xc0\xae5 mL/day",
    b"\xc0\x80",
    b"\xe0\x81\xa8",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xf0\x80\x80\xb1",
]


@pytest.mark.parametrize("text", NOT_UTF8)
def test_text_that_is_not_utf8_is_malformed_even_where_a_lax_decoder_takes_it(text):
    with pytest.raises(FrameError) as e:
        schema.decode_fields(TEXT_FIELD, bytes([len(text)]) + text)
    assert e.value.code == codec.ERR_MALFORMED and "not UTF-8" in e.value.message


@given(st.one_of(st.binary(max_size=12), st.text(max_size=6).map(str.encode)))
def test_the_codec_takes_exactly_the_text_cpython_decodes(raw):
    try:
        expected = [raw.decode()]
    except UnicodeDecodeError:
        expected = None
    try:
        got = schema.decode_fields((("line", "s"),), bytes([len(raw)]) + raw)
    except FrameError:
        got = None
    assert got == expected


def test_integers_that_do_not_fit_their_field_are_not_sent():
    with pytest.raises(FrameError):
        schema.encode_fields((("x", "B"),), [256])
    with pytest.raises(FrameError):
        schema.encode_fields((("x", "I"),), [-1])


def test_clip_never_splits_a_character():
    text = "µ" * 80  # 160 bytes of UTF-8
    clipped = framing.clip(text)
    assert len(clipped.encode()) <= framing.MAX_STRING
    assert clipped == "µ" * 50


def test_a_text_field_longer_than_the_limit_is_malformed_even_if_the_payload_holds_it():
    payload = bytes([framing.MAX_STRING + 1]) + b"x" * (framing.MAX_STRING + 1)
    with pytest.raises(FrameError, match="longer than 100 bytes") as e:
        schema.decode_fields(TEXT_FIELD, payload)
    assert e.value.code == codec.ERR_MALFORMED


def test_unknown_flags_beside_the_mac_flag_are_malformed_not_noise():
    frame = framing.encode_frame(codec.STATUS, 80, b"", SESSION)
    raw = bytearray(framing.cobs_decode(frame[:-1], len(frame) - 1))
    raw[2] |= 0x02
    body = bytes(raw[:-4])
    [result] = feed_all(seal(body))
    assert isinstance(result, FrameError) and result.code == codec.ERR_MALFORMED and result.seq == 80
