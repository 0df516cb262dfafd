"""Transcripts of client messages after the welcome (docs/protocol.md, "Client →
server", "Transport", "Heartbeats", "Backpressure": inbound)."""

from __future__ import annotations

import pytest

from sessions.codec import Kind
from sessions.config import SessionConfig
from sessions.connection import ByeReceived, InputReceived
from sessions.inputs import AudioChunk, AudioEnd, CancelRequest, ConfigUpdated, UserText
from sessions.limits import Limits
from sessions.states import ConnectionState, SessionState
from tests.sessions.transcript import Peer, Server, error


def peer(mode: str = "agent", limits: Limits | None = None, kind: Kind = "msgpack") -> Peer:
    client = Server(limits).connect(kind)
    client.hello(session={"mode": mode})
    return client


def test_text_cancel_and_audio_end_reach_the_pipeline() -> None:
    client = peer("voice_agent")
    client.send({"type": "text", "text": "hi there", "id": "m1"}, at=1001.0)
    client.send({"type": "text", "text": ""}, at=1002.0)
    client.send({"type": "cancel", "turn_id": "t9"}, at=1003.0)
    client.send({"type": "cancel"}, at=1004.0)
    client.send({"type": "audio.end"}, at=1005.0)
    assert client.inputs == [
        UserText("hi there", "m1", 1001.0),
        UserText("", None, 1002.0),
        CancelRequest("t9", 1003.0),
        CancelRequest(None, 1004.0),
        AudioEnd(1005.0),
    ]
    assert client.receive() == []


def test_ping_is_answered_with_the_same_id() -> None:
    server = Server()
    client = server.connect("json")
    client.hello()
    for ping_id in ["abc", 7, 2.5, None]:
        client.send({"type": "ping", "id": ping_id}, at=1234.5678)
        assert client.receive() == [{"type": "pong", "id": ping_id, "server_time": 1234.568}]
    client.send({"type": "ping"})
    assert client.receive()[0]["id"] is None


def test_frame_larger_than_max_frame_bytes_closes_with_1009() -> None:
    client = peer("caption", Limits(max_frame_bytes=64))
    client.send_frame(b"\x00" * 65)
    assert client.receive() == [error("too_large", "frame of 65 bytes exceeds 64", fatal=True)]
    assert client.closed_with == 1009


def test_text_frame_size_counts_utf8_bytes() -> None:
    client = peer("agent", Limits(max_frame_bytes=100), kind="json")
    client.send({"type": "text", "text": "é" * 30})  # 55 characters, 85 bytes
    assert client.conn.close_code is None
    client.send({"type": "text", "text": "é" * 40})  # 65 characters, 105 bytes
    assert client.receive() == [error("too_large", "frame of 105 bytes exceeds 100", fatal=True)]
    assert client.closed_with == 1009


def test_text_longer_than_max_text_chars_is_a_non_fatal_too_large() -> None:
    client = peer("agent", Limits(max_text_chars=5))
    client.send({"type": "text", "text": "123456"})
    assert client.receive() == [error("too_large", "text longer than 5 characters", fatal=False)]
    client.send({"type": "text", "text": "12345"})
    assert client.inputs == [UserText("12345", None, client.server.now)]
    assert client.conn.is_open


def test_audio_in_agent_mode_is_a_non_fatal_unsupported() -> None:
    client = peer("agent")
    client.send({"type": "audio", "data": b"\0\0"})
    assert client.receive() == [
        error("unsupported", "audio is not accepted in agent mode", fatal=False)
    ]
    assert client.inputs == [] and client.conn.is_open


def test_text_in_caption_mode_is_a_non_fatal_unsupported() -> None:
    client = peer("caption")
    client.send({"type": "text", "text": "hi"})
    assert client.receive() == [
        error("unsupported", "text is not accepted in caption mode", fatal=False)
    ]
    assert client.inputs == [] and client.conn.is_open


def test_duplicate_audio_chunks_are_dropped_and_gaps_reported_durably() -> None:
    client = peer("caption")
    for chunk in [0, 1, 1, 0, 4, 5, 3]:
        client.send({"type": "audio", "data": bytes([chunk]) * 2, "chunk": chunk})
    client.send({"type": "audio", "data": b"\7\7"})  # no index: the next one
    assert [(i.chunk, i.data[0]) for i in client.inputs if isinstance(i, AudioChunk)] == [
        (0, 0),
        (1, 1),
        (4, 4),
        (5, 5),
        (6, 7),
    ]
    assert client.receive() == [
        {
            "type": "error",
            "seq": 1,
            "code": "audio_gap",
            "message": "2 audio chunk(s) missing before chunk 4",
            "fatal": False,
        }
    ]
    assert client.session.audio_next == 7


def test_a_message_flood_is_rate_limited_with_4029() -> None:
    client = peer("agent", Limits(messages_per_s=10.0, message_burst=5.0))
    now = client.server.now
    for _ in range(4):  # the hello took one token
        client.send({"type": "ping"}, at=now)
    client.send({"type": "ping"}, at=now + 0.1)  # a tenth of a second refills one
    assert client.conn.close_code is None
    client.send({"type": "ping"}, at=now + 0.1)
    frames = client.receive()
    assert len(frames) == 6 and frames[-1] == error("rate_limited", "too many messages", fatal=True)
    assert client.closed_with == 4029


def test_audio_far_above_real_time_is_rate_limited_with_4029() -> None:
    limits = Limits(audio_rate_factor=2.0, audio_burst_s=1.0)
    client = peer("caption", limits)
    now = client.server.now
    second = b"\0" * 32000  # one second of 16 kHz mono s16le
    client.send({"type": "audio", "data": second, "chunk": 0}, at=now)
    client.send({"type": "audio", "data": second, "chunk": 1}, at=now + 0.5)  # 2x real time
    client.send({"type": "audio", "data": second, "chunk": 2}, at=now + 1.0)
    assert client.conn.close_code is None and len(client.inputs) == 3
    client.send({"type": "audio", "data": second, "chunk": 3}, at=now + 1.1)
    assert client.receive() == [error("rate_limited", "audio far above real time", fatal=True)]
    assert client.closed_with == 4029 and len(client.inputs) == 3


def test_three_bad_frames_in_a_row_close_with_4003() -> None:
    client = peer("agent", kind="json")
    client.send_frame("{not json")
    client.send({"type": "nope"})
    assert client.conn.is_open
    client.send({"type": "ack"})
    assert client.receive() == [
        error("bad_message", "undecodable JSON frame", fatal=False),
        error("bad_message", "unknown message type 'nope'", fatal=False),
        error("bad_message", "3 bad frames in a row", fatal=True),
    ]
    assert client.closed_with == 4003


def test_a_good_frame_resets_the_bad_frame_count() -> None:
    client = peer("agent", kind="json")
    for _ in range(3):
        client.send_frame("[]")
        client.send_frame("42")
        client.send({"type": "ping", "id": "ok"})
    frames = client.receive()
    assert [f["type"] for f in frames] == ["error", "error", "pong"] * 3
    assert all(f["fatal"] is False for f in frames if f["type"] == "error")
    assert frames[0] == error("bad_message", "a message must be a map", fatal=False)
    assert client.conn.is_open


def test_ack_of_an_unsent_seq_is_a_bad_message() -> None:
    client = peer("agent")
    client.send({"type": "ack", "seq": 1})
    assert client.receive() == [error("bad_message", "ack 1 of an event not yet sent", fatal=False)]
    client.send({"type": "ack", "seq": 0})
    assert client.receive() == [] and client.conn.is_open


def test_update_changes_settings_and_tells_the_pipeline() -> None:
    client = peer("caption")
    client.send({"type": "update", "session": {"language": "fr", "audio": {"sample_rate": 48000}}})
    config = client.session.config
    assert (config.language, config.audio.sample_rate, config.audio.channels) == ("fr", 48000, 1)
    assert client.inputs == [ConfigUpdated(config)]
    assert client.receive() == []


def test_update_of_the_mode_is_refused() -> None:
    client = peer("caption")
    client.send({"type": "update", "session": {"mode": "agent"}})
    assert client.receive() == [
        error("unsupported", "the mode of a session cannot change", fatal=False)
    ]
    assert client.session.config.mode == "caption" and client.inputs == []


def test_update_to_forbidden_tools_is_refused() -> None:
    client = peer("agent")
    client.send({"type": "update", "session": {"tools": ["search", "shell"]}})
    assert client.receive() == [
        error("forbidden", "tools not allowed for this tenant: shell", fatal=False)
    ]
    assert client.session.config.tools is None and client.conn.is_open


@pytest.mark.parametrize(
    ("session", "message"),
    [
        (
            {"latency_budget_ms": 5},
            "session.latency_budget_ms: Input should be greater than or equal to 50",
        ),
        (
            {"audio": "loud"},
            "session.audio: Input should be a valid dictionary or instance of AudioFormat",
        ),
    ],
)
def test_invalid_update_is_a_bad_message(session: dict[str, object], message: str) -> None:
    client = peer("caption")
    client.send({"type": "update", "session": session})
    assert client.receive() == [error("bad_message", message, fatal=False)]


def test_bye_closes_with_1000_and_ends_the_session() -> None:
    server = Server()
    client = server.connect()
    client.hello()
    session = client.session
    [event] = client.send({"type": "bye"})
    assert event == ByeReceived(session)
    assert client.receive() == []
    assert client.closed_with == 1000 and client.conn.close_reason == "bye"
    assert session.state is SessionState.CLOSED and server.manager.sessions == {}
    assert client.send({"type": "ping"}) == []
    client.drop()
    assert client.conn.state is ConnectionState.CLOSED


def test_a_second_hello_closes_with_4003() -> None:
    client = peer("agent")
    client.send({"type": "hello", "v": 1, "token": "key-acme"})
    assert client.receive() == [error("bad_message", "a second hello", fatal=True)]
    assert client.closed_with == 4003


@pytest.mark.parametrize("hello", [{"v": 2, "token": "key-acme"}, {"v": 1}, {}])
def test_a_second_invalid_hello_closes_with_4003_too(hello: dict[str, object]) -> None:
    client = peer("agent")
    client.send({"type": "hello", **hello})
    assert client.receive() == [error("bad_message", "a second hello", fatal=True)]
    assert client.closed_with == 4003


def test_idle_connection_closes_with_1001_and_the_session_detaches() -> None:
    server = Server(Limits(heartbeat_s=5.0))
    client = server.connect()
    client.hello()
    client.send({"type": "ping"}, at=server.now + 4.0)
    assert client.conn.next_deadline() == server.now + 14.0
    client.tick(at=server.now + 13.9)
    assert client.conn.is_open
    client.tick(at=server.now + 14.0)
    assert client.receive() == [{"type": "pong", "id": None, "server_time": server.now + 4.0}]
    assert client.closed_with == 1001 and client.conn.close_reason == "idle_timeout"
    assert client.conn.next_deadline() is None
    client.tick(at=server.now + 100.0)  # nothing more happens
    client.drop(at=server.now + 14.5)
    assert client.session.state is SessionState.DETACHED
    assert client.session.expires_at() == server.now + 14.5 + 120.0


def test_input_events_carry_audio_seconds() -> None:
    client = peer("caption")
    [event] = client.send({"type": "audio", "data": b"\0" * 3200})
    assert event == InputReceived(AudioChunk(b"\0" * 3200, 0, client.server.now), 0.1)


def test_config_updates_keep_unknown_fields_out() -> None:
    client = peer("agent")
    client.send({"type": "update", "session": {"colour": "blue"}})
    assert client.inputs == [ConfigUpdated(SessionConfig())]
