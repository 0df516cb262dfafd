"""Prometheus metrics of the shared session store (docs/operations.md, "Metrics")."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge

REDIS_OPS = Counter("parley_redis_ops_total", "Redis commands sent", ["op"])
REDIS_ERRORS = Counter("parley_redis_errors_total", "Redis calls that failed", ["op"])
REDIS_UP = Gauge("parley_redis_up", "1 while this node reaches Redis")
REPLICATOR_LAG = Gauge(
    "parley_replicator_lag_events", "Durable events not yet in Redis, all owned sessions"
)
REPLICATOR_LAG_MAX = Gauge(
    "parley_replicator_lag_max_events", "Durable events not yet in Redis, worst session"
)
FLUSHED_EVENTS = Counter("parley_replicated_events_total", "Durable events written to Redis")
LEASE_RENEWALS = Counter("parley_lease_renewals_total", "Session leases renewed")
LEASE_TAKEOVERS = Counter(
    "parley_lease_takeovers_total", "Sessions taken over from another node", ["why"]
)
LEASE_LOST = Counter("parley_lease_lost_total", "Sessions whose lease another node took")
FORWARDED = Counter("parley_forwarded_inputs_total", "Client inputs forwarded to the owner")
MIRRORED = Counter("parley_mirrored_events_total", "Durable events served from Redis")


def bind_lag(lag: Callable[[], tuple[float, float]]) -> None:
    """Read the replicator lag from the live cluster at scrape time."""
    REPLICATOR_LAG.set_function(lambda: lag()[0])
    REPLICATOR_LAG_MAX.set_function(lambda: lag()[1])
