"""The async shell of diarization: the process's shared encoder and worker, and one
``SessionDiarizer`` per caption session with ``diarization: true``.

A caption pipeline hands each final caption, with the session audio it covers, to
``SessionDiarizer.label_final`` (from a stage of its own, so decodes never wait on
it) and emits what comes back: ``speaker.merged`` events first, then the caption with
its ``speaker`` (docs/diarization.md). Embedding runs in the shared worker's thread
and clustering in a thread of its own; the event loop only moves data.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import anyio
import numpy.typing as npt

from pipelines.audio.diarization import DiarizationParams, OnlineDiarizer, SpeakerDecision
from pipelines.audio.diarization_metrics import DECISION_SECONDS, SPEAKER_MERGES
from pipelines.audio.pyannote_backend import PyannoteSettings
from pipelines.audio.speaker_embedding import Ge2eSettings, SpeakerEmbedder, shared_ge2e
from pipelines.audio.speaker_worker import EmbeddingWorker
from pipelines.audio.threads import single_threaded_blas
from sessions.events import CaptionFinal, ServerEvent, SpeakersMerged


@dataclass(frozen=True, slots=True)
class DiarizationSettings:
    backend: Literal["ge2e", "pyannote"] = "ge2e"
    max_speakers: int = 8
    ge2e: Ge2eSettings = field(default_factory=Ge2eSettings)
    pyannote: PyannoteSettings | None = None
    params: DiarizationParams = field(default_factory=DiarizationParams)
    max_batch: int = 64  # windows per encoder batch, all sessions together
    max_pending: int = 1024  # windows waiting for the encoder before sessions wait

    def __post_init__(self) -> None:
        if self.max_speakers < 1:
            raise ValueError("max_speakers must be at least 1")
        if self.backend == "pyannote" and self.pyannote is None:
            raise ValueError("the pyannote backend needs PyannoteSettings (checkpoint paths)")

    def session_params(self, window_s: float) -> DiarizationParams:
        p = self.params
        return dataclasses.replace(
            p,
            cluster=dataclasses.replace(p.cluster, max_speakers=self.max_speakers),
            windows=dataclasses.replace(
                p.windows, window_s=window_s, hop_s=min(p.windows.hop_s, window_s)
            ),
        )


def settings_from_env(env: dict[str, str] | None = None) -> DiarizationSettings:
    """Operator overrides without code: ``PARLEY_DIARIZATION_BACKEND`` (ge2e |
    pyannote), ``PARLEY_DIARIZATION_MAX_SPEAKERS``, ``PARLEY_DIARIZATION_DEVICE``,
    ``PARLEY_PYANNOTE_EMBEDDING`` and ``PARLEY_PYANNOTE_SEGMENTATION`` (local paths)."""
    e = os.environ if env is None else env
    backend = e.get("PARLEY_DIARIZATION_BACKEND", "ge2e")
    if backend not in ("ge2e", "pyannote"):
        raise ValueError(f"PARLEY_DIARIZATION_BACKEND: unknown backend {backend!r}")
    device = e.get("PARLEY_DIARIZATION_DEVICE", "auto")
    pyannote = None
    if backend == "pyannote":
        pyannote = PyannoteSettings(
            embedding=e.get("PARLEY_PYANNOTE_EMBEDDING", ""),
            segmentation=e.get("PARLEY_PYANNOTE_SEGMENTATION") or None,
            device=device,
        )
    return DiarizationSettings(
        backend="pyannote" if backend == "pyannote" else "ge2e",
        max_speakers=int(e.get("PARLEY_DIARIZATION_MAX_SPEAKERS", "8")),
        ge2e=Ge2eSettings(device=device),
        pyannote=pyannote,
    )


def build_embedder(settings: DiarizationSettings) -> SpeakerEmbedder:
    if settings.backend == "pyannote":
        from pipelines.audio.pyannote_backend import PyannoteEmbedder

        assert settings.pyannote is not None  # checked by DiarizationSettings
        return PyannoteEmbedder(settings.pyannote)
    return shared_ge2e(settings.ge2e)


class DiarizationRuntime:
    """What every diarizing session of a process shares: the encoder and its worker."""

    def __init__(
        self,
        settings: DiarizationSettings | None = None,
        *,
        embedder: SpeakerEmbedder | None = None,
    ) -> None:
        self.settings = s = settings or DiarizationSettings()
        single_threaded_blas()
        self.embedder = embedder or build_embedder(s)
        self.worker = EmbeddingWorker(
            self.embedder, max_batch=s.max_batch, max_pending=s.max_pending
        )

    def session(self, session_id: str) -> SessionDiarizer:
        params = self.settings.session_params(self.embedder.window_s)
        return SessionDiarizer(session_id, self.worker, OnlineDiarizer(params))


class SessionDiarizer:
    def __init__(self, session_id: str, worker: EmbeddingWorker, diarizer: OnlineDiarizer) -> None:
        self.session_id = session_id
        self.worker = worker
        self.diarizer = diarizer
        self.decisions = 0

    async def decide(self, start: float, end: float, audio: npt.ArrayLike) -> SpeakerDecision:
        """The speakers of the span ``[start, end]`` (session seconds) whose 16 kHz
        samples are ``audio``. Spans must come in order (finals do)."""
        t0 = time.monotonic()
        plan = self.diarizer.plan(start, end, audio)
        embeddings = await self.worker.embed(self.session_id, plan.to_embed())
        decision = await anyio.to_thread.run_sync(self.diarizer.decide, plan, embeddings)
        self.decisions += 1
        DECISION_SECONDS.observe(time.monotonic() - t0)
        SPEAKER_MERGES.inc(len(decision.merges))
        return decision

    async def label_final(self, final: CaptionFinal, audio: npt.ArrayLike) -> list[ServerEvent]:
        """``final`` with its speaker, after the ``speaker.merged`` events it implies."""
        decision = await self.decide(final.start, final.end, audio)
        events: list[ServerEvent] = [SpeakersMerged(m.merged, m.into) for m in decision.merges]
        events.append(dataclasses.replace(final, speaker=decision.speaker))
        return events


_shared: dict[str, DiarizationRuntime] = {}
_shared_lock = threading.Lock()


def shared_diarization(settings: DiarizationSettings | None = None) -> DiarizationRuntime:
    """The process's runtime, built on first use (``settings`` only matter then;
    default: ``settings_from_env()``). Loading takes a fraction of a second: call it
    at startup, in a thread."""
    with _shared_lock:
        if "runtime" not in _shared:
            _shared["runtime"] = DiarizationRuntime(settings or settings_from_env())
        return _shared["runtime"]
