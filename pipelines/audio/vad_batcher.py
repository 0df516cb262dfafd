"""One VAD backend shared by every session, with frames of concurrent sessions run as
one batch in a worker thread (the event loop never runs the model).

No background task: a session waiting for its probabilities runs the next batch
itself when none is in flight, taking every request pending at that moment. A
cancelled waiter leaves the queue; a batch already in its thread finishes and
delivers every result it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import numpy as np

from pipelines.audio.vad import Frames, Probs, VadBackend


@dataclass(slots=True, eq=False)
class _Request:
    stream: int
    frames: Frames
    result: Probs | None = None
    error: BaseException | None = field(default=None)


class VadBatcher:
    def __init__(self, backend: VadBackend) -> None:
        self.backend = backend
        self._pending: list[_Request] = []
        self._running = False
        self._changed = anyio.Event()
        self.batches = 0
        self.largest_batch = 0

    @property
    def frame_samples(self) -> int:
        return self.backend.frame_samples

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _run(self, batch: list[_Request]) -> None:
        try:
            probs = self.backend.speech_probs({r.stream: r.frames for r in batch})
        except Exception as exc:  # delivered to each waiter, raised there
            for r in batch:
                r.error = exc
            return
        for r in batch:
            r.result = probs.get(r.stream, np.zeros(len(r.frames), dtype=np.float32))

    async def speech_probs(self, stream: int, frames: Frames) -> Probs:
        if len(frames) == 0:
            return np.zeros(0, dtype=np.float32)
        request = _Request(stream, frames)
        self._pending.append(request)
        try:
            while request.result is None and request.error is None:
                if self._running:
                    await self._changed.wait()
                    continue
                # One request per stream per batch: a stream's frames must run in order.
                batch: list[_Request] = []
                seen: set[int] = set()
                for r in self._pending:
                    if r.stream not in seen:
                        seen.add(r.stream)
                        batch.append(r)
                self._pending = [r for r in self._pending if r not in batch]
                self._running = True
                self.batches += 1
                self.largest_batch = max(self.largest_batch, len(batch))
                try:
                    await anyio.to_thread.run_sync(self._run, batch)
                finally:
                    self._running = False
                    self._notify()
        finally:
            if request in self._pending:
                self._pending.remove(request)
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result
