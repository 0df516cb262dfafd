"""Prometheus metrics of the agent loop (served at ``GET /metrics``).

The histograms mirror ``turn.done.timings``; labels stay low-cardinality (engine
name, status, degradation level), never a session, tenant or turn id.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
_RATE_BUCKETS = (1.0, 5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 120.0, 200.0, 400.0)

TURN_QUEUE_SECONDS = Histogram(
    "parley_agent_queue_seconds",
    "Wait of an agent turn before its first engine request started (session + engine).",
    ["engine"],
    buckets=_LATENCY_BUCKETS,
)
TURN_TTFT_SECONDS = Histogram(
    "parley_agent_ttft_seconds",
    "From a turn's input to its first token event.",
    ["engine"],
    buckets=_LATENCY_BUCKETS,
)
TURN_TOTAL_SECONDS = Histogram(
    "parley_agent_turn_seconds",
    "From a turn's input to its turn.done.",
    ["engine", "status"],
    buckets=_LATENCY_BUCKETS,
)
TURN_TOKENS_PER_SECOND = Histogram(
    "parley_agent_tokens_per_second",
    "Decode rate of a turn's streamed answer.",
    ["engine"],
    buckets=_RATE_BUCKETS,
)
TURNS = Counter(
    "parley_agent_turns",
    "Agent turns by final status and reason.",
    ["status", "reason"],
)
DEGRADED_TURNS = Counter(
    "parley_agent_degraded_turns",
    "Agent turns started under a degraded plan (latency budget).",
    ["level"],
)
REJECTED_INPUTS = Counter(
    "parley_agent_rejected_inputs",
    "Text inputs refused because the session's turn queue was full.",
)
INVALID_DECISIONS = Counter(
    "parley_agent_invalid_decisions",
    "Tool decisions that were not valid JSON of the decision protocol.",
)


def observe_turn(engine: str, status: str, reason: str | None, timings: dict[str, float]) -> None:
    TURNS.labels(status=status, reason=reason or "").inc()
    TURN_TOTAL_SECONDS.labels(engine=engine, status=status).observe(timings["total_ms"] / 1000)
    if status in ("completed", "length"):
        # Cancelled and failed turns would skew the latency figures users care about.
        TURN_QUEUE_SECONDS.labels(engine=engine).observe(timings["queue_ms"] / 1000)
        TURN_TTFT_SECONDS.labels(engine=engine).observe(timings["ttft_ms"] / 1000)
        if timings["tokens_per_s"] > 0:
            TURN_TOKENS_PER_SECOND.labels(engine=engine).observe(timings["tokens_per_s"])
