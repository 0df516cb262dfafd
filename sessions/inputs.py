"""What a pipeline receives from its session: the client's input, as typed events."""

from __future__ import annotations

from dataclasses import dataclass

from sessions.config import SessionConfig


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """PCM audio in the session's declared format (``config.audio``).

    ``chunk`` is the client's running chunk index; ``received_at`` the server's
    monotonic clock when the frame arrived (for latency figures).
    """

    data: bytes
    chunk: int
    received_at: float


@dataclass(frozen=True, slots=True)
class AudioEnd:
    """``audio.end``: finalize pending captions."""

    received_at: float


@dataclass(frozen=True, slots=True)
class UserText:
    text: str
    id: str | None
    received_at: float


@dataclass(frozen=True, slots=True)
class CancelRequest:
    turn_id: str | None
    received_at: float


@dataclass(frozen=True, slots=True)
class ConfigUpdated:
    config: SessionConfig


PipelineInput = AudioChunk | AudioEnd | UserText | CancelRequest | ConfigUpdated
