"""The latency budget of a turn: what to do when the first token cannot come in time,
and the figures reported in ``turn.done.timings`` (docs/agent.md, "Latency budget").

The budget is ``latency_budget_ms`` (``TenantPolicy.latency_budget``): the time the
client may wait for the first token. Before a turn starts, the engine's estimated
wait is compared with it, and the turn degrades in this order:

1. ``none``: the wait is under ``lean_fraction`` of the budget: full limits.
2. ``lean``: the wait fits the budget but leaves little for prefill and the tool
   decision: smaller ``max_tokens``, a smaller context (less to prefill), at most
   one tool round.
3. ``fallback``: the primary engine's wait is over the budget; a configured fallback
   engine whose wait fits takes the turn, with lean limits.
4. ``overloaded``: nothing fits: the turn ends ``failed`` with reason
   ``overloaded``, after an ``error`` event with code ``overloaded``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Degradation(StrEnum):
    NONE = "none"
    LEAN = "lean"
    FALLBACK = "fallback"
    OVERLOADED = "overloaded"


@dataclass(frozen=True, slots=True)
class TurnLimits:
    max_tokens: int  # the streamed answer
    decision_max_tokens: int  # each constrained tool decision
    context_tokens: int  # the prompt budget of every request
    tool_rounds: int


@dataclass(frozen=True, slots=True)
class LatencyPolicy:
    lean_fraction: float = 0.5
    lean_max_tokens: int = 64
    lean_context_fraction: float = 0.5
    lean_tool_rounds: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.lean_fraction <= 1.0:
            raise ValueError("lean_fraction must be in (0, 1]")
        if not 0.0 < self.lean_context_fraction <= 1.0:
            raise ValueError("lean_context_fraction must be in (0, 1]")
        if self.lean_max_tokens < 1 or self.lean_tool_rounds < 0:
            raise ValueError("lean limits must be positive")

    def lean(self, limits: TurnLimits, min_context_tokens: int) -> TurnLimits:
        """``limits`` cut down, but never below what the system prompt needs."""
        context = max(int(limits.context_tokens * self.lean_context_fraction), min_context_tokens)
        return TurnLimits(
            max_tokens=min(limits.max_tokens, self.lean_max_tokens),
            decision_max_tokens=limits.decision_max_tokens,
            context_tokens=min(context, limits.context_tokens),
            tool_rounds=min(limits.tool_rounds, self.lean_tool_rounds),
        )


@dataclass(frozen=True, slots=True)
class TurnPlan:
    level: Degradation
    use_fallback: bool
    limits: TurnLimits | None  # None when overloaded


def plan_turn(
    budget_ms: float,
    primary_wait_ms: float,
    fallback_wait_ms: float | None,
    *,
    limits: TurnLimits,
    policy: LatencyPolicy,
    min_context_tokens: int = 0,
) -> TurnPlan:
    """How to run a turn whose first token is due within ``budget_ms``.

    ``fallback_wait_ms`` is None when no fallback engine is configured."""
    if primary_wait_ms <= budget_ms * policy.lean_fraction:
        return TurnPlan(Degradation.NONE, use_fallback=False, limits=limits)
    lean = policy.lean(limits, min_context_tokens)
    if primary_wait_ms <= budget_ms:
        return TurnPlan(Degradation.LEAN, use_fallback=False, limits=lean)
    if fallback_wait_ms is not None and fallback_wait_ms <= budget_ms:
        return TurnPlan(Degradation.FALLBACK, use_fallback=True, limits=lean)
    return TurnPlan(Degradation.OVERLOADED, use_fallback=False, limits=None)


@dataclass(slots=True)
class TurnClock:
    """Marks on the server's monotonic clock, in seconds. ``received_at`` is when the
    ``text`` arrived; the rest are set as the turn goes."""

    received_at: float
    started_at: float | None = None  # the turn left the session's queue
    engine_queue_ms: float = 0.0  # the first request's wait inside the engine
    first_token_at: float | None = None
    done_at: float | None = None
    answer_tokens: int = 0
    answer_decode_s: float = 0.0  # from the answer's first token to its last

    def timings(self) -> dict[str, float]:
        """``turn.done.timings``: queue_ms (session queue + engine queue), ttft_ms
        (arrival to the first token event; the total when no token came), total_ms,
        tokens_per_s (answer decode rate, 0 when under two tokens)."""
        done = self.done_at if self.done_at is not None else self.received_at
        started = self.started_at if self.started_at is not None else done
        first = self.first_token_at if self.first_token_at is not None else done
        rate = 0.0
        if self.answer_tokens > 1 and self.answer_decode_s > 0:
            rate = (self.answer_tokens - 1) / self.answer_decode_s
        return {
            "queue_ms": max(0.0, (started - self.received_at) * 1000 + self.engine_queue_ms),
            "ttft_ms": max(0.0, (first - self.received_at) * 1000),
            "total_ms": max(0.0, (done - self.received_at) * 1000),
            "tokens_per_s": rate,
        }
