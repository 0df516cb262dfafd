"""Word-sequence matching for the caption policy. Pure functions over normalized text:
timestamps near a decoded window's start are too rough to match words by."""

from __future__ import annotations

from difflib import SequenceMatcher

from pipelines.audio.guards import normalize
from sessions.events import Word


def agreed_prefix(
    previous: list[str], current: list[str], *, max_gap: int = 2, min_run: int = 2
) -> int:
    """How many leading words of ``current`` two consecutive decodes agree on.

    Plain LocalAgreement stops at the first difference, so one unstable word ("Okay,
    wait, I thought" / "Hey, I thought") holds back every word after it. Here
    agreement continues past a difference of at most ``max_gap`` words on either
    side when at least ``min_run`` words agree right after it; the differing words
    take the newer decode's reading (it heard more audio).
    """
    agreed = i = j = 0
    blocks = SequenceMatcher(None, previous, current, autojunk=False).get_matching_blocks()
    for a, b, size in blocks:
        if size == 0:
            break
        gap = max(a - i, b - j)
        if gap > max_gap or (gap > 0 and size < min_run):
            break
        agreed, i, j = b + size, a + size, b + size
    return agreed


def strip_committed(committed: list[Word], words: list[Word]) -> list[Word]:
    """``words`` (a decode of a buffer) without those already committed from it.

    The committed words are matched by text; the match must reach the last one or
    two of them. With no such match, words that end before the last committed word
    ends are dropped.
    """
    if not committed or not words:
        return words
    c = [normalize(w.w) for w in committed]
    h = [normalize(w.w) for w in words]
    drop = None
    for a, b, size in SequenceMatcher(None, c, h, autojunk=False).get_matching_blocks():
        reach = a + size
        if size and (reach == len(c) or (reach >= len(c) - 2 and size >= 2)):
            drop = min(len(h), b + size + (len(c) - reach))
    if drop is None:
        last = committed[-1].end
        drop = sum(1 for w in words if w.end <= last + 0.05)
    return words[drop:]


def repeated_run(
    committed: list[Word], words: list[Word], *, min_run: int = 2, slack_s: float = 0.3
) -> int:
    """How many leading ``words`` repeat committed words heard over the same audio.

    A last guard before a final: ``words`` that say again, word for word, a run of
    at least ``min_run`` committed words, and start before that run ended (plus
    ``slack_s``), are the same speech decoded twice, not a speaker repeating it.
    """
    c = [normalize(w.w) for w in committed]
    h = [normalize(w.w) for w in words]
    best = 0
    for j in range(len(c)):
        k = 0
        while j + k < len(c) and k < len(h) and c[j + k] == h[k]:
            k += 1
        if k >= min_run and k > best and words[0].start < committed[j + k - 1].end + slack_s:
            best = k
    return best
