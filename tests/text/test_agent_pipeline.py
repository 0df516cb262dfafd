"""AgentPipeline end to end with the embedded engine (llama.cpp, gemma-3-270m).

The model is a small base model: these tests assert properties of the event stream
(order, status, timings, budgets), never what the model wrote."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import anyio
import pytest
from agent_support import Recorder, TimedSink, agent_tools, make_agent
from prometheus_client import REGISTRY

from pipelines.text.agent import AgentSettings, TurnRequest
from pipelines.text.context import ContextTooSmall
from pipelines.text.llama_engine import LlamaEngine
from sessions.events import ErrorEvent, TokenDelta, TurnDone, TurnStarted
from sessions.inputs import CancelRequest, ConfigUpdated, PipelineInput, UserText
from tools.registry import ToolRegistry
from tools.spec import ToolSpec

pytestmark = pytest.mark.anyio


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


SHORT = AgentSettings(max_tokens=24)


@pytest.fixture
def engine(llama_engine: LlamaEngine) -> LlamaEngine:
    """The session's embedded engine (tests/text/conftest.py), idle between tests."""
    return llama_engine


async def test_a_turn_streams_tokens_and_completes(
    engine: LlamaEngine, caplog: pytest.LogCaptureFixture
) -> None:
    agent = make_agent(engine, ToolRegistry(), settings=SHORT)
    sink = TimedSink()
    secret = "Tell me a story about the purple elephant Zanzibar."
    ttft_count = _sample("parley_agent_ttft_seconds_count", engine="llama")
    turns_count = _sample("parley_agent_turns_total", status="completed", reason="")
    lengths_count = _sample("parley_agent_turns_total", status="length", reason="")
    with caplog.at_level(logging.INFO, logger="parley.agent"):
        async with agent.serve(sink) as turns:
            turn_id = turns.submit(TurnRequest(secret, time.monotonic(), input_id="m1"))
            assert turn_id is not None
            done = await sink.wait_done(turn_id)

    events = sink.of_turn(turn_id)
    assert events[0] == TurnStarted(turn_id, "text", "m1")
    assert events[-1] is done
    tokens = [e for e in events if isinstance(e, TokenDelta)]
    assert tokens, "an answer streams at least one token"
    assert {e.type for e in events[1:-1]} == {"token"}
    assert done.status in ("completed", "length")
    assert done.usage.input_tokens > 0
    assert 0 < done.usage.output_tokens <= SHORT.max_tokens
    # Streamed: deltas went out one by one as they were generated, not all at the end.
    token_times = [t for t, e in sink.timed if isinstance(e, TokenDelta)]
    assert len(token_times) >= 2
    assert token_times[0] < token_times[-1]
    timings = done.timings
    assert set(timings) == {"queue_ms", "ttft_ms", "total_ms", "tokens_per_s"}
    assert 0 <= timings["queue_ms"] <= timings["ttft_ms"] <= timings["total_ms"]
    assert timings["tokens_per_s"] > 0
    assert len(agent.conversation) == 1
    # The same figures reach the prometheus histograms.
    assert _sample("parley_agent_ttft_seconds_count", engine="llama") == ttft_count + 1
    finished = _sample("parley_agent_turns_total", status="completed", reason="") + _sample(
        "parley_agent_turns_total", status="length", reason=""
    )
    assert finished == turns_count + lengths_count + 1
    # Logs say how long the input and output were, never what they said.
    records = [r for r in caplog.records if r.name == "parley.agent"]
    assert records
    for record in records:
        assert "Zanzibar" not in record.getMessage()
        assert "Zanzibar" not in str(getattr(record, "agent", ""))
    fields = records[-1].agent  # type: ignore[attr-defined]
    assert fields["input_chars"] == len(secret)
    assert fields["output_chars"] == len("".join(t.text for t in tokens))


async def test_cancel_mid_turn_stops_generation(engine: LlamaEngine) -> None:
    agent = make_agent(engine, ToolRegistry(), settings=AgentSettings(max_tokens=400))
    sink = TimedSink()
    send, receive = anyio.create_memory_object_stream[PipelineInput](8)
    with receive:
        async with anyio.create_task_group() as group:
            group.start_soon(agent.run, receive, sink)
            await send.send(
                UserText("Write a very long essay about rivers.", "m1", time.monotonic())
            )
            started = await sink.wait_for(lambda e: isinstance(e, TurnStarted))
            assert isinstance(started, TurnStarted)
            turn_id = started.turn_id
            await sink.wait_for(lambda e: isinstance(e, TokenDelta))
            cancelled_at = time.monotonic()
            await send.send(CancelRequest(None, time.monotonic()))
            done = await sink.wait_done(turn_id)
            done_at = sink.first_time(lambda e: isinstance(e, TurnDone))
            await anyio.sleep(0.3)  # anything still coming would show up now
            await send.aclose()

    assert done.status == "cancelled"
    assert done.reason == "client"
    # Typically about 10 ms (the next token); seconds only on a contended machine.
    assert done_at - cancelled_at < 5.0
    assert sink.of_turn(turn_id)[-1] is done, "no event of the turn after turn.done"
    assert done.usage.output_tokens < 400
    # Stopped at the engine, not only in delivery: nothing is left running there.
    assert engine.estimated_wait_ms() == 0
    assert len(agent.conversation) == 1  # the cut answer stays in the history


async def test_a_second_text_waits_and_a_third_is_refused(engine: LlamaEngine) -> None:
    settings = AgentSettings(max_tokens=8, max_queued_turns=1)
    agent = make_agent(engine, ToolRegistry(), settings=settings)
    sink = TimedSink()
    async with agent.serve(sink) as turns:
        first = turns.submit(TurnRequest("Say hello.", time.monotonic(), input_id="a"))
        await sink.wait_for(lambda e: isinstance(e, TurnStarted))
        second = turns.submit(TurnRequest("Say goodbye.", time.monotonic(), input_id="b"))
        third = turns.submit(TurnRequest("Say nothing.", time.monotonic(), input_id="c"))
        assert first is not None
        assert second is not None
        assert third is None
        done_second = await sink.wait_done(second)

    refused = [e for e in sink.events if isinstance(e, ErrorEvent)]
    assert [(e.code, e.fatal, e.is_durable()) for e in refused] == [("rate_limited", False, True)]
    assert "c" in refused[0].message
    kinds = [(e.type, getattr(e, "turn_id", None)) for e in sink.events if e.type != "token"]
    assert kinds.index(("turn.done", first)) < kinds.index(("turn.started", second))
    assert done_second.status in ("completed", "length")
    # The waiting turn's queue time counts its wait behind the first turn.
    assert done_second.timings["queue_ms"] > 0


async def test_closing_the_session_cancels_the_running_turn(engine: LlamaEngine) -> None:
    agent = make_agent(engine, ToolRegistry(), settings=AgentSettings(max_tokens=400))
    sink = TimedSink()
    async with agent.serve(sink) as turns:
        turn_id = turns.submit(TurnRequest("Count to one thousand.", time.monotonic()))
        assert turn_id is not None
        await sink.wait_for(lambda e: isinstance(e, TokenDelta))
    done = sink.done(turn_id)
    assert done is not None
    assert (done.status, done.reason) == ("cancelled", "session_closed")
    assert sink.of_turn(turn_id)[-1] is done
    assert engine.estimated_wait_ms() == 0


async def test_a_speech_turn_and_a_barge_in(engine: LlamaEngine) -> None:
    agent = make_agent(engine, ToolRegistry(), settings=AgentSettings(max_tokens=400))
    sink = TimedSink()
    async with agent.serve(sink) as turns:
        turn_id = turns.submit(TurnRequest("what is the weather like", time.monotonic(), "speech"))
        assert turn_id is not None
        await sink.wait_for(lambda e: isinstance(e, TokenDelta))
        assert turns.current_turn_id == turn_id
        assert turns.cancel(reason="barge_in")
        done = await sink.wait_done(turn_id)
        assert not turns.cancel(turn_id), "a late cancel is ignored"
    assert sink.of_turn(turn_id)[0] == TurnStarted(turn_id, "speech")
    assert (done.status, done.reason) == ("cancelled", "barge_in")


async def test_the_context_budget_holds_with_a_long_history(engine: LlamaEngine) -> None:
    settings = AgentSettings(max_tokens=4, context_tokens=300)
    agent = make_agent(engine, ToolRegistry(), settings=settings)
    sink = TimedSink()
    paragraph = "The quick brown fox jumps over the lazy dog near the river bank. " * 8
    async with agent.serve(sink) as turns:
        for i in range(3):
            turn_id = turns.submit(TurnRequest(f"Note {i}: {paragraph}", time.monotonic()))
            assert turn_id is not None
            done = await sink.wait_done(turn_id)
            # The engine's own count of the prompt it ran: the budget is a real bound.
            assert done.usage.input_tokens <= settings.context_tokens
        huge = TurnRequest("Summarise: " + paragraph * 20, time.monotonic())
        turn_id = turns.submit(huge)
        assert turn_id is not None
        done = await sink.wait_done(turn_id)
    assert done.status in ("completed", "length")
    assert done.usage.input_tokens <= settings.context_tokens
    assert len(agent.conversation) == 4  # kept, even though not all of it is sent
    # The budget was binding: the whole history would not have fitted.
    assert sum(e.tokens for e in agent.conversation.exchanges) > 2 * settings.context_tokens


async def test_a_turn_that_outlives_its_timeout_fails(engine: LlamaEngine) -> None:
    settings = AgentSettings(max_tokens=400, turn_timeout_s=0.4)
    agent = make_agent(engine, ToolRegistry(), settings=settings)
    sink = TimedSink()
    async with agent.serve(sink) as turns:
        turn_id = turns.submit(TurnRequest("Write a long poem.", time.monotonic()))
        assert turn_id is not None
        done = await sink.wait_done(turn_id)
    assert (done.status, done.reason) == ("failed", "timeout")
    assert engine.estimated_wait_ms() == 0


async def test_a_prompt_beyond_the_engine_window_fails_the_turn_only(engine: LlamaEngine) -> None:
    # A budget larger than the engine's window (n_ctx 2048) is a deployment mistake:
    # the turn fails with engine_error, and the session goes on.
    agent = make_agent(
        engine, ToolRegistry(), settings=AgentSettings(max_tokens=4, context_tokens=6000)
    )
    sink = TimedSink()
    async with agent.serve(sink) as turns:
        big = turns.submit(TurnRequest("word " * 3000, time.monotonic()))
        assert big is not None
        failed = await sink.wait_done(big)
        small = turns.submit(TurnRequest("Hi.", time.monotonic()))
        assert small is not None
        after = await sink.wait_done(small)
    assert (failed.status, failed.reason) == ("failed", "engine_error")
    assert after.status in ("completed", "length")
    assert len(agent.conversation) == 1  # a failed turn leaves no history


async def test_config_updates_change_the_offered_tools(engine: LlamaEngine) -> None:
    registry = agent_tools(Recorder())
    tenant_tools = ("read_note", "pick")
    agent = make_agent(engine, registry, allowed=tenant_tools)
    assert agent.allowed_tools() == frozenset(tenant_tools)
    narrowed = agent.config.merged({"tools": ["pick"]})

    async def inputs() -> AsyncIterator[PipelineInput]:
        yield ConfigUpdated(narrowed)

    await agent.run(inputs(), TimedSink())
    assert agent.allowed_tools() == frozenset({"pick"})


def test_a_budget_that_cannot_hold_the_system_prompt_is_refused(engine: LlamaEngine) -> None:
    settings = AgentSettings(system_prompt="Be careful. " * 200, context_tokens=256)
    with pytest.raises(ContextTooSmall):
        make_agent(engine, ToolRegistry(), settings=settings)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_tokens": 0}, {"max_tool_rounds": -1}, {"turn_timeout_s": 0}, {"tool_choice": "x"}],
)
def test_settings_refuse_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AgentSettings(**kwargs)  # type: ignore[arg-type]


async def test_tools_that_outgrow_the_budget_fail_the_turn_clearly(engine: LlamaEngine) -> None:
    async def noop(arguments: dict[str, object]) -> object:
        return None

    wordy = ToolSpec("wordy", "A tool with a great deal to say. " * 30, {"type": "object"}, noop)
    agent = make_agent(
        engine,
        ToolRegistry([wordy]),
        allowed=("wordy",),
        settings=AgentSettings(system_prompt="Be brief.", context_tokens=120),
    )
    sink = TimedSink()
    async with agent.serve(sink) as turns:
        turn_id = turns.submit(TurnRequest("Hi.", time.monotonic()))
        assert turn_id is not None
        done = await sink.wait_done(turn_id)
    assert (done.status, done.reason) == ("failed", "context_too_small")
    assert done.usage.input_tokens == 0
