"""Feeding helpers for the caption tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable

import anyio
import numpy as np
import numpy.typing as npt

from pipelines.audio.caption_pipeline import CaptionPipeline
from pipelines.audio.diarization_stage import DiarizationRuntime
from pipelines.audio.runtime import CaptionRuntime
from sessions.config import AudioFormat, SessionConfig
from sessions.events import CaptionFinal, ServerEvent
from sessions.inputs import AudioChunk, AudioEnd, PipelineInput
from sessions.pipeline import ListSink, PipelineContext
from sessions.tenants import TenantPolicy

Audio = npt.NDArray[np.float32]


def silence(seconds: float) -> Audio:
    return np.zeros(int(16000 * seconds), dtype=np.float32)


def pcm16(x: Audio) -> bytes:
    return bytes((np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def as_inputs(
    pieces: Iterable[bytes | PipelineInput], *, end: bool = True, speed: float | None = None
) -> AsyncIterator[PipelineInput]:
    """PCM pieces as numbered chunks; with ``speed``, each is sent once it has been
    "spoken" at that multiple of real time (16 kHz mono)."""
    k = 0
    t0 = time.monotonic()
    sent_s = 0.0
    for piece in pieces:
        if isinstance(piece, bytes):
            if speed is not None:
                sent_s += len(piece) / 32000
                await anyio.sleep(max(0.0, t0 + sent_s / speed - time.monotonic()))
            yield AudioChunk(piece, k, time.monotonic())
            k += 1
        else:
            yield piece
    if end:
        yield AudioEnd(time.monotonic())


async def run_caption(
    runtime: CaptionRuntime,
    pieces: Iterable[bytes | PipelineInput],
    *,
    sample_rate: int = 16000,
    channels: int = 1,
    session_id: str = "test",
    speed: float | None = None,
    diarization: bool = False,
    speakers: DiarizationRuntime | None = None,
) -> list[ServerEvent]:
    """Feeds ``pieces`` (PCM chunks or inputs) to a fresh pipeline as fast as it takes
    them; returns every event it emitted. ``diarization``: the session asks for
    speaker labels; ``speakers``: the encoder the process offers."""
    config = SessionConfig(
        mode="caption",
        audio=AudioFormat(sample_rate=sample_rate, channels=channels),
        diarization=diarization,
    )
    context = PipelineContext(session_id, TenantPolicy("t"), config)
    pipeline = CaptionPipeline(context, runtime, diarization=speakers)
    sink = ListSink()
    await pipeline.run(as_inputs(pieces, speed=speed), sink)
    return sink.events


def final_text(events: list[ServerEvent]) -> str:
    return " ".join(e.text for e in events if isinstance(e, CaptionFinal))


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    def norm(text: str) -> str:
        return " ".join("".join(c for c in text.lower() if c.isalnum() or c in " '").split())

    return float(jiwer.wer(norm(reference), norm(hypothesis) or "-"))
