"""Transcripts of the outbound policy (docs/protocol.md, "Backpressure": outbound):
partials replaced, token deltas merged while unsent, slow consumers closed with 4008,
best-effort events kept behind the durable events that preceded them."""

from __future__ import annotations

from typing import Any

from sessions.events import (
    CaptionFinal,
    CaptionPartial,
    ErrorEvent,
    TokenDelta,
    TurnDone,
    TurnStarted,
)
from sessions.limits import Limits
from sessions.states import SessionState
from tests.sessions.transcript import Peer, Server, error


def partial(segment: int, text: str) -> CaptionPartial:
    return CaptionPartial(segment, text, 0.0, 1.0)


def wire_partial(segment: int, text: str) -> dict[str, Any]:
    return {"type": "caption.partial", "segment": segment, "text": text, "start": 0.0, "end": 1.0}


def caption_peer(limits: Limits | None = None) -> Peer:
    client = Server(limits).connect()
    client.hello(session={"mode": "caption"})
    return client


def agent_peer(limits: Limits | None = None) -> Peer:
    client = Server(limits).connect("json")
    client.hello()
    return client


def test_a_newer_partial_replaces_the_pending_one_of_its_segment() -> None:
    client = caption_peer()
    session = client.session
    session.emit(partial(0, "hel"))
    session.emit(partial(1, "other"))
    session.emit(partial(0, "hello"))
    session.emit(partial(0, "hello wor"))
    assert client.receive() == [wire_partial(1, "other"), wire_partial(0, "hello wor")]
    # Once sent, a partial is gone: the next one is sent too.
    session.emit(partial(0, "hello world"))
    assert client.receive() == [wire_partial(0, "hello world")]


def test_the_final_drops_the_pending_partial_of_its_segment() -> None:
    client = caption_peer()
    session = client.session
    session.emit(partial(0, "hel"))
    session.emit(partial(1, "oth"))
    session.emit(CaptionFinal(0, "hello", 0.0, 1.0, speaker="S1"))
    assert client.receive() == [
        wire_partial(1, "oth"),
        {
            "type": "caption.final",
            "seq": 1,
            "segment": 0,
            "text": "hello",
            "start": 0.0,
            "end": 1.0,
            "speaker": "S1",
        },
    ]


def test_best_effort_events_wait_for_the_durable_events_before_them() -> None:
    client = caption_peer()
    session = client.session
    session.emit(CaptionFinal(0, "one", 0.0, 1.0))
    session.emit(CaptionFinal(1, "two", 1.0, 2.0))
    session.emit(partial(2, "thr"))
    session.emit(CaptionFinal(3, "four", 3.0, 4.0))
    session.emit(ErrorEvent("internal", "a hiccup"))  # best effort: not durable
    frames = client.receive()
    assert [(f["type"], f.get("seq")) for f in frames] == [
        ("caption.final", 1),
        ("caption.final", 2),
        ("caption.partial", None),
        ("caption.final", 3),
        ("error", None),
    ]
    assert frames[4] == error("internal", "a hiccup", fatal=False)
    assert client.conn.frames_out == 1 + 5


def test_best_effort_events_are_bounded_oldest_first() -> None:
    client = caption_peer(Limits(max_pending_control=3))
    for segment in range(5):
        client.session.emit(partial(segment, "x"))
    assert [f["segment"] for f in client.receive()] == [2, 3, 4]


def test_unsent_token_deltas_merge_and_seq_stays_gap_free() -> None:
    client = agent_peer()
    session = client.session
    session.emit(TurnStarted("t1", "text", input_id="m1"))
    for piece in ["Hel", "lo", ", ", "wörld", "!"]:
        session.emit(TokenDelta("t1", piece))
    assert client.conn.pending_events() == 2
    assert client.receive() == [
        {"type": "turn.started", "seq": 1, "turn_id": "t1", "input": "text", "input_id": "m1"},
        {"type": "token", "seq": 2, "turn_id": "t1", "text": "Hello, wörld!"},
    ]
    # A sent delta is never changed: the next one takes a new seq.
    session.emit(TokenDelta("t1", " Bye"))
    session.emit(TokenDelta("t1", "."))
    session.emit(TurnDone("t1", "completed"))
    session.emit(TokenDelta("t1", "late"))  # not merged into turn.done
    assert client.receive() == [
        {"type": "token", "seq": 3, "turn_id": "t1", "text": " Bye."},
        {
            "type": "turn.done",
            "seq": 4,
            "turn_id": "t1",
            "status": "completed",
            "usage": {"input_tokens": 0, "output_tokens": 0},
            "timings": {},
        },
        {"type": "token", "seq": 5, "turn_id": "t1", "text": "late"},
    ]


def test_deltas_of_different_turns_are_not_merged() -> None:
    client = agent_peer()
    session = client.session
    session.emit(TokenDelta("t1", "a"))
    session.emit(TokenDelta("t2", "b"))
    session.emit(TokenDelta("t2", "c"))
    assert [(f["seq"], f["turn_id"], f["text"]) for f in client.receive()] == [
        (1, "t1", "a"),
        (2, "t2", "bc"),
    ]


def test_deltas_merge_while_detached_and_replay_merged() -> None:
    server = Server()
    client = server.connect()
    welcome = client.hello()
    session = client.session
    session.emit(TokenDelta("t1", "se"))
    assert [f["text"] for f in client.receive()] == ["se"]
    client.drop()
    for piece in "nt ok":
        session.emit(TokenDelta("t1", piece))
    again = server.connect()
    again.resume(welcome, last_seq=1)
    assert again.receive()[1:] == [{"type": "token", "seq": 2, "turn_id": "t1", "text": "nt ok"}]


def test_a_slow_consumer_is_closed_with_4008_and_stays_resumable() -> None:
    server = Server(Limits(replay_events=8, max_pending_events=3))
    client = server.connect()
    welcome = client.hello(session={"mode": "caption"})
    session = client.session
    for i in range(3):
        session.emit(CaptionFinal(i, f"{i}", 0.0, 0.0))
    assert client.conn.close_code is None  # exactly at the limit: still fine
    session.emit(partial(9, "dropped with the connection"))
    session.emit(CaptionFinal(3, "3", 0.0, 0.0))
    assert client.receive() == [
        error("slow_consumer", "more than 3 events queued; resume to catch up", fatal=True)
    ]
    assert client.closed_with == 4008
    client.drop()
    assert session.state is SessionState.DETACHED
    again = server.connect()
    again.resume(welcome, last_seq=0)
    assert [f.get("seq") for f in again.receive()] == [None, 1, 2, 3, 4]


def test_merged_deltas_do_not_count_towards_the_slow_consumer_limit() -> None:
    client = agent_peer(Limits(replay_events=8, max_pending_events=2))
    for _ in range(100):
        client.session.emit(TokenDelta("t1", "x"))
    assert client.conn.close_code is None
    assert client.receive() == [{"type": "token", "seq": 1, "turn_id": "t1", "text": "x" * 100}]


def test_a_merged_delta_stops_growing_at_2048_characters() -> None:
    client = agent_peer()
    client.session.emit(TokenDelta("t1", "a" * 2000))
    client.session.emit(TokenDelta("t1", "b" * 48))
    client.session.emit(TokenDelta("t1", "c"))
    assert [(f["seq"], len(f["text"])) for f in client.receive()] == [(1, 2048), (2, 1)]


def test_pongs_piling_up_unread_close_with_4008() -> None:
    client = agent_peer(Limits(max_pending_control=3))
    for i in range(3):
        client.send({"type": "ping", "id": i})
    assert client.conn.close_code is None
    client.send({"type": "ping", "id": 3})
    frames = client.receive()
    assert [f["id"] for f in frames[:3]] == [0, 1, 2]
    assert frames[3] == error("slow_consumer", "control messages pile up", fatal=True)
    assert client.closed_with == 4008


def test_goaway_then_1001() -> None:
    client = agent_peer()
    client.session.emit(TokenDelta("t1", "unsent"))
    client.conn.go_away("draining", 250)
    client.conn.go_away("again", 1)  # only once
    assert client.receive() == [{"type": "goaway", "reason": "draining", "reconnect_after_ms": 250}]
    assert client.closed_with == 1001 and client.conn.close_reason == "draining"
    # The unsent delta stays in the session for the resume.
    assert client.session.replay.last_seq == 1


def test_goaway_before_welcome_does_nothing() -> None:
    client = Server().connect()
    client.conn.go_away("draining", 250)
    assert client.receive() == [] and client.conn.close_code is None


def test_pending_events_counts_every_queue() -> None:
    client = caption_peer()
    assert Server().connect().conn.pending_events() == 0
    client.send({"type": "ping"})
    client.session.emit(CaptionFinal(0, "a", 0.0, 0.0))
    client.session.emit(partial(1, "b"))
    assert client.conn.pending_events() == 3
    assert len(client.receive()) == 3
    assert client.conn.pending_events() == 0


def test_events_of_a_detached_session_wait_in_the_buffer_only() -> None:
    client = caption_peer()
    client.drop()
    client.session.emit(partial(0, "nobody sees this"))
    client.session.emit(CaptionFinal(0, "kept", 0.0, 0.0))
    assert client.receive() == []
    assert client.session.replay.last_seq == 1


def test_a_replay_backlog_alone_is_not_a_slow_consumer() -> None:
    server = Server(Limits(replay_events=16, max_pending_events=3))
    client = server.connect()
    welcome = client.hello(session={"mode": "caption"})
    client.drop()
    for i in range(7):
        client.session.emit(CaptionFinal(i, f"{i}", 0.0, 0.0))
    again = server.connect()
    again.resume(welcome, last_seq=0)
    again.session.emit(CaptionFinal(7, "7", 0.0, 0.0))  # 8 unsent, but only 1 new
    assert again.conn.close_code is None
    assert [f.get("seq") for f in again.receive()] == [None, 1, 2, 3, 4, 5, 6, 7, 8]


def test_a_resumed_client_falling_behind_is_closed_before_the_ring_drops_its_events() -> None:
    """Closing with 4008 keeps the session resumable; letting the ring overwrite what
    the client has not read would end it in replay_gap (docs/protocol.md,
    "Backpressure": a slow client never loses a durable event)."""
    server = Server(Limits(replay_events=8, max_pending_events=3))
    client = server.connect()
    welcome = client.hello(session={"mode": "caption"})
    client.drop()
    session = client.session
    for i in range(7):
        session.emit(CaptionFinal(i, f"{i}", 0.0, 0.0))
    again = server.connect()
    again.resume(welcome, last_seq=0)  # and reads nothing for a while
    for i in range(7, 12):
        session.emit(CaptionFinal(i, f"{i}", 0.0, 0.0))
        if again.conn.close_code is not None:
            break
    assert session.replay.dropped_unacked == 0
    frames = again.receive()
    assert [f["type"] for f in frames] == ["welcome", "error"]
    assert frames[1]["code"] == "slow_consumer" and again.closed_with == 4008
    # The client resumes from what it had and misses nothing.
    token = frames[0]["resume_token"]
    again.drop()
    third = server.connect()
    third.resume({"resume_token": token}, last_seq=0)
    replayed = third.receive()
    assert replayed[0]["type"] == "welcome"
    assert [f["seq"] for f in replayed[1:]] == list(range(1, session.replay.last_seq + 1))


def test_the_connection_never_skips_an_event_the_buffer_lost() -> None:
    client = caption_peer()
    session = client.session
    for i in range(4):
        session.emit(CaptionFinal(i, f"{i}", 0.0, 0.0))
    session.replay.trim_to(2)  # lost before this connection sent them
    assert client.receive() == [error("replay_gap", "events were lost from the buffer", fatal=True)]
    assert client.closed_with == 4004


def test_errors_piling_up_unread_close_with_4008_like_pongs() -> None:
    """Every queue has a bound: a client that sends what earns a non-fatal error and
    never reads must not grow the control queue without end."""
    client = agent_peer(Limits(max_pending_control=4))
    for _ in range(20):
        client.send({"type": "audio", "data": b"\0\0"})  # unsupported in agent mode
    frames = client.receive()
    assert len(frames) <= 5
    assert frames[-1]["code"] == "slow_consumer" and client.closed_with == 4008
