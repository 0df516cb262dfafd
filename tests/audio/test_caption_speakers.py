"""Speaker labels on live captions: a synthetic two-speaker conversation through the
caption pipeline with the real VAD, ASR and speaker encoder."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from pipelines.audio.agreement import DecodeJob
from pipelines.audio.caption_speakers import final_audio
from pipelines.audio.diarization_stage import DiarizationRuntime
from pipelines.audio.runtime import CaptionRuntime
from sessions.events import (
    CaptionFinal,
    CaptionPartial,
    ErrorEvent,
    ServerEvent,
    SpeakersMerged,
    Word,
)
from tests.audio.diarization_assets import (
    ESPEAK_US,
    PIPER_JOE,
    TWO_SPEAKERS,
    Audio,
    Turn,
    conversation,
)
from tests.audio.helpers import chunks, pcm16, run_caption

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def speakers() -> DiarizationRuntime:
    return DiarizationRuntime()


@cache
def two_voices() -> tuple[Audio, list[Turn]]:
    return conversation(TWO_SPEAKERS, gap_s=0.6)


def finals(events: list[ServerEvent]) -> list[CaptionFinal]:
    return [e for e in events if isinstance(e, CaptionFinal)]


def voice_at(turns: list[Turn], t: float) -> str | None:
    return next((turn.speaker for turn in turns if turn.start - 0.2 <= t <= turn.end + 0.2), None)


def test_a_finals_audio_is_cut_from_its_decode_window() -> None:
    audio = np.arange(32000, dtype=np.float32)  # 2 s from session time 10.0
    job = DecodeJob(1, 1, audio, 10.0, "", final=False)
    final = CaptionFinal(0, "a b", 10.5, 11.25, None, (Word("a", 10.5, 11.0, 0.9),))
    cut = final_audio(final, job)
    assert len(cut) == 12000 and cut[0] == 8000.0
    outside = CaptionFinal(1, "c", 11.9, 12.4, None, ())
    assert len(final_audio(outside, job)) == round(0.1 * 16000)  # clipped to the window


async def test_two_voices_get_two_labels_in_order(
    runtime: CaptionRuntime, speakers: DiarizationRuntime
) -> None:
    audio, turns = two_voices()
    events = await run_caption(
        runtime, chunks(pcm16(audio), 3200), diarization=True, speakers=speakers
    )
    got = finals(events)
    assert [f.segment for f in got] == list(range(len(got)))
    merged: dict[str, str] = {}
    for e in events:
        if isinstance(e, SpeakersMerged):
            merged[e.merged] = e.into
        elif isinstance(e, CaptionFinal):
            assert e.speaker not in merged  # a merge comes before the captions it implies
    labels = {f.speaker for f in got}
    assert {"S1", "S2"} <= labels, [(f.text, f.speaker) for f in got]

    def resolved(label: str | None) -> str | None:
        while label in merged:
            label = merged[label]
        return label

    # S1 is the voice heard first (piper's joe), S2 the other; a new voice's first
    # seconds may still go to the known one (docs/diarization.md), so most, not all.
    expected = {PIPER_JOE: "S1", ESPEAK_US: "S2"}
    scored = [
        (resolved(f.speaker), expected[voice])
        for f in got
        if f.speaker is not None and (voice := voice_at(turns, (f.start + f.end) / 2))
    ]
    right = sum(label == want for label, want in scored)
    assert len(scored) >= 0.8 * len(got) and right >= 0.8 * len(scored), scored
    # A partial never overtakes the final before it: it carries the next number.
    shown = -1
    for e in events:
        if isinstance(e, CaptionFinal):
            shown = e.segment
        elif isinstance(e, CaptionPartial) and e.text:
            assert e.segment == shown + 1


async def test_without_diarization_finals_carry_no_speaker(
    runtime: CaptionRuntime, speakers: DiarizationRuntime
) -> None:
    audio, _ = two_voices()
    first_turns = audio[: 16000 * 10]
    events = await run_caption(runtime, chunks(pcm16(first_turns), 3200), speakers=speakers)
    assert finals(events) and all(f.speaker is None for f in finals(events))
    assert not any(isinstance(e, SpeakersMerged) for e in events)


async def test_asking_a_server_without_an_encoder_is_answered_not_fatal(
    runtime: CaptionRuntime,
) -> None:
    audio, _ = two_voices()
    events = await run_caption(runtime, chunks(pcm16(audio[: 16000 * 6]), 3200), diarization=True)
    error = events[0]
    assert isinstance(error, ErrorEvent)
    assert (error.code, error.fatal) == ("unsupported", False)
    assert finals(events) and all(f.speaker is None for f in finals(events))
