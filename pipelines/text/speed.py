"""Measured engine speed, and the wait a new request would see: pure arithmetic.

``SpeedMeter`` keeps moving averages of prefill and decode speed and of how many
tokens answers really take (they usually stop well before ``max_tokens``).
``estimate_wait_ms`` plays the queue forward: each instance finishes its current
job, then takes queued jobs in service order; the new request starts when the
earliest instance frees up after everything ahead of it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

_ALPHA = 0.2  # weight of the newest measurement in the moving averages


@dataclass(frozen=True, slots=True)
class Work:
    """What is left of one job: prompt tokens still to prefill, tokens still to decode."""

    prefill_tokens: int
    decode_tokens: int


@dataclass(slots=True)
class SpeedMeter:
    # Starting guesses (2 threads on a small CPU, FINDINGS.md); replaced by measurements.
    prefill_tokens_per_s: float = 500.0
    decode_tokens_per_s: float = 50.0
    answer_tokens: float = 64.0
    samples: int = 0

    def record(
        self, prefill_tokens: int, prefill_s: float, decode_tokens: int, decode_s: float
    ) -> None:
        """One finished job: prefill of ``prefill_tokens`` then ``decode_tokens`` more."""
        if prefill_tokens >= 16 and prefill_s > 0:
            self.prefill_tokens_per_s = _mix(self.prefill_tokens_per_s, prefill_tokens / prefill_s)
        if decode_tokens >= 4 and decode_s > 0:
            self.decode_tokens_per_s = _mix(self.decode_tokens_per_s, decode_tokens / decode_s)
        self.answer_tokens = _mix(self.answer_tokens, float(decode_tokens + 1))
        self.samples += 1

    def job_ms(self, work: Work) -> float:
        return 1000.0 * (
            work.prefill_tokens / self.prefill_tokens_per_s
            + work.decode_tokens / self.decode_tokens_per_s
        )

    def expected_decode(self, max_tokens: int) -> int:
        return max(1, min(max_tokens, round(self.answer_tokens)))


def estimate_wait_ms(
    meter: SpeedMeter, instances: int, running: Iterable[Work], queued: Iterable[Work]
) -> float:
    """Milliseconds until a request submitted now would start its prefill."""
    free_at = [meter.job_ms(work) for work in running]
    free_at += [0.0] * max(0, max(1, instances) - len(free_at))
    heapq.heapify(free_at)
    for work in queued:
        start = heapq.heappop(free_at)
        heapq.heappush(free_at, start + meter.job_ms(work))
    return free_at[0]


def _mix(old: float, new: float) -> float:
    return (1 - _ALPHA) * old + _ALPHA * new
