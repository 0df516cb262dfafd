"""An EventSink for tests: every event with the monotonic time it was emitted."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio

from sessions.events import ServerEvent, TurnDone


class TimedSink:
    """An EventSink that keeps each event with the monotonic time it was emitted.

    Waits are generous: the suite shares two cores, and a contended model can be
    several times slower than on a quiet machine. Bounds that matter are asserted
    on the event times instead."""

    def __init__(self) -> None:
        self.timed: list[tuple[float, ServerEvent]] = []

    def emit(self, event: ServerEvent) -> None:
        self.timed.append((time.monotonic(), event))

    @property
    def events(self) -> list[ServerEvent]:
        return [event for _, event in self.timed]

    def of_turn(self, turn_id: str) -> list[ServerEvent]:
        return [e for e in self.events if getattr(e, "turn_id", None) == turn_id]

    def types(self, turn_id: str) -> list[str]:
        return [e.type for e in self.of_turn(turn_id)]

    def done(self, turn_id: str) -> TurnDone | None:
        for event in self.of_turn(turn_id):
            if isinstance(event, TurnDone):
                return event
        return None

    def time_of(self, event: ServerEvent) -> float:
        return next(t for t, e in self.timed if e is event)

    def first_time(self, predicate: Callable[[ServerEvent], bool]) -> float:
        return next(t for t, e in self.timed if predicate(e))

    async def wait_for(
        self, predicate: Callable[[ServerEvent], bool], timeout_s: float = 120.0
    ) -> ServerEvent:
        with anyio.fail_after(timeout_s):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                await anyio.sleep(0.01)

    async def wait_done(self, turn_id: str, timeout_s: float = 120.0) -> TurnDone:
        event = await self.wait_for(
            lambda e: isinstance(e, TurnDone) and e.turn_id == turn_id, timeout_s
        )
        assert isinstance(event, TurnDone)
        return event
