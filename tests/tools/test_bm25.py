"""Passages and BM25: line ranges, size bounds, ranking."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tools.bm25 import (
    MAX_PASSAGE_CHARS,
    MIN_PASSAGE_CHARS,
    Bm25Index,
    Passage,
    split_passages,
    tokenize,
)


def test_tokens_are_casefolded_words_without_noise() -> None:
    assert tokenize("Reset your PASSWORD, then log-in (2FA).") == [
        "reset",
        "your",
        "password",
        "then",
        "log",
        "in",
        "2fa",
    ]
    assert tokenize("Straße ÉTÉ") == ["strasse", "été"]
    assert tokenize("hash " + "a" * 41) == ["hash"]


LONG_PARAGRAPH = "word " * 60  # 300 characters


def test_short_paragraphs_join_the_next_and_line_ranges_count_blank_lines() -> None:
    text = f"# Refunds\n\n{LONG_PARAGRAPH}\n\n\n## Shipping\n{LONG_PARAGRAPH}\n"
    passages = split_passages("faq.md", text)
    assert [(p.index, p.first_line, p.last_line) for p in passages] == [(0, 1, 3), (1, 6, 7)]
    assert passages[0].text == "# Refunds\n" + LONG_PARAGRAPH.rstrip()
    assert passages[1].doc == "faq.md"


def test_windows_line_endings_count_as_one_line() -> None:
    passages = split_passages("a.txt", "one\r\ntwo\r\n")
    assert passages == [Passage("a.txt", 0, 1, 2, "one\ntwo")]


def test_a_long_paragraph_is_cut_into_bounded_passages() -> None:
    lines = [f"line {i} " + "x" * 90 for i in range(30)]
    passages = split_passages("big.txt", "\n".join(lines))
    assert len(passages) == 3
    assert [(p.first_line, p.last_line) for p in passages] == [(1, 12), (13, 24), (25, 30)]
    assert all(len(p.text) <= MAX_PASSAGE_CHARS + 12 for p in passages)


def test_one_huge_line_is_cut_at_spaces_and_keeps_its_line_number() -> None:
    line = ("lorem ipsum " * 300).strip()
    passages = split_passages("min.txt", "title\n" + line)
    assert len(passages) == 4
    assert [(p.first_line, p.last_line) for p in passages] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert passages[0].text == "title"
    assert " ".join(p.text for p in passages[1:]) == line


def test_a_huge_line_without_spaces_is_cut_anyway() -> None:
    passages = split_passages("b64.txt", "A" * 3000)
    assert [len(p.text) for p in passages] == [1200, 1200, 600]


def test_empty_documents_have_no_passages() -> None:
    assert split_passages("e.md", "") == []
    assert split_passages("e.md", "\n  \n\t\n") == []


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \n\r\t.é\u2028"), max_size=5000))
def test_passages_cover_the_text_in_order_within_bounds(text: str) -> None:
    passages = split_passages("d.txt", text)
    lines = text.split("\n")
    previous_last = 0
    for i, p in enumerate(passages):
        assert p.index == i
        assert previous_last <= p.first_line <= p.last_line <= len(lines)
        previous_last = p.last_line
        assert 0 < len("".join(p.text.split("\n"))) <= MAX_PASSAGE_CHARS
    words = [w for line in lines for w in line.split()]
    assert [w for p in passages for w in p.text.split()] == words


DOCS = [
    Passage("billing.md", 0, 1, 4, "Refunds are paid within 14 days to the original card."),
    Passage("billing.md", 1, 6, 9, "Invoices are sent by email at the end of each month."),
    Passage("shipping.md", 0, 1, 3, "Parcels ship in 2 days. Refunds for lost parcels too."),
    Passage("about.md", 0, 1, 1, "We are a small team in Lisbon."),
]


def test_search_ranks_passages_by_bm25_and_skips_non_matches() -> None:
    index = Bm25Index(DOCS)
    hits = index.search("refunds to my card?", k=5)
    assert [(h.passage.doc, h.passage.index) for h in hits] == [
        ("billing.md", 0),
        ("shipping.md", 0),
    ]
    assert hits[0].score > hits[1].score > 0


def test_bm25_scores_follow_the_formula() -> None:
    index = Bm25Index(DOCS)
    [hit] = index.search("Lisbon", k=1)
    idf = math.log(1 + (4 - 1 + 0.5) / (1 + 0.5))
    lengths = [len(tokenize(p.text)) for p in DOCS]
    norm = 1.5 * (1 - 0.75 + 0.75 * lengths[3] / (sum(lengths) / 4))
    assert math.isclose(hit.score, idf * 1 * 2.5 / (1 + norm))


def test_repeated_query_words_count_once_and_k_bounds_the_hits() -> None:
    index = Bm25Index(DOCS)
    once = index.search("invoices", k=3)
    assert index.search("invoices invoices INVOICES", k=3) == once
    assert len(index.search("the", k=1)) == 1


def test_ties_go_to_the_earlier_passage() -> None:
    same = [Passage(f"d{i}.txt", 0, 1, 1, "alpha beta") for i in range(5)]
    hits = Bm25Index(same).search("alpha", k=3)
    assert [h.passage.doc for h in hits] == ["d0.txt", "d1.txt", "d2.txt"]


def test_an_empty_index_or_a_wordless_query_finds_nothing() -> None:
    assert Bm25Index([]).search("anything", k=3) == []
    assert Bm25Index(DOCS).search("?!", k=3) == []
    assert Bm25Index([Passage("p.txt", 0, 1, 1, "...")]).search("x", k=3) == []
    assert MIN_PASSAGE_CHARS < MAX_PASSAGE_CHARS
