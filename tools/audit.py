"""The audit trail of tool calls: one record per call, whatever its outcome.

Records never hold raw arguments or results (they may carry what a user said): the
arguments appear as the sha256 and size of their canonical JSON (tools/checks.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from tools.spec import NAME_PATTERN

AUDIT_LOGGER = "parley.audit"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    session_id: str
    turn_id: str
    call_id: str
    tool: str
    arguments_sha256: str
    arguments_bytes: int
    outcome: str  # "ok", a ToolErrorCode, or "cancelled"
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["duration_ms"] = round(self.duration_ms, 3)
        return out


class AuditSink(Protocol):
    def record(self, entry: AuditRecord) -> None: ...


class LoggingAuditSink:
    """Writes each record to the ``parley.audit`` logger: the message is the record
    as one JSON line, and ``extra["audit"]`` holds it as a dict for structured
    handlers."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(AUDIT_LOGGER)

    def record(self, entry: AuditRecord) -> None:
        fields = entry.to_dict()
        self._logger.info(
            "tool_call %s", json.dumps(fields, sort_keys=True), extra={"audit": fields}
        )


class MemoryAuditSink:
    """Keeps records in a list (tests, and an admin view of recent calls)."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def record(self, entry: AuditRecord) -> None:
        self.records.append(entry)


def audited_name(name: object) -> str:
    """The tool name as recorded: a name the model made up may be long or hold
    control characters, so anything that is not a valid tool name is replaced by
    a short digest of itself."""
    if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
        return name
    raw = name.encode("utf-8", "replace") if isinstance(name, str) else repr(type(name)).encode()
    return "invalid:" + hashlib.sha256(raw).hexdigest()[:16]
