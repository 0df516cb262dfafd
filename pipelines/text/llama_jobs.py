"""The llama.cpp engine's job board: requests waiting for, and held by, worker threads.

A ``Llama`` object is not thread-safe, so each instance has one worker thread; the
threads take jobs from one board. The board is a ``FairQueue`` (round-robin by
session) under a ``threading.Condition``: workers sleep on it, the event loop only
takes the lock for a moment to submit or withdraw a job. Nothing here runs inference.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipelines.text.engine import EngineError, EngineOverloaded, GenerationRequest
from pipelines.text.fair_queue import FairQueue, QueueFull
from pipelines.text.speed import SpeedMeter, Work, estimate_wait_ms

# What a worker hands back to the consumer: a chunk, an error, or None for "done".
Deliver = Callable[[object], None]


@dataclass(eq=False, slots=True)
class LlamaJob:
    request: GenerationRequest
    prompt_tokens: list[int]
    grammar: Any  # llama_cpp.LlamaGrammar | None
    deliver: Deliver
    submitted_at: float = field(default_factory=time.perf_counter)
    cancelled: threading.Event = field(default_factory=threading.Event)
    # Written by the worker thread, read for estimates (a stale read is harmless).
    started_at: float | None = None
    decoded: int = 0

    def remaining(self, meter: SpeedMeter) -> Work:
        expected = meter.expected_decode(self.request.max_tokens)
        if self.started_at is None:
            return Work(len(self.prompt_tokens), expected)
        if self.decoded == 0:
            elapsed_tokens = (time.perf_counter() - self.started_at) * meter.prefill_tokens_per_s
            return Work(max(0, len(self.prompt_tokens) - int(elapsed_tokens)), expected)
        return Work(0, max(1, expected - self.decoded))


class JobBoard:
    def __init__(self, max_queue: int, instances: int) -> None:
        self._cond = threading.Condition()
        self._queue: FairQueue[str, LlamaJob] = FairQueue(max_queue)
        self._running: dict[int, LlamaJob] = {}
        self._closed = False
        self.instances = instances
        self.meter = SpeedMeter()

    def submit(self, job: LlamaJob) -> None:
        with self._cond:
            if self._closed:
                raise EngineError("engine is closed")
            try:
                self._queue.push(job.request.session_id, job)
            except QueueFull as exc:
                raise EngineOverloaded(f"LLM queue full ({exc})") from None
            self._cond.notify()

    def withdraw(self, job: LlamaJob) -> bool:
        """Remove a job that no worker has taken yet; False when a worker holds it."""
        with self._cond:
            return self._queue.remove(job.request.session_id, job)

    def take(self, worker: int) -> LlamaJob | None:
        """Block until a job is available for ``worker``; None once the board closes."""
        with self._cond:
            while not self._closed:
                job = self._queue.pop()
                if job is not None:
                    self._running[worker] = job
                    return job
                self._cond.wait()
            return None

    def release(self, worker: int, record: tuple[int, float, int, float] | None) -> None:
        with self._cond:
            self._running.pop(worker, None)
            if record is not None:
                self.meter.record(*record)

    def close(self) -> list[LlamaJob]:
        """Stop taking jobs; cancel running ones; return the queued ones."""
        with self._cond:
            self._closed = True
            for job in self._running.values():
                job.cancelled.set()
            self._cond.notify_all()
            return self._queue.drain()

    def estimated_wait_ms(self) -> float:
        with self._cond:
            running = [job.remaining(self.meter) for job in self._running.values()]
            queued = [job.remaining(self.meter) for job in self._queue]
            return estimate_wait_ms(self.meter, self.instances, running, queued)

    def statistics(self) -> dict[str, float]:
        with self._cond:
            return {
                "queued": len(self._queue),
                "queue_capacity": self._queue.capacity,
                "running": len(self._running),
                "instances": self.instances,
                "prefill_tokens_per_s": self.meter.prefill_tokens_per_s,
                "decode_tokens_per_s": self.meter.decode_tokens_per_s,
            }
