"""The latency budget end to end: a busy engine makes turns lean, sends them to the
fallback engine, or refuses them as ``overloaded`` (docs/agent.md, "Latency budget").

The engine is made busy the way production makes it busy: other sessions' requests,
one running and more waiting in its queue."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from agent_support import TimedSink, make_agent

from pipelines.text.agent import AgentSettings, TurnRequest
from pipelines.text.engine import ChatMessage, GenerationRequest
from pipelines.text.latency import LatencyPolicy
from pipelines.text.llama_engine import LlamaEngine, LlamaSettings
from sessions.events import ErrorEvent, TokenDelta, TurnDone
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio

LONG_PROMPT = "Describe every river of Europe in detail. " * 25


@pytest.fixture(scope="module")
def fallback_engine(gguf_path: Path) -> Iterator[LlamaEngine]:
    engine = LlamaEngine(
        LlamaSettings(model_path=str(gguf_path), n_ctx=2048, n_threads=1, max_queue=4)
    )
    yield engine
    engine.close()


@asynccontextmanager
async def busy(engine: LlamaEngine, requests: int = 3) -> AsyncIterator[None]:
    """Other sessions' long requests: one runs, the rest wait. Cancelled on exit."""

    async def other(index: int) -> None:
        request = GenerationRequest(
            request_id=f"other-{index}",
            messages=(ChatMessage("user", LONG_PROMPT),),
            max_tokens=400,
            session_id=f"other-session-{index}",
        )
        async with engine.stream(request) as chunks:
            async for _ in chunks:
                pass

    async with anyio.create_task_group() as group:
        for index in range(requests):
            group.start_soon(other, index)
        with anyio.fail_after(10):
            while True:  # polled: the engine has no event for "busy"
                stats = engine.statistics()
                if stats["running"] >= 1 and stats["queued"] >= 1:
                    break
                await anyio.sleep(0.01)
        try:
            yield
        finally:
            group.cancel_scope.cancel()


async def test_a_turn_that_cannot_start_in_time_is_overloaded(llama_engine: LlamaEngine) -> None:
    agent = make_agent(
        llama_engine, ToolRegistry(), settings=AgentSettings(max_tokens=16), latency_budget_ms=100
    )
    sink = TimedSink()
    async with busy(llama_engine), agent.serve(sink) as turns:
        assert llama_engine.estimated_wait_ms() > 100
        turn_id = turns.submit(TurnRequest("Hello?", time.monotonic()))
        assert turn_id is not None
        done = await sink.wait_done(turn_id, timeout_s=10)

    assert (done.status, done.reason) == ("failed", "overloaded")
    assert done.usage.input_tokens == 0  # refused before any engine request
    errors = [e for e in sink.events if isinstance(e, ErrorEvent)]
    assert [(e.code, e.fatal, e.is_durable()) for e in errors] == [("overloaded", False, True)]
    # The error comes before the turn.done, which closes the turn.
    assert sink.events.index(errors[0]) < sink.events.index(done)
    assert sink.types(turn_id) == ["turn.started", "turn.done"]
    assert done.timings["total_ms"] < 1000


async def test_a_busy_engine_within_budget_makes_the_turn_lean(
    llama_engine: LlamaEngine, caplog: pytest.LogCaptureFixture
) -> None:
    # Lean as soon as any wait is expected: the full limits only on an idle engine.
    policy = LatencyPolicy(lean_fraction=0.001, lean_max_tokens=4)
    settings = AgentSettings(max_tokens=200, latency=policy)
    agent = make_agent(llama_engine, ToolRegistry(), settings=settings, latency_budget_ms=120_000)
    sink = TimedSink()
    with caplog.at_level(logging.INFO, logger="parley.agent"):
        async with agent.serve(sink) as turns:
            async with busy(llama_engine):
                turn_id = turns.submit(TurnRequest("Tell me about rivers.", time.monotonic()))
                assert turn_id is not None
                await sink.wait_for(lambda e: e.type == "turn.started")
            done = await sink.wait_done(turn_id)

    assert done.status in ("completed", "length")
    assert done.usage.output_tokens <= policy.lean_max_tokens
    assert [r.agent["level"] for r in caplog.records if hasattr(r, "agent")] == ["lean"]


async def test_an_overloaded_primary_hands_the_turn_to_the_fallback(
    llama_engine: LlamaEngine, fallback_engine: LlamaEngine, caplog: pytest.LogCaptureFixture
) -> None:
    settings = AgentSettings(max_tokens=200, latency=LatencyPolicy(lean_max_tokens=6))
    agent = make_agent(
        llama_engine,
        ToolRegistry(),
        settings=settings,
        latency_budget_ms=150,
        fallback=fallback_engine,
    )
    sink = TimedSink()
    with caplog.at_level(logging.INFO, logger="parley.agent"):
        async with busy(llama_engine), agent.serve(sink) as turns:
            turn_id = turns.submit(TurnRequest("Say hi.", time.monotonic()))
            assert turn_id is not None
            done = await sink.wait_done(turn_id)

    assert isinstance(done, TurnDone)
    assert done.status in ("completed", "length")
    assert any(isinstance(e, TokenDelta) for e in sink.of_turn(turn_id))
    assert done.usage.output_tokens <= 6
    assert [r.agent["level"] for r in caplog.records if hasattr(r, "agent")] == ["fallback"]
    assert not [e for e in sink.events if isinstance(e, ErrorEvent)]
