"""The replay buffer of a session's durable events (docs/protocol.md, "Resume").

A ring of at most ``capacity`` events, trimmed from the front by acks. Sequence
numbers are gap-free: 1, 2, 3, … An unsent ``token`` delta of the same turn as the
newest event is merged into it instead of taking a new number, so merging never
makes a gap (docs/protocol.md, "Backpressure").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace

from sessions.events import ServerEvent, TokenDelta

# A merged delta stops growing past this, so one event never becomes huge.
MAX_MERGED_CHARS = 2048


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    event: ServerEvent


class ReplayBuffer:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("replay capacity must be at least 1")
        self.capacity = capacity
        self._entries: deque[Entry] = deque()
        self.last_seq = 0
        self.dropped_unacked = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def first_seq(self) -> int:
        """The oldest seq still held (``last_seq + 1`` when empty)."""
        return self._entries[0].seq if self._entries else self.last_seq + 1

    def append(self, event: ServerEvent, *, sent_seq: int) -> int:
        """Keep ``event``; return its seq. ``sent_seq`` is the newest seq any client
        may have seen: events past it can still be merged."""
        if isinstance(event, TokenDelta) and self._entries:
            tail = self._entries[-1]
            prev = tail.event
            if (
                tail.seq > sent_seq
                and isinstance(prev, TokenDelta)
                and prev.turn_id == event.turn_id
                and len(prev.text) + len(event.text) <= MAX_MERGED_CHARS
            ):
                self._entries[-1] = Entry(tail.seq, replace(prev, text=prev.text + event.text))
                return tail.seq
        self.last_seq += 1
        self._entries.append(Entry(self.last_seq, event))
        if len(self._entries) > self.capacity:
            self._entries.popleft()
            self.dropped_unacked += 1
        return self.last_seq

    def start_after(self, seq: int) -> None:
        """Forget everything; the next event is ``seq + 1`` (a session rebuilt from the
        shared store starts where the store, or its client, left off)."""
        self._entries.clear()
        self.last_seq = seq

    def put(self, seq: int, event: ServerEvent) -> bool:
        """Keep an event numbered elsewhere (the session's owner on another node).
        Only the next seq is taken: anything else is refused (``False``)."""
        if seq != self.last_seq + 1:
            return False
        self.last_seq = seq
        self._entries.append(Entry(seq, event))
        if len(self._entries) > self.capacity:
            self._entries.popleft()
            self.dropped_unacked += 1
        return True

    def trim_to(self, seq: int) -> int:
        """Forget events up to ``seq`` (acknowledged); return how many went."""
        gone = 0
        while self._entries and self._entries[0].seq <= seq:
            self._entries.popleft()
            gone += 1
        return gone

    def covers(self, last_seq: int) -> bool:
        """Whether every event after ``last_seq`` is still held."""
        return self.first_seq <= last_seq + 1 <= self.last_seq + 1

    def after(self, seq: int) -> Iterator[Entry]:
        """Events with a seq greater than ``seq``, oldest first."""
        for entry in self._entries:
            if entry.seq > seq:
                yield entry

    def get(self, seq: int) -> Entry | None:
        if not self._entries or not self.first_seq <= seq <= self.last_seq:
            return None
        return self._entries[seq - self.first_seq]
