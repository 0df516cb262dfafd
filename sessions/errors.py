"""The exception tree and the one mapping from error codes to close codes.

``ParleyError``
 ├─ ``ProtocolError``: a remote (client) mistake. It carries an ``ErrorCode``; the
 │   connection turns it into an ``error`` message, and into a close when it is fatal.
 │   Close codes come only from ``CLOSE_CODES`` below (docs/protocol.md, "Errors and
 │   close codes").
 └─ ``IllegalTransition``: a local bug: a state table refused a transition. Nothing
     changed; the caller asked for something the state does not allow.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    BAD_MESSAGE = "bad_message"
    TOO_LARGE = "too_large"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RESUME_FAILED = "resume_failed"
    REPLAY_GAP = "replay_gap"
    AUDIO_GAP = "audio_gap"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXCEEDED = "quota_exceeded"
    OVERLOADED = "overloaded"
    UNSUPPORTED = "unsupported"
    TOOL_REJECTED = "tool_rejected"
    INTERNAL = "internal"
    # Two codes beyond the spec's list, so that the error before a 4008 or a 4009
    # close says why (docs/protocol.md, "Errors and close codes").
    SLOW_CONSUMER = "slow_consumer"
    SUPERSEDED = "superseded"


class CloseCode:
    NORMAL = 1000
    GOING_AWAY = 1001
    TOO_BIG = 1009
    INTERNAL = 1011
    UNAUTHORIZED = 4001
    PROTOCOL = 4003
    RESUME_FAILED = 4004
    SLOW_CONSUMER = 4008
    SUPERSEDED = 4009
    RATE_LIMITED = 4029


# The close code that follows a fatal error of each code: the one place that says it.
CLOSE_CODES: dict[ErrorCode, int] = {
    ErrorCode.BAD_MESSAGE: CloseCode.PROTOCOL,
    ErrorCode.TOO_LARGE: CloseCode.TOO_BIG,
    ErrorCode.UNAUTHORIZED: CloseCode.UNAUTHORIZED,
    ErrorCode.FORBIDDEN: CloseCode.PROTOCOL,
    ErrorCode.RESUME_FAILED: CloseCode.RESUME_FAILED,
    ErrorCode.REPLAY_GAP: CloseCode.RESUME_FAILED,
    ErrorCode.RATE_LIMITED: CloseCode.RATE_LIMITED,
    ErrorCode.QUOTA_EXCEEDED: CloseCode.RATE_LIMITED,
    ErrorCode.OVERLOADED: CloseCode.RATE_LIMITED,
    ErrorCode.SLOW_CONSUMER: CloseCode.SLOW_CONSUMER,
    ErrorCode.SUPERSEDED: CloseCode.SUPERSEDED,
    ErrorCode.UNSUPPORTED: CloseCode.PROTOCOL,
    ErrorCode.INTERNAL: CloseCode.INTERNAL,
    ErrorCode.AUDIO_GAP: CloseCode.PROTOCOL,
    ErrorCode.TOOL_REJECTED: CloseCode.PROTOCOL,
}


def close_code_for(code: ErrorCode) -> int:
    return CLOSE_CODES[code]


class ParleyError(Exception):
    """Root of every error Parley raises on purpose."""


class ProtocolError(ParleyError):
    """The client broke the protocol or a limit; becomes an ``error`` message."""

    def __init__(self, code: ErrorCode, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal

    @property
    def close_code(self) -> int:
        return close_code_for(self.code)


class IllegalTransition(ParleyError):
    """A state table refused a transition; the state did not change."""

    def __init__(self, machine: str, state: str, action: str) -> None:
        super().__init__(f"{machine}: {action!r} is not allowed in state {state!r}")
        self.machine = machine
        self.state = state
        self.action = action
