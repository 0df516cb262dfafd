"""Prometheus metrics of the caption pipeline (served by the server's ``/metrics``).

Defined once at import, in the default registry. Latencies are measured from the
arrival (server clock) of the audio a caption covers to the caption's emission.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)

CAPTION_PARTIAL_LATENCY = Histogram(
    "parley_caption_partial_latency_seconds",
    "Arrival of the newest audio a partial covers → the partial is emitted.",
    buckets=_LATENCY_BUCKETS,
)
CAPTION_FINAL_LATENCY = Histogram(
    "parley_caption_final_latency_seconds",
    "Arrival of the audio at a final's last word end → the final is emitted.",
    buckets=_LATENCY_BUCKETS,
)
ASR_RTF = Histogram(
    "parley_asr_real_time_factor",
    "Decode compute time / decoded audio duration, per decode.",
    buckets=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0),
)
ASR_QUEUE_WAIT = Histogram(
    "parley_asr_queue_wait_seconds",
    "Time a decode waited for an ASR worker.",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
ASR_QUEUE_DEPTH = Gauge("parley_asr_queue_depth", "Decodes waiting for an ASR worker.")
ASR_LOAD_LEVEL = Gauge(
    "parley_asr_load_level",
    "ASR degradation level: 0 normal, 1 reduced partials, 2 finals only, 3 saturated.",
)
CAPTION_SESSIONS = Gauge("parley_caption_sessions", "Caption pipelines running.")
SESSIONS_BEHIND = Gauge(
    "parley_caption_sessions_behind_real_time",
    "Caption sessions holding more undecoded speech than their lag bound.",
)
SESSIONS_REFUSED = Counter(
    "parley_caption_sessions_refused_total", "Caption sessions refused as overloaded."
)
CAPTIONS_EMITTED = Counter("parley_captions_emitted_total", "Caption events emitted.", ["kind"])
