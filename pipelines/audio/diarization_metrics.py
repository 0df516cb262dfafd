"""Prometheus metrics of the diarization stage (served by the server's ``/metrics``).

Defined once at import, in the default registry.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EMBED_BATCH = Histogram(
    "parley_speaker_embedding_batch_windows",
    "Windows embedded per batch of the shared speaker encoder (all sessions together).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
EMBED_SECONDS = Histogram(
    "parley_speaker_embedding_batch_seconds",
    "Compute time of one speaker-embedding batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
EMBED_WAIT = Histogram(
    "parley_speaker_embedding_wait_seconds",
    "Time a caption's windows waited for the speaker encoder.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
)
DECISION_SECONDS = Histogram(
    "parley_diarization_decision_seconds",
    "A final caption's span handed over → its speaker known (embedding and clustering).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
)
SPEAKER_MERGES = Counter(
    "parley_speaker_merges_total", "speaker.merged events: two labels found to be one voice."
)
