"""``VllmEngine``: vLLM in process, for hosts with a CUDA GPU.

vLLM's PyPI wheels are CUDA-only (FINDINGS.md), so this module imports ``vllm``
only when it is built; ``build_engine`` reaches it only when asked for "vllm".
vLLM schedules and batches on its own; this shell bounds what it submits (a
``FairGate``, round-robin by session), builds the prompt with the model's chat
template, streams deltas, and on cancel calls ``abort(request_id)`` itself: vLLM has
been seen to keep generating for requests whose consumer went away (FINDINGS.md), so
closing the generator is not trusted to be enough.

Written against vLLM's ``AsyncLLM`` (``vllm.v1.engine.async_llm``; ``AsyncLLMEngine``
is the same class in v1) and ``StructuredOutputsParams`` (vLLM >= 0.10.2; older
releases call it ``GuidedDecodingParams``, which is used when that is all there is).
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from pipelines.text.engine import (
    EngineError,
    FinishReason,
    GenerationChunk,
    GenerationRequest,
    GenerationStats,
)
from pipelines.text.fair_gate import FairGate

log = logging.getLogger(__name__)
_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "abort": "cancelled"}


class VllmSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = ""  # a local directory: nothing is fetched from a hub at run time
    max_model_len: int = Field(default=8192, ge=256)
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1)
    max_in_flight: int = Field(default=64, ge=1)
    max_queue: int = Field(default=256, ge=0)
    cleanup_timeout_s: float = Field(default=2.0, gt=0)
    engine_args: dict[str, Any] = Field(default_factory=dict)  # more AsyncEngineArgs fields


def vllm_available() -> bool:
    """Whether vLLM imports and a CUDA device is visible."""
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class VllmEngine:
    name = "vllm"
    supports_json_schema = True
    supports_prefix = False

    def __init__(self, settings: VllmSettings) -> None:
        if not settings.model:
            raise EngineError("the vllm engine needs settings.model (a local model directory)")
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as exc:
            raise EngineError("vLLM is not installed (its wheels are CUDA-only)") from exc
        self.settings = settings
        args = AsyncEngineArgs(
            model=settings.model,
            max_model_len=settings.max_model_len,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            **settings.engine_args,
        )
        self._llm: Any = AsyncLLM.from_engine_args(args)
        self._tokenizer: Any = None
        self._gate: FairGate | None = None

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            return (len(text.encode("utf-8")) + 3) // 4  # before the first request
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def estimated_wait_ms(self) -> float:
        return self._gate.estimated_wait_ms() if self._gate else 0.0

    def statistics(self) -> dict[str, float]:
        return self._gate.statistics() if self._gate else {}

    @asynccontextmanager
    async def stream(
        self, request: GenerationRequest
    ) -> AsyncIterator[AsyncIterator[GenerationChunk]]:
        submitted = time.perf_counter()
        if self._gate is None:  # created in the loop that serves, like vLLM's own tasks
            self._gate = FairGate(self.settings.max_in_flight, self.settings.max_queue)
        async with self._gate.slot(request.session_id) as queue_ms:
            prompt = await self._prompt(request)
            outputs = self._llm.generate(prompt, _sampling(request), request.request_id)
            try:
                yield _Deltas(outputs, submitted, queue_ms)
            finally:
                with anyio.CancelScope(shield=True):
                    with anyio.move_on_after(self.settings.cleanup_timeout_s):
                        await outputs.aclose()
                        # A no-op when the request finished; stops it when it did not.
                        await self._llm.abort(request.request_id)

    async def aclose(self) -> None:
        self._llm.shutdown()

    async def _prompt(self, request: GenerationRequest) -> str:
        if self._tokenizer is None:
            tokenizer = self._llm.get_tokenizer()
            # Older vLLM releases made get_tokenizer a coroutine.
            self._tokenizer = await tokenizer if inspect.isawaitable(tokenizer) else tokenizer
        messages = [_message(m.role, m.content, m.name) for m in request.messages]
        return str(
            self._tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        )


def _message(role: str, content: str, name: str | None) -> dict[str, str]:
    if role == "tool":
        return {"role": "user", "content": f"[result of tool {name or 'unknown'}]\n{content}"}
    return {"role": role, "content": content}


def _sampling(request: GenerationRequest) -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    params: dict[str, Any] = {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stop": list(request.stop),
        "output_kind": RequestOutputKind.DELTA,  # each output carries only new text
    }
    if request.json_schema is not None:
        try:
            from vllm.sampling_params import StructuredOutputsParams

            params["structured_outputs"] = StructuredOutputsParams(json=request.json_schema)
        except ImportError:
            from vllm.sampling_params import GuidedDecodingParams

            params["guided_decoding"] = GuidedDecodingParams(json=request.json_schema)
    return SamplingParams(**params)


class _Deltas:
    """vLLM ``RequestOutput``s (DELTA kind) as ``GenerationChunk``s."""

    def __init__(self, outputs: Any, submitted: float, queue_ms: float) -> None:
        self._outputs = outputs
        self._submitted = submitted
        self._queue_ms = queue_ms
        self._first: float | None = None
        self._completion = 0
        self._ended = False

    def __aiter__(self) -> _Deltas:
        return self

    async def __anext__(self) -> GenerationChunk:
        if self._ended:
            raise StopAsyncIteration
        try:
            output = await self._outputs.__anext__()
        except StopAsyncIteration:
            self._ended = True
            raise EngineError("vLLM stream ended without a finished output") from None
        except Exception as exc:  # EngineDeadError, EngineGenerateError, validation
            self._ended = True
            raise EngineError(f"vLLM failed: {type(exc).__name__}: {exc}") from None
        completion = output.outputs[0]
        self._completion += len(completion.token_ids)
        if completion.text and self._first is None:
            self._first = time.perf_counter()
        if not output.finished:
            return GenerationChunk(completion.text)
        self._ended = True
        end = time.perf_counter()
        stats = GenerationStats(
            queue_ms=self._queue_ms,
            ttft_ms=1000 * ((self._first or end) - self._submitted),
            total_ms=1000 * (end - self._submitted),
            prompt_tokens=len(output.prompt_token_ids or ()),
            completion_tokens=self._completion,
        )
        reason = _FINISH.get(str(completion.finish_reason), "stop")
        return GenerationChunk(completion.text, finish_reason=reason, stats=stats)
