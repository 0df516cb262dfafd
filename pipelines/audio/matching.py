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
    committed: list[Word],
    words: list[Word],
    *,
    min_run: int = 2,
    slack_s: float = 0.3,
    echo_run: int = 3,
    echo_s: float = 3.0,
) -> int:
    """How many leading ``words`` repeat committed words: a last guard before a final.

    ``words`` that say again, word for word, a run of committed words are dropped when
    the run is at least ``min_run`` words and they start before it ended (plus
    ``slack_s``): the same speech decoded twice. A run of at least ``echo_run`` words
    is dropped when they start within ``echo_s`` after it: Whisper echoing its
    prompt (the words said just before the buffer) at the start of a window. A
    speaker who repeats a phrase later, or one or two words at once, is kept.
    """
    c = [normalize(w.w) for w in committed]
    h = [normalize(w.w) for w in words]
    best = 0
    for j in range(len(c)):
        k = 0
        while j + k < len(c) and k < len(h) and c[j + k] == h[k]:
            k += 1
        if k <= best or k < min_run:
            continue
        gap = words[0].start - committed[j + k - 1].end
        if gap < slack_s or (k >= echo_run and gap < echo_s):
            best = k
    return best
