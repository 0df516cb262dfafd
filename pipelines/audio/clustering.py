"""Speaker clustering of embedding windows: who spoke which window, up to relabeling.

Pure and synchronous. ``partition`` is re-run over every window a session has kept
each time a caption needs a label: one decision over all the evidence so far does
better than assigning each new window for good against running centroids, because
same-speaker and different-speaker similarities of single windows overlap on real
speech (docs/diarization.md has the figures). Stable names across re-runs are
``speaker_labels.py``'s business.

1. Agglomerative clustering with average linkage on cosine similarity, stopped where
   the two closest groups are less similar than ``threshold`` on average; cut at
   ``max_speakers`` groups when the threshold leaves more.
2. A group with less than ``min_cluster_s`` of speech is not a speaker yet (a stray
   window, a cough, a window straddling a turn change): its windows join the most
   similar real group.
3. ``refine_passes`` rounds of moving each window to its most similar group centroid
   (weighted by speech duration), which sharpens turn boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]

UNLABELED = -1  # a window without a usable embedding (silence, garbage)


@dataclass(frozen=True, slots=True)
class ClusterParams:
    threshold: float = 0.71  # mean cosine similarity at which two groups are one speaker
    max_speakers: int = 8
    min_cluster_s: float = 1.2  # speech a group needs before it counts as a speaker
    refine_passes: int = 1

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be a cosine similarity in [-1, 1]")
        if self.max_speakers < 1:
            raise ValueError("max_speakers must be at least 1")
        if self.min_cluster_s < 0 or self.refine_passes < 0:
            raise ValueError("min_cluster_s and refine_passes must not be negative")


def usable(embeddings: Matrix) -> npt.NDArray[np.bool_]:
    """Rows that can be clustered: finite, and not the zero vector."""
    finite = np.asarray(np.isfinite(embeddings).all(axis=1), dtype=bool)
    norms = np.linalg.norm(np.where(finite[:, None], embeddings, 0.0), axis=1)
    out: npt.NDArray[np.bool_] = finite & (norms > 1e-6)
    return out


def _unit(x: Matrix) -> Matrix:
    out: Matrix = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def _average_linkage(x: Matrix, threshold: float, max_groups: int) -> Labels:
    """Groups of unit rows ``x``: average linkage merges the two groups with the highest
    mean pairwise similarity while it is at least ``threshold``, or while there are
    more than ``max_groups`` groups."""
    if len(x) == 1:
        return np.zeros(1, dtype=np.int64)
    from scipy.cluster.hierarchy import fcluster, linkage

    # Cosine distance of unit rows, clipped: rounding can make it slightly negative.
    dist = np.clip(1.0 - (x @ x.T).astype(np.float64), 0.0, 2.0)
    condensed = dist[np.triu_indices(len(x), k=1)]
    tree = linkage(condensed, method="average")
    labels = fcluster(tree, t=1.0 - threshold, criterion="distance")
    if labels.max() > max_groups:
        labels = fcluster(tree, t=max_groups, criterion="maxclust")
    out: Labels = (labels - 1).astype(np.int64)
    return out


def _centroids(x: Matrix, labels: Labels, weights: npt.NDArray[np.float64], k: int) -> Matrix:
    c = np.zeros((k, x.shape[1]), dtype=np.float64)
    np.add.at(c, labels, x * weights[:, None])
    norms = np.linalg.norm(c, axis=1, keepdims=True)
    out: Matrix = (c / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def _in_order(labels: Labels) -> Labels:
    """Labels renumbered 0, 1, … in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    out: Labels = rank[inverse].astype(np.int64)
    return out


def partition(embeddings: Matrix, weights: npt.ArrayLike, params: ClusterParams) -> Labels:
    """A group number per row of ``embeddings`` (0, 1, … in order of first appearance;
    ``UNLABELED`` for unusable rows). ``weights``: seconds of speech each row stands
    for."""
    emb = np.asarray(embeddings, dtype=np.float32)
    w = np.asarray(weights, dtype=np.float64)
    if emb.ndim != 2 or w.shape != (len(emb),):
        raise ValueError("embeddings must be (n, dim) with one weight per row")
    out = np.full(len(emb), UNLABELED, dtype=np.int64)
    ok = usable(emb)
    if not ok.any():
        return out
    x = _unit(emb[ok])
    wx = np.clip(np.nan_to_num(w[ok], nan=0.0), 1e-3, None)
    labels = _average_linkage(x, params.threshold, params.max_speakers)
    k = int(labels.max()) + 1
    mass = np.bincount(labels, weights=wx, minlength=k)
    real = mass >= params.min_cluster_s
    if not real.any():
        real[int(np.argmax(mass))] = True
    keep = np.flatnonzero(real)
    for _ in range(1 + params.refine_passes):
        centroids = _centroids(x, labels, wx, k)[keep]
        labels = keep[np.argmax(x @ centroids.T, axis=1)]
    out[ok] = _in_order(labels)
    return out
