"""The caption pipeline's speaker stage (docs/diarization.md): finals, with the audio
of their span, go through a bounded queue to this stage, which emits the
``speaker.merged`` events each one implies and then the final with its ``speaker``.

The other caption events (partials, retractions) travel through the same queue, so a
client sees them in the order the ASR stage made them: a final is never overtaken by
the partial that follows it. Decodes never wait on the encoder, only on a full queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from anyio.abc import ObjectReceiveStream

from pipelines.audio.agreement import DecodeJob
from pipelines.audio.diarization_stage import SessionDiarizer
from pipelines.audio.ingest import TARGET_RATE, Samples
from sessions.events import CaptionFinal, ServerEvent

log = logging.getLogger("parley.captions")


@dataclass(frozen=True, slots=True)
class CaptionItem:
    """A caption event on its way to the client; ``audio`` (16 kHz, of exactly
    ``[final.start, final.end]``) only for finals."""

    event: ServerEvent
    job_end: float | None  # session time of the end of the decode that made it
    audio: Samples | None = None


def final_audio(final: CaptionFinal, job: DecodeJob) -> Samples:
    """The samples of ``final``'s span, cut from the decoded window that holds it."""
    i0 = round((final.start - job.offset) * TARGET_RATE)
    i1 = round((final.end - job.offset) * TARGET_RATE)
    i0 = min(max(i0, 0), len(job.audio))
    i1 = min(max(i1, i0), len(job.audio))
    return np.ascontiguousarray(job.audio[i0:i1], dtype=np.float32)


async def speaker_stage(
    session: SessionDiarizer,
    inp: ObjectReceiveStream[CaptionItem],
    deliver: Callable[[ServerEvent, float | None], None],
) -> None:
    """Labels each final in order; ``deliver(event, job_end)`` emits it."""
    async with inp:
        async for item in inp:
            if not (isinstance(item.event, CaptionFinal) and item.audio is not None):
                deliver(item.event, item.job_end)
                continue
            try:
                events = await session.label_final(item.event, item.audio)
            except Exception:
                # A failing encoder costs the labels, never the captions.
                log.exception("speaker labelling failed", extra={"session": session.session_id})
                events = [item.event]
            for event in events:
                deliver(event, item.job_end)
