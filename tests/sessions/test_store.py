"""The pure half of the shared session store: records and log entries as a node
writes them, read back by another node that must refuse anything else."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessions.config import SessionConfig
from sessions.errors import ErrorCode, ProtocolError
from sessions.events import CaptionFinal, StoredEvent, TokenDelta, TurnDone, TurnStarted, to_wire
from sessions.limits import Limits
from sessions.session import Session
from sessions.store import (
    MemoryStore,
    SessionRecord,
    decode_entry,
    encode_entry,
    entry_id,
    open_turn,
    parse_record,
)
from sessions.tenants import TenantPolicy


def session() -> Session:
    config = SessionConfig(mode="caption", language="de", tools=("clock",))
    made = Session("s1", TenantPolicy("acme"), config, Limits(resume_ttl_s=30.0), 0.0)
    made.token_generation, made.audio_next, made.flushed_seq, made.acked_seq = 3, 17, 9, 4
    return made


def test_the_memory_store_is_a_dict_of_sessions() -> None:
    store = MemoryStore()
    one = session()
    store.add(one)
    assert store == {"s1": one} and store.get("s1") is one and len(store) == 1
    assert store.remove("s1") is one and store.remove("s1") is None and store == {}


def test_a_record_reads_back_as_written() -> None:
    record = SessionRecord.of(session(), attached="node-a c1")
    fields = record.to_fields()
    assert all(isinstance(v, str) for v in fields.values())
    assert parse_record("s1", fields) == record
    # Redis answers bytes: keys and values.
    as_bytes = {k.encode(): v.encode() for k, v in fields.items()}
    assert parse_record("s1", as_bytes) == record
    assert (record.generation, record.audio_next, record.last_seq, record.acked_seq) == (
        3,
        17,
        9,
        4,
    )
    assert record.config.language == "de" and record.resume_ttl_s == 30.0 and record.state == "open"
    closed = parse_record("s1", {**fields, "state": "closed"})
    assert closed.state == "closed"


GOOD = SessionRecord.of(session()).to_fields()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("v", "2"),
        ("state", "zombie"),
        ("config", "{not json"),
        ("config", '{"mode": "dance"}'),
        ("config", "[1]"),
        ("ttl", "soon"),
        ("ttl", "nan"),
        ("ttl", "-1"),
        ("tenant", ""),
        ("gen", "-1"),
        ("gen", "1e3"),
        ("gen", "٣"),  # a digit, but not ASCII
        ("audio_next", "9" * 17),
        ("acked", b"\xff\xfe"),
        ("turn", None),
        ("attached", 7),
    ],
)
def test_a_garbage_record_is_resume_failed(field: str, value: object) -> None:
    fields: dict[str, object] = {**GOOD}
    if value is None:
        del fields[field]
    else:
        fields[field] = value
    with pytest.raises(ProtocolError) as caught:
        parse_record("s1", fields)
    assert caught.value.code is ErrorCode.RESUME_FAILED and caught.value.fatal
    assert "unreadable" in caught.value.message


def test_log_entries_round_trip_as_their_wire_form() -> None:
    event = CaptionFinal(3, "hello", 0.5, 1.25, speaker="S1")
    seq, stored = decode_entry(entry_id(12).encode(), encode_entry(event))
    assert seq == 12 and stored == StoredEvent("caption.final", stored.fields)
    assert stored.is_durable() and stored.wire_type() == "caption.final"
    assert to_wire(stored, 12) == to_wire(event, 12)
    assert decode_entry("5-0", encode_entry(TokenDelta("t1", "a")))[0] == 5


@pytest.mark.parametrize(
    ("entry", "data"),
    [
        (b"12-1", encode_entry(TokenDelta("t", "x"))),
        ("12", encode_entry(TokenDelta("t", "x"))),
        ("x-0", encode_entry(TokenDelta("t", "x"))),
        (7, encode_entry(TokenDelta("t", "x"))),
        ("1" * 17 + "-0", encode_entry(TokenDelta("t", "x"))),
        ("1-0", None),
        ("1-0", "text"),
        ("1-0", b"\xc1"),
        ("1-0", b"\x00" * (1 << 20 + 1)),
        ("1-0", msgpack.packb([1, 2])),
        ("1-0", msgpack.packb({"text": "no type"})),
        ("1-0", msgpack.packb({"type": ""})),
        ("1-0", msgpack.packb({"type": "token", "seq": 3})),
    ],
)
def test_a_garbage_log_entry_is_resume_failed(entry: object, data: object) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_entry(entry, data)
    assert caught.value.code is ErrorCode.RESUME_FAILED


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_are_refused(data: bytes) -> None:
    try:
        seq, event = decode_entry("1-0", data)
    except ProtocolError as error:
        assert error.code is ErrorCode.RESUME_FAILED
    else:
        assert seq == 1 and event.kind


def test_the_open_turn_follows_started_and_done() -> None:
    assert open_turn("", [TurnStarted("t1", "text"), TokenDelta("t1", "a")]) == "t1"
    assert open_turn("t1", [TokenDelta("t1", "b"), TurnDone("t1", "completed")]) == ""
    assert open_turn("t1", [TurnDone("t0", "cancelled")]) == "t1"  # not the open one
    stored = StoredEvent("turn.started", {"turn_id": "t2", "input": "text"})
    assert open_turn("", [CaptionFinal(0, "x", 0, 0), stored]) == "t2"
    assert open_turn("t2", [StoredEvent("turn.started", {"turn_id": 5})]) == "t2"
