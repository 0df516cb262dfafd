"""Parsing client messages from decoded maps (docs/protocol.md, "Client → server")."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions.codec import Codec
from sessions.errors import ErrorCode, ProtocolError
from sessions.messages import (
    Ack,
    Audio,
    AudioEndMessage,
    Bye,
    Cancel,
    Hello,
    Ping,
    ResumeRequest,
    Text,
    Update,
    parse_message,
)

MSG = Codec("msgpack", 1 << 20)
JS = Codec("json", 1 << 20)


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ({"type": "hello", "v": 1, "token": "k"}, Hello(1, "k", None, None)),
        (
            {
                "type": "hello",
                "v": 1,
                "token": "k",
                "resume": {"token": "r", "last_seq": 4},
                "session": {"mode": "caption"},
            },
            Hello(1, "k", ResumeRequest("r", 4), {"mode": "caption"}),
        ),
        ({"type": "hello", "v": 1, "token": "k", "resume": None}, Hello(1, "k", None, None)),
        ({"type": "audio", "data": b"ab", "chunk": 3}, Audio(b"ab", 3)),
        ({"type": "audio", "data": b"ab", "chunk": None}, Audio(b"ab", None)),
        ({"type": "audio.end"}, AudioEndMessage()),
        ({"type": "text", "text": "hi", "id": "m1"}, Text("hi", "m1")),
        ({"type": "text", "text": "x" * 100_000}, Text("x" * 100_000, None)),
        ({"type": "cancel", "turn_id": "t1"}, Cancel("t1")),
        ({"type": "cancel"}, Cancel(None)),
        ({"type": "ack", "seq": 0}, Ack(0)),
        ({"type": "ack", "seq": 2**53 - 1}, Ack(2**53 - 1)),
        ({"type": "ping", "id": "p" * 128}, Ping("p" * 128)),
        ({"type": "ping", "id": -1.5}, Ping(-1.5)),
        ({"type": "ping"}, Ping(None)),
        ({"type": "update", "session": {}}, Update({})),
        ({"type": "bye", "unknown": [1, 2]}, Bye()),
    ],
)
def test_valid_messages(raw: dict[str, Any], parsed: object) -> None:
    assert parse_message(raw, MSG) == parsed


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        ({}, "bad_message", "a message needs a string type"),
        ({"type": 5}, "bad_message", "a message needs a string type"),
        ({"type": "x" * 100}, "bad_message", f"unknown message type {'x' * 40!r}"),
        (
            {"type": "hello", "token": "k"},
            "unsupported",
            "protocol version None; this server speaks 1",
        ),
        (
            {"type": "hello", "v": 1.5, "token": "k"},
            "unsupported",
            "protocol version 1.5; this server speaks 1",
        ),
        ({"type": "hello", "v": 1, "token": 5}, "bad_message", "hello.token must be a string"),
        (
            {"type": "hello", "v": 1, "token": "k" * 4097},
            "bad_message",
            "hello.token is longer than 4096 characters",
        ),
        (
            {"type": "hello", "v": 1, "token": "k", "resume": "r"},
            "bad_message",
            "hello.resume must be a map",
        ),
        (
            {"type": "hello", "v": 1, "token": "k", "resume": {"last_seq": 1}},
            "bad_message",
            "hello.resume.token must be a string",
        ),
        (
            {"type": "hello", "v": 1, "token": "k", "resume": {"token": "r"}},
            "bad_message",
            "hello.resume.last_seq must be a non-negative integer",
        ),
        (
            {"type": "hello", "v": 1, "token": "k", "resume": {"token": "r", "last_seq": -1}},
            "bad_message",
            "hello.resume.last_seq must be a non-negative integer",
        ),
        (
            {"type": "hello", "v": 1, "token": "k", "session": []},
            "bad_message",
            "hello.session must be a map",
        ),
        ({"type": "audio"}, "bad_message", "audio.data must be bytes"),
        (
            {"type": "audio", "data": b"", "chunk": True},
            "bad_message",
            "audio.chunk must be a non-negative integer",
        ),
        (
            {"type": "audio", "data": b"", "chunk": 2**53},
            "bad_message",
            "audio.chunk must be a non-negative integer",
        ),
        (
            {"type": "audio", "data": b"", "chunk": 1.0},
            "bad_message",
            "audio.chunk must be a non-negative integer",
        ),
        ({"type": "text"}, "bad_message", "text.text must be a string"),
        ({"type": "text", "text": b"hi"}, "bad_message", "text.text must be a string"),
        ({"type": "text", "text": "hi", "id": 3}, "bad_message", "text.id must be a string"),
        (
            {"type": "text", "text": "hi", "id": "i" * 129},
            "bad_message",
            "text.id is longer than 128 characters",
        ),
        ({"type": "cancel", "turn_id": ["t"]}, "bad_message", "cancel.turn_id must be a string"),
        ({"type": "ack"}, "bad_message", "ack.seq must be a non-negative integer"),
        ({"type": "ack", "seq": "1"}, "bad_message", "ack.seq must be a non-negative integer"),
        (
            {"type": "ping", "id": {"a": 1}},
            "bad_message",
            "ping.id must be a short string or a number",
        ),
        (
            {"type": "ping", "id": "p" * 129},
            "bad_message",
            "ping.id must be a short string or a number",
        ),
        ({"type": "ping", "id": b"p"}, "bad_message", "ping.id must be a short string or a number"),
        ({"type": "update"}, "bad_message", "update.session must be a map"),
        ({"type": "update", "session": None}, "bad_message", "update.session must be a map"),
    ],
)
def test_invalid_messages_name_the_field(raw: dict[str, Any], code: str, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_message(raw, MSG)
    assert (caught.value.code, caught.value.message, caught.value.fatal) == (code, message, False)


def test_json_audio_data_is_base64() -> None:
    assert parse_message({"type": "audio", "data": "AP8="}, JS) == Audio(b"\x00\xff", None)


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
FIELDS = ["v", "token", "resume", "session", "data", "chunk", "text", "id", "turn_id", "seq"]
TYPES = st.sampled_from(
    ["hello", "audio", "audio.end", "text", "cancel", "ack", "ping", "update", "bye", "nope"]
)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(TYPES, VALUES),
    st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6),
    st.sampled_from([MSG, JS]),
)
def test_any_map_parses_or_is_a_documented_error(
    kind: object, fields: dict[str, Any], codec: Codec
) -> None:
    try:
        message = parse_message({**fields, "type": kind}, codec)
    except ProtocolError as error:
        assert error.code in (ErrorCode.BAD_MESSAGE, ErrorCode.UNSUPPORTED)
        assert not error.fatal
    else:
        assert isinstance(
            message, Hello | Audio | AudioEndMessage | Text | Cancel | Ack | Ping | Update | Bye
        )
