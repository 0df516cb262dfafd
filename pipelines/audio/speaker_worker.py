"""The shared embedding worker: one encoder per process, one batch at a time in a thread, every
session served in turn, windows of several sessions embedded in one batch.

There is no background task to own: a session awaiting its embeddings runs the next
batch (its own windows and other sessions' in turn) whenever the worker is free;
the batch runs in a worker thread, never on the event loop. A waiter cancelled while
its batch runs still finishes it (threads cannot be interrupted) and hands the other
sessions their results.

The queue is bounded in windows (``max_pending``): a session that would overflow it
waits for room, so a burst of long captions slows their own sessions, not the loop.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
import numpy as np

from pipelines.audio.diarization_metrics import EMBED_BATCH, EMBED_SECONDS, EMBED_WAIT
from pipelines.audio.speaker_embedding import SAMPLE_RATE, Audio, Embeddings, SpeakerEmbedder


@dataclass(slots=True, eq=False)
class _Ticket:
    session: str
    windows: Sequence[Audio]
    submitted: float
    result: Embeddings | None = None
    error: BaseException | None = field(default=None)


class EmbeddingWorker:
    def __init__(
        self, embedder: SpeakerEmbedder, *, max_batch: int = 64, max_pending: int = 1024
    ) -> None:
        if max_batch < 1 or max_pending < max_batch:
            raise ValueError("need 1 <= max_batch <= max_pending")
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._queues: OrderedDict[str, deque[_Ticket]] = OrderedDict()
        self._pending = 0  # windows queued, not yet taken into a batch
        self._busy = False
        self._changed: anyio.Event | None = None
        self.batches = 0
        self.windows_embedded = 0
        self.audio_s = 0.0
        self.compute_s = 0.0

    @property
    def pending_windows(self) -> int:
        return self._pending

    def _event(self) -> anyio.Event:
        if self._changed is None:
            self._changed = anyio.Event()
        return self._changed

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _take_batch(self) -> list[_Ticket]:
        """Whole tickets, one per session in turn, up to ``max_batch`` windows (at
        least one ticket, however large); each served session goes to the back."""
        batch: list[_Ticket] = []
        size = 0
        while self._queues:
            session, queue = next(iter(self._queues.items()))
            if batch and size + len(queue[0].windows) > self.max_batch:
                break
            ticket = queue.popleft()
            batch.append(ticket)
            size += len(ticket.windows)
            del self._queues[session]
            if queue:
                self._queues[session] = queue  # to the back of the turn
        self._pending -= size
        return batch

    def _run_batch(self, batch: list[_Ticket]) -> float:
        windows = [w for t in batch for w in t.windows]
        t0 = time.perf_counter()
        try:
            out = self.embedder.embed(windows)
        except Exception as exc:  # raised again in each owner's task
            for t in batch:
                t.error = exc
            return time.perf_counter() - t0
        k = 0
        for t in batch:
            t.result = np.asarray(out[k : k + len(t.windows)], dtype=np.float32)
            k += len(t.windows)
        return time.perf_counter() - t0

    async def _serve(self) -> None:
        batch = self._take_batch()
        self._busy = True
        now = time.monotonic()
        for t in batch:
            EMBED_WAIT.observe(now - t.submitted)
        try:
            elapsed = await anyio.to_thread.run_sync(self._run_batch, batch)
        finally:
            self._busy = False
            self._notify()
        n = sum(len(t.windows) for t in batch)
        self.batches += 1
        self.windows_embedded += n
        self.compute_s += elapsed
        self.audio_s += sum(len(w) for t in batch for w in t.windows) / SAMPLE_RATE
        EMBED_BATCH.observe(n)
        EMBED_SECONDS.observe(elapsed)

    async def embed(self, session: str, windows: Sequence[Audio]) -> Embeddings:
        """Embeddings of ``windows`` (one row each) when their turn comes; raises what
        the embedder raised."""
        if not windows:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        while self._pending and self._pending + len(windows) > self.max_pending:
            await self._event().wait()  # backpressure: the queue is full
        ticket = _Ticket(session, windows, time.monotonic())
        self._queues.setdefault(session, deque()).append(ticket)
        self._pending += len(windows)
        try:
            while ticket.result is None and ticket.error is None:
                if not self._busy and self._queues:
                    await self._serve()
                else:
                    await self._event().wait()
        finally:
            queue = self._queues.get(session)
            if queue is not None and ticket in queue:  # cancelled before its turn
                queue.remove(ticket)
                self._pending -= len(windows)
                if not queue:
                    del self._queues[session]
            self._notify()  # room in the queue; and no event outlives its loop's waiters
        if ticket.error is not None:
            raise ticket.error
        assert ticket.result is not None
        return ticket.result
