"""Per-session limits and timings; ``welcome.limits`` shows the client a part of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int = 1 << 20
    max_text_chars: int = 8000
    replay_events: int = 4096
    max_audio_queue_s: float = 10.0
    heartbeat_s: float = 15.0
    resume_ttl_s: float = 120.0
    hello_timeout_s: float = 10.0
    # Consecutive undecodable or invalid frames before 4003 (the spec asks ≥ 3).
    max_bad_frames: int = 3
    # Durable events queued for one connection before it is a slow consumer (4008).
    # Below replay_events, so the ring never loses what a slow client has not seen.
    max_pending_events: int = 1024
    # Best-effort messages (pongs, errors, partials) queued for one connection.
    max_pending_control: int = 256
    messages_per_s: float = 100.0
    message_burst: float = 400.0
    # Audio faster than this many times real time, sustained, is abuse (4029).
    audio_rate_factor: float = 50.0
    audio_burst_s: float = 60.0
    resume_token_ttl_s: float = 24 * 3600.0

    def __post_init__(self) -> None:
        if self.max_bad_frames < 3:
            raise ValueError("max_bad_frames must be at least 3")
        if not 0 < self.max_pending_events < self.replay_events:
            raise ValueError("max_pending_events must be below replay_events")

    def to_wire(self) -> dict[str, Any]:
        return {
            "max_frame_bytes": self.max_frame_bytes,
            "max_text_chars": self.max_text_chars,
            "replay_events": self.replay_events,
            "max_audio_queue_s": self.max_audio_queue_s,
        }
