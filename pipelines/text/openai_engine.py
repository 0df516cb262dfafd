"""``OpenAIEngine``: an OpenAI-compatible chat-completions server over HTTP.

What ``vllm serve`` exposes (and ``llama_cpp.server``, which the tests run as a real
stand-in). Requests stream as Server-Sent Events, parsed by ``sse`` and
``openai_chunks``; every malformed, truncated or oversized answer becomes an
``EngineError``.

Cancellation closes the response, and with it the connection, in a shielded,
bounded cleanup: llama.cpp's server stops generating when the client closes the
stream (merely not reading is not enough), and vLLM aborts a request whose client
went away. A ``FairGate`` bounds the requests in flight and queues the rest
round-robin by session.

The client is bound to the event loop that first uses the engine: create the engine
inside the loop that serves with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
from pydantic import BaseModel, ConfigDict, Field

from pipelines.text.engine import (
    EngineError,
    GenerationChunk,
    GenerationRequest,
    GenerationStats,
)
from pipelines.text.fair_gate import FairGate
from pipelines.text.openai_chunks import ChunkDelta, JsonSchemaMode, read_chunk, request_body
from pipelines.text.sse import DEFAULT_MAX_EVENT_BYTES, SseParser

log = logging.getLogger(__name__)


class OpenAISettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "default"
    api_key: str | None = None
    # "json_schema" for vLLM and OpenAI; "json_object" for llama.cpp's server.
    json_schema_mode: JsonSchemaMode = "json_schema"
    max_in_flight: int = Field(default=8, ge=1)
    max_queue: int = Field(default=32, ge=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    # The longest silence between two chunks before the request fails.
    read_timeout_s: float = Field(default=60.0, gt=0)
    cleanup_timeout_s: float = Field(default=2.0, gt=0)
    max_event_bytes: int = Field(default=DEFAULT_MAX_EVENT_BYTES, ge=1024)


class OpenAIEngine:
    name = "openai"
    supports_json_schema = True
    supports_prefix = False  # no portable way to continue an assistant message

    def __init__(self, settings: OpenAISettings | None = None) -> None:
        self.settings = settings = settings or OpenAISettings()
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_s,
                read=settings.read_timeout_s,
                write=settings.connect_timeout_s,
                pool=settings.connect_timeout_s,
            ),
            limits=httpx.Limits(max_connections=settings.max_in_flight),
        )
        self._gate = FairGate(settings.max_in_flight, settings.max_queue)

    def count_tokens(self, text: str) -> int:
        # No tokenizer on this side of the wire: about four bytes a token for
        # English BPE vocabularies, rounded up so budgets err on the safe side.
        return (len(text.encode("utf-8")) + 3) // 4

    def estimated_wait_ms(self) -> float:
        return self._gate.estimated_wait_ms()

    def statistics(self) -> dict[str, float]:
        return self._gate.statistics()

    @asynccontextmanager
    async def stream(
        self, request: GenerationRequest
    ) -> AsyncIterator[AsyncIterator[GenerationChunk]]:
        submitted = time.perf_counter()
        async with self._gate.slot(request.session_id) as queue_ms:
            body = request_body(request, self.settings.model, self.settings.json_schema_mode)
            http_request = self._client.build_request("POST", "chat/completions", json=body)
            try:
                response = await self._client.send(http_request, stream=True)
            except httpx.HTTPError as exc:
                raise EngineError(f"LLM server unreachable: {type(exc).__name__}") from None
            chunks: _ChunkStream | None = None
            try:
                if response.status_code != 200:
                    detail = await _read_some(response)
                    raise EngineError(f"LLM server answered HTTP {response.status_code}: {detail}")
                # Servers that send no usage (llama.cpp's) get an estimate.
                estimate = sum(self.count_tokens(m.content) for m in request.messages)
                chunks = _ChunkStream(
                    response, submitted, queue_ms, estimate, self.settings.max_event_bytes
                )
                yield chunks
            finally:
                if chunks is not None:
                    chunks.close()
                # Closing an unfinished streamed response closes its connection: the
                # server sees the client leave and stops generating.
                with anyio.CancelScope(shield=True):
                    with anyio.move_on_after(self.settings.cleanup_timeout_s):
                        await response.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()


class _ChunkStream:
    """Chunks of one streamed response; the last carries finish_reason and stats."""

    def __init__(
        self,
        response: httpx.Response,
        submitted: float,
        queue_ms: float,
        prompt_estimate: int,
        max_event: int,
    ) -> None:
        self._bytes = response.aiter_bytes()
        self._parser = SseParser(max_event)
        self._pending: list[ChunkDelta | None] = []
        self._submitted = submitted
        self._queue_ms = queue_ms
        self._first: float | None = None
        self._deltas = 0
        self._prompt_tokens = prompt_estimate
        self._completion_tokens: int | None = None
        self._finish: ChunkDelta | None = None
        self._ended = False

    def __aiter__(self) -> _ChunkStream:
        return self

    def close(self) -> None:
        """The request is over: nothing more comes out, even if iterated again."""
        self._ended = True

    async def __anext__(self) -> GenerationChunk:
        while not self._ended:
            delta = await self._next_delta()
            if delta is None:  # [DONE] or the end of the body after a finish_reason
                return self._final()
            if delta.prompt_tokens is not None:
                self._prompt_tokens = delta.prompt_tokens
            if delta.completion_tokens is not None:
                self._completion_tokens = delta.completion_tokens
            if delta.text and self._first is None:
                self._first = time.perf_counter()
            if delta.text:
                self._deltas += 1
            if delta.finish_reason is not None:
                # Hold the end back: a usage chunk may follow before [DONE].
                self._finish = delta
                if delta.text:
                    return GenerationChunk(delta.text)
                continue
            if delta.text:
                return GenerationChunk(delta.text)
        raise StopAsyncIteration

    def _final(self) -> GenerationChunk:
        self._ended = True
        if self._finish is None or self._finish.finish_reason is None:
            raise EngineError("LLM stream ended without a finish_reason")
        end = time.perf_counter()
        first = self._first or end
        stats = GenerationStats(
            queue_ms=self._queue_ms,
            ttft_ms=1000 * (first - self._submitted),
            total_ms=1000 * (end - self._submitted),
            prompt_tokens=self._prompt_tokens,
            completion_tokens=(
                self._completion_tokens if self._completion_tokens is not None else self._deltas
            ),
        )
        return GenerationChunk("", finish_reason=self._finish.finish_reason, stats=stats)

    async def _next_delta(self) -> ChunkDelta | None:
        while not self._pending:
            try:
                data = await self._bytes.__anext__()
            except StopAsyncIteration:
                if self._finish is not None:
                    return None
                self._parser.end()
                raise EngineError("LLM stream ended before the answer was complete") from None
            except (httpx.HTTPError, httpx.StreamError) as exc:
                raise EngineError(f"LLM stream failed: {type(exc).__name__}") from None
            self._pending.extend(read_chunk(event.data) for event in self._parser.feed(data))
        return self._pending.pop(0)


async def _read_some(response: httpx.Response, limit: int = 300) -> str:
    """The start of an error body, for the message (never the whole of it)."""
    data = b""
    try:
        async for piece in response.aiter_raw():
            data += piece
            if len(data) >= limit:
                break
    except httpx.HTTPError:
        pass
    return data[:limit].decode("utf-8", "replace")
