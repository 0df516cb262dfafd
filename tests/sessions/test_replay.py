"""The replay buffer: a gap-free ring, trimmed by acks, merging unsent token deltas
(docs/protocol.md, "Resume", "Backpressure")."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions.events import CaptionFinal, ServerEvent, TokenDelta
from sessions.replay import MAX_MERGED_CHARS, Entry, ReplayBuffer


def final(i: int) -> CaptionFinal:
    return CaptionFinal(i, str(i), 0.0, 0.0)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ReplayBuffer(0)


def test_an_empty_buffer() -> None:
    ring = ReplayBuffer(3)
    assert (len(ring), ring.first_seq, ring.last_seq) == (0, 1, 0)
    assert ring.covers(0) and not ring.covers(1)
    assert ring.get(1) is None and ring.get(0) is None
    assert list(ring.after(0)) == []


def test_the_ring_keeps_the_newest_events() -> None:
    ring = ReplayBuffer(3)
    assert [ring.append(final(i), sent_seq=0) for i in range(5)] == [1, 2, 3, 4, 5]
    assert (len(ring), ring.first_seq, ring.last_seq, ring.dropped_unacked) == (3, 3, 5, 2)
    assert [e.seq for e in ring.after(3)] == [4, 5]
    assert ring.get(2) is None and ring.get(6) is None
    assert ring.get(4) == Entry(4, final(3))
    assert not ring.covers(1) and ring.covers(2) and ring.covers(5) and not ring.covers(6)


def test_trim_forgets_acknowledged_events() -> None:
    ring = ReplayBuffer(10)
    for i in range(5):
        ring.append(final(i), sent_seq=0)
    assert ring.trim_to(3) == 3
    assert ring.trim_to(3) == 0
    assert ring.first_seq == 4 and ring.covers(3) and not ring.covers(2)
    assert ring.trim_to(99) == 2
    assert (len(ring), ring.first_seq, ring.last_seq) == (0, 6, 5)
    assert ring.covers(5)
    assert ring.append(final(5), sent_seq=5) == 6


def test_merging_needs_an_unsent_delta_of_the_same_turn_at_the_tail() -> None:
    ring = ReplayBuffer(10)
    assert ring.append(TokenDelta("t", "a"), sent_seq=0) == 1
    assert ring.append(TokenDelta("t", "b"), sent_seq=0) == 1  # merged
    assert ring.append(TokenDelta("t", "c"), sent_seq=1) == 2  # the tail was sent
    assert ring.append(TokenDelta("u", "d"), sent_seq=1) == 3  # another turn
    assert ring.append(final(0), sent_seq=1) == 4
    assert ring.append(TokenDelta("u", "e"), sent_seq=1) == 5  # the tail is no delta
    assert [(e.seq, e.event) for e in ring.after(0)] == [
        (1, TokenDelta("t", "ab")),
        (2, TokenDelta("t", "c")),
        (3, TokenDelta("u", "d")),
        (4, final(0)),
        (5, TokenDelta("u", "e")),
    ]


def test_merging_stops_at_the_size_cap() -> None:
    ring = ReplayBuffer(10)
    ring.append(TokenDelta("t", "a" * (MAX_MERGED_CHARS - 1)), sent_seq=0)
    assert ring.append(TokenDelta("t", "b"), sent_seq=0) == 1
    assert ring.append(TokenDelta("t", "c"), sent_seq=0) == 2


EVENTS = st.lists(
    st.one_of(
        st.builds(TokenDelta, st.sampled_from(["t1", "t2"]), st.text(min_size=1, max_size=5)),
        st.builds(final, st.integers(0, 9)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(EVENTS, st.lists(st.integers(0, 70), max_size=60))
def test_merging_never_changes_what_a_client_reads(
    events: list[ServerEvent], sends: list[int]
) -> None:
    """Whatever the interleaving of appends and sends, the text a client reads per
    turn is the concatenation of the deltas, seqs are 1..n, and nothing sent changes."""
    ring = ReplayBuffer(1000)
    sent: list[Entry] = []
    for i, event in enumerate(events):
        ring.append(event, sent_seq=sent[-1].seq if sent else 0)
        if i < len(sends) and sends[i] % 3 == 0:
            sent.extend(ring.after(sent[-1].seq if sent else 0))
    sent.extend(ring.after(sent[-1].seq if sent else 0))
    assert [e.seq for e in sent] == list(range(1, ring.last_seq + 1))
    assert list(ring.after(0)) == sent  # nothing handed out was changed later
    for turn in ("t1", "t2"):
        want = "".join(e.text for e in events if isinstance(e, TokenDelta) and e.turn_id == turn)
        got = "".join(
            e.event.text
            for e in sent
            if isinstance(e.event, TokenDelta) and e.event.turn_id == turn
        )
        assert got == want
    finals = [e for e in events if isinstance(e, CaptionFinal)]
    assert [e.event for e in sent if isinstance(e.event, CaptionFinal)] == finals
