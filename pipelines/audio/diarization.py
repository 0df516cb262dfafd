"""Online diarization of one session: who spoke each final caption.

Pure and synchronous; the async shell (``diarization_stage.py``) runs the embedder
between the two halves of a step:

    plan = diarizer.plan(start, end, audio)          # which windows to embed
    embeddings = embedder.embed(plan.to_embed())      # in the shared worker thread
    decision = diarizer.decide(plan, embeddings)      # re-cluster, name, decide

Every step re-clusters all windows kept so far (``clustering.partition``) and maps
the groups onto stable identities (``speaker_labels.SpeakerBook``). Earlier captions
are never relabeled; when two names turn out to be one voice the decision carries a
merge, which the session sends as a durable ``speaker.merged`` event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pipelines.audio.clustering import ClusterParams, partition, usable
from pipelines.audio.diarization_windows import SpanPlan, WindowParams, WindowPlanner
from pipelines.audio.speaker_labels import LabelParams, Merge, SpeakerBook
from sessions.events import Word

Audio = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class DiarizationParams:
    windows: WindowParams = field(default_factory=WindowParams)
    cluster: ClusterParams = field(default_factory=ClusterParams)
    labels: LabelParams = field(default_factory=LabelParams)
    max_windows: int = 480  # windows kept for re-clustering; older ones are pooled
    min_turn_s: float = 0.8  # a shorter run of one speaker inside a span is noise
    carry_gap_s: float = 1.0  # a span with no usable window takes the label before it
    new_speaker_s: float = 3.0  # speech a group needs before it opens a new identity


@dataclass(frozen=True, slots=True)
class SpeakerTurn:
    start: float
    end: float
    speaker: str


@dataclass(frozen=True, slots=True)
class SpeakerDecision:
    start: float
    end: float
    speaker: str | None  # who spoke most of the span; None: no evidence yet
    turns: tuple[SpeakerTurn, ...]  # speaker changes inside the span, in order
    merges: tuple[Merge, ...]  # send before the caption: durable, never undone

    def speaker_at(self, t: float) -> str | None:
        for turn in self.turns:
            if t < turn.end:
                return turn.speaker
        return self.turns[-1].speaker if self.turns else self.speaker

    def word_speakers(self, words: Sequence[Word]) -> tuple[str | None, ...]:
        """The speaker of each word, by the word's midpoint."""
        return tuple(self.speaker_at((w.start + w.end) / 2) for w in words)


@dataclass(slots=True)
class _History:
    emb: list[Audio] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    origin: list[int] = field(default_factory=list)  # identity at decision time

    def __len__(self) -> int:
        return len(self.emb)

    def pool_oldest(self, target: int) -> None:
        """Average neighbouring old windows of one identity until ``target`` remain:
        old speech keeps its weight in the clustering at a bounded cost."""
        i = 0
        while len(self) > target and i < len(self) - 1:
            if self.origin[i] == self.origin[i + 1]:
                w0, w1 = self.weight[i], self.weight[i + 1]
                mixed = self.emb[i] * w0 + self.emb[i + 1] * w1
                self.emb[i] = (mixed / max(float(np.linalg.norm(mixed)), 1e-12)).astype(np.float32)
                self.weight[i] = w0 + w1
                del self.emb[i + 1], self.weight[i + 1], self.origin[i + 1]
            i += 1


class OnlineDiarizer:
    def __init__(self, params: DiarizationParams | None = None) -> None:
        self.params = p = params or DiarizationParams()
        self.planner = WindowPlanner(p.windows)
        self.book = SpeakerBook(p.labels)
        self._history = _History()
        self._last: tuple[float, int] | None = None  # (end, identity) of the last label
        self.steps = 0

    @property
    def windows_kept(self) -> int:
        return len(self._history)

    def plan(self, start: float, end: float, audio: npt.ArrayLike) -> SpanPlan:
        return self.planner.plan(start, end, audio)

    def decide(self, plan: SpanPlan, embeddings: npt.ArrayLike) -> SpeakerDecision:
        """The speakers of ``plan``'s span, given one embedding per ``plan.to_embed()``."""
        p = self.params
        voiced = [w for w in plan.windows if w.voiced]
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or len(emb) != len(voiced):
            raise ValueError(f"expected {len(voiced)} embeddings, got shape {emb.shape}")
        ok = usable(emb)
        self.steps += 1
        h = self._history
        base = len(h)
        for k in np.flatnonzero(ok):
            h.emb.append(emb[k])
            h.weight.append(voiced[k].owned_s)
            h.origin.append(-1)
        merges: list[Merge] = []
        pieces: list[tuple[float, float, int]] = []
        if len(h) > base:
            groups = partition(np.stack(h.emb), h.weight, p.cluster)
            mapping, merges = self.book.assign(groups, h.origin, h.weight)
            self._hold_back_newcomers(groups, mapping)
            for i in range(base, len(h)):
                h.origin[i] = mapping[int(groups[i])]
            fresh = iter(h.origin[base:])
            pieces = [
                (w.owned_start, w.owned_end, next(fresh))
                for w, good in zip(voiced, ok, strict=True)
                if good
            ]
            if len(h) > p.max_windows:
                h.pool_oldest(p.max_windows * 3 // 4)
        turns = self._turns(plan, pieces)
        if turns:
            self._last = (plan.end, turns[-1][2])
        named = tuple(SpeakerTurn(a, b, self.book.name(i)) for a, b, i in turns)
        return SpeakerDecision(plan.start, plan.end, _main_speaker(named), named, tuple(merges))

    def _hold_back_newcomers(self, groups: npt.NDArray[np.int64], mapping: dict[int, int]) -> None:
        """A group that would open a new identity with little speech is more often
        windows straddling turn changes than a new voice: until it holds
        ``new_speaker_s``, its windows go to the most similar established group."""
        h = self._history
        known = set(h.origin) - {-1}
        w = np.asarray(h.weight)
        emb = np.stack(h.emb)
        centroid = {}
        for g in mapping:
            c = (emb[groups == g] * w[groups == g, None]).sum(axis=0)
            centroid[g] = c / max(float(np.linalg.norm(c)), 1e-12)
        settled = [g for g, i in mapping.items() if i in known]
        for g, ident in list(mapping.items()):
            if ident in known or not settled or w[groups == g].sum() >= self.params.new_speaker_s:
                continue
            host = max(settled, key=lambda s: float(centroid[s] @ centroid[g]))
            mapping[g] = mapping[host]

    def _turns(
        self, plan: SpanPlan, pieces: list[tuple[float, float, int]]
    ) -> list[tuple[float, float, int]]:
        """Runs of one identity over the span, short runs folded into a neighbour."""
        if plan.end <= plan.start:
            return []  # nothing new: an empty, or replayed, span
        if not pieces:
            last = self._last
            if last is None or plan.start - last[0] > self.params.carry_gap_s:
                return []
            return [(plan.start, plan.end, self.book.resolve(last[1]))]
        runs: list[list[float]] = []  # [start, end, identity]
        for a, b, raw in pieces:
            ident = self.book.resolve(raw)
            if runs and runs[-1][2] == ident:
                runs[-1][1] = b
            else:
                runs.append([a, b, ident])
        while len(runs) > 1:
            k = min(range(len(runs)), key=lambda i: runs[i][1] - runs[i][0])
            if runs[k][1] - runs[k][0] >= self.params.min_turn_s:
                break
            if k == 0 or (
                k < len(runs) - 1
                and runs[k + 1][1] - runs[k + 1][0] > runs[k - 1][1] - runs[k - 1][0]
            ):
                runs[k + 1][0] = runs[k][0]
            else:
                runs[k - 1][1] = runs[k][1]
            del runs[k]
            runs = _joined(runs)
        # A new voice makes its debut as the main speaker of a caption, not as a
        # fragment inside one: fragments of unnamed identities join a neighbour.
        share: dict[float, float] = {}
        for a, b, who in runs:
            share[who] = share.get(who, 0.0) + b - a
        main = max(share, key=lambda i: share[i])
        for k, run in enumerate(runs):
            if run[2] != main and int(run[2]) not in self.book.names:
                run[2] = runs[k - 1][2] if k > 0 else main
        runs = _joined(runs)
        runs[0][0], runs[-1][1] = plan.start, plan.end
        return [(a, b, int(i)) for a, b, i in runs]


def _joined(runs: list[list[float]]) -> list[list[float]]:
    out: list[list[float]] = []
    for run in runs:
        if out and out[-1][2] == run[2]:
            out[-1][1] = run[1]
        else:
            out.append(run)
    return out


def _main_speaker(turns: Sequence[SpeakerTurn]) -> str | None:
    total: dict[str, float] = {}
    for t in turns:
        total[t.speaker] = total.get(t.speaker, 0.0) + (t.end - t.start)
    return max(total, key=lambda s: total[s]) if total else None
