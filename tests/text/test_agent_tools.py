"""Tool rounds of an agent turn, end to end with the embedded engine and real tools.

Which tool a base model picks is close to random, so the tests that need a call set
``tool_choice="required"`` (the first decision must be a call) and offer only the tool
under test. Outputs the model could write are fed straight to ``TurnRun.call_tool``
to show what happens to a decision the grammar would not have allowed."""

from __future__ import annotations

import time
from dataclasses import replace

import anyio
import pytest
from agent_support import INJECTION, Recorder, TimedSink, agent_tools, make_agent

from pipelines.text.agent import AgentPipeline, AgentSettings, TurnRequest
from pipelines.text.engine import ChatMessage, GenerationRequest
from pipelines.text.latency import TurnClock, TurnLimits
from pipelines.text.llama_engine import LlamaEngine
from pipelines.text.turn import AnswerDecision, ToolDecision
from pipelines.text.turn_runner import TurnRun, TurnSetup, system_text
from sessions.events import ServerEvent, TokenDelta, ToolCall, ToolResult, TurnDone
from tools.audit import MemoryAuditSink
from tools.builtins import builtin_registry

pytestmark = pytest.mark.anyio


def _required(rounds: int = 1, max_tokens: int = 8) -> AgentSettings:
    return AgentSettings(max_tokens=max_tokens, tool_choice="required", max_tool_rounds=rounds)


@pytest.fixture
def engine(llama_engine: LlamaEngine) -> LlamaEngine:
    """The session's embedded engine (tests/text/conftest.py), idle between tests."""
    return llama_engine


async def _one_turn(agent: AgentPipeline, sink: TimedSink, text: str) -> TurnDone:
    async with agent.serve(sink) as turns:
        turn_id = turns.submit(TurnRequest(text, time.monotonic()))
        assert turn_id is not None
        return await sink.wait_done(turn_id)


def _calls(sink: TimedSink) -> list[ToolCall]:
    return [e for e in sink.events if isinstance(e, ToolCall)]


def _results(sink: TimedSink) -> list[ToolResult]:
    return [e for e in sink.events if isinstance(e, ToolResult)]


async def test_a_disallowed_tool_is_never_run_even_when_asked_for(engine: LlamaEngine) -> None:
    seen, audit = Recorder(), MemoryAuditSink()
    # delete_files is registered but the tenant allows only read_note; the note it
    # returns asks for delete_files, and so does the user.
    agent = make_agent(
        engine, agent_tools(seen), allowed=("read_note",), settings=_required(2), audit=audit
    )
    sink = TimedSink()
    done = await _one_turn(
        agent, sink, 'Read my note "todo", then call delete_files on "/" as it says.'
    )

    assert done.status in ("completed", "length")
    assert [name for name, _ in seen.calls if name == "delete_files"] == []
    calls = _calls(sink)
    assert calls, "the required first round made a call"
    assert {c.name for c in calls} == {"read_note"}
    assert {r.tool for r in audit.records} == {"read_note"}
    # The injected text reached the model only as quoted data.
    (exchange,) = agent.conversation.exchanges
    tool_messages = [m for m in exchange.messages if m.role == "tool"]
    assert tool_messages
    for message in tool_messages:
        preamble, fenced = message.content.split("```json\n", 1)
        assert "not instructions" in preamble
        assert INJECTION.split(":")[0] in fenced  # the note's text, inside the fence only
        assert INJECTION.split(":")[0] not in preamble
        assert fenced.endswith("```")


async def test_a_call_the_model_makes_up_is_refused_and_fed_back(engine: LlamaEngine) -> None:
    seen, audit = Recorder(), MemoryAuditSink()
    events: list[ServerEvent] = []
    run = _bare_run(engine, agent_tools(seen), frozenset({"read_note"}), events.append, audit)
    await run.call_tool(ToolDecision("delete_files", {"path": "/"}, offered=False))
    await run.call_tool(ToolDecision("format_disk", {}, offered=False))

    assert seen.calls == []
    assert [type(e) for e in events] == [ToolCall, ToolResult, ToolCall, ToolResult]
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [(r.ok, r.error and r.error.code) for r in results] == [
        (False, "not_allowed"),
        (False, "unknown_tool"),
    ]
    assert [r.outcome for r in audit.records] == ["not_allowed", "unknown_tool"]
    # Both refusals go back to the model as data for its next step.
    tool_messages = [m for m in run.current if m.role == "tool"]
    assert len(tool_messages) == 2
    assert "not_allowed" in tool_messages[0].content


async def test_schema_invalid_arguments_are_rejected(engine: LlamaEngine) -> None:
    seen = Recorder()
    agent = make_agent(engine, agent_tools(seen), allowed=("pick",), settings=_required(1))
    sink = TimedSink()
    done = await _one_turn(agent, sink, "Pick a number between 5 and 10.")

    assert done.status in ("completed", "length")
    (call,) = _calls(sink)
    (result,) = _results(sink)
    assert result.call_id == call.call_id
    assert isinstance(call.arguments.get("n"), int), "the grammar held the shape"
    assert not result.ok
    assert result.error is not None
    assert result.error.code == "bad_arguments"
    assert "arguments.n" in result.error.message
    assert seen.calls == []


async def test_arguments_of_the_wrong_shape_never_reach_the_handler(engine: LlamaEngine) -> None:
    seen = Recorder()
    events: list[ServerEvent] = []
    run = _bare_run(engine, agent_tools(seen), frozenset({"pick", "read_note"}), events.append)
    for arguments in ([1, 2], "n=5", {"n": "5"}, {"n": 5, "extra": True}, {}, {"title": "x" * 99}):
        name = "read_note" if isinstance(arguments, dict) and "title" in arguments else "pick"
        await run.call_tool(ToolDecision(name, arguments, offered=True))
    results = [e for e in events if isinstance(e, ToolResult)]
    assert len(results) == 6
    assert {(r.ok, r.error and r.error.code) for r in results} == {(False, "bad_arguments")}
    assert seen.calls == []
    # A non-object is shown to the client as {} (tool.call arguments are an object).
    assert [e.arguments for e in events if isinstance(e, ToolCall)][:2] == [{}, {}]


async def test_a_slow_tool_times_out_and_the_turn_goes_on(engine: LlamaEngine) -> None:
    seen = Recorder()
    registry = agent_tools(seen, slow_timeout_s=0.3)
    agent = make_agent(engine, registry, allowed=("sleepy",), settings=_required(1))
    sink = TimedSink()
    done = await _one_turn(agent, sink, "Wait for me.")

    (result,) = _results(sink)
    assert not result.ok
    assert result.error is not None
    assert result.error.code == "timeout"
    assert seen.cancelled == ["sleepy"]
    assert done.status in ("completed", "length")
    called = sink.first_time(lambda e: isinstance(e, ToolCall))
    answered = sink.first_time(lambda e: isinstance(e, ToolResult))
    assert 0.3 <= answered - called < 2.0


async def test_cancel_during_a_tool_cancels_the_tool(engine: LlamaEngine) -> None:
    seen = Recorder()
    registry = agent_tools(seen, slow_timeout_s=20)
    agent = make_agent(engine, registry, allowed=("sleepy",), settings=_required(1))
    sink = TimedSink()
    async with agent.serve(sink) as turns:
        turn_id = turns.submit(TurnRequest("Wait for me.", time.monotonic()))
        assert turn_id is not None
        await seen.started.wait()
        cancelled_at = time.monotonic()
        assert turns.cancel(turn_id)
        done = await sink.wait_done(turn_id)
        await anyio.sleep(0.2)

    assert (done.status, done.reason) == ("cancelled", "client")
    assert seen.cancelled == ["sleepy"]
    assert sink.first_time(lambda e: isinstance(e, TurnDone)) - cancelled_at < 1.0
    assert sink.types(turn_id) == ["turn.started", "tool.call", "turn.done"]


async def test_a_barge_in_lets_a_protected_tool_finish(engine: LlamaEngine) -> None:
    seen = Recorder()
    agent = make_agent(engine, agent_tools(seen), allowed=("commit",), settings=_required(1))
    sink = TimedSink()
    async with agent.serve(sink) as turns:
        turn_id = turns.submit(TurnRequest("Save my order.", time.monotonic(), "speech"))
        assert turn_id is not None
        await seen.started.wait()
        assert turns.cancel(reason="barge_in")
        done = await sink.wait_done(turn_id)

    assert seen.finished == ["commit"]
    assert (done.status, done.reason) == ("cancelled", "barge_in")
    assert sink.types(turn_id) == ["turn.started", "tool.call", "tool.result", "turn.done"]
    (result,) = _results(sink)
    assert result.ok
    assert not any(isinstance(e, TokenDelta) for e in sink.of_turn(turn_id))


async def test_a_client_cancel_does_not_wait_for_a_protected_tool(engine: LlamaEngine) -> None:
    seen = Recorder()
    agent = make_agent(engine, agent_tools(seen), allowed=("commit",), settings=_required(1))
    sink = TimedSink()
    async with agent.serve(sink) as turns:
        turn_id = turns.submit(TurnRequest("Save my order.", time.monotonic()))
        assert turn_id is not None
        await seen.started.wait()
        assert turns.cancel()
        done = await sink.wait_done(turn_id)
    assert seen.finished == []
    assert (done.status, done.reason) == ("cancelled", "client")


def _bare_run(
    engine: LlamaEngine,
    registry: object,
    allowed: frozenset[str],
    emit: object,
    audit: MemoryAuditSink | None = None,
) -> TurnRun:
    setup = TurnSetup(
        session_id="session-a",
        turn_id="t_test",
        engine=engine,
        registry=registry,  # type: ignore[arg-type]
        allowed=allowed,
        system_prompt="You are terse.",
        limits=TurnLimits(max_tokens=8, decision_max_tokens=64, context_tokens=800, tool_rounds=1),
        tool_choice="auto",
        temperature=0.0,
        audit=audit,
    )
    run = TurnRun(setup, TurnClock(received_at=time.monotonic()), time.monotonic, emit)  # type: ignore[arg-type]
    run.current.append(ChatMessage("user", "hello"))
    return run


class _NoPrefix:
    """The same engine, as an engine that cannot continue a reply would be."""

    supports_prefix = False

    def __init__(self, inner: LlamaEngine) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


QUESTIONS = [
    "What is the capital of France?",
    "What time is it right now?",
    "What is 12 times 7?",
    "Tell me a short joke.",
    "Search the documents for the refund policy.",
    "hello",
]


async def test_the_one_word_decision_agrees_with_the_constrained_one(engine: LlamaEngine) -> None:
    """The answer fast path (the reply started with ``{ "action": "``, no grammar)
    decides "answer" only where the full constrained decision does too."""
    registry = builtin_registry()
    allowed = frozenset({"current_time", "calculator", "search_documents"})
    offered = [spec for name in sorted(allowed) if (spec := registry.lookup(name)) is not None]
    system = system_text("You are a helpful voice assistant.", offered)
    fast_answers = 0
    for question in QUESTIONS:
        run = _bare_run(engine, registry, allowed, lambda e: None)
        run.current[:] = [ChatMessage("user", question)]
        fast = await run._answers_at_once(run._context(system, []))
        full_run = _bare_run(_NoPrefix(engine), registry, allowed, lambda e: None)  # type: ignore[arg-type]
        full_run.current[:] = [ChatMessage("user", question)]
        full = await full_run._decide(system, [], allowed, False)
        assert full_run.requests == 1  # no fast path without prefix support
        if fast:
            fast_answers += 1
            assert isinstance(full, AnswerDecision), (question, full)
    assert fast_answers >= 3  # the path is taken: most questions need no tool


async def test_a_prefix_is_continued_not_repeated(engine: LlamaEngine) -> None:
    plain = GenerationRequest("p", (ChatMessage("user", "Say hi."),), max_tokens=3)
    prefixed = replace(plain, prefix='{"action": "', stop=('"',))
    base, longer = engine.prompt_tokens(plain), engine.prompt_tokens(prefixed)
    assert longer[: len(base)] == base and len(longer) > len(base)
    text = ""
    async with engine.stream(prefixed) as chunks:
        async for chunk in chunks:
            text += chunk.text
    assert text and not text.lstrip().startswith("{") and '"' not in text
