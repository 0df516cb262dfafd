"""Token buckets for inbound limits (docs/protocol.md, "Backpressure": 4029)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up. ``now`` is passed in."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, amount: float, now: float) -> bool:
        """Spend ``amount`` if the bucket holds it; return whether it did."""
        if self.tokens < 0:
            self.tokens = self.burst
            self.updated = now
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if amount > self.tokens:
            return False
        self.tokens -= amount
        return True
