"""Which audio to embed for a caption's span: the windowing half of the diarizer.

Pure and synchronous. Finals arrive in order and cover a session's speech piece by
piece, often a second or less at a time: far too little for one embedding. So the
planner keeps the last few seconds of speech it was given and, while spans follow
each other closely (one speech region), lets windows reach back into earlier spans.

Each span is tiled into *owned* pieces of about ``hop_s``; each piece gets one
window of ``window_s`` as centred on it as the audio at hand allows (a piece near
the span's end gets a window that ends there: later audio is not known yet). A
piece's speaker is its window's speaker.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.audio.speaker_embedding import SAMPLE_RATE

Audio = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class WindowParams:
    window_s: float = 1.6  # what the GE2E encoder was trained on
    hop_s: float = 0.4
    min_window_s: float = 0.5  # less audio than this says little about the voice
    join_gap_s: float = 0.5  # spans this close continue one speech region
    max_windows_per_span: int = 64  # a very long span is windowed more sparsely
    min_rms_dbfs: float = -50.0  # a quieter window is silence: not embedded

    def __post_init__(self) -> None:
        if not 0 < self.hop_s <= self.window_s or self.min_window_s <= 0:
            raise ValueError("need 0 < hop_s <= window_s and min_window_s > 0")
        if self.max_windows_per_span < 1:
            raise ValueError("max_windows_per_span must be at least 1")


@dataclass(frozen=True, slots=True)
class Window:
    start: float  # session seconds of the embedded audio
    end: float
    owned_start: float  # the piece of the span it labels
    owned_end: float
    audio: Audio
    voiced: bool  # loud enough to be speech

    @property
    def owned_s(self) -> float:
        return self.owned_end - self.owned_start


@dataclass(frozen=True, slots=True)
class SpanPlan:
    start: float
    end: float
    windows: tuple[Window, ...]
    continues: bool  # the span continues the previous span's speech region

    def to_embed(self) -> list[Audio]:
        return [w.audio for w in self.windows if w.voiced]


def dbfs(x: Audio) -> float:
    if len(x) == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def clean(audio: npt.ArrayLike) -> Audio:
    """``audio`` as finite float32 mono in [-1, 1] (garbage in, bounded garbage out)."""
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    out: Audio = np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    return out


class WindowPlanner:
    def __init__(self, params: WindowParams | None = None) -> None:
        self.params = params or WindowParams()
        self._ctx = np.zeros(0, dtype=np.float32)  # recent speech, ending at _ctx_end
        self._ctx_end = -math.inf
        self._region_start = 0.0  # where the speech region in _ctx began

    def plan(self, start: float, end: float, audio: npt.ArrayLike) -> SpanPlan:
        """The windows for the span ``[start, end]`` whose samples are ``audio``.

        The audio's own length wins over ``end`` when they disagree; a span (or its
        part) that lies before audio already planned is ignored."""
        p = self.params
        x = clean(audio)
        if not (math.isfinite(start) and start >= 0):
            raise ValueError(f"span start must be a finite, non-negative time, not {start}")
        end = start + len(x) / SAMPLE_RATE
        if start < self._ctx_end:  # overlaps what was planned already: keep the new part
            skip = min(len(x), round((self._ctx_end - start) * SAMPLE_RATE))
            x, start = x[skip:], start + skip / SAMPLE_RATE
        if len(x) == 0:
            return SpanPlan(start, max(start, end), (), True)
        gap = start - self._ctx_end
        continues = gap <= p.join_gap_s
        if continues:
            filler = np.zeros(max(0, round(gap * SAMPLE_RATE)), dtype=np.float32)
            self._ctx = np.concatenate([self._ctx, filler, x])
        else:
            self._ctx, self._region_start = x, start
        self._ctx_end = end
        windows = self._windows(start, end)
        keep = round((p.window_s + p.join_gap_s) * SAMPLE_RATE)
        if len(self._ctx) > keep:
            self._ctx = self._ctx[-keep:]
        return SpanPlan(start, end, windows, continues)

    def _pieces(self, start: float, end: float) -> list[tuple[float, float]]:
        p = self.params
        hop = max(p.hop_s, (end - start) / p.max_windows_per_span)
        n = max(1, round((end - start) / hop))
        edges = np.linspace(start, end, n + 1)
        return [(float(a), float(b)) for a, b in itertools.pairwise(edges)]

    def _windows(self, start: float, end: float) -> tuple[Window, ...]:
        p = self.params
        ctx_start = self._ctx_end - len(self._ctx) / SAMPLE_RATE
        lo = max(self._region_start, ctx_start)
        if end - lo < p.min_window_s:
            return ()
        out: list[Window] = []
        for a, b in self._pieces(start, end):
            centre = (a + b) / 2
            w0 = max(lo, min(centre - p.window_s / 2, end - p.window_s))
            w1 = min(end, w0 + p.window_s)
            i0 = max(0, round((w0 - ctx_start) * SAMPLE_RATE))
            i1 = max(i0, round((w1 - ctx_start) * SAMPLE_RATE))
            audio = self._ctx[i0:i1].copy()
            if len(audio) < p.min_window_s * SAMPLE_RATE * 0.99:
                continue
            voiced = dbfs(audio) >= p.min_rms_dbfs
            out.append(Window(w0, w1, a, b, audio, voiced))
        return tuple(out)
