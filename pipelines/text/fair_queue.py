"""A bounded queue served round-robin by key: one session's burst never starves another.

Pure and synchronous: the caller provides the locking (the llama.cpp engine holds a
``threading.Condition`` around it). Each key has its own FIFO; ``pop`` takes the
head of the key that has waited longest for a turn, then sends that key to the back
of the rotation. A key that shows up for the first time joins at the back.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class QueueFull(Exception):
    """The queue holds ``capacity`` items already."""


class FairQueue(Generic[K, T]):
    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self._lanes: OrderedDict[K, deque[T]] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, key: K, item: T) -> None:
        """Append ``item`` to ``key``'s lane, or raise ``QueueFull``."""
        if self._size >= self.capacity:
            raise QueueFull(f"{self._size} items waiting")
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = deque()
        lane.append(item)
        self._size += 1

    def pop(self) -> T | None:
        """The next item in round-robin order, or None when empty."""
        if not self._lanes:
            return None
        key, lane = next(iter(self._lanes.items()))
        item = lane.popleft()
        self._size -= 1
        if lane:
            self._lanes.move_to_end(key)
        else:
            del self._lanes[key]
        return item

    def remove(self, key: K, item: T) -> bool:
        """Take ``item`` out of ``key``'s lane; False when it is not there (already popped)."""
        lane = self._lanes.get(key)
        if lane is None:
            return False
        for index, queued in enumerate(lane):
            if queued is item:
                del lane[index]
                self._size -= 1
                if not lane:
                    del self._lanes[key]
                return True
        return False

    def drain(self) -> list[T]:
        """Every item, in service order, leaving the queue empty."""
        items = list(self)
        self._lanes.clear()
        self._size = 0
        return items

    def __iter__(self) -> Iterator[T]:
        """Items in the order ``pop`` would serve them (nothing is removed)."""
        lanes = [list(lane) for lane in self._lanes.values()]
        depth = max((len(lane) for lane in lanes), default=0)
        for level in range(depth):
            for lane in lanes:
                if level < len(lane):
                    yield lane[level]
