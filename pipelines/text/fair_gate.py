"""``FairGate``: at most N requests in flight, the rest waiting round-robin by session.

The HTTP and vLLM engines hand scheduling to a server that batches; what they must
still do is bound what they send and keep one session from crowding out the others.
Waiters sit in a ``FairQueue`` (bounded: beyond it, ``EngineOverloaded``); a
finishing request hands its slot straight to the next waiter. Bound to one event
loop, like the HTTP client it guards.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from pipelines.text.engine import EngineOverloaded
from pipelines.text.fair_queue import FairQueue, QueueFull

_ALPHA = 0.2


class FairGate:
    def __init__(self, slots: int, max_queue: int) -> None:
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self.slots = slots
        self._free = slots
        self._waiting: FairQueue[str, anyio.Event] = FairQueue(max_queue)
        self._hold_ms = 1000.0  # moving average of how long a request holds a slot

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[float]:
        """Hold a slot for the duration of the block; yields the milliseconds waited."""
        started = time.perf_counter()
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            granted = anyio.Event()
            try:
                self._waiting.push(key, granted)
            except QueueFull as exc:
                raise EngineOverloaded(f"LLM queue full ({exc})") from None
            try:
                await granted.wait()
            except BaseException:
                # Cancelled while waiting: leave the queue, or, if the slot was
                # handed over in the meantime, pass it on.
                if not self._waiting.remove(key, granted):
                    self._release()
                raise
        acquired = time.perf_counter()
        try:
            yield 1000.0 * (acquired - started)
        finally:
            held = 1000.0 * (time.perf_counter() - acquired)
            self._hold_ms = (1 - _ALPHA) * self._hold_ms + _ALPHA * held
            self._release()

    def _release(self) -> None:
        successor = self._waiting.pop()
        if successor is None:
            self._free += 1
        else:
            successor.set()

    def estimated_wait_ms(self) -> float:
        if self._free > 0 and not self._waiting:
            return 0.0
        # Every waiter ahead needs a slot; slots turn over once per average hold.
        rounds = (len(self._waiting) + 1) / self.slots
        return rounds * self._hold_ms

    def statistics(self) -> dict[str, float]:
        return {
            "queued": len(self._waiting),
            "queue_capacity": self._waiting.capacity,
            "running": self.slots - self._free,
            "slots": self.slots,
            "hold_ms": self._hold_ms,
        }
