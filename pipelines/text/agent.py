"""``AgentPipeline``: the ``agent`` mode (docs/agent.md).

A ``text`` input starts a turn: ``turn.started``, then ``tool.call``/``tool.result``
and ``token`` events, then ``turn.done``. One turn runs at a time per session, in
its own cancel scope inside the pipeline's task group; a ``text`` that arrives while
a turn runs waits in a bounded queue (``max_queued_turns``), and beyond it is refused
with a non-fatal ``rate_limited`` error. ``cancel`` ends the running turn at the
engine and in its tools; ``turn.done`` says ``cancelled``, and nothing of that turn
follows it.

For ``voice_agent``, ``serve`` hands out an ``AgentTurns``: ``submit`` a
``TurnRequest`` with ``input="speech"``, and ``cancel(reason="barge_in")`` when the
user speaks over the answer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from pipelines.text.agent_turns import AgentTurns
from pipelines.text.context import Conversation, check_budget
from pipelines.text.engine import LlmEngine
from pipelines.text.latency import LatencyPolicy, TurnLimits
from pipelines.text.turn import ToolChoice
from sessions.config import SessionConfig
from sessions.events import TurnInput
from sessions.inputs import CancelRequest, ConfigUpdated, PipelineInput, UserText
from sessions.pipeline import EventSink, PipelineContext
from tools.audit import AuditSink
from tools.registry import ToolRegistry

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer the user briefly and plainly."


@dataclass(frozen=True, slots=True)
class AgentSettings:
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    context_tokens: int = 1536  # prompt budget of every request (window minus output)
    max_tokens: int = 256
    decision_max_tokens: int = 96
    max_tool_rounds: int = 2
    tool_choice: ToolChoice = "auto"
    max_queued_turns: int = 2
    max_history_exchanges: int = 64
    turn_timeout_s: float = 120.0
    temperature: float = 0.0
    latency: LatencyPolicy = field(default_factory=LatencyPolicy)

    def __post_init__(self) -> None:
        if min(self.context_tokens, self.max_tokens, self.decision_max_tokens) < 1:
            raise ValueError("token limits must be positive")
        if min(self.max_tool_rounds, self.max_queued_turns) < 0:
            raise ValueError("max_tool_rounds and max_queued_turns must not be negative")
        if self.max_history_exchanges < 1 or self.turn_timeout_s <= 0:
            raise ValueError("max_history_exchanges and turn_timeout_s must be positive")
        if self.tool_choice not in ("auto", "required", "none"):
            raise ValueError(f"tool_choice {self.tool_choice!r}")

    def limits(self) -> TurnLimits:
        return TurnLimits(
            self.max_tokens, self.decision_max_tokens, self.context_tokens, self.max_tool_rounds
        )


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """What starts a turn: a ``text`` message, or a finished utterance (voice)."""

    text: str
    received_at: float  # the server's monotonic clock when the input arrived
    input: TurnInput = "text"
    input_id: str | None = None


class AgentPipeline:
    """One session's agent: its conversation, and the loop that runs its turns."""

    def __init__(
        self,
        context: PipelineContext,
        engine: LlmEngine,
        registry: ToolRegistry,
        *,
        settings: AgentSettings | None = None,
        fallback: LlmEngine | None = None,
        audit: AuditSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or AgentSettings()
        check_budget(self.settings.system_prompt, self.settings.context_tokens, engine.count_tokens)
        self.session_id = context.session_id
        self.tenant = context.tenant
        self.config = context.config
        self.engine = engine
        self.fallback = fallback
        self.registry = registry
        self.audit = audit
        self.clock = clock
        self.conversation = Conversation(self.settings.max_history_exchanges)

    async def run(self, inputs: AsyncIterator[PipelineInput], sink: EventSink) -> None:
        async with self.serve(sink) as turns:
            async for item in inputs:
                if isinstance(item, UserText):
                    turns.submit(TurnRequest(item.text, item.received_at, "text", item.id))
                elif isinstance(item, CancelRequest):
                    turns.cancel(item.turn_id)
                elif isinstance(item, ConfigUpdated):
                    self.config = item.config
                # Audio inputs belong to the caption and voice pipelines.

    @asynccontextmanager
    async def serve(self, sink: EventSink) -> AsyncIterator[AgentTurns]:
        """Run turns for as long as the block runs; leaving it cancels what is left."""
        turns = AgentTurns(self, sink)
        async with anyio.create_task_group() as group:
            group.start_soon(turns.work)
            try:
                yield turns
            finally:
                turns.close()

    def allowed_tools(self, config: SessionConfig | None = None) -> frozenset[str]:
        return frozenset(self.tenant.session_tools(config or self.config))
