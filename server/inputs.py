"""The bounded queue from a session to its pipeline.

Audio is bounded in seconds: while more than ``max_audio_s`` waits, the socket
reader stops reading (TCP pushes back on the client; docs/protocol.md,
"Backpressure"). Other inputs are few (rate-limited) and bounded in count.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator

import anyio

from sessions.inputs import PipelineInput


class InputQueueFull(Exception):
    pass


class InputQueue:
    def __init__(self, max_audio_s: float, max_items: int = 4096) -> None:
        self.max_audio_s = max_audio_s
        self.max_items = max_items
        self._items: deque[tuple[PipelineInput, float]] = deque()
        self.audio_s = 0.0
        self._readable = anyio.Event()
        self._room = anyio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: PipelineInput, audio_s: float = 0.0) -> None:
        if self._closed:
            return
        if len(self._items) >= self.max_items:
            raise InputQueueFull(f"{self.max_items} inputs waiting")
        self._items.append((item, audio_s))
        self.audio_s += audio_s
        self._readable.set()

    def has_audio_room(self) -> bool:
        return self.audio_s <= self.max_audio_s

    async def wait_audio_room(self) -> None:
        while not self.has_audio_room() and not self._closed:
            if self._room.is_set():
                self._room = anyio.Event()
            await self._room.wait()

    def close(self) -> None:
        self._closed = True
        self._readable.set()
        self._room.set()

    async def get(self) -> PipelineInput | None:
        """The next input, or ``None`` once closed and empty."""
        while not self._items:
            if self._closed:
                return None
            self._readable = anyio.Event()
            await self._readable.wait()
        item, audio_s = self._items.popleft()
        self.audio_s = max(0.0, self.audio_s - audio_s)
        if self.has_audio_room():
            self._room.set()
        return item

    async def __aiter__(self) -> AsyncIterator[PipelineInput]:
        while (item := await self.get()) is not None:
            yield item
