"""The turn queue of a running agent: one turn at a time, each in its own cancel scope
(docs/agent.md, "Turns, queueing and cancellation").

``submit`` queues a turn (bounded; beyond the bound a non-fatal ``rate_limited``
error), ``cancel`` cancels the running one. A turn always ends with exactly one
``turn.done``, emitted synchronously in a ``finally``, so even a turn cut short by the
session's own scope is closed; every other event of the turn passes through a guard
that drops anything after it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from pipelines.text.context import ContextTooSmall
from pipelines.text.engine import EngineError, EngineOverloaded
from pipelines.text.latency import Degradation, TurnClock, plan_turn
from pipelines.text.metrics import DEGRADED_TURNS, REJECTED_INPUTS, observe_turn
from pipelines.text.turn import Admission, TurnAction, TurnPhase, admit
from pipelines.text.turn_runner import TurnRun, TurnSetup, system_text
from sessions.events import ErrorEvent, ServerEvent, TurnDone, TurnStarted, TurnStatus
from sessions.events import Usage as TurnUsage
from sessions.pipeline import EventSink

if TYPE_CHECKING:
    from pipelines.text.agent import AgentPipeline, TurnRequest

log = logging.getLogger("parley.agent")


@dataclass(slots=True)
class _Running:
    turn_id: str
    scope: anyio.CancelScope
    reason: str | None = None  # why it was cancelled
    run: TurnRun | None = None
    done: bool = False


class AgentTurns:
    """The turn queue of one running agent. ``submit`` and ``cancel`` never block."""

    def __init__(self, agent: AgentPipeline, sink: EventSink) -> None:
        self._agent = agent
        self._sink = sink
        self._queue: deque[tuple[str, TurnRequest]] = deque()
        self._running: _Running | None = None
        self._closed = False
        self._wakeup = anyio.Event()

    @property
    def current_turn_id(self) -> str | None:
        return self._running.turn_id if self._running is not None else None

    def submit(self, request: TurnRequest) -> str | None:
        """Queue a turn; its id, or None when refused (an ``error`` says why)."""
        verdict = admit(
            self._running is not None, len(self._queue), self._agent.settings.max_queued_turns
        )
        if self._closed or verdict is Admission.REJECT:
            REJECTED_INPUTS.inc()
            self._sink.emit(
                ErrorEvent(
                    "rate_limited",
                    f"a turn is running and {len(self._queue)} are waiting: "
                    f"input {request.input_id or '(no id)'} was not accepted",
                    session_state=True,
                )
            )
            return None
        turn_id = "t_" + secrets.token_hex(8)
        self._queue.append((turn_id, request))
        self._wakeup.set()
        return turn_id

    def cancel(self, turn_id: str | None = None, *, reason: str = "client") -> bool:
        """Cancel the running turn (when ``turn_id`` is None or names it). A barge-in
        waits for a running tool that must not be cut (``cancel_on_barge_in=False``)."""
        running = self._running
        if running is None or running.done or (turn_id is not None and turn_id != running.turn_id):
            return False  # finished, unknown or not started: a late cancel is harmless
        if running.reason is None:
            running.reason = reason
        run = running.run
        if reason == "barge_in" and run is not None and run.protected_tool:
            run.deferred_cancel = running.scope.cancel
        else:
            running.scope.cancel()
        return True

    def close(self) -> None:
        self._closed = True
        self._queue.clear()
        self.cancel(reason="session_closed")
        self._wakeup.set()

    async def work(self) -> None:
        while True:
            while not self._queue:
                if self._closed:
                    return
                self._wakeup = anyio.Event()
                await self._wakeup.wait()
            turn_id, request = self._queue.popleft()
            await self._turn(turn_id, request)

    async def _turn(self, turn_id: str, request: TurnRequest) -> None:
        agent = self._agent
        clock = TurnClock(received_at=request.received_at, started_at=agent.clock())
        running = self._running = _Running(turn_id, anyio.CancelScope())
        self._sink.emit(TurnStarted(turn_id, request.input, request.input_id))
        # What the client sees if the session's own scope cancels this task.
        outcome: tuple[TurnStatus, str | None] = ("cancelled", "session_closed")
        level = Degradation.NONE
        try:
            level, outcome = await self._drive(running, request, clock)
        except Exception:
            log.exception("agent turn failed", extra={"turn_id": turn_id})
            outcome = ("failed", "internal")
        finally:
            self._finish(running, request, clock, outcome, level)

    async def _drive(
        self, running: _Running, request: TurnRequest, clock: TurnClock
    ) -> tuple[Degradation, tuple[TurnStatus, str | None]]:
        agent, settings = self._agent, self._agent.settings
        budget = agent.tenant.latency_budget(agent.config)
        fallback_wait = agent.fallback.estimated_wait_ms() if agent.fallback else None
        plan = plan_turn(
            budget,
            agent.engine.estimated_wait_ms(),
            fallback_wait,
            limits=settings.limits(),
            policy=settings.latency,
            min_context_tokens=self._min_context(),
        )
        if plan.level is not Degradation.NONE:
            DEGRADED_TURNS.labels(level=plan.level).inc()
        if plan.limits is None:
            return plan.level, self._overloaded(budget)
        engine = agent.fallback if plan.use_fallback and agent.fallback else agent.engine
        setup = TurnSetup(
            session_id=agent.session_id,
            turn_id=running.turn_id,
            engine=engine,
            registry=agent.registry,
            allowed=agent.allowed_tools(),
            system_prompt=settings.system_prompt,
            limits=plan.limits,
            tool_choice=settings.tool_choice,
            temperature=settings.temperature,
            audit=agent.audit,
        )
        run = running.run = TurnRun(setup, clock, agent.clock, self._emitter(running))
        outcome: tuple[TurnStatus, str | None] | None = None
        try:
            with running.scope, anyio.fail_after(settings.turn_timeout_s):
                outcome = await run.execute(agent.conversation.exchanges, request.text)
        except TimeoutError:
            return plan.level, ("failed", "timeout")
        except ContextTooSmall:
            # The offered tools' descriptions outgrew context_tokens: a setting to fix.
            log.warning("context budget too small", extra={"turn_id": running.turn_id})
            return plan.level, ("failed", "context_too_small")
        except EngineOverloaded:
            return plan.level, self._overloaded(budget)
        except EngineError as exc:
            log.warning(
                "engine error: %s", type(exc).__name__, extra={"turn_id": run.setup.turn_id}
            )
            return plan.level, ("failed", "engine_error")
        if outcome is None or running.scope.cancelled_caught:
            return plan.level, ("cancelled", running.reason or "client")
        return plan.level, outcome

    def _min_context(self) -> int:
        agent = self._agent
        system = system_text(
            agent.settings.system_prompt, agent.registry.offered(agent.allowed_tools())
        )
        return agent.engine.count_tokens(system) + 64

    def _overloaded(self, budget_ms: int) -> tuple[TurnStatus, str]:
        self._sink.emit(
            ErrorEvent(
                "overloaded",
                f"the first token cannot come within the {budget_ms} ms latency budget",
                session_state=True,
            )
        )
        return ("failed", "overloaded")

    def _emitter(self, running: _Running) -> Callable[[ServerEvent], None]:
        def emit(event: ServerEvent) -> None:
            if running.done:  # the state table makes this unreachable; keep the promise
                log.error("event after turn.done dropped", extra={"turn_id": running.turn_id})
                return
            self._sink.emit(event)

        return emit

    def _finish(
        self,
        running: _Running,
        request: TurnRequest,
        clock: TurnClock,
        outcome: tuple[TurnStatus, str | None],
        level: Degradation,
    ) -> None:
        agent = self._agent
        status, reason = outcome
        clock.done_at = agent.clock()
        run = running.run
        usage = TurnUsage(run.input_tokens, run.output_tokens) if run else TurnUsage()
        timings = clock.timings()
        if run is not None and run.state.phase is not TurnPhase.DONE:
            run.state = run.state.apply(
                TurnAction.CANCEL if status == "cancelled" else TurnAction.FAIL
            )
        running.done = True
        self._running = None
        self._sink.emit(TurnDone(running.turn_id, status, reason, usage, timings))
        if run is not None and status in ("completed", "length", "cancelled"):
            agent.conversation.record(run.exchange(), agent.engine.count_tokens)
        engine = run.setup.engine.name if run else agent.engine.name
        observe_turn(engine, status, reason, timings)
        answer = "".join(run.answer) if run else ""
        fields = {
            "session_id": agent.session_id,
            "turn_id": running.turn_id,
            "input": request.input,
            "status": status,
            "reason": reason,
            "level": str(level),
            "engine": engine,
            "tool_rounds": run.state.tool_rounds if run else 0,
            **fingerprint("input", request.text),
            **fingerprint("output", answer),
            **usage.to_wire(),
            **{k: round(v, 1) for k, v in timings.items()},
        }
        log.info("turn_done %s", json.dumps(fields, sort_keys=True), extra={"agent": fields})


def fingerprint(prefix: str, text: str) -> dict[str, object]:
    """What logs keep of a prompt or an answer: its sha256 and length, never the text."""
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    return {f"{prefix}_sha256": digest, f"{prefix}_chars": len(text)}
