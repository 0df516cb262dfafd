"""Who decodes next, and how much the ASR worker may promise. Pure and synchronous.

``FairQueue``: round-robin over sessions, finals (a segment's end, the captions
users wait for) before partials, so no session starves another however much audio
it sends: a session has at most one decode waiting at a time (its loop awaits it),
and each pick moves the served session to the back.

``LoadGovernor``: a state table over decode turnaround (waiting for a worker plus
decoding: what a caption's latency is made of). When the machine falls behind real
time it degrades in steps, each undone with hysteresis once turnaround is short
again:

- ``normal``: a decode every ``partial_interval_s`` of new audio; words become
  final when two decodes agree;
- ``reduced``: decodes half as often, each committing all but its last second
  (no second decode is coming soon to agree with);
- ``sparse``: decodes only every ``degraded_interval_s``, committing likewise;
  partials are what is left of each;
- ``saturated``: as ``sparse``, and new sessions are refused (``overloaded``).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    def __init__(self) -> None:
        # session → its waiting items, (final?, item); order = round-robin order
        self._queues: OrderedDict[str, deque[tuple[bool, T]]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def push(self, session: str, item: T, *, final: bool) -> None:
        self._queues.setdefault(session, deque()).append((final, item))

    def remove(self, session: str, item: T) -> bool:
        q = self._queues.get(session)
        if q is None:
            return False
        for entry in q:
            if entry[1] is item:
                q.remove(entry)
                if not q:
                    del self._queues[session]
                return True
        return False

    def pop(self) -> tuple[str, T] | None:
        """The next item: the first session in turn with a final waiting, else the
        first session in turn. The served session goes to the back of the turn."""
        chosen = next((s for s, q in self._queues.items() if q[0][0]), None)
        if chosen is None:
            chosen = next(iter(self._queues), None)
        if chosen is None:
            return None
        q = self._queues.pop(chosen)
        _final, item = q.popleft()
        if q:
            self._queues[chosen] = q  # re-inserted at the end: its turn is over
        return chosen, item


class Load(Enum):
    NORMAL = "normal"
    REDUCED = "reduced"
    SPARSE = "sparse"
    SATURATED = "saturated"


@dataclass(frozen=True, slots=True)
class LoadRule:
    up_s: float  # average turnaround above this: one step worse
    down_s: float  # average turnaround below this for hold_s: one step better
    partial_factor: float | None  # multiplier of the partial interval; None = sparse
    admits: bool


LOAD_RULES: dict[Load, LoadRule] = {
    Load.NORMAL: LoadRule(1.2, 0.0, 1.0, True),
    Load.REDUCED: LoadRule(2.0, 0.7, 2.0, True),
    Load.SPARSE: LoadRule(3.5, 1.2, None, True),
    Load.SATURATED: LoadRule(float("inf"), 2.0, None, False),
}
_ORDER = list(Load)


class LoadGovernor:
    def __init__(self, *, alpha: float = 0.2, hold_s: float = 5.0) -> None:
        self.level = Load.NORMAL
        self.avg_s = 0.0
        self._alpha = alpha
        self._hold_s = hold_s
        self._calm_since: float | None = None

    @property
    def rule(self) -> LoadRule:
        return LOAD_RULES[self.level]

    @property
    def admits_new_sessions(self) -> bool:
        return self.rule.admits

    def partial_interval(self, base_s: float) -> float | None:
        factor = self.rule.partial_factor
        return None if factor is None else base_s * factor

    def observe(self, turnaround_s: float, now: float) -> Load:
        """A decode came back ``turnaround_s`` after it was asked for; ``now`` is any
        monotonic clock. An idle worker reports 0."""
        self.avg_s += self._alpha * (turnaround_s - self.avg_s)
        rule, i = self.rule, _ORDER.index(self.level)
        if self.avg_s > rule.up_s and i + 1 < len(_ORDER):
            self.level, self._calm_since = _ORDER[i + 1], None
        elif self.avg_s < rule.down_s and i > 0:
            if self._calm_since is None:
                self._calm_since = now
            elif now - self._calm_since >= self._hold_s:
                self.level, self._calm_since = _ORDER[i - 1], None
        else:
            self._calm_since = None
        return self.level
