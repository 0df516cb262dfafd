"""The frame codecs of the two sub-protocols (docs/protocol.md, "Transport")."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions.codec import JSON, MSGPACK, Codec, select_subprotocol
from sessions.errors import ErrorCode, ProtocolError

MSG = Codec("msgpack", 1 << 20)
JS = Codec("json", 1 << 20)


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ([MSGPACK, JSON], MSGPACK),
        ([JSON, MSGPACK], JSON),
        (["chat", JSON], JSON),
        (["chat"], None),
        ([], None),
    ],
)
def test_the_first_supported_subprotocol_is_chosen(offered: list[str], chosen: str | None) -> None:
    assert select_subprotocol(offered) == chosen


def test_codec_for_subprotocol_defaults_to_json() -> None:
    assert Codec.for_subprotocol(MSGPACK, 10) == Codec("msgpack", 10)
    assert Codec.for_subprotocol(JSON, 10) == Codec("json", 10)
    assert Codec.for_subprotocol(None, 10) == Codec("json", 10)


def test_msgpack_round_trip_keeps_bytes_as_bin() -> None:
    frame = MSG.encode({"type": "audio", "data": b"\x00\xff"})
    assert frame == b"\x82\xa4type\xa5audio\xa4data\xc4\x02\x00\xff"
    assert MSG.decode(frame) == {"type": "audio", "data": b"\x00\xff"}


def test_json_encodes_bytes_as_base64_and_keeps_unicode_readable() -> None:
    assert JS.encode({"type": "x", "data": b"\x00\xff", "t": "é"}) == (
        '{"type":"x","data":"AP8=","t":"é"}'
    )
    assert JS.decode_bytes("AP8=", "data") == b"\x00\xff"


def test_json_cannot_encode_other_objects() -> None:
    with pytest.raises(TypeError, match="cannot encode set"):
        JS.encode({"type": "x", "v": {1}})


def test_a_binary_frame_on_json_is_audio() -> None:
    assert JS.decode(b"\x01\x02") == {"type": "audio", "data": b"\x01\x02"}


@pytest.mark.parametrize(
    ("codec", "frame", "message"),
    [
        (MSG, '{"type":"ping"}', "text frame on the msgpack sub-protocol"),
        (MSG, b"", "undecodable msgpack frame (ValueError)"),
        (MSG, b"\x93\x01\x02", "undecodable msgpack frame (ValueError)"),
        (MSG, b"\xc1", "undecodable msgpack frame (FormatError)"),
        (MSG, b"\x91" * 100_000, "undecodable msgpack frame (StackError)"),
        (MSG, b"\xa2\xff\xfe", "undecodable msgpack frame (UnicodeDecodeError)"),
        (MSG, b"\x81\xa1a\x01\x00", "undecodable msgpack frame (ExtraData)"),
        (MSG, msgpack.packb({1: 2}), "undecodable msgpack frame (ValueError)"),
        (MSG, msgpack.packb(msgpack.ExtType(1, b"x")), "undecodable msgpack frame (ValueError)"),
        (MSG, msgpack.packb([1, 2]), "a message must be a map"),
        (JS, "", "undecodable JSON frame"),
        (JS, "[" * 100_000, "undecodable JSON frame"),
        (JS, '{"a": 1', "undecodable JSON frame"),
        (JS, '"text"', "a message must be a map"),
        (JS, "null", "a message must be a map"),
    ],
)
def test_undecodable_frames_are_bad_messages(
    codec: Codec, frame: bytes | str, message: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        codec.decode(frame)
    assert (caught.value.code, caught.value.message, caught.value.fatal) == (
        ErrorCode.BAD_MESSAGE,
        message,
        False,
    )


@pytest.mark.parametrize(
    ("codec", "value", "message"),
    [
        (JS, "@@@", "data is not valid base64"),
        (JS, "é", "data is not valid base64"),
        (JS, 12, "data must be bytes"),
        (MSG, "AP8=", "data must be bytes"),
        (MSG, None, "data must be bytes"),
    ],
)
def test_byte_fields_must_be_bytes(codec: Codec, value: object, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        codec.decode_bytes(value, "data")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_any_bytes_decode_to_a_map_or_a_bad_message(frame: bytes) -> None:
    try:
        value = MSG.decode(frame)
    except ProtocolError as error:
        assert error.code is ErrorCode.BAD_MESSAGE
    else:
        assert isinstance(value, dict)
    assert JS.decode(frame) == {"type": "audio", "data": frame}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=256))
def test_any_text_decodes_to_a_map_or_a_bad_message(frame: str) -> None:
    try:
        value = JS.decode(frame)
    except ProtocolError as error:
        assert error.code is ErrorCode.BAD_MESSAGE
    else:
        assert isinstance(value, dict)


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"ping","id":NaN}',
        '{"type":"ping","id":-Infinity}',
        '{"type":"ping","id":"\\ud800"}',
        '{"type":"text","text":"a\\udc00b"}',
        '{"type":"hello","v":1,"token":"\\udfff"}',
    ],
)
def test_json_values_no_client_could_read_back_are_bad_messages(frame: str) -> None:
    """NaN and Infinity are not JSON, and a lone surrogate is not UTF-8: echoed back
    (a pong's id, a text in a turn), they would make frames no client can parse."""
    with pytest.raises(ProtocolError) as caught:
        JS.decode(frame)
    assert caught.value.code is ErrorCode.BAD_MESSAGE


def test_escaped_surrogate_pairs_are_fine() -> None:
    assert JS.decode('{"type":"text","text":"\\ud83d\\ude00"}') == {"type": "text", "text": "😀"}
