"""The ``LlmEngine`` boundary: what the agent loop needs from an LLM engine.

Engines: llama.cpp in process (embedded default), an OpenAI-compatible HTTP server
(``vllm serve``, ``llama_cpp.server``), vLLM in process (GPU hosts).

Contract:
- ``stream(request)`` is an async context manager yielding an async iterator of
  ``GenerationChunk``. Leaving the context early (break, exception, cancellation of
  the enclosing cancel scope) aborts the request at the engine: generation stops
  within one decode step, and a queued request leaves the queue. Cleanup is shielded
  and bounded.
- The last chunk carries ``finish_reason`` and ``stats``.
- Inference never runs on the event loop.
- Engines queue concurrent requests fairly with a bounded queue; beyond it
  ``stream`` raises ``EngineOverloaded`` before yielding anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str
    name: str | None = None  # the tool's name, for role "tool"


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    request_id: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int = 256
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    # Constrained decoding: the output must be JSON valid against this schema
    # (llama.cpp grammar, vLLM structured outputs, OpenAI-compatible json_schema).
    json_schema: dict[str, Any] | None = None
    # Fair queueing key: requests of one session never starve another session's.
    session_id: str = ""
    # The reply starts with this text and the output continues it (engines with
    # ``supports_prefix`` only); the output does not repeat it.
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class GenerationStats:
    queue_ms: float = 0.0
    ttft_ms: float = 0.0
    total_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens_per_s(self) -> float:
        decode_ms = self.total_ms - self.ttft_ms
        if self.completion_tokens <= 1 or decode_ms <= 0:
            return 0.0
        return (self.completion_tokens - 1) * 1000.0 / decode_ms


@dataclass(frozen=True, slots=True)
class GenerationChunk:
    text: str
    finish_reason: FinishReason | None = None
    stats: GenerationStats | None = field(default=None)


class EngineError(Exception):
    """The engine failed (process gone, HTTP error, bad response)."""


class EngineOverloaded(EngineError):
    """The engine's queue is full: the caller answers ``overloaded``."""


class LlmEngine(Protocol):
    name: str
    supports_prefix: bool  # GenerationRequest.prefix is honoured

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this engine's tokenizer (or a close estimate)."""
        ...

    def estimated_wait_ms(self) -> float:
        """How long a request submitted now would wait before its prefill starts."""
        ...

    def stream(
        self, request: GenerationRequest
    ) -> AbstractAsyncContextManager[AsyncIterator[GenerationChunk]]: ...

    async def aclose(self) -> None: ...
