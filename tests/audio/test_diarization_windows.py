"""Planning the windows of caption spans: context, regions, hostile spans."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.audio.diarization_windows import WindowParams, WindowPlanner, clean

RATE = 16000


def tone(seconds: float, level: float = 0.1) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_a_long_span_is_tiled_with_full_windows() -> None:
    plan = WindowPlanner().plan(1.0, 5.0, tone(4.0))
    owned = [(w.owned_start, w.owned_end) for w in plan.windows]
    assert len(plan.windows) == 10 and owned[0][0] == 1.0 and owned[-1][1] == pytest.approx(5.0)
    assert all(abs((w.end - w.start) - 1.6) < 1e-6 for w in plan.windows)
    assert all(w.start >= 1.0 and w.end <= 5.0 + 1e-9 for w in plan.windows)
    assert all(w.voiced for w in plan.windows) and len(plan.to_embed()) == 10


def test_a_short_span_reaches_back_into_the_speech_before_it() -> None:
    planner = WindowPlanner()
    planner.plan(0.0, 2.0, tone(2.0))
    plan = planner.plan(2.1, 2.5, tone(0.4))  # 0.1 s later: the same speech region
    assert plan.continues and len(plan.windows) == 1
    w = plan.windows[0]
    assert (w.start, w.end) == pytest.approx((0.9, 2.5)) and len(w.audio) == round(1.6 * RATE)


def test_after_a_pause_a_short_span_stands_alone() -> None:
    planner = WindowPlanner()
    planner.plan(0.0, 2.0, tone(2.0))
    plan = planner.plan(4.0, 4.4, tone(0.4))
    assert not plan.continues and plan.windows == ()  # 0.4 s: too little to embed
    plan = planner.plan(4.4, 4.8, tone(0.4))
    assert plan.continues and [(w.start, w.end) for w in plan.windows] == [
        pytest.approx((4.0, 4.8))
    ]


def test_silence_is_planned_but_not_embedded() -> None:
    plan = WindowPlanner().plan(0.0, 2.0, np.zeros(2 * RATE, np.float32))
    assert plan.windows and not any(w.voiced for w in plan.windows) and plan.to_embed() == []


def test_a_replayed_or_overlapping_span_only_adds_its_new_part() -> None:
    planner = WindowPlanner()
    planner.plan(0.0, 2.0, tone(2.0))
    assert planner.plan(0.5, 1.5, tone(1.0)).windows == ()
    plan = planner.plan(1.0, 3.0, tone(2.0))
    assert plan.start == pytest.approx(2.0) and plan.windows[0].owned_start == pytest.approx(2.0)


def test_a_huge_span_gets_a_bounded_number_of_windows() -> None:
    plan = WindowPlanner(WindowParams(max_windows_per_span=16)).plan(0.0, 120.0, tone(120.0))
    assert len(plan.windows) == 16


def test_garbage_samples_are_cleaned_and_the_audio_length_wins() -> None:
    junk = np.array([np.nan, np.inf, -np.inf, 7.0, -7.0] * 3200, dtype=np.float32)
    x = clean(junk)
    assert np.isfinite(x).all() and x.max() <= 1.0 and x.min() >= -1.0
    plan = WindowPlanner().plan(0.0, 99.0, junk)  # the claimed end is wrong
    assert plan.end == pytest.approx(1.0)
    assert WindowPlanner().plan(3.0, 3.0, np.zeros(0, np.float32)).windows == ()


def test_bad_spans_and_params_are_refused() -> None:
    with pytest.raises(ValueError):
        WindowPlanner().plan(float("nan"), 1.0, tone(1.0))
    with pytest.raises(ValueError):
        WindowPlanner().plan(-1.0, 1.0, tone(1.0))
    with pytest.raises(ValueError):
        WindowParams(hop_s=2.0, window_s=1.0)
    with pytest.raises(ValueError):
        WindowParams(max_windows_per_span=0)
