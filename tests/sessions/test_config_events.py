"""Session config, tenant policy, limits, rate buckets and the wire form of every
server event (docs/protocol.md, "Session config", "Server → client")."""

from __future__ import annotations

from typing import Any

import pytest

from sessions.config import AudioFormat, SessionConfig, parse_config
from sessions.errors import ErrorCode, ProtocolError
from sessions.events import (
    CaptionFinal,
    CaptionPartial,
    ErrorEvent,
    GoAway,
    Pong,
    ServerEvent,
    SpeakersMerged,
    SpeechStarted,
    SpeechStopped,
    TokenDelta,
    ToolCall,
    ToolError,
    ToolResult,
    TurnDone,
    TurnStarted,
    Usage,
    Word,
    to_wire,
)
from sessions.limits import Limits
from sessions.pipeline import ListSink
from sessions.ratelimit import TokenBucket
from sessions.tenants import TenantPolicy


def test_config_defaults() -> None:
    config = parse_config(None)
    assert config == SessionConfig()
    assert (config.mode, config.language, config.diarization, config.tools) == (
        "agent",
        "en",
        False,
        None,
    )
    assert config.audio.bytes_per_second() == 32000


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        ("caption", ErrorCode.BAD_MESSAGE, "session must be a map"),
        (
            {"mode": "karaoke"},
            ErrorCode.BAD_MESSAGE,
            "session.mode: Input should be 'caption', 'agent' or 'voice_agent'",
        ),
        (
            {"client": {"name": "n" * 101}},
            ErrorCode.BAD_MESSAGE,
            "session.client.name: String should have at most 100 characters",
        ),
        ({"audio": {"encoding": "opus"}}, ErrorCode.UNSUPPORTED, "audio encoding 'opus'"),
        ({"audio": {"sample_rate": 44101}}, ErrorCode.UNSUPPORTED, "sample rate 44101"),
        ({"audio": {"channels": 3}}, ErrorCode.UNSUPPORTED, "3 audio channels"),
    ],
)
def test_invalid_configs(raw: object, code: ErrorCode, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_config(raw)
    assert (caught.value.code, caught.value.message, caught.value.fatal) == (code, message, False)


def test_merged_applies_fields_and_merges_audio() -> None:
    config = parse_config({"mode": "caption", "audio": {"sample_rate": 8000, "channels": 2}})
    merged = config.merged({"language": "sv", "audio": {"sample_rate": 24000}})
    assert merged.audio == AudioFormat(sample_rate=24000, channels=2)
    assert (merged.mode, merged.language) == ("caption", "sv")
    assert config.language == "en"  # frozen: the original is unchanged


def test_tenant_policy() -> None:
    policy = TenantPolicy(
        "t", allowed_modes=("agent",), allowed_tools=("a", "b"), latency_budget_ms=700
    )
    policy.check(parse_config({"tools": ["a"]}))
    with pytest.raises(ProtocolError, match="tools not allowed for this tenant: c, d"):
        policy.check(parse_config({"tools": ["d", "a", "c"]}))
    with pytest.raises(ProtocolError, match="mode 'voice_agent' is not allowed"):
        policy.check(parse_config({"mode": "voice_agent"}))
    assert policy.session_tools(parse_config({})) == ("a", "b")
    assert policy.session_tools(parse_config({"tools": ["b", "z"]})) == ("b",)
    assert policy.latency_budget(parse_config({})) == 700


def test_limits_validate_themselves() -> None:
    with pytest.raises(ValueError, match="max_bad_frames"):
        Limits(max_bad_frames=2)
    with pytest.raises(ValueError, match="below replay_events"):
        Limits(replay_events=10, max_pending_events=10)
    with pytest.raises(ValueError, match="below replay_events"):
        Limits(max_pending_events=0)


def test_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=4.0)
    assert bucket.take(4.0, 10.0)
    assert not bucket.take(0.5, 10.0)
    assert bucket.take(1.0, 10.5)
    assert not bucket.take(1.0, 10.2)  # time going back refills nothing
    assert bucket.take(4.0, 100.0) and not bucket.take(0.1, 100.0)


def test_list_sink_keeps_events_in_order() -> None:
    sink = ListSink()
    sink.emit(SpeechStarted(1.0))
    sink.emit(SpeechStopped(2.0))
    assert sink.events == [SpeechStarted(1.0), SpeechStopped(2.0)]


WIRE: list[tuple[ServerEvent, bool, dict[str, Any]]] = [
    (SpeechStarted(1.23456), True, {"type": "speech.started", "at": 1.235}),
    (SpeechStopped(2.0), True, {"type": "speech.stopped", "at": 2.0}),
    (
        CaptionPartial(3, "he", 0.1234, 0.5, speaker="S1"),
        False,
        {
            "type": "caption.partial",
            "segment": 3,
            "text": "he",
            "start": 0.123,
            "end": 0.5,
            "speaker": "S1",
        },
    ),
    (
        CaptionFinal(3, "hey", 0.0, 0.5, words=(Word("hey", 0.0, 0.5, 0.98765),)),
        True,
        {
            "type": "caption.final",
            "segment": 3,
            "text": "hey",
            "start": 0.0,
            "end": 0.5,
            "speaker": None,
            "words": [{"w": "hey", "start": 0.0, "end": 0.5, "p": 0.988}],
        },
    ),
    (SpeakersMerged("S2", "S1"), True, {"type": "speaker.merged", "merged": "S2", "into": "S1"}),
    (TurnStarted("t1", "text"), True, {"type": "turn.started", "turn_id": "t1", "input": "text"}),
    (TokenDelta("t1", "hi"), True, {"type": "token", "turn_id": "t1", "text": "hi"}),
    (
        ToolCall("t1", "c1", "search", {"q": "x"}),
        True,
        {
            "type": "tool.call",
            "turn_id": "t1",
            "call_id": "c1",
            "name": "search",
            "arguments": {"q": "x"},
        },
    ),
    (
        ToolResult("t1", "c1", True, result={"n": 1}),
        True,
        {"type": "tool.result", "turn_id": "t1", "call_id": "c1", "ok": True, "result": {"n": 1}},
    ),
    (
        ToolResult("t1", "c1", False, error=ToolError("timeout", "too slow")),
        True,
        {
            "type": "tool.result",
            "turn_id": "t1",
            "call_id": "c1",
            "ok": False,
            "error": {"code": "timeout", "message": "too slow"},
        },
    ),
    (
        TurnDone("t1", "cancelled", "barge_in", Usage(5, 7), {"ttft_ms": 12.345}),
        True,
        {
            "type": "turn.done",
            "turn_id": "t1",
            "status": "cancelled",
            "reason": "barge_in",
            "usage": {"input_tokens": 5, "output_tokens": 7},
            "timings": {"ttft_ms": 12.3},
        },
    ),
    (
        ErrorEvent("internal", "x"),
        False,
        {"type": "error", "code": "internal", "message": "x", "fatal": False},
    ),
    (
        ErrorEvent("audio_gap", "y", session_state=True),
        True,
        {"type": "error", "code": "audio_gap", "message": "y", "fatal": False},
    ),
    (Pong("p", 1.23456), False, {"type": "pong", "id": "p", "server_time": 1.235}),
    (GoAway("drain", 100), False, {"type": "goaway", "reason": "drain", "reconnect_after_ms": 100}),
]


@pytest.mark.parametrize(("event", "durable", "wire"), WIRE)
def test_wire_form_of_every_event(event: ServerEvent, durable: bool, wire: dict[str, Any]) -> None:
    assert event.is_durable() is durable
    assert to_wire(event) == wire
    numbered = to_wire(event, 9)
    assert numbered == {**wire, "seq": 9} and list(numbered)[:2] == ["type", "seq"]
