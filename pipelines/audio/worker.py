"""The ASR worker: one model per process, a few decode threads, every session served
in turn (``scheduler.FairQueue``), load watched by ``scheduler.LoadGovernor``.

There is no background task to own: a session awaiting its decode runs the next
job in the queue (its own or another session's) whenever a worker slot is free.
Decodes run in threads; a waiter cancelled while running someone else's job still
finishes it (threads cannot be interrupted) and hands the result over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import anyio

from pipelines.audio import metrics
from pipelines.audio.agreement import DecodeJob
from pipelines.audio.asr import AsrBackend, AsrResult
from pipelines.audio.scheduler import FairQueue, Load, LoadGovernor


@dataclass(slots=True, eq=False)
class _Ticket:
    session: str
    job: DecodeJob
    submitted: float
    result: AsrResult | None = None
    error: BaseException | None = field(default=None)
    wait_s: float = 0.0


class AsrWorker:
    def __init__(self, backend: AsrBackend, *, slots: int = 2) -> None:
        self.backend = backend
        self.slots = max(1, slots)
        self.governor = LoadGovernor()
        self._queue: FairQueue[_Ticket] = FairQueue()
        self._busy = 0
        self._changed = anyio.Event()
        self._limiter = anyio.CapacityLimiter(self.slots)
        self.decodes = 0

    @property
    def load(self) -> Load:
        return self.governor.level

    def admits_new_sessions(self) -> bool:
        """Whether a new caption session may start (else it gets ``overloaded``)."""
        if self._busy == 0 and len(self._queue) == 0:
            self.governor.observe(0.0, time.monotonic())  # idle: the verdict is stale
            return True
        return self.governor.admits_new_sessions

    def partial_interval(self, base_s: float) -> float | None:
        return self.governor.partial_interval(base_s)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _decode(self, ticket: _Ticket) -> None:
        try:
            ticket.result = self.backend.transcribe(ticket.job.audio, ticket.job.prompt)
        except Exception as exc:  # raised again in the owner's task
            ticket.error = exc

    async def _run_one(self, ticket: _Ticket) -> None:
        ticket.wait_s = time.monotonic() - ticket.submitted
        metrics.ASR_QUEUE_WAIT.observe(ticket.wait_s)
        self._busy += 1
        metrics.ASR_QUEUE_DEPTH.set(len(self._queue))
        try:
            await anyio.to_thread.run_sync(self._decode, ticket, limiter=self._limiter)
        finally:
            self._busy -= 1
            self.decodes += 1
            now = time.monotonic()
            self.governor.observe(now - ticket.submitted, now)
            if ticket.result is not None and ticket.result.audio_s > 0:
                metrics.ASR_RTF.observe(ticket.result.compute_s / ticket.result.audio_s)
            metrics.ASR_LOAD_LEVEL.set(list(Load).index(self.governor.level))
            self._notify()

    async def transcribe(self, session: str, job: DecodeJob) -> AsrResult:
        """Decode ``job`` when its turn comes; raises what the backend raised."""
        ticket = _Ticket(session, job, time.monotonic())
        self._queue.push(session, ticket, final=job.final)
        metrics.ASR_QUEUE_DEPTH.set(len(self._queue))
        try:
            while ticket.result is None and ticket.error is None:
                if self._busy < self.slots:
                    picked = self._queue.pop()
                    if picked is not None:
                        await self._run_one(picked[1])
                        continue
                await self._changed.wait()
        finally:
            self._queue.remove(session, ticket)
        if ticket.error is not None:
            raise ticket.error
        assert ticket.result is not None
        return ticket.result
