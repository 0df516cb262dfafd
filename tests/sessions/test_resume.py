"""Transcripts of detach, resume, replay and takeover (docs/protocol.md, "Resume",
"Session lifecycle" 3-5)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from sessions.events import CaptionFinal, ErrorEvent, SpeechStarted, TurnStarted
from sessions.inputs import AudioChunk
from sessions.limits import Limits
from sessions.states import ConnectionState, SessionState
from tests.sessions.transcript import ACME, GLOBEX_KEY, SECRET, Peer, Server, error


def final(i: int) -> CaptionFinal:
    return CaptionFinal(i, f"line {i}", float(i), i + 0.5)


def wire_final(seq: int, i: int) -> dict[str, Any]:
    return {
        "type": "caption.final",
        "seq": seq,
        "segment": i,
        "text": f"line {i}",
        "start": float(i),
        "end": i + 0.5,
        "speaker": None,
    }


def started(limits: Limits | None = None) -> tuple[Server, Peer, dict[str, Any]]:
    server = Server(limits)
    client = server.connect()
    welcome = client.hello(session={"mode": "caption"})
    return server, client, welcome


def test_durable_events_are_numbered_without_gaps() -> None:
    _, client, _ = started()
    for i in range(5):
        client.session.emit(final(i))
    assert client.receive() == [wire_final(i + 1, i) for i in range(5)]
    client.session.emit(SpeechStarted(7.25))
    assert client.receive() == [{"type": "speech.started", "seq": 6, "at": 7.25}]


def test_resume_replays_exactly_what_follows_last_seq() -> None:
    server, client, welcome = started()
    for i in range(4):
        client.session.emit(final(i))
    assert [f["seq"] for f in client.receive()] == [1, 2, 3, 4]
    client.drop(at=1001.0)  # the client saw only up to seq 2 before the drop
    session = client.session
    assert session.state is SessionState.DETACHED and session.detached_at == 1001.0
    for i in range(4, 6):
        session.emit(final(i))  # the pipeline runs on while detached

    again = server.connect()
    again.resume(welcome, last_seq=2)
    new_welcome, *replayed = again.receive()
    assert new_welcome["resumed"] is True
    assert new_welcome["session_id"] == session.session_id
    assert new_welcome["last_seq"] == 6
    assert replayed == [wire_final(seq, seq - 1) for seq in (3, 4, 5, 6)]
    assert again.accepted is not None and not again.accepted.created
    assert server.manager.resumes_ok == 1 and session.resumes == 1
    # Then live.
    session.emit(final(6))
    assert again.receive() == [wire_final(7, 6)]
    assert again.session.state is SessionState.ATTACHED and session.expires_at() is None


def test_resume_up_to_date_replays_nothing() -> None:
    server, client, welcome = started()
    client.session.emit(final(0))
    client.receive()
    client.drop()
    again = server.connect("json")
    again.resume(welcome, last_seq=1)
    [new_welcome] = again.receive()
    assert new_welcome["last_seq"] == 1 and new_welcome["resumed"] is True


def test_resume_may_change_settings_but_not_the_mode() -> None:
    server, client, welcome = started()
    client.drop()
    again = server.connect()
    again.resume(welcome, last_seq=0, session={"language": "de"})
    new_welcome = again.receive()[0]
    assert again.session.config.language == "de"

    third = server.connect()
    third.resume(new_welcome, last_seq=0, session={"mode": "agent"})
    assert third.receive() == [
        error("unsupported", "the mode of a session cannot change", fatal=True)
    ]
    assert third.closed_with == 4003


def test_resume_asking_for_forbidden_tools_closes_with_4003() -> None:
    server, client, welcome = started()
    client.drop()
    again = server.connect()
    again.resume(welcome, last_seq=0, session={"tools": ["shell"]})
    assert again.receive() == [
        error("forbidden", "tools not allowed for this tenant: shell", fatal=True)
    ]
    assert again.closed_with == 4003


def test_acks_trim_the_replay_buffer() -> None:
    server, client, welcome = started()
    for i in range(5):
        client.session.emit(final(i))
    client.receive()
    assert len(client.session.replay) == 5
    client.send({"type": "ack", "seq": 3})
    assert client.receive() == []
    assert len(client.session.replay) == 2 and client.session.replay.first_seq == 4
    # A client that acked 3 cannot resume from 2: that would be a silent gap.
    client.drop()
    late = server.connect()
    late.resume(welcome, last_seq=2)
    assert late.receive() == [
        error("replay_gap", "events after 2 are no longer buffered (oldest 4)", fatal=True)
    ]
    assert late.closed_with == 4004
    assert server.manager.resumes_failed == 1


def test_ring_overflow_while_detached_ends_in_replay_gap_4004() -> None:
    server, client, welcome = started(Limits(replay_events=4, max_pending_events=3))
    client.drop()
    for i in range(6):
        client.session.emit(final(i))  # seq 1, 2 fall out of the ring
    assert client.session.replay.dropped_unacked == 2
    again = server.connect()
    again.resume(welcome, last_seq=1)
    assert again.receive() == [
        error("replay_gap", "events after 1 are no longer buffered (oldest 3)", fatal=True)
    ]
    assert again.closed_with == 4004
    # The refused resume did not use up the token: resuming from 2 works.
    third = server.connect()
    third.resume(welcome, last_seq=2)
    assert [f.get("seq") for f in third.receive()] == [None, 3, 4, 5, 6]


def test_last_seq_ahead_of_the_session_is_resume_failed() -> None:
    server, client, welcome = started()
    client.session.emit(final(0))
    client.drop()
    again = server.connect()
    again.resume(welcome, last_seq=2)
    assert again.receive() == [
        error("resume_failed", "last_seq 2 is ahead of the session (1)", fatal=True)
    ]
    assert again.closed_with == 4004


def test_a_resume_token_works_once() -> None:
    server, client, welcome = started()
    client.drop()
    server.connect().resume(welcome, last_seq=0)
    replay_attack = server.connect()
    replay_attack.resume(welcome, last_seq=0)
    assert replay_attack.receive() == [
        error("resume_failed", "resume token already used", fatal=True)
    ]
    assert replay_attack.closed_with == 4004


def test_a_resume_token_of_another_tenant_is_refused() -> None:
    server, client, welcome = started()
    client.drop()
    thief = server.connect()
    thief.resume(welcome, last_seq=0, token=GLOBEX_KEY)
    assert thief.receive() == [error("resume_failed", "resume token of another tenant", fatal=True)]
    assert thief.closed_with == 4004


def test_an_expired_resume_token_is_refused() -> None:
    server, client, welcome = started(Limits(resume_token_ttl_s=60.0))
    client.drop()
    late = server.connect()
    late.send(
        {
            "type": "hello",
            "v": 1,
            "token": "key-acme",
            "resume": {"token": welcome["resume_token"], "last_seq": 0},
        },
        at=server.now + 60.0,
    )
    assert late.receive() == [error("resume_failed", "resume token expired", fatal=True)]
    assert late.closed_with == 4004


def _signed(body: bytes) -> str:
    mac = hmac.new(SECRET, body, hashlib.sha256).digest()
    return ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in (body, mac))


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b",
        "é.ü",
        "eyJrIjoicmVzdW1lIn0.AAAA",  # a payload with a wrong signature
        _signed(b"not json"),  # signed with the key, but not a payload
        _signed(b"[1, 2]"),
        _signed(
            json.dumps({"k": "resume", "sid": 5, "ten": "acme", "gen": 1, "exp": 1e12}).encode()
        ),
    ],
)
def test_garbage_resume_tokens_are_refused_with_4004(token: str) -> None:
    client = Server().connect()
    client.send(
        {"type": "hello", "v": 1, "token": "key-acme", "resume": {"token": token, "last_seq": 0}}
    )
    assert client.receive() == [error("resume_failed", "invalid resume token", fatal=True)]
    assert client.closed_with == 4004


def test_a_client_token_is_not_a_resume_token() -> None:
    server = Server()
    token, _ = server.auth.issue_client_token(ACME, server.now)
    client = server.connect()
    client.send(
        {"type": "hello", "v": 1, "token": "key-acme", "resume": {"token": token, "last_seq": 0}}
    )
    assert client.receive() == [error("resume_failed", "invalid resume token", fatal=True)]


def test_takeover_supersedes_the_old_connection_with_4009() -> None:
    server, first, welcome = started()
    first.session.emit(final(0))
    assert [f["seq"] for f in first.receive()] == [1]
    second = server.connect("json")
    second.resume(welcome, last_seq=1)
    assert first.receive() == [
        error("superseded", "a newer connection resumed this session", fatal=True)
    ]
    assert first.closed_with == 4009
    [new_welcome] = second.receive()
    assert new_welcome["resumed"] is True
    # The old socket goes away: the session stays attached to the new one.
    first.drop()
    session = second.session
    assert session.state is SessionState.ATTACHED and session.outlet is second.conn
    session.emit(final(1))
    assert second.receive() == [wire_final(2, 1)]
    assert first.receive() == []
    # Frames still arriving on the old socket are ignored.
    assert first.send({"type": "ack", "seq": 1}) == []


def test_resume_of_an_ended_session_is_refused() -> None:
    server, client, welcome = started()
    client.send({"type": "bye"})
    assert client.closed_with == 1000
    again = server.connect()
    again.resume(welcome, last_seq=0)
    assert again.receive() == [error("resume_failed", "unknown or expired session", fatal=True)]
    assert again.closed_with == 4004


def test_detached_session_expires_after_resume_ttl() -> None:
    server, client, welcome = started()
    session = client.session
    client.drop(at=1010.0)
    assert session.expires_at() == 1130.0
    assert server.manager.next_deadline() == 1130.0
    assert server.manager.expired(1129.9) == []
    assert server.manager.expired(1130.0) == [session]
    assert session.state is SessionState.CLOSED and server.manager.sessions == {}
    assert server.manager.next_deadline() is None
    session.emit(final(0))  # a late event of an ended session goes nowhere
    assert session.replay.last_seq == 0
    late = server.connect()
    late.resume(welcome, last_seq=0)
    assert late.receive()[0]["code"] == "resume_failed"


def test_attached_sessions_never_expire() -> None:
    server, client, _ = started()
    assert server.manager.next_deadline() is None
    assert server.manager.expired(server.now + 10_000) == []
    assert client.session.state is SessionState.ATTACHED


def test_detach_then_attach_keeps_the_audio_counter() -> None:
    server, client, welcome = started()
    for chunk in range(3):
        client.send({"type": "audio", "data": b"\0\0", "chunk": chunk})
    client.drop()
    again = server.connect()
    again.resume(welcome, last_seq=0)
    [new_welcome] = again.receive()
    assert new_welcome["audio_next"] == 3
    # The client re-sends from its own idea of the count: duplicates are dropped.
    again.send({"type": "audio", "data": b"\1\1", "chunk": 2})
    again.send({"type": "audio", "data": b"\1\1", "chunk": 3})
    assert [c.chunk for c in again.inputs if isinstance(c, AudioChunk)] == [3]


def test_a_detach_from_a_stale_connection_changes_nothing() -> None:
    server, client, _ = started()
    other = server.connect()
    other.hello()
    session = client.session
    session.detach(other.conn, server.now)  # not its outlet
    assert session.outlet is client.conn and session.detached_at is None
    client.drop()
    session.detach(client.conn, server.now + 5)  # already detached
    assert session.outlet is None and session.detached_at == server.now
    assert session.state is SessionState.DETACHED
    client.drop()  # a second loss of the same socket is harmless
    assert client.conn.state is ConnectionState.CLOSED


def test_durable_error_events_are_replayed() -> None:
    server, client, welcome = started()
    client.drop()
    client.session.emit(ErrorEvent("overloaded", "the ASR is behind", session_state=True))
    client.session.emit(TurnStarted("t1", "speech", input_id="u1"))
    again = server.connect()
    again.resume(welcome, last_seq=0)
    assert again.receive()[1:] == [
        {
            "type": "error",
            "seq": 1,
            "code": "overloaded",
            "message": "the ASR is behind",
            "fatal": False,
        },
        {"type": "turn.started", "seq": 2, "turn_id": "t1", "input": "speech", "input_id": "u1"},
    ]


def test_a_refused_resume_changes_nothing() -> None:
    server, client, welcome = started()
    client.drop()
    session = client.session
    again = server.connect()
    again.resume(welcome, last_seq=5, session={"language": "de"})
    assert again.receive() == [
        error("resume_failed", "last_seq 5 is ahead of the session (0)", fatal=True)
    ]
    assert session.config.language == "en"
    assert session.resumes == 0 and session.state is SessionState.DETACHED
