"""SpeedMeter and estimate_wait_ms: the wait a new request would see."""

from __future__ import annotations

import pytest

from pipelines.text.speed import SpeedMeter, Work, estimate_wait_ms


def meter() -> SpeedMeter:
    return SpeedMeter(prefill_tokens_per_s=1000.0, decode_tokens_per_s=50.0)


def test_an_idle_engine_has_no_wait() -> None:
    assert estimate_wait_ms(meter(), 1, [], []) == 0.0
    assert estimate_wait_ms(meter(), 2, [Work(0, 10)], []) == 0.0  # one instance free


def test_the_wait_is_the_running_job_plus_the_queue_ahead() -> None:
    # Running: 10 tokens to decode = 200 ms. Queued: 500 prompt tokens (500 ms)
    # and 5 tokens (100 ms).
    wait = estimate_wait_ms(meter(), 1, [Work(0, 10)], [Work(500, 5)])
    assert wait == pytest.approx(200 + 500 + 100)


def test_several_instances_share_the_queue() -> None:
    running = [Work(0, 10), Work(0, 50)]  # free at 200 ms and 1000 ms
    queued = [Work(0, 10), Work(0, 10)]  # both go to the first instance
    assert estimate_wait_ms(meter(), 2, running, queued) == pytest.approx(600)


def test_measurements_move_the_averages() -> None:
    m = meter()
    m.record(prefill_tokens=400, prefill_s=0.2, decode_tokens=20, decode_s=0.2)
    assert m.prefill_tokens_per_s == pytest.approx(0.8 * 1000 + 0.2 * 2000)
    assert m.decode_tokens_per_s == pytest.approx(0.8 * 50 + 0.2 * 100)
    assert m.samples == 1
    # Too few tokens to measure speed: only the answer length moves.
    before = (m.prefill_tokens_per_s, m.decode_tokens_per_s)
    m.record(prefill_tokens=3, prefill_s=0.001, decode_tokens=1, decode_s=0.0)
    assert (m.prefill_tokens_per_s, m.decode_tokens_per_s) == before


def test_expected_answer_length_is_capped_by_max_tokens() -> None:
    m = meter()
    assert m.expected_decode(8) == 8
    assert m.expected_decode(1000) == round(m.answer_tokens)
