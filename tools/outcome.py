"""What a tool call came to: ``ToolOutcome``, its error codes, and its events."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sessions.events import ToolError, ToolResult

# Error messages go to the model and the client: keep them short.
MAX_MESSAGE_CHARS = 300


class ToolErrorCode(StrEnum):
    UNKNOWN_TOOL = "unknown_tool"
    NOT_ALLOWED = "not_allowed"
    BAD_ARGUMENTS = "bad_arguments"
    TIMEOUT = "timeout"
    TOOL_FAILED = "tool_failed"
    BAD_RESULT = "bad_result"
    RESULT_TOO_LARGE = "result_too_large"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a call was refused or its result thrown away."""

    code: ToolErrorCode
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", shorten(self.message))


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    ok: bool
    result: Any = None
    error_code: ToolErrorCode | None = None
    error_message: str = ""
    duration_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.ok == (self.error_code is not None):
            raise ValueError("a ToolOutcome is either ok or has an error_code")

    @classmethod
    def success(cls, result: Any, duration_ms: float) -> ToolOutcome:
        return cls(ok=True, result=result, duration_ms=duration_ms)

    @classmethod
    def failure(cls, rejection: Rejection, duration_ms: float = 0.0) -> ToolOutcome:
        return cls(
            ok=False,
            error_code=rejection.code,
            error_message=rejection.message,
            duration_ms=duration_ms,
        )

    @property
    def code(self) -> str:
        """``ok``, or the error code: the outcome as one word (audit, metrics)."""
        return "ok" if self.error_code is None else str(self.error_code)

    def tool_error(self) -> ToolError | None:
        if self.error_code is None:
            return None
        return ToolError(code=str(self.error_code), message=self.error_message)

    def to_event(self, turn_id: str, call_id: str) -> ToolResult:
        """The ``tool.result`` event for this outcome (PROTOCOL.md, "Server → client")."""
        return ToolResult(
            turn_id=turn_id,
            call_id=call_id,
            ok=self.ok,
            result=self.result if self.ok else None,
            error=self.tool_error(),
        )


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"
