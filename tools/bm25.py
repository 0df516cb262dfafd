"""Passages and Okapi BM25 ranking: pure functions over text, no files.

A passage is a run of lines: paragraphs (split at blank lines) are grouped until a
passage has at least ``MIN_PASSAGE_CHARS`` characters, so a lone heading stays with
the text below it, and cut at ``MAX_PASSAGE_CHARS`` so a result stays small.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MIN_PASSAGE_CHARS = 200
MAX_PASSAGE_CHARS = 1200
MAX_TOKEN_CHARS = 40
MAX_QUERY_TERMS = 32
K1 = 1.5
B = 0.75

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Passage:
    doc: str  # the document's path, relative to the documents folder
    index: int  # 0-based position of the passage in its document
    first_line: int  # 1-based, inclusive
    last_line: int
    text: str


@dataclass(frozen=True, slots=True)
class Hit:
    passage: Passage
    score: float


def tokenize(text: str) -> list[str]:
    """Lowercased words; very long "words" (hashes, base64) are noise and dropped."""
    return [w for w in _WORD.findall(text.casefold()) if len(w) <= MAX_TOKEN_CHARS]


def split_passages(doc: str, text: str) -> list[Passage]:
    """``text`` cut into passages that remember their line range."""
    out: list[Passage] = []
    lines: list[str] = []
    size = 0  # characters in ``lines``
    first = last = 0

    def flush() -> None:
        nonlocal size
        if lines:
            out.append(Passage(doc, len(out), first, last, "\n".join(lines)))
            lines.clear()
            size = 0

    # Lines end at "\n" only (with "\r" stripped), as editors count them: citations
    # point at those line numbers.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip()
        if not line:
            if size >= MIN_PASSAGE_CHARS:
                flush()
            continue
        for piece in _pieces(line):
            if size + len(piece) > MAX_PASSAGE_CHARS:
                flush()
            if not lines:
                first = number
            lines.append(piece)
            size += len(piece)
            last = number
    flush()
    return out


def _pieces(line: str) -> Iterator[str]:
    """A line longer than a passage, cut at spaces where it can be."""
    while len(line) > MAX_PASSAGE_CHARS:
        cut = line.rfind(" ", 0, MAX_PASSAGE_CHARS)
        if cut <= 0:
            cut = MAX_PASSAGE_CHARS
        yield line[:cut]
        line = line[cut:].lstrip()
    yield line  # never empty: the caller strips trailing spaces


class Bm25Index:
    """An inverted index over passages. Built once; searching does not change it."""

    def __init__(self, passages: Iterable[Passage]) -> None:
        self.passages: list[Passage] = list(passages)
        self._postings: dict[str, list[tuple[int, int]]] = {}
        self._lengths: list[int] = []
        for pid, passage in enumerate(self.passages):
            counts = Counter(tokenize(passage.text))
            self._lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self._postings.setdefault(term, []).append((pid, tf))
        total = sum(self._lengths)
        self._average = total / len(self._lengths) if total else 1.0

    def idf(self, term: str) -> float:
        n = len(self.passages)
        df = len(self._postings.get(term, ()))
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def search(self, query: str, k: int) -> list[Hit]:
        """The ``k`` best passages for ``query`` with a score above zero, best first;
        ties go to the earlier passage, so results are stable."""
        terms = list(dict.fromkeys(tokenize(query)))[:MAX_QUERY_TERMS]
        scores: dict[int, float] = {}
        for term in terms:
            postings = self._postings.get(term)
            if not postings:
                continue
            idf = self.idf(term)
            for pid, tf in postings:
                norm = K1 * (1.0 - B + B * self._lengths[pid] / self._average)
                scores[pid] = scores.get(pid, 0.0) + idf * tf * (K1 + 1.0) / (tf + norm)
        best = heapq.nsmallest(k, scores.items(), key=lambda item: (-item[1], item[0]))
        return [Hit(self.passages[pid], score) for pid, score in best]
