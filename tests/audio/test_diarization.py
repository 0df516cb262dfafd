"""Online diarization end to end, with the real encoder: captions of real and
synthetic conversations streamed in order, scored against the true turns."""

from __future__ import annotations

from functools import cache

import anyio
import numpy as np
import pytest

from pipelines.audio.diarization import DiarizationParams, OnlineDiarizer, SpeakerDecision
from pipelines.audio.diarization_stage import DiarizationRuntime, DiarizationSettings
from pipelines.audio.speaker_embedding import Ge2eEmbedder, shared_ge2e
from sessions.events import CaptionFinal, SpeakersMerged, Word
from tests.audio.diarization_assets import (
    RATE,
    THREE_SPEAKERS,
    TWO_SPEAKERS,
    Audio,
    Turn,
    caption_spans,
    conversation,
    reference,
    sample_audio,
    score,
    voiced_regions,
)


@pytest.fixture(scope="session")
def encoder() -> Ge2eEmbedder:
    return shared_ge2e()


@cache
def two() -> tuple[Audio, list[Turn]]:
    return conversation(TWO_SPEAKERS)


@cache
def three() -> tuple[Audio, list[Turn]]:
    return conversation(THREE_SPEAKERS)


def stream(
    encoder: Ge2eEmbedder,
    audio: Audio,
    spans: list[tuple[float, float]],
    params: DiarizationParams | None = None,
) -> list[SpeakerDecision]:
    d = OnlineDiarizer(params)
    out = []
    for a, b in spans:
        plan = d.plan(a, b, audio[round(a * RATE) : round(b * RATE)])
        out.append(d.decide(plan, encoder.embed(plan.to_embed())))
    return out


def as_emitted(decisions: list[SpeakerDecision]) -> object:
    """What a client shows: each caption's turns, with the merges it was told of."""
    from pyannote.core import Annotation, Segment

    into = {m.merged: m.into for d in decisions for m in d.merges}

    def final_name(label: str) -> str:
        return final_name(into[label]) if label in into else label

    hyp = Annotation()
    for d in decisions:
        for t in d.turns:
            hyp[Segment(t.start, t.end)] = final_name(t.speaker)
    return hyp


def speakers_in_order(decisions: list[SpeakerDecision]) -> list[str]:
    seen: list[str] = []
    for d in decisions:
        for t in d.turns:
            if t.speaker not in seen:
                seen.append(t.speaker)
    return seen


@pytest.mark.parametrize(
    ("make", "voices", "bound"), [(two, 2, (0.25, 0.18)), (three, 3, (0.25, 0.18))]
)
def test_synthetic_conversations(
    encoder: Ge2eEmbedder, make: object, voices: int, bound: tuple[float, float]
) -> None:
    audio, turns = make()  # type: ignore[operator]
    regions = voiced_regions(audio)
    for seed in range(3):
        decisions = stream(encoder, audio, caption_spans(regions, seed=seed))
        der0, der25 = score(reference(turns), as_emitted(decisions))
        names = speakers_in_order(decisions)
        assert names == [f"S{k + 1}" for k in range(voices)], (seed, names)
        assert der0 < bound[0] and der25 < bound[1], (seed, der0, der25)


def test_the_bound_on_speakers_holds(encoder: Ge2eEmbedder) -> None:
    audio, _ = three()
    params = DiarizationParams()
    params = DiarizationParams(cluster=type(params.cluster)(max_speakers=2))
    decisions = stream(encoder, audio, caption_spans(voiced_regions(audio)), params)
    assert set(speakers_in_order(decisions)) <= {"S1", "S2"}


def test_the_pyannote_sample_streamed_through_the_stage(encoder: Ge2eEmbedder) -> None:
    """The real phone call, captions cut from the reference speech regions, fed in
    order through the async stage and the shared worker."""
    audio, turns = sample_audio()
    ref = reference(turns)
    regions = [(s.start, s.end) for s in ref.get_timeline().support()]
    runtime = DiarizationRuntime(DiarizationSettings(), embedder=encoder)
    results = []
    for seed in range(3):
        spans = caption_spans(regions, seed=seed)

        async def run(
            spans: list[tuple[float, float]] = spans, name: str = f"sample-{seed}"
        ) -> list[SpeakerDecision]:
            session = runtime.session(name)
            return [
                await session.decide(a, b, audio[round(a * RATE) : round(b * RATE)])
                for a, b in spans
            ]

        decisions = anyio.run(run)
        results.append(score(ref, as_emitted(decisions)))
    mean0 = float(np.mean([r[0] for r in results]))
    mean25 = float(np.mean([r[1] for r in results]))
    print(f"pyannote sample DER: {results} mean {mean0:.3f} / {mean25:.3f}")
    assert mean0 < 0.30 and mean25 < 0.18, results
    assert max(r[0] for r in results) < 0.32, results


def test_label_final_fills_the_speaker(encoder: Ge2eEmbedder) -> None:
    audio, turns = two()
    runtime = DiarizationRuntime(DiarizationSettings(), embedder=encoder)
    t = turns[0]
    final = CaptionFinal(
        0, "good morning", t.start, t.end, None, (Word("good", t.start, t.start + 0.3, 0.9),)
    )

    async def run() -> list[object]:
        session = runtime.session("label")
        return list(
            await session.label_final(final, audio[round(t.start * RATE) : round(t.end * RATE)])
        )

    events = anyio.run(run)
    assert len(events) == 1 and isinstance(events[0], CaptionFinal)
    assert events[0].speaker == "S1" and events[0].text == "good morning"
    assert not any(isinstance(e, SpeakersMerged) for e in events)


def test_hostile_spans(encoder: Ge2eEmbedder) -> None:
    audio, turns = two()
    d = OnlineDiarizer()

    def decide(a: float, b: float, x: np.ndarray) -> SpeakerDecision:
        plan = d.plan(a, b, x)
        return d.decide(plan, encoder.embed(plan.to_embed()))

    assert decide(0.0, 0.0, np.zeros(0, np.float32)).speaker is None  # empty
    assert decide(0.1, 0.3, audio[1600:4800]).speaker is None  # too short, nothing before
    assert decide(0.5, 3.0, np.zeros(40000, np.float32)).speaker is None  # silence
    t = turns[1]
    first = decide(t.start, t.end, audio[round(t.start * RATE) : round(t.end * RATE)])
    assert first.speaker == "S1" and first.word_speakers(
        [Word("x", t.start, t.start + 0.2, 1.0)]
    ) == ("S1",)
    # A short span right after speech carries the label before it.
    tail = decide(t.end + 0.05, t.end + 0.25, np.zeros(3200, np.float32))
    assert tail.speaker == "S1"
    # Noise and garbage: a label or none, never an exception or a NaN.
    rng = np.random.default_rng(0)
    noise = decide(30.0, 33.0, rng.uniform(-1, 1, 3 * RATE).astype(np.float32))
    garbage = np.full(2 * RATE, np.nan, np.float32)
    garbage[::3] = np.inf
    for x in (noise, decide(40.0, 42.0, garbage)):
        assert x.speaker is None or x.speaker.startswith("S")
    # Out of order: a span before what was seen changes nothing.
    assert decide(0.0, 1.0, audio[:RATE]).turns == ()
    with pytest.raises(ValueError, match="embeddings"):
        d.decide(d.plan(50.0, 52.0, audio[30 * RATE : 32 * RATE]), np.zeros((0, 256)))


def test_history_stays_bounded(encoder: Ge2eEmbedder) -> None:
    audio, _ = two()
    params = DiarizationParams(max_windows=40)
    d = OnlineDiarizer(params)
    for a, b in caption_spans(voiced_regions(audio)):
        plan = d.plan(a, b, audio[round(a * RATE) : round(b * RATE)])
        d.decide(plan, encoder.embed(plan.to_embed()))
        assert d.windows_kept <= 40 + 64
    assert d.windows_kept <= 40
