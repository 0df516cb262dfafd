"""The SSE parser: whole and byte by byte, line endings, comments, hostile input."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.text.sse import SseError, SseEvent, SseParser

STREAM = (
    b": keep-alive comment\n"
    b'data: {"a": 1}\n\n'
    b"event: note\r\nid: 7\r\ndata: first\r\ndata:second\r\n\r\n"
    b"data: [DONE]\r\r"
)
EVENTS = [
    SseEvent('{"a": 1}'),
    SseEvent("first\nsecond", event="note", id="7"),
    SseEvent("[DONE]", id="7"),
]


def feed_all(parser: SseParser, pieces: list[bytes]) -> list[SseEvent]:
    events: list[SseEvent] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    parser.end()
    return events


def test_a_stream_parses_whole() -> None:
    assert feed_all(SseParser(), [STREAM]) == EVENTS


def test_a_stream_parses_byte_by_byte() -> None:
    assert feed_all(SseParser(), [STREAM[i : i + 1] for i in range(len(STREAM))]) == EVENTS


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    pieces = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert feed_all(SseParser(), pieces) == EVENTS


def test_crlf_split_across_reads_is_one_line_end() -> None:
    parser = SseParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\n\r\n") == [SseEvent("x")]


def test_an_event_without_data_is_not_dispatched() -> None:
    parser = SseParser()
    assert parser.feed(b"event: ping\n\nretry: 10\nunknown: x\n\n") == []
    parser.end()


def test_a_stream_cut_inside_an_event_is_an_error() -> None:
    parser = SseParser()
    parser.feed(b'data: {"choices": [')
    with pytest.raises(SseError, match="middle"):
        parser.end()
    parser = SseParser()
    parser.feed(b"data: complete line but no blank line\n")
    with pytest.raises(SseError):
        parser.end()


def test_invalid_utf8_is_an_error() -> None:
    with pytest.raises(SseError, match="UTF-8"):
        SseParser().feed(b"data: \xff\xfe\n\n")


def test_an_endless_line_is_cut_off_at_the_limit() -> None:
    parser = SseParser(max_event_bytes=1024)
    with pytest.raises(SseError, match="line"):
        for _ in range(10):
            parser.feed(b"x" * 200)


def test_an_event_of_many_small_lines_is_cut_off_at_the_limit() -> None:
    parser = SseParser(max_event_bytes=1024)
    with pytest.raises(SseError, match="event over"):
        parser.feed(b"data: 0123456789\n" * 200)


@given(st.binary(max_size=300))
def test_garbage_raises_only_sse_errors(data: bytes) -> None:
    parser = SseParser(max_event_bytes=128)
    try:
        events = parser.feed(data)
        parser.end()
    except SseError:
        return
    assert all(isinstance(e.data, str) for e in events)


@given(st.binary(max_size=200))
def test_garbage_byte_by_byte_agrees_with_whole(data: bytes) -> None:
    def run(pieces: list[bytes]) -> list[SseEvent] | str:
        try:
            return feed_all(SseParser(), pieces)
        except SseError:
            return "error"

    assert run([data]) == run([data[i : i + 1] for i in range(len(data))])
