"""Audit records: structured, one per call, arguments only as a digest and a size."""

from __future__ import annotations

import json
import logging

import pytest

from tools.audit import AuditRecord, LoggingAuditSink, MemoryAuditSink, audited_name

RECORD = AuditRecord(
    session_id="s1",
    turn_id="t1",
    call_id="c1",
    tool="calculator",
    arguments_sha256="ab" * 32,
    arguments_bytes=21,
    outcome="ok",
    duration_ms=1.23456,
)


def test_a_record_is_a_flat_dict_with_rounded_duration() -> None:
    assert RECORD.to_dict() == {
        "session_id": "s1",
        "turn_id": "t1",
        "call_id": "c1",
        "tool": "calculator",
        "arguments_sha256": "ab" * 32,
        "arguments_bytes": 21,
        "outcome": "ok",
        "duration_ms": 1.235,
    }


def test_the_logging_sink_writes_one_json_line_and_a_structured_extra(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="parley.audit"):
        LoggingAuditSink().record(RECORD)
    [entry] = caplog.records
    assert entry.name == "parley.audit"
    assert entry.levelno == logging.INFO
    assert entry.audit == RECORD.to_dict()  # type: ignore[attr-defined]
    prefix, line = entry.getMessage().split(" ", 1)
    assert prefix == "tool_call"
    assert json.loads(line) == RECORD.to_dict()


def test_the_logging_sink_can_write_to_another_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="acme.audit"):
        LoggingAuditSink(logging.getLogger("acme.audit")).record(RECORD)
    assert [r.name for r in caplog.records] == ["acme.audit"]


def test_the_memory_sink_keeps_records_in_order() -> None:
    sink = MemoryAuditSink()
    sink.record(RECORD)
    sink.record(RECORD)
    assert sink.records == [RECORD, RECORD]


@pytest.mark.parametrize(
    ("name", "recorded"),
    [
        ("search_documents", "search_documents"),
        ("x" * 500, "invalid:"),
        ("evil\ntool", "invalid:"),
        ("\udcff", "invalid:"),
        (None, "invalid:"),
    ],
)
def test_names_are_recorded_only_when_they_are_valid_tool_names(
    name: object, recorded: str
) -> None:
    assert audited_name(name).startswith(recorded)
    assert len(audited_name(name)) <= 64
