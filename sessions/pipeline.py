"""The boundary between a session and the pipeline that serves it.

A pipeline receives the session's input events (``sessions.inputs``) and emits
server events (``sessions.events``) through an ``EventSink``. ``emit`` never blocks:
the session numbers durable events, keeps them for replay and applies the outbound
policy, so a slow client never stalls a pipeline. The session owns the pipeline's
task; it keeps running while the session is detached, until the resume TTL ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sessions.config import SessionConfig
from sessions.events import ServerEvent
from sessions.inputs import PipelineInput
from sessions.tenants import TenantPolicy


class EventSink(Protocol):
    def emit(self, event: ServerEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class PipelineContext:
    session_id: str
    tenant: TenantPolicy
    config: SessionConfig
    # What ``Snapshotting.snapshot`` returned on the node that ran the session before
    # (a takeover after that node was lost or drained); ``None`` for a new session.
    restored: dict[str, Any] | None = None


class Pipeline(Protocol):
    async def run(self, inputs: AsyncIterator[PipelineInput], sink: EventSink) -> None:
        """Consume ``inputs`` until they end (session closed) or the task is cancelled."""
        ...


@runtime_checkable
class Snapshotting(Protocol):
    """Optional: a pipeline whose state can move to another node (an agent's
    conversation history). ``snapshot`` is called between turns, after each
    ``turn.done``; it returns a small JSON-able map, or ``None`` when there is
    nothing to keep. The next node's provider gets it as ``PipelineContext.restored``."""

    def snapshot(self) -> dict[str, Any] | None: ...


class PipelineProvider(Protocol):
    """Makes the pipelines of one mode. Loads its models once in ``start`` (off the
    event loop) and shares them between every session of the process."""

    async def start(self) -> None: ...

    def create(self, context: PipelineContext) -> Pipeline: ...

    async def aclose(self) -> None: ...


class ListSink:
    """An ``EventSink`` that keeps every event in a list (tests, benches, tools)."""

    def __init__(self) -> None:
        self.events: list[ServerEvent] = []

    def emit(self, event: ServerEvent) -> None:
        self.events.append(event)
