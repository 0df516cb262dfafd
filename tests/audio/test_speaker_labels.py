"""Stable names across re-clusterings: assignment, new voices, durable merges."""

from __future__ import annotations

import pytest

from pipelines.audio.speaker_labels import LabelParams, Merge, SpeakerBook


def test_renumbered_groups_keep_their_identities() -> None:
    book = SpeakerBook()
    first, merges = book.assign([0, 0, 1, 1], [-1, -1, -1, -1], [1, 1, 1, 1])
    a, b = first[0], first[1]
    assert (book.name(a), book.name(b), merges) == ("S1", "S2", [])
    # The next run numbers the same voices the other way round, plus a new window.
    second, _ = book.assign([1, 1, 0, 0, 0], [a, a, b, b, -1], [1, 1, 1, 1, 1])
    assert (second[1], second[0]) == (a, b)


def test_a_new_group_gets_a_new_identity_named_on_first_use() -> None:
    book = SpeakerBook()
    m, _ = book.assign([0, 0], [-1, -1], [1, 1])
    s1 = m[0]
    m2, _ = book.assign([0, 0, 1], [s1, s1, -1], [1, 1, 1])
    assert m2[0] == s1 and m2[1] != s1
    assert book.name(s1) == "S1" and book.name(m2[1]) == "S2"


def test_merge_needs_consecutive_evidence_and_keeps_the_older_name() -> None:
    book = SpeakerBook(LabelParams(merge_patience=2))
    m, _ = book.assign([0, 0, 1, 1], [-1] * 4, [1] * 4)
    s1, s2 = m[0], m[1]
    assert (book.name(s1), book.name(s2)) == ("S1", "S2")
    together = [0, 0, 0, 0]
    _, merges = book.assign(together, [s1, s1, s2, s2], [1, 1, 1, 1])
    assert merges == []  # once is not enough
    _, merges = book.assign([0, 0, 1, 1], [s1, s1, s2, s2], [1, 1, 1, 1])
    assert merges == []  # apart again: the evidence starts over
    book.assign(together, [s1, s1, s2, s2], [1, 1, 1, 1])
    mapping, merges = book.assign(together, [s1, s1, s2, s2], [1, 1, 1, 1])
    assert merges == [Merge("S2", "S1")]
    assert mapping[0] == s1 and book.resolve(s2) == s1 and book.name(s2) == "S1"
    _, again = book.assign(together, [s1, s1, s2, s2], [1, 1, 1, 1])
    assert again == []  # reported once


def test_an_unnamed_identity_merges_silently_into_a_named_one() -> None:
    book = SpeakerBook(LabelParams(merge_patience=1))
    m, _ = book.assign([0, 0, 1], [-1, -1, -1], [1, 1, 1])
    book.name(m[0])  # only the first was ever shown
    mapping, merges = book.assign([0, 0, 0], [m[0], m[0], m[1]], [1, 1, 1])
    assert merges == [] and mapping[0] == m[0] and book.resolve(m[1]) == m[0]


def test_a_weak_share_is_no_merge() -> None:
    book = SpeakerBook(LabelParams(merge_patience=1, merge_share=0.8))
    m, _ = book.assign([0, 0, 1, 1], [-1] * 4, [1] * 4)
    s1, s2 = m[0], m[1]
    book.name(s1), book.name(s2)
    # s2's speech splits between s1's group and one of its own: s2 keeps that one.
    _, merges = book.assign([0, 0, 0, 2, 1], [s1, s1, s2, s2, -1], [1, 1, 1, 1, 1])
    assert merges == []


def test_bad_params_are_refused() -> None:
    with pytest.raises(ValueError):
        LabelParams(merge_share=0.3)
    with pytest.raises(ValueError):
        LabelParams(merge_patience=0)
