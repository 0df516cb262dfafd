"""The latency budget: the degradation order, and the figures of turn.done.timings."""

from __future__ import annotations

import pytest

from pipelines.text.latency import (
    Degradation,
    LatencyPolicy,
    TurnClock,
    TurnLimits,
    plan_turn,
)

LIMITS = TurnLimits(max_tokens=256, decision_max_tokens=96, context_tokens=2000, tool_rounds=3)
POLICY = LatencyPolicy(lean_fraction=0.5, lean_max_tokens=64, lean_context_fraction=0.5)


def test_an_idle_engine_gets_the_full_limits() -> None:
    plan = plan_turn(1000, 0.0, None, limits=LIMITS, policy=POLICY)
    assert plan.level is Degradation.NONE
    assert plan.limits == LIMITS
    assert not plan.use_fallback


def test_a_busy_engine_within_budget_gets_lean_limits() -> None:
    plan = plan_turn(1000, 700.0, None, limits=LIMITS, policy=POLICY)
    assert plan.level is Degradation.LEAN
    assert not plan.use_fallback
    assert plan.limits == TurnLimits(
        max_tokens=64, decision_max_tokens=96, context_tokens=1000, tool_rounds=1
    )


def test_over_budget_goes_to_the_fallback_when_it_fits() -> None:
    plan = plan_turn(1000, 1500.0, 200.0, limits=LIMITS, policy=POLICY)
    assert plan.level is Degradation.FALLBACK
    assert plan.use_fallback
    assert plan.limits is not None
    assert plan.limits.max_tokens == 64


@pytest.mark.parametrize("fallback_wait", [None, 1500.0])
def test_nothing_fits_is_overloaded(fallback_wait: float | None) -> None:
    plan = plan_turn(1000, 1500.0, fallback_wait, limits=LIMITS, policy=POLICY)
    assert plan.level is Degradation.OVERLOADED
    assert plan.limits is None


def test_the_order_is_monotonic_in_the_wait() -> None:
    order = list(Degradation)
    levels = [
        plan_turn(1000, float(wait), None, limits=LIMITS, policy=POLICY).level
        for wait in range(0, 3000, 50)
    ]
    ranks = [order.index(level) for level in levels]
    assert ranks == sorted(ranks)
    assert set(levels) == {Degradation.NONE, Degradation.LEAN, Degradation.OVERLOADED}


def test_lean_never_cuts_the_context_below_what_the_system_prompt_needs() -> None:
    plan = plan_turn(1000, 800.0, None, limits=LIMITS, policy=POLICY, min_context_tokens=1500)
    assert plan.limits is not None
    assert plan.limits.context_tokens == 1500
    small = TurnLimits(max_tokens=32, decision_max_tokens=96, context_tokens=400, tool_rounds=0)
    plan = plan_turn(1000, 800.0, None, limits=small, policy=POLICY, min_context_tokens=1500)
    assert plan.limits == small  # lean never raises a limit


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lean_fraction": 0.0},
        {"lean_fraction": 1.5},
        {"lean_context_fraction": 0.0},
        {"lean_max_tokens": 0},
        {"lean_tool_rounds": -1},
    ],
)
def test_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LatencyPolicy(**kwargs)  # type: ignore[arg-type]


def test_timings_of_a_completed_turn() -> None:
    clock = TurnClock(received_at=10.0, started_at=10.2, engine_queue_ms=30.0)
    clock.first_token_at = 10.5
    clock.done_at = 11.5
    clock.answer_tokens = 21
    clock.answer_decode_s = 0.5
    assert clock.timings() == pytest.approx(
        {"queue_ms": 230.0, "ttft_ms": 500.0, "total_ms": 1500.0, "tokens_per_s": 40.0}
    )


def test_timings_without_tokens_report_the_total_as_ttft() -> None:
    clock = TurnClock(received_at=1.0, started_at=1.0)
    clock.done_at = 1.25
    timings = clock.timings()
    assert timings["ttft_ms"] == pytest.approx(250.0)
    assert timings["tokens_per_s"] == 0.0


def test_timings_never_go_negative_with_a_skewed_arrival_time() -> None:
    clock = TurnClock(received_at=5.0, started_at=4.0)
    clock.first_token_at = 4.5
    clock.done_at = 4.9
    assert all(value >= 0 for value in clock.timings().values())
