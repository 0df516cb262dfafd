"""Stable speaker names across re-clusterings, and durable merges.

Pure and synchronous. ``clustering.partition`` numbers its groups afresh on every
run; a session's captions need names that never change meaning. Each window keeps
the identity it was labeled with when its caption was decided (its *origin*), and a
new partition is mapped onto those identities:

- the one-to-one assignment of groups to identities that keeps the most speech under
  its old identity (Hungarian assignment on the overlap matrix);
- an identity left without a group whose speech now lies mostly (``merge_share``) in
  one group, run after run (``merge_patience``), is one speaker with that group's
  identity: a merge, reported once and never undone (docs/diarization.md);
- a group with no identity (a new voice, or a split) gets a new one.

Identities are plain ints; public names ``S1``, ``S2``, … are handed out in order of
first appearance in a decision, so a provisional identity that never shows up in a
caption never takes a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

NO_IDENTITY = -1


@dataclass(frozen=True, slots=True)
class LabelParams:
    merge_share: float = 0.6  # share of an orphaned identity's speech inside one group
    merge_patience: int = 2  # consecutive runs that must agree before a merge is made

    def __post_init__(self) -> None:
        if not 0.5 <= self.merge_share <= 1.0:
            raise ValueError("merge_share must be in [0.5, 1]")
        if self.merge_patience < 1:
            raise ValueError("merge_patience must be at least 1")


@dataclass(frozen=True, slots=True)
class Merge:
    merged: str
    into: str


@dataclass(slots=True)
class SpeakerBook:
    params: LabelParams = field(default_factory=LabelParams)
    names: dict[int, str] = field(default_factory=dict)
    merged_into: dict[int, int] = field(default_factory=dict)
    _next_identity: int = 0
    _candidates: dict[tuple[int, int], int] = field(default_factory=dict)

    def resolve(self, identity: int) -> int:
        """The identity ``identity`` now stands for (following merges)."""
        while identity in self.merged_into:
            identity = self.merged_into[identity]
        return identity

    def name(self, identity: int) -> str:
        """The public name of ``identity``, handed out on first use."""
        identity = self.resolve(identity)
        if identity not in self.names:
            self.names[identity] = f"S{len(self.names) + 1}"
        return self.names[identity]

    def _new_identity(self) -> int:
        self._next_identity += 1
        return self._next_identity - 1

    def _older(self, a: int, b: int) -> bool:
        """Whether ``a`` should survive a merge with ``b``: named first wins."""
        rank = {i: k for k, i in enumerate(self.names)}
        return rank.get(a, len(rank) + a) < rank.get(b, len(rank) + b)

    def assign(
        self, groups: npt.ArrayLike, origins: npt.ArrayLike, weights: npt.ArrayLike
    ) -> tuple[dict[int, int], list[Merge]]:
        """An identity for each group of ``groups`` (one per window, negative: none),
        given each window's origin identity (negative: none yet) and speech weight;
        and the merges this run made durable."""
        from scipy.optimize import linear_sum_assignment

        g = np.asarray(groups, dtype=np.int64)
        o = np.array(
            [self.resolve(int(i)) if i >= 0 else NO_IDENTITY for i in np.asarray(origins)],
            dtype=np.int64,
        )
        w = np.asarray(weights, dtype=np.float64)
        group_ids = sorted({int(x) for x in g if x >= 0})
        old_ids = sorted({int(x) for x in o if x >= 0})
        overlap = np.zeros((len(group_ids), len(old_ids)))
        gi = {x: k for k, x in enumerate(group_ids)}
        oi = {x: k for k, x in enumerate(old_ids)}
        for grp, org, wt in zip(g, o, w, strict=True):
            if grp >= 0 and org >= 0:
                overlap[gi[int(grp)], oi[int(org)]] += wt
        mapping: dict[int, int] = {}
        if overlap.size:
            rows, cols = linear_sum_assignment(overlap, maximize=True)
            for r, c in zip(rows, cols, strict=True):
                if overlap[r, c] > 0:
                    mapping[group_ids[r]] = old_ids[c]
        merges = self._merges(overlap, group_ids, old_ids, mapping)
        for grp in group_ids:
            if grp not in mapping:
                mapping[grp] = self._new_identity()
        return mapping, merges

    def _merges(
        self,
        overlap: npt.NDArray[np.float64],
        group_ids: list[int],
        old_ids: list[int],
        mapping: dict[int, int],
    ) -> list[Merge]:
        taken = set(mapping.values())
        seen: dict[tuple[int, int], int] = {}
        merges: list[Merge] = []
        for c, identity in enumerate(old_ids):
            total = overlap[:, c].sum()
            if identity in taken or total <= 0:
                continue
            r = int(np.argmax(overlap[:, c]))
            host = mapping.get(group_ids[r])
            if host is None or overlap[r, c] < self.params.merge_share * total:
                continue
            pair = (identity, host)
            seen[pair] = self._candidates.get(pair, 0) + 1
            if seen[pair] < self.params.merge_patience:
                continue
            del seen[pair]
            keep, gone = (identity, host) if self._older(identity, host) else (host, identity)
            mapping[group_ids[r]] = keep
            taken.add(keep)
            self.merged_into[gone] = keep
            if gone in self.names:  # a named identity only ever merges into a named one
                merges.append(Merge(self.names[gone], self.names[keep]))
        self._candidates = seen  # evidence must hold in consecutive runs
        return merges
