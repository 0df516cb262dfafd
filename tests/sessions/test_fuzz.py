"""Hostile input against a whole connection: arbitrary frames, arbitrary maps,
every prefix of a valid frame, frames byte by byte, and random interleavings of
client traffic, pipeline events and reconnects. The connection never raises,
answers only with documented error codes, closes only with the spec's codes, and a
client never sees a durable event twice or misses one."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions.codec import Frame, Kind
from sessions.errors import CLOSE_CODES, ErrorCode
from sessions.events import CaptionFinal, CaptionPartial, TokenDelta
from sessions.limits import Limits
from tests.sessions.transcript import (
    ACME_KEY,
    SPEC_CLOSE_CODES,
    SPEC_ERROR_CODES,
    Peer,
    Server,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS: list[Kind] = ["msgpack", "json"]


def check(peer: Peer) -> list[dict[str, Any]]:
    """Read what is due and check it against the spec; return the frames."""
    frames = peer.receive()
    fatal = [f for f in frames if f["type"] == "error" and f["fatal"]]
    for frame in frames:
        if frame["type"] == "error":
            assert frame["code"] in SPEC_ERROR_CODES
            assert isinstance(frame["message"], str) and isinstance(frame["fatal"], bool)
    if fatal:
        assert peer.conn.close_code == CLOSE_CODES[ErrorCode(fatal[0]["code"])]
        assert frames[-1] is fatal[-1] and len(fatal) == 1
    if peer.conn.close_code is not None:
        assert peer.conn.close_code in SPEC_CLOSE_CODES
    return frames


def welcomed(kind: Kind, mode: str = "voice_agent") -> Peer:
    client = Server().connect(kind)
    client.hello(session={"mode": mode})
    return client


def raw_frames(kind: Kind) -> st.SearchStrategy[Frame]:
    text = st.text(max_size=200)
    if kind == "json":
        return st.one_of(text, st.binary(max_size=200), st.just("{}"), st.just('{"type":1}'))
    return st.one_of(st.binary(max_size=200), text)


@FAST
@given(st.sampled_from(KINDS), st.data())
def test_an_arbitrary_first_frame_is_a_documented_refusal(kind: Kind, data: st.DataObject) -> None:
    client = Server().connect(kind)
    client.send_frame(data.draw(raw_frames(kind)))
    [frame] = check(client)
    assert frame["type"] == "error" and frame["fatal"] is True
    assert frame["code"] in ("bad_message", "unsupported", "too_large")
    assert client.closed_with in (4003, 1009)


@FAST
@given(st.sampled_from(KINDS), st.data())
def test_arbitrary_frames_after_welcome_never_break_the_connection(
    kind: Kind, data: st.DataObject
) -> None:
    client = welcomed(kind)
    for frame in data.draw(st.lists(raw_frames(kind), max_size=8)):
        client.send_frame(frame)
        check(client)
    assert client.conn.close_code in (None, 4003)


SAFE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(
        st.sampled_from(["mode", "token", "last_seq", "language", "tools", "audio"]),
        st.one_of(st.integers(0, 3), st.text(max_size=6), st.sampled_from(["caption", "agent"])),
        max_size=3,
    ),
)
MAPS = st.fixed_dictionaries(
    {
        "type": st.one_of(
            st.sampled_from(
                ["audio", "audio.end", "text", "cancel", "ack", "ping", "update", "hello", "x"]
            ),
            SAFE_VALUES,
        )
    },
    optional=dict.fromkeys(
        ["v", "token", "resume", "session", "data", "chunk", "text", "id", "turn_id", "seq"],
        SAFE_VALUES,
    ),
)


@FAST
@given(
    st.sampled_from(KINDS),
    st.sampled_from(["caption", "agent", "voice_agent"]),
    st.lists(MAPS, max_size=8),
)
def test_arbitrary_maps_get_inputs_or_documented_errors(
    kind: Kind, mode: str, messages: list[dict[str, Any]]
) -> None:
    client = welcomed(kind, mode)
    for message in messages:
        client.send(message)
        for frame in check(client):
            assert frame["type"] in ("error", "pong")
    assert client.conn.close_code in (None, 4003)


VALID: list[dict[str, Any]] = [
    {"type": "audio", "data": b"\x01\x02\x03\x04", "chunk": 0},
    {"type": "audio.end"},
    {"type": "text", "text": "héllo wörld", "id": "m-1"},
    {"type": "cancel", "turn_id": "t-1"},
    {"type": "ack", "seq": 0},
    {"type": "ping", "id": "p-1"},
    {"type": "update", "session": {"language": "de", "audio": {"sample_rate": 16000}}},
    {"type": "bye"},
]
HELLO = {"type": "hello", "v": 1, "token": ACME_KEY, "session": {"mode": "voice_agent"}}


@pytest.mark.parametrize("kind", KINDS)
def test_every_prefix_of_a_valid_hello_closes_with_4003(kind: Kind) -> None:
    whole = Server().connect(kind).codec.encode(HELLO)
    for cut in range(len(whole)):
        client = Server().connect(kind)
        client.send_frame(whole[:cut])
        [frame] = check(client)
        assert frame["code"] == "bad_message" and frame["fatal"] is True
        assert client.closed_with == 4003


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("message", VALID, ids=[m["type"] for m in VALID])
def test_every_prefix_of_a_valid_frame_is_a_non_fatal_bad_message(
    kind: Kind, message: dict[str, Any]
) -> None:
    client = welcomed(kind)
    whole = client.codec.encode(message)
    in_a_row = 0
    for cut in range(len(whole)):
        client.send_frame(whole[:cut])
        in_a_row += 1
        [frame] = check(client)
        assert (frame["type"], frame["code"], frame["fatal"]) == (
            "error",
            "bad_message",
            in_a_row == 3,
        )
        if in_a_row == 3:
            assert client.closed_with == 4003
            client, in_a_row = welcomed(kind), 0
    client.send_frame(whole)
    assert check(client) == (
        [{"type": "pong", "id": "p-1", "server_time": 1000.0}] if message["type"] == "ping" else []
    )
    assert client.conn.bad_frames == 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("message", VALID, ids=[m["type"] for m in VALID])
def test_a_frame_sent_byte_by_byte_closes_with_4003_at_the_third(
    kind: Kind, message: dict[str, Any]
) -> None:
    client = welcomed(kind, "agent")
    whole = client.codec.encode(message)
    for i in range(3):
        piece = whole[i : i + 1]
        client.send_frame(piece)
        frames = check(client)
        assert [f["code"] for f in frames] == ["bad_message"]
        assert frames[0]["fatal"] is (i == 2)
    assert client.closed_with == 4003
    # The rest is not even read.
    for i in range(3, len(whole)):
        assert client.send_frame(whole[i : i + 1]) == []
    assert client.receive() == []


ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("final"), st.integers(0, 5)),
        st.tuples(
            st.just("token"), st.sampled_from(["t1", "t2"]), st.text("ab", min_size=1, max_size=3)
        ),
        st.tuples(st.just("partial"), st.integers(0, 5)),
        st.tuples(st.just("read")),
        st.tuples(st.just("ack")),
        st.tuples(st.just("ping")),
        st.tuples(st.just("garbage")),
        st.tuples(st.just("reconnect"), st.sampled_from(KINDS)),
        st.tuples(st.just("wait"), st.floats(0.0, 40.0)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIONS)
def test_a_client_that_resumes_sees_every_durable_event_exactly_once(
    actions: list[tuple[Any, ...]],
) -> None:
    server = Server(Limits(replay_events=64, max_pending_events=8, heartbeat_s=10.0))
    client = server.connect()
    welcome = client.hello(session={"mode": "voice_agent"})
    session = client.session
    seen: list[dict[str, Any]] = []  # the durable events the client has read
    emitted: list[CaptionFinal | TokenDelta] = []

    def read() -> None:
        for frame in check(client):
            if "seq" in frame:
                assert frame["seq"] == (seen[-1]["seq"] if seen else 0) + 1
                seen.append(frame)

    for action in actions:
        match action:
            case ("final", i):
                emitted.append(CaptionFinal(i, f"f{i}", 0.0, 0.0))
                session.emit(emitted[-1])
            case ("token", turn, text):
                emitted.append(TokenDelta(turn, text))
                session.emit(emitted[-1])
            case ("partial", i):
                session.emit(CaptionPartial(i, "p", 0.0, 0.0))
            case ("read",):
                read()
            case ("ack",):
                if client.conn.is_open and seen:
                    client.send({"type": "ack", "seq": seen[-1]["seq"]})
            case ("ping",):
                client.send({"type": "ping"})
            case ("garbage",):
                client.send_frame(b"\xc1" if client.kind == "msgpack" else "{")
            case ("wait", seconds):
                server.now += seconds
                client.tick()
            case ("reconnect", kind):
                read()
                client.drop()
                client = server.connect(kind)
                client.resume(welcome, seen[-1]["seq"] if seen else 0)
                frames = client.receive()
                welcome = frames[0]
                assert welcome["type"] == "welcome", frames
                for frame in frames[1:]:
                    if "seq" in frame:
                        assert frame["seq"] == (seen[-1]["seq"] if seen else 0) + 1
                        seen.append(frame)
        assert session.replay.dropped_unacked == 0
    # A last reconnect catches up on everything.
    read()
    client.drop()
    client = server.connect()
    client.resume(welcome, seen[-1]["seq"] if seen else 0)
    read()
    durable = seen
    assert [f["seq"] for f in durable] == list(range(1, session.replay.last_seq + 1))
    finals = [f"f{e.segment}" for e in emitted if isinstance(e, CaptionFinal)]
    assert [f["text"] for f in durable if f["type"] == "caption.final"] == finals
    for turn in ("t1", "t2"):
        want = "".join(e.text for e in emitted if isinstance(e, TokenDelta) and e.turn_id == turn)
        got = "".join(f["text"] for f in durable if f["type"] == "token" and f["turn_id"] == turn)
        assert got == want
