"""One llama.cpp instance and the one thread that may touch it.

The worker takes jobs from the ``JobBoard`` and streams each one through
``create_completion``. Handing results back goes through the job's ``deliver``
callable (the engine makes it a call into the job's event loop).

Stopping a job (FINDINGS.md, llama.cpp):
- while decoding, the worker checks the job's ``cancelled`` flag after each token and
  closes the completion generator: it stops at the next token, and the KV cache
  keeps the prompt for the next turn;
- during prefill, ``llama_set_abort_callback`` makes ``llama_decode`` give up
  within about a millisecond; the call then raises and ``reset()`` makes the
  instance usable again (the cached prefix is lost, which is the price of stopping
  a long prefill at once).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import llama_cpp

from pipelines.text.engine import EngineError, FinishReason, GenerationChunk, GenerationStats
from pipelines.text.gemma_prompt import STOP_STRINGS
from pipelines.text.llama_jobs import JobBoard, LlamaJob

log = logging.getLogger(__name__)

# Prefill, decode and answer measurements of one job, for the board's SpeedMeter.
Record = tuple[int, float, int, float]


class LlamaWorker:
    def __init__(self, index: int, llm: Any, board: JobBoard) -> None:
        self.index = index
        self.llm = llm
        self._board = board
        self._prefill_job: LlamaJob | None = None
        # Keep a reference: llama.cpp holds only the C pointer to this callback.
        self._abort_callback = llama_cpp.ggml_abort_callback(self._should_abort)
        llama_cpp.llama_set_abort_callback(llm._ctx.ctx, self._abort_callback, None)
        self.thread = threading.Thread(target=self._run, name=f"llama-worker-{index}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _should_abort(self, _data: object) -> bool:
        # Called by ggml on this worker's thread between graph nodes.
        job = self._prefill_job
        return job is not None and job.cancelled.is_set()

    def _run(self) -> None:
        while (job := self._board.take(self.index)) is not None:
            record: Record | None = None
            try:
                record = self._serve(job)
            except Exception as exc:  # a failed job must not take the worker down
                log.exception("llama worker %d: job failed", self.index)
                self.llm.reset()
                job.deliver(EngineError(f"llama.cpp failed: {type(exc).__name__}"))
            finally:
                self._board.release(self.index, record)
                job.deliver(None)
        self.llm.close()

    def _serve(self, job: LlamaJob) -> Record | None:
        job.started_at = time.perf_counter()
        if job.cancelled.is_set():
            return None
        llm = self.llm
        prompt = job.prompt_tokens
        cached = _common_prefix(llm.input_ids[: llm.n_tokens].tolist(), prompt)
        request = job.request
        first_at: float | None = None
        finish: str | None = None
        tail = ""
        self._prefill_job = job
        parts = llm.create_completion(
            prompt,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stop=[*request.stop, *STOP_STRINGS],
            grammar=job.grammar,
            stream=True,
        )
        try:
            with contextlib.closing(parts):
                for part in parts:
                    if first_at is None:
                        first_at = time.perf_counter()
                        self._prefill_job = None
                    if job.cancelled.is_set():
                        return None
                    choice = part["choices"][0]
                    finish = choice["finish_reason"]
                    if finish is not None:
                        tail = choice["text"]
                        break
                    if choice["text"]:
                        job.decoded += 1
                        job.deliver(GenerationChunk(choice["text"]))
        except RuntimeError:
            if not job.cancelled.is_set():
                raise
            # The abort callback stopped llama_decode mid-prefill.
            llm.reset()
            return None
        finally:
            self._prefill_job = None
        if job.cancelled.is_set():
            return None
        end = time.perf_counter()
        if first_at is None:
            first_at = end
        # Tokens in the KV cache past the prompt were generated and fed back; the last
        # sampled token (end of turn, or the one that hit max_tokens) never is.
        completion = max(0, llm.n_tokens - len(prompt)) + (1 if finish == "length" else 0)
        stats = GenerationStats(
            queue_ms=1000 * (job.started_at - job.submitted_at),
            ttft_ms=1000 * (first_at - job.submitted_at),
            total_ms=1000 * (end - job.submitted_at),
            prompt_tokens=len(prompt),
            completion_tokens=completion,
        )
        reason: FinishReason = "length" if finish == "length" else "stop"
        job.deliver(GenerationChunk(tail, finish_reason=reason, stats=stats))
        return (
            len(prompt) - cached,
            first_at - job.started_at,
            max(0, completion - 1),
            end - first_at,
        )


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
