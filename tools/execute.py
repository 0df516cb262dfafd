"""Running one tool call: the async shell around the pure checks of tools/checks.py.

``execute`` never raises for a problem of the tool or the call: every such problem is
a ``ToolOutcome`` with an error code. Cancellation of the caller (``cancel``,
barge-in) is not a tool problem: it cancels the handler and propagates.
"""

from __future__ import annotations

import time
from collections.abc import Set
from dataclasses import dataclass
from typing import Any, cast

import anyio

from sessions.events import ToolCall
from tools.audit import AuditRecord, AuditSink, LoggingAuditSink, audited_name
from tools.checks import admit, arguments_digest, check_arguments, check_result
from tools.outcome import Rejection, ToolErrorCode, ToolOutcome, shorten
from tools.registry import ToolRegistry

_EXCEPTION_TEXT_CHARS = 200


@dataclass(frozen=True, slots=True)
class ToolInvocation:
    """One call the model asked for. ``arguments`` is whatever the model produced:
    it is checked here, not trusted."""

    call_id: str
    name: str
    arguments: object
    session_id: str = ""
    turn_id: str = ""

    @classmethod
    def from_event(cls, event: ToolCall, session_id: str) -> ToolInvocation:
        return cls(
            call_id=event.call_id,
            name=event.name,
            arguments=event.arguments,
            session_id=session_id,
            turn_id=event.turn_id,
        )


_default_audit = LoggingAuditSink()


async def execute(
    registry: ToolRegistry,
    call: ToolInvocation,
    allowed: Set[str],
    *,
    audit: AuditSink | None = None,
) -> ToolOutcome:
    """Check and run ``call`` if ``allowed`` holds its tool; record it in ``audit``
    (the ``parley.audit`` logger by default)."""
    sink = audit if audit is not None else _default_audit
    started = time.perf_counter()
    try:
        outcome = await _run(registry, call, allowed, started)
    except BaseException as exc:
        # Not a tool problem: the caller's scope was cancelled (or the process is
        # going down). Record it, then let it go on.
        cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
        _record(sink, call, "cancelled" if cancelled else "aborted", started)
        raise
    _record(sink, call, outcome.code, started)
    return outcome


async def _run(
    registry: ToolRegistry, call: ToolInvocation, allowed: Set[str], started: float
) -> ToolOutcome:
    verdict = admit(registry, call.name, allowed)
    if isinstance(verdict, Rejection):
        return ToolOutcome.failure(verdict, _elapsed_ms(started))
    spec = verdict
    rejection = check_arguments(spec, call.arguments)
    if rejection is not None:
        return ToolOutcome.failure(rejection, _elapsed_ms(started))

    raw: Any = None
    failure: Exception | None = None
    with anyio.move_on_after(spec.timeout_s) as scope:
        try:
            raw = await spec.handler(cast(dict[str, Any], call.arguments))
        except Exception as exc:  # the tool's bug or refusal, reported to the model
            failure = exc
    if scope.cancel_called:
        return ToolOutcome.failure(
            Rejection(
                ToolErrorCode.TIMEOUT,
                f"tool {spec.name!r} did not finish within {spec.timeout_s:g} s",
            ),
            _elapsed_ms(started),
        )
    if failure is not None:
        rejection = Rejection(ToolErrorCode.TOOL_FAILED, describe_exception(failure))
        return ToolOutcome.failure(rejection, _elapsed_ms(started))
    result, rejection = check_result(spec, raw)
    if rejection is not None:
        return ToolOutcome.failure(rejection, _elapsed_ms(started))
    return ToolOutcome.success(result, _elapsed_ms(started))


def describe_exception(exc: BaseException) -> str:
    """``Type: text`` for the model: no traceback, no chained causes, bounded."""
    try:
        text = str(exc)
    except Exception:  # a hostile __str__ must not break the report of its failure
        text = ""
    name = type(exc).__name__
    return f"{name}: {shorten(text, _EXCEPTION_TEXT_CHARS)}" if text else name


def _record(sink: AuditSink, call: ToolInvocation, outcome: str, started: float) -> None:
    digest, size = arguments_digest(call.arguments)
    sink.record(
        AuditRecord(
            session_id=call.session_id,
            turn_id=call.turn_id,
            call_id=call.call_id,
            tool=audited_name(call.name),
            arguments_sha256=digest,
            arguments_bytes=size,
            outcome=outcome,
            duration_ms=_elapsed_ms(started),
        )
    )


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
