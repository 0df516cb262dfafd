"""Prometheus metrics of the session server (``GET /metrics``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

FRAMES = Counter("parley_frames_total", "WebSocket frames", ["direction"])
BYTES = Counter("parley_bytes_total", "WebSocket payload bytes", ["direction"])
CONNECTIONS = Counter("parley_connections_total", "WebSocket connections accepted")
SESSIONS_CREATED = Counter("parley_sessions_created_total", "Sessions created")
SESSIONS_ENDED = Counter("parley_sessions_ended_total", "Sessions ended", ["reason"])
RESUMES = Counter("parley_resumes_total", "Resume attempts", ["outcome"])
REPLAYED = Counter("parley_replayed_events_total", "Durable events replayed on resume")
CLOSES = Counter("parley_closes_total", "Connections closed by the server", ["code"])
SEND_SECONDS = Histogram(
    "parley_send_seconds",
    "Time one frame waited for the socket to take it",
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
)


class HubCollector(Collector):
    """Gauges read from the live hub at scrape time (never stale, never leaked)."""

    def __init__(self, snapshot: Callable[[], dict[str, float]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        values = self._snapshot()
        sessions = GaugeMetricFamily("parley_sessions", "Live sessions", labels=["state"])
        for state in ("attached", "detached"):
            sessions.add_metric([state], values.get(f"sessions_{state}", 0.0))
        yield sessions
        yield GaugeMetricFamily(
            "parley_outbound_queue_events",
            "Events queued for clients, all connections",
            value=values.get("outbound_events", 0.0),
        )
        yield GaugeMetricFamily(
            "parley_outbound_queue_max_events",
            "Largest outbound queue of one connection",
            value=values.get("outbound_max", 0.0),
        )
        yield GaugeMetricFamily(
            "parley_input_queue_audio_seconds",
            "Audio waiting for pipelines, all sessions",
            value=values.get("audio_queued_s", 0.0),
        )
        yield GaugeMetricFamily(
            "parley_replay_buffer_events",
            "Durable events held for replay, all sessions",
            value=values.get("replay_events", 0.0),
        )
        yield GaugeMetricFamily(
            "parley_ready", "1 when the node admits sessions", value=values.get("ready", 0.0)
        )


_installed: list[HubCollector] = []


def install_collector(snapshot: Callable[[], dict[str, float]]) -> None:
    """Register the hub gauges; a newer hub (tests start several) replaces the old."""
    for old in _installed:
        REGISTRY.unregister(old)
    _installed.clear()
    collector = HubCollector(snapshot)
    REGISTRY.register(collector)
    _installed.append(collector)
