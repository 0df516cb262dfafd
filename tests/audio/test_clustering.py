"""Clustering of embedding windows: groups, bounds, stray windows, garbage rows."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.audio.clustering import UNLABELED, ClusterParams, partition, usable


def voices(*counts: int, spread: float = 0.15, seed: int = 0) -> np.ndarray:
    """Rows around one random direction per voice (``counts[i]`` rows for voice i)."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in counts:
        centre = rng.normal(size=32)
        centre /= np.linalg.norm(centre)
        for _ in range(n):
            v = centre + spread * rng.normal(size=32) / np.sqrt(32)
            rows.append(v / np.linalg.norm(v))
    return np.asarray(rows, dtype=np.float32)


def test_two_voices_make_two_groups_numbered_in_order_of_appearance() -> None:
    x = voices(6, 5)
    labels = partition(x, np.full(len(x), 0.4), ClusterParams(min_cluster_s=1.0))
    assert labels.tolist() == [0] * 6 + [1] * 5


def test_one_voice_stays_one_group() -> None:
    x = voices(12)
    assert set(partition(x, np.full(12, 0.4), ClusterParams()).tolist()) == {0}


def test_more_voices_than_the_bound_are_cut_to_the_bound() -> None:
    x = voices(5, 5, 5, 5, spread=0.05)
    labels = partition(x, np.full(len(x), 1.0), ClusterParams(max_speakers=2))
    assert set(labels.tolist()) == {0, 1}
    assert len(set(partition(x, np.full(len(x), 1.0), ClusterParams()).tolist())) == 4


def test_a_stray_window_joins_the_closest_real_group() -> None:
    x = voices(8, 1, seed=3)  # one window of a "voice" heard for 0.4 s
    labels = partition(x, np.full(len(x), 0.4), ClusterParams(min_cluster_s=1.2))
    assert labels.tolist() == [0] * 9


def test_with_no_group_large_enough_the_largest_still_counts() -> None:
    x = voices(2, 1, seed=5)
    labels = partition(x, np.full(3, 0.1), ClusterParams(min_cluster_s=5.0))
    assert labels.tolist() == [0, 0, 0]


def test_unusable_rows_are_left_unlabeled() -> None:
    x = voices(4)
    x[1] = 0.0
    x[2, 3] = np.nan
    labels = partition(x, np.ones(4), ClusterParams())
    assert labels.tolist() == [0, UNLABELED, UNLABELED, 0]
    assert usable(x).tolist() == [True, False, False, True]


def test_nothing_usable_and_nothing_at_all() -> None:
    assert (
        partition(np.zeros((3, 8), np.float32), np.ones(3), ClusterParams()).tolist()
        == [UNLABELED] * 3
    )
    assert partition(np.zeros((0, 8), np.float32), np.ones(0), ClusterParams()).tolist() == []
    assert partition(voices(1), np.ones(1), ClusterParams()).tolist() == [0]


def test_bad_shapes_and_params_are_refused() -> None:
    with pytest.raises(ValueError, match="one weight per row"):
        partition(voices(3), np.ones(2), ClusterParams())
    with pytest.raises(ValueError, match="one weight per row"):
        partition(np.zeros(5, np.float32), np.ones(5), ClusterParams())
    for bad in ({"threshold": 1.5}, {"max_speakers": 0}, {"min_cluster_s": -1.0}):
        with pytest.raises(ValueError):
            ClusterParams(**bad)
