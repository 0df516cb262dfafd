"""A session as a cluster node holds it: mirrored from its owner (events numbered
elsewhere), or owned with a replicator that hands events to the shared store."""

from __future__ import annotations

from sessions.config import SessionConfig
from sessions.errors import ErrorCode
from sessions.events import CaptionFinal, ErrorEvent, ServerEvent, StoredEvent, TokenDelta
from sessions.limits import Limits
from sessions.replay import ReplayBuffer
from sessions.session import Session
from sessions.tenants import TenantPolicy


class Recorder:
    def __init__(self) -> None:
        self.durable: list[int] = []

    def durable_added(self, last_seq: int) -> None:
        self.durable.append(last_seq)

    def transient_added(self, event: ServerEvent) -> None:
        raise AssertionError("a mirror gets no transient events")

    def superseded(self) -> None:
        raise AssertionError("not superseded")


def stored(i: int) -> StoredEvent:
    return StoredEvent("caption.final", {"segment": i, "text": str(i)})


def test_a_ring_can_start_anywhere_and_take_only_the_next_seq() -> None:
    ring = ReplayBuffer(2)
    ring.start_after(40)
    assert (ring.first_seq, ring.last_seq, len(ring)) == (41, 40, 0)
    assert not ring.put(42, stored(42))  # a gap
    assert not ring.put(40, stored(40))  # old
    assert ring.put(41, stored(41)) and ring.put(42, stored(42)) and ring.put(43, stored(43))
    assert [e.seq for e in ring.after(0)] == [42, 43] and ring.dropped_unacked == 1
    ring.start_after(7)
    assert (len(ring), ring.last_seq) == (0, 7)


def test_a_mirror_shows_the_owners_numbers_and_numbers_nothing_itself() -> None:
    mirror = Session("s1", TenantPolicy("t"), SessionConfig(mode="caption"), Limits(), 0.0)
    mirror.mirror = True
    mirror.replay.start_after(10)
    outlet = Recorder()
    mirror.attach(outlet, 10, 0.0)
    assert mirror.mirror_event(11, stored(11)) and mirror.mirror_event(12, stored(12))
    assert not mirror.mirror_event(14, stored(14))
    assert outlet.durable == [11, 12] and mirror.replay.last_seq == 12
    # Its audio verdicts filter duplicates; the owner reports gaps (and numbers them).
    mirror.audio_next = 3
    assert mirror.audio_verdict(5).gap == 2 and mirror.replay.last_seq == 12
    mirror.emit(ErrorEvent(ErrorCode.INTERNAL, "x", session_state=True))
    assert mirror.replay.last_seq == 12
    mirror.ack(11)
    assert mirror.acked_seq == 11 and mirror.replay.first_seq == 12
    mirror.close()
    assert mirror.mirror_event(13, stored(13)) and outlet.durable == [11, 12]


def test_flushed_events_count_as_handed_out() -> None:
    owner = Session("s1", TenantPolicy("t"), SessionConfig(), Limits(), 0.0)
    owner.emit(TokenDelta("t1", "a"))
    owner.emit(TokenDelta("t1", "b"))
    assert owner.replay.last_seq == 1  # merged: nobody has it yet
    owner.flushed_seq = 1  # the shared store has seq 1 now
    owner.emit(TokenDelta("t1", "c"))
    assert owner.replay.last_seq == 2
    assert owner.replay.get(1).event == TokenDelta("t1", "ab")  # type: ignore[union-attr]
    owner.emit(CaptionFinal(0, "x", 0, 0))
    assert owner.acked_seq == 0
    owner.attach(Recorder(), 2, 0.0)
    assert owner.acked_seq == 2
