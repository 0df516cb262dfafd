"""Client input forwarded between nodes: what the serving node encodes, the owner
decodes; anything else is refused with ValueError."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessions.config import SessionConfig
from sessions.inputs import AudioChunk, AudioEnd, CancelRequest, ConfigUpdated, UserText
from sessions.relay import (
    MAX_RELAY_BYTES,
    Relayed,
    RemoteAck,
    RemoteAttach,
    RemoteBye,
    RemoteDetach,
    decode_relay,
    encode_relay,
)

ITEMS: list[Relayed] = [
    AudioChunk(b"\x00\x01" * 4, 7, 0.0),
    AudioEnd(0.0),
    UserText("hello", "m1", 0.0),
    UserText("hi", None, 0.0),
    CancelRequest("t3", 0.0),
    CancelRequest(None, 0.0),
    ConfigUpdated(SessionConfig(mode="voice_agent", language="fr")),
    RemoteAttach("node-b c9", 41),
    RemoteDetach("node-b c9"),
    RemoteAck(40),
    RemoteBye(),
]


@pytest.mark.parametrize("item", ITEMS)
def test_every_item_round_trips(item: Relayed) -> None:
    # received_at is the owner's clock: the decoder stamps it.
    assert decode_relay(encode_relay(item), 0.0) == item


@pytest.mark.parametrize(
    "data",
    [
        "not bytes",
        b"\xc1",
        b"\x00" * (MAX_RELAY_BYTES + 1),
        msgpack.packb([1]),
        msgpack.packb({"k": "dance"}),
        msgpack.packb({"k": None}),
        msgpack.packb({"k": "audio", "data": "text", "chunk": 1}),
        msgpack.packb({"k": "audio", "data": b"", "chunk": -1}),
        msgpack.packb({"k": "audio", "data": b"", "chunk": True}),
        msgpack.packb({"k": "text", "text": 5}),
        msgpack.packb({"k": "text", "text": "x", "id": 5}),
        msgpack.packb({"k": "config", "config": {"mode": "dance"}}),
        msgpack.packb({"k": "config", "config": "x"}),
        msgpack.packb({"k": "attach", "id": "n c", "last_seq": "3"}),
        msgpack.packb({"k": "detach"}),
        msgpack.packb({"k": "ack", "seq": 1.5}),
    ],
)
def test_garbage_is_refused(data: object) -> None:
    with pytest.raises(ValueError, match="relayed"):
        decode_relay(data, 0.0)


@given(st.binary(max_size=100))
def test_any_bytes_decode_or_are_refused(data: bytes) -> None:
    try:
        decode_relay(data, 1.0)
    except ValueError as error:
        assert "relayed" in str(error)
