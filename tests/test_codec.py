"""The wire codec: framing, checksum, fields, and what it refuses."""

import pytest
from frames import raw_frame
from hypothesis import given
from hypothesis import strategies as st

from firmware import codec
from firmware.codec import FrameDecoder, FrameError


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
    enc = codec.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert bytes(codec.cobs_decode(enc, len(enc))) == data


def _values_for(fields, draw):
    values = []
    for _name, kind in fields:
        if kind == "s":
            values.append(draw(st.text(max_size=30)))
        else:
            values.append(draw(st.integers(0, (1 << (8 * {"B": 1, "H": 2, "I": 4}[kind])) - 1)))
    return values


@given(st.data(), st.sampled_from(sorted(codec.FIELDS)), st.booleans(), st.integers(0, 0xFFFF))
def test_every_message_round_trips(data, msg_type, is_reply, seq):
    fields = codec.reply_fields(msg_type) if is_reply else codec.request_fields(msg_type)
    values = _values_for(fields, data.draw)
    kind = msg_type | codec.REPLY if is_reply and msg_type != codec.ERROR else msg_type
    wire = codec.encode_frame(kind, seq, codec.encode_fields(fields, values))
    [(got_type, got_seq, payload)] = feed_all(wire)
    assert (got_type, got_seq) == (kind, seq)
    assert codec.decode_fields(fields, payload) == values


def test_every_single_bit_flip_is_refused():
    wire = codec.encode_frame(
        codec.SET_RATE, 7, codec.encode_fields(codec.request_fields(codec.SET_RATE), ["0.5 mL/day"])
    )
    for i in range(len(wire) - 1):  # every byte but the delimiter
        for bit in range(8):
            damaged = bytearray(wire)
            damaged[i] ^= 1 << bit
            results = feed_all(bytes(damaged))
            assert results, f"byte {i} bit {bit}: nothing came out"
            assert all(isinstance(r, FrameError) for r in results), f"byte {i} bit {bit} accepted: {results}"


def test_truncated_frames_are_refused():
    raw = codec.encode_frame(codec.STATUS, 1)
    for cut in range(1, len(raw) - 1):
        [result] = feed_all(raw[:-1][:-cut] + b"\x00")
        assert isinstance(result, FrameError)
        assert result.code == codec.ERR_BAD_FRAME


def test_an_oversized_frame_is_refused_and_the_next_frame_still_decodes():
    good = codec.encode_frame(codec.STATUS, 9)
    results = feed_all(b"\x05" * 400 + b"\x00" + good)
    assert isinstance(results[0], FrameError) and results[0].code == codec.ERR_TOO_LONG
    assert results[1] == (codec.STATUS, 9, b"")


def test_garbage_before_a_frame_costs_only_the_garbage():
    good = codec.encode_frame(codec.HELLO, 3)
    results = feed_all(b"hello pump\r\n\x00" + good)
    assert isinstance(results[0], FrameError)
    assert results[1] == (codec.HELLO, 3, b"")


def test_raw_frame_matches_the_codec():
    assert raw_frame(codec.PROTOCOL_VERSION, codec.STATUS, 77) == codec.encode_frame(codec.STATUS, 77)


def test_a_frame_of_another_protocol_version_is_refused_with_its_sequence_number():
    [result] = feed_all(raw_frame(2, codec.STATUS, 77))
    assert isinstance(result, FrameError)
    assert result.code == codec.ERR_BAD_VERSION
    assert result.seq == 77
    assert "version 2" in result.message


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "missing field rate"),
        (b"\x05ab", "cut short"),
        (b"\x02\xff\xfe", "not UTF-8"),
        (b"\x01a\x00", "unexpected bytes"),
    ],
)
def test_payloads_that_do_not_fit_the_fields_are_malformed(payload, reason):
    with pytest.raises(FrameError) as e:
        codec.decode_fields(codec.request_fields(codec.SET_RATE), payload)
    assert e.value.code == codec.ERR_MALFORMED
    assert reason in e.value.message


def test_integers_that_do_not_fit_their_field_are_not_sent():
    with pytest.raises(FrameError):
        codec.encode_fields((("x", "B"),), [256])
    with pytest.raises(FrameError):
        codec.encode_fields((("x", "I"),), [-1])


def test_clip_never_splits_a_character():
    text = "µ" * 80  # 160 bytes of UTF-8
    clipped = codec.clip(text)
    assert len(clipped.encode()) <= codec.MAX_STRING
    assert clipped == "µ" * 50
