"""Diarization cost and quality on this machine.

- Embedding cost per second of audio: the GE2E encoder on 1.6 s windows, one at a
  time and batched (the shared worker batches across sessions).
- Decision lag: a final caption handed to the stage → its speaker known (embedding
  plus re-clustering), for 1 and 4 concurrent sessions replaying the pyannote
  sample in real time; this adds to the caption's own latency.
- DER of the online labels (as emitted, merges applied) on the pyannote sample
  and the synthetic conversations of the tests, at collar 0 and 0.25 s each side.

    .venv/bin/python -m bench.diarization_cost [--sessions 4]
"""

from __future__ import annotations

import argparse
import time

import anyio
import numpy as np

from bench.common import summary_ms, write_result
from pipelines.audio.diarization import SpeakerDecision
from pipelines.audio.diarization_stage import (
    DiarizationRuntime,
    DiarizationSettings,
    SessionDiarizer,
)
from pipelines.audio.speaker_embedding import shared_ge2e
from tests.audio.diarization_assets import (
    RATE,
    THREE_SPEAKERS,
    TWO_SPEAKERS,
    caption_spans,
    conversation,
    reference,
    sample_audio,
    score,
    voiced_regions,
)
from tests.audio.test_diarization import as_emitted


def embedding_cost() -> dict[str, float]:
    enc = shared_ge2e()
    audio, _ = sample_audio()
    windows = [audio[i : i + 25600] for i in range(0, len(audio) - 25600, 6400)]
    enc.embed(windows[:4])  # warm up
    out: dict[str, float] = {}
    for batch in (1, 8, 32):
        t0 = time.perf_counter()
        for k in range(0, len(windows), batch):
            enc.embed(windows[k : k + batch])
        per_window = (time.perf_counter() - t0) / len(windows)
        # Windows are 1.6 s with a 0.4 s hop: 2.5 windows per second of speech.
        out[f"batch{batch}_ms_per_window"] = round(per_window * 1000, 2)
        out[f"batch{batch}_cpu_s_per_audio_s"] = round(per_window * 2.5, 4)
    return out


async def replay(runtime: DiarizationRuntime, sessions: int) -> tuple[list[float], list[float]]:
    """``sessions`` copies of the sample, each final handed over once its audio has
    "arrived" in real time; returns decision lags and per-session DER at collar 0."""
    audio, turns = sample_audio()
    ref = reference(turns)
    regions = [(s.start, s.end) for s in ref.get_timeline().support()]
    lags: list[float] = []
    ders: list[float] = []
    t0 = time.monotonic()

    async def one(k: int) -> None:
        session = runtime.session(f"bench-{k}")
        decisions: list[SpeakerDecision] = []
        for a, b in caption_spans(regions, seed=k):
            await anyio.sleep(max(0.0, t0 + b - time.monotonic()))
            started = time.monotonic()
            decisions.append(await session.decide(a, b, audio[round(a * RATE) : round(b * RATE)]))
            lags.append(time.monotonic() - started)
        ders.append(score(ref, as_emitted(decisions))[0])

    async with anyio.create_task_group() as tg:
        for k in range(sessions):
            tg.start_soon(one, k)
    return lags, ders


def quality() -> dict[str, dict[str, float]]:
    enc = shared_ge2e()
    runtime = DiarizationRuntime(DiarizationSettings(), embedder=enc)
    out: dict[str, dict[str, float]] = {}
    audio, turns = sample_audio()
    ref = reference(turns)
    cases = {
        "pyannote_sample_reference_regions": (
            audio,
            ref,
            [(s.start, s.end) for s in ref.get_timeline().support()],
        ),
        "pyannote_sample_webrtcvad": (audio, ref, voiced_regions(audio)),
    }
    for name, lines in (("synthetic_two", TWO_SPEAKERS), ("synthetic_three", THREE_SPEAKERS)):
        a, t = conversation(lines)
        cases[name] = (a, reference(t), voiced_regions(a))
    for name, (x, r, regions) in cases.items():
        scores = []
        for seed in range(3):
            session = runtime.session(f"{name}-{seed}")

            async def run(
                spans: list[tuple[float, float]], session: SessionDiarizer, x: np.ndarray
            ) -> list[SpeakerDecision]:
                return [
                    await session.decide(a, b, x[round(a * RATE) : round(b * RATE)])
                    for a, b in spans
                ]

            decisions = anyio.run(run, caption_spans(regions, seed=seed), session, x)
            scores.append(score(r, as_emitted(decisions)))
        out[name] = {
            "der_collar0_mean": round(float(np.mean([s[0] for s in scores])), 3),
            "der_collar0_worst": round(max(s[0] for s in scores), 3),
            "der_collar025_mean": round(float(np.mean([s[1] for s in scores])), 3),
            "der_collar025_worst": round(max(s[1] for s in scores), 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=4)
    args = parser.parse_args()
    result: dict[str, object] = {"embedding": embedding_cost()}
    print("embedding", result["embedding"])
    for n in sorted({1, args.sessions}):
        runtime = DiarizationRuntime(DiarizationSettings(), embedder=shared_ge2e())
        lags, ders = anyio.run(replay, runtime, n)
        result[f"decision_lag_{n}_sessions"] = {
            **summary_ms(lags),
            "der_collar0_mean": round(float(np.mean(ders)), 3),
            "windows_per_batch": round(
                runtime.worker.windows_embedded / max(1, runtime.worker.batches), 2
            ),
        }
        print(f"{n} sessions", result[f"decision_lag_{n}_sessions"])
    result["der"] = quality()
    for name, v in result["der"].items():  # type: ignore[attr-defined]
        print(name, v)
    write_result("diarization_cost", result)


if __name__ == "__main__":
    main()
