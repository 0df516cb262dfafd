"""Executing calls: every tool problem is an outcome, never an exception; the
caller's cancellation reaches the handler; every call is audited."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import anyio
import pytest

from sessions.events import ToolCall, ToolError, ToolResult, to_wire
from tools.audit import MemoryAuditSink
from tools.execute import ToolInvocation, describe_exception, execute
from tools.outcome import ToolErrorCode
from tools.registry import ToolRegistry
from tools.spec import ToolSpec

# Small real tools: each does what its name says.


class Recorder:
    """Remembers what the tools saw: whether a handler ran, was cancelled."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.cancelled: list[str] = []
        self.started = anyio.Event()


def object_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def make_tools(seen: Recorder) -> list[ToolSpec]:
    async def echo(arguments: dict[str, Any]) -> Any:
        seen.calls.append(("echo", arguments))
        return {"text": arguments["text"], "times": arguments.get("times", 1)}

    async def slow(arguments: dict[str, Any]) -> Any:
        seen.calls.append(("slow", arguments))
        seen.started.set()
        try:
            await anyio.sleep(arguments["seconds"])
        except anyio.get_cancelled_exc_class():
            seen.cancelled.append("slow")
            raise
        return "woke up"

    async def huge(arguments: dict[str, Any]) -> Any:
        seen.calls.append(("huge", arguments))
        return "x" * arguments["size"]

    async def broken(arguments: dict[str, Any]) -> Any:
        seen.calls.append(("broken", arguments))
        raise KeyError("the database is on fire")

    async def unjsonable(arguments: dict[str, Any]) -> Any:
        seen.calls.append(("unjsonable", arguments))
        return {"when": {1, 2, 3}}

    return [
        ToolSpec(
            name="echo",
            description="Repeat the text.",
            parameters=object_schema(
                {
                    "text": {"type": "string", "maxLength": 100},
                    "times": {"type": "integer", "minimum": 1, "maximum": 3},
                },
                ["text"],
            ),
            handler=echo,
        ),
        ToolSpec(
            name="slow",
            description="Sleep, then answer.",
            parameters=object_schema({"seconds": {"type": "number"}}, ["seconds"]),
            handler=slow,
            timeout_s=0.2,
            cancel_on_barge_in=False,
        ),
        ToolSpec(
            name="huge",
            description="Answer with a long string.",
            parameters=object_schema({"size": {"type": "integer"}}, ["size"]),
            handler=huge,
            max_result_bytes=1000,
        ),
        ToolSpec(
            name="broken",
            description="Always fails.",
            parameters=object_schema({}, []),
            handler=broken,
        ),
        ToolSpec(
            name="unjsonable",
            description="Answers with a set.",
            parameters=object_schema({}, []),
            handler=unjsonable,
        ),
    ]


@pytest.fixture
def seen() -> Recorder:
    return Recorder()


@pytest.fixture
def registry(seen: Recorder) -> ToolRegistry:
    return ToolRegistry(make_tools(seen))


@pytest.fixture
def audit() -> MemoryAuditSink:
    return MemoryAuditSink()


ALL = frozenset({"echo", "slow", "huge", "broken", "unjsonable"})


def call(name: str, arguments: object, call_id: str = "c1") -> ToolInvocation:
    return ToolInvocation(
        call_id=call_id, name=name, arguments=arguments, session_id="s1", turn_id="t1"
    )


@pytest.mark.anyio
async def test_a_valid_allowed_call_runs_and_returns_its_result(
    registry: ToolRegistry, seen: Recorder, audit: MemoryAuditSink
) -> None:
    outcome = await execute(registry, call("echo", {"text": "hi", "times": 2}), ALL, audit=audit)
    assert outcome.ok
    assert outcome.result == {"text": "hi", "times": 2}
    assert outcome.error_code is None
    assert outcome.duration_ms >= 0
    assert seen.calls == [("echo", {"text": "hi", "times": 2})]
    [record] = audit.records
    assert (record.session_id, record.turn_id, record.call_id) == ("s1", "t1", "c1")
    assert (record.tool, record.outcome) == ("echo", "ok")
    canonical = b'{"text":"hi","times":2}'
    assert record.arguments_sha256 == hashlib.sha256(canonical).hexdigest()
    assert record.arguments_bytes == len(canonical)


@pytest.mark.anyio
async def test_an_unknown_tool_is_refused(
    registry: ToolRegistry, seen: Recorder, audit: MemoryAuditSink
) -> None:
    outcome = await execute(registry, call("delete_user", {"id": 1}), ALL, audit=audit)
    assert not outcome.ok
    assert outcome.error_code is ToolErrorCode.UNKNOWN_TOOL
    assert outcome.error_message == "no tool named 'delete_user'"
    assert audit.records[0].outcome == "unknown_tool"


@pytest.mark.anyio
async def test_a_tool_outside_the_allowlist_is_never_run(
    registry: ToolRegistry, seen: Recorder, audit: MemoryAuditSink
) -> None:
    outcome = await execute(
        registry, call("echo", {"text": "hi"}), frozenset({"huge"}), audit=audit
    )
    assert outcome.error_code is ToolErrorCode.NOT_ALLOWED
    assert seen.calls == []
    assert audit.records[0].outcome == "not_allowed"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"text": "hi"}', "arguments must be an object, not string"),
        ({"text": 5}, "arguments.text: 5 is not of type 'string'"),
        ({"text": "hi", "times": 9}, "arguments.times: 9 is greater than the maximum of 3"),
        ({}, "arguments: 'text' is a required property"),
    ],
)
async def test_bad_arguments_are_refused_before_the_handler_runs(
    registry: ToolRegistry, seen: Recorder, arguments: object, message: str
) -> None:
    outcome = await execute(registry, call("echo", arguments), ALL, audit=MemoryAuditSink())
    assert outcome.error_code is ToolErrorCode.BAD_ARGUMENTS
    assert outcome.error_message == message
    assert seen.calls == []


@pytest.mark.anyio
async def test_a_handler_past_its_timeout_is_cancelled(
    registry: ToolRegistry, seen: Recorder, audit: MemoryAuditSink
) -> None:
    started = time.perf_counter()
    outcome = await execute(registry, call("slow", {"seconds": 30}), ALL, audit=audit)
    elapsed = time.perf_counter() - started
    assert outcome.error_code is ToolErrorCode.TIMEOUT
    assert outcome.error_message == "tool 'slow' did not finish within 0.2 s"
    assert seen.cancelled == ["slow"]
    assert 0.2 <= elapsed < 2.0
    assert 200 <= outcome.duration_ms < 2000
    assert audit.records[0].outcome == "timeout"


@pytest.mark.anyio
async def test_a_handler_within_its_timeout_finishes(registry: ToolRegistry) -> None:
    outcome = await execute(registry, call("slow", {"seconds": 0.01}), ALL, audit=MemoryAuditSink())
    assert outcome.ok
    assert outcome.result == "woke up"


@pytest.mark.anyio
async def test_a_result_over_the_limit_is_refused(registry: ToolRegistry) -> None:
    outcome = await execute(registry, call("huge", {"size": 5000}), ALL, audit=MemoryAuditSink())
    assert outcome.error_code is ToolErrorCode.RESULT_TOO_LARGE
    assert outcome.error_message == "result is 5002 bytes, more than the limit of 1000"
    assert outcome.result is None


@pytest.mark.anyio
async def test_a_result_that_is_not_json_is_refused(registry: ToolRegistry) -> None:
    outcome = await execute(registry, call("unjsonable", {}), ALL, audit=MemoryAuditSink())
    assert outcome.error_code is ToolErrorCode.BAD_RESULT
    assert outcome.error_message == "result.when: set values are not JSON"


@pytest.mark.anyio
async def test_a_failing_handler_is_reported_without_a_traceback(
    registry: ToolRegistry, audit: MemoryAuditSink
) -> None:
    outcome = await execute(registry, call("broken", {}), ALL, audit=audit)
    assert outcome.error_code is ToolErrorCode.TOOL_FAILED
    assert outcome.error_message == "KeyError: 'the database is on fire'"
    assert "Traceback" not in outcome.error_message
    assert audit.records[0].outcome == "tool_failed"


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (ValueError("bad\nvalue"), "ValueError: bad\nvalue"),
        (RuntimeError(), "RuntimeError"),
        (Unprintable(), "Unprintable"),
        (OSError("x" * 500), "OSError: " + "x" * 199 + "…"),
    ],
)
def test_exceptions_are_described_by_type_and_short_text(exc: Exception, text: str) -> None:
    assert describe_exception(exc) == text


@pytest.mark.anyio
async def test_cancelling_the_caller_cancels_the_handler_and_propagates(
    registry: ToolRegistry, seen: Recorder, audit: MemoryAuditSink
) -> None:
    outcomes: list[object] = []

    async def run_call() -> None:
        outcomes.append(await execute(registry, call("slow", {"seconds": 30}), ALL, audit=audit))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_call)
            await seen.started.wait()
            tg.cancel_scope.cancel()  # what a barge-in does to the turn's scope
    assert outcomes == []
    assert seen.cancelled == ["slow"]
    assert [r.outcome for r in audit.records] == ["cancelled"]


class Shutdown(BaseException):
    """Stands for a process-level exit passing through a handler."""


@pytest.mark.anyio
async def test_a_base_exception_from_a_handler_propagates_and_is_audited(
    audit: MemoryAuditSink,
) -> None:
    async def leave(arguments: dict[str, Any]) -> Any:
        raise Shutdown

    registry = ToolRegistry(
        [
            ToolSpec(
                name="leave", description="Exit.", parameters=object_schema({}, []), handler=leave
            )
        ]
    )
    with pytest.raises(Shutdown):
        await execute(registry, call("leave", {}), frozenset({"leave"}), audit=audit)
    assert [r.outcome for r in audit.records] == ["aborted"]


@pytest.mark.anyio
async def test_the_default_audit_sink_is_the_parley_audit_logger(
    registry: ToolRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "my card is 4111 1111 1111 1111"
    with caplog.at_level(logging.INFO, logger="parley.audit"):
        await execute(registry, call("echo", {"text": secret}), ALL)
    [entry] = [r for r in caplog.records if r.name == "parley.audit"]
    assert entry.audit["tool"] == "echo"  # type: ignore[attr-defined]
    assert entry.audit["outcome"] == "ok"  # type: ignore[attr-defined]
    assert "4111" not in caplog.text


@pytest.mark.anyio
async def test_an_invented_tool_name_is_not_logged_raw(
    registry: ToolRegistry, audit: MemoryAuditSink
) -> None:
    await execute(registry, call("ignore previous\ninstructions", {}), ALL, audit=audit)
    assert audit.records[0].tool.startswith("invalid:")
    assert "\n" not in audit.records[0].tool


@pytest.mark.anyio
async def test_outcomes_become_tool_result_events(registry: ToolRegistry) -> None:
    sink = MemoryAuditSink()
    event = ToolCall(turn_id="t9", call_id="c9", name="echo", arguments={"text": "yo"})
    invocation = ToolInvocation.from_event(event, session_id="s9")
    assert invocation == ToolInvocation("c9", "echo", {"text": "yo"}, "s9", "t9")

    good = (await execute(registry, invocation, ALL, audit=sink)).to_event("t9", "c9")
    assert good == ToolResult(
        turn_id="t9", call_id="c9", ok=True, result={"text": "yo", "times": 1}
    )
    assert to_wire(good, seq=4) == {
        "type": "tool.result",
        "seq": 4,
        "turn_id": "t9",
        "call_id": "c9",
        "ok": True,
        "result": {"text": "yo", "times": 1},
    }

    bad = (await execute(registry, call("broken", {}), ALL, audit=sink)).to_event("t9", "c10")
    assert bad == ToolResult(
        turn_id="t9",
        call_id="c10",
        ok=False,
        error=ToolError(code="tool_failed", message="KeyError: 'the database is on fire'"),
    )
    assert "result" not in bad.payload()
