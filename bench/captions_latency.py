"""Caption latency bench: audio fed in real time through ``CaptionPipeline`` (no
server), for 1..N concurrent streams sharing one ASR worker.

    .venv/bin/python -m bench.captions_latency --streams 1 2 4 [--wav FILE]

Figures, per stream count:
- word latency: end of a word in the audio → the final holding it is emitted;
- partial latency: end of the newest word in a partial → the partial is emitted;
- ASR RTF: decode compute / decoded audio; CPU RTF: process CPU / audio fed;
- WER of the finals against the reference (the pyannote sample's transcript).
Prints a table and writes bench/results/captions_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from pipelines.audio.asr import AsrResult, AsrSettings, FasterWhisperBackend
from pipelines.audio.caption_pipeline import CaptionPipeline
from pipelines.audio.runtime import CaptionRuntime, CaptionSettings
from pipelines.audio.scheduler import LoadGovernor
from sessions.config import SessionConfig
from sessions.events import CaptionFinal, CaptionPartial, ServerEvent
from sessions.inputs import AudioChunk, AudioEnd, PipelineInput
from sessions.pipeline import PipelineContext
from sessions.tenants import TenantPolicy
from tests.audio.assets import pyannote_sample, read_wav

ROOT = Path(__file__).resolve().parent.parent


class RecordingBackend:
    """Wraps the real backend to total compute and audio time."""

    def __init__(self, inner: FasterWhisperBackend) -> None:
        self.inner, self.name = inner, inner.name
        self.compute_s = self.audio_s = 0.0
        self.calls = 0

    def transcribe(self, audio: Any, prompt: str) -> AsrResult:
        result = self.inner.transcribe(audio, prompt)
        self.compute_s += result.compute_s
        self.audio_s += result.audio_s
        self.calls += 1
        if os.environ.get("BENCH_TRACE"):
            print(f"decode {result.audio_s:5.2f}s in {result.compute_s:.3f}s", file=sys.stderr)
        return result


@dataclass
class TimedSink:
    t0: float = 0.0
    events: list[tuple[float, ServerEvent]] = field(default_factory=list)

    def emit(self, event: ServerEvent) -> None:
        self.events.append((time.monotonic(), event))


async def feed(
    audio: np.ndarray, sink: TimedSink, chunk_s: float, speed: float, delay_s: float
) -> AsyncIterator[PipelineInput]:
    await anyio.sleep(delay_s)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    step = int(16000 * chunk_s) * 2
    sink.t0 = t0 = time.monotonic()
    for k, i in enumerate(range(0, len(pcm), step)):
        due = t0 + (i + step) / 2 / 16000 / speed  # a chunk is sent once it was "spoken"
        await anyio.sleep(max(0.0, due - time.monotonic()))
        yield AudioChunk(pcm[i : i + step], k, time.monotonic())
    yield AudioEnd(time.monotonic())


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def summarize(sinks: list[TimedSink], speed: float, reference: str) -> dict[str, Any]:
    import jiwer

    word_lat: list[float] = []
    partial_lat: list[float] = []
    wers: list[float] = []
    norm = jiwer.Compose(
        [
            jiwer.ToLowerCase(),
            jiwer.RemovePunctuation(),  # type: ignore[no-untyped-call]
            jiwer.RemoveMultipleSpaces(),
            jiwer.Strip(),
        ]
    )
    for sink in sinks:
        text: list[str] = []
        for at, ev in sink.events:
            if isinstance(ev, CaptionFinal):
                text.append(ev.text)
                word_lat += [at - (sink.t0 + w.end / speed) for w in ev.words or ()]
            elif isinstance(ev, CaptionPartial) and ev.text:
                partial_lat.append(at - (sink.t0 + ev.end / speed))
        wers.append(jiwer.wer(norm(reference), norm(" ".join(text) or "-")))
        if os.environ.get("BENCH_TRACE"):
            print(" | ".join(text), file=sys.stderr)
    return {
        "word_latency_p50_s": pct(word_lat, 50),
        "word_latency_p90_s": pct(word_lat, 90),
        "partial_latency_p50_s": pct(partial_lat, 50),
        "partial_latency_p90_s": pct(partial_lat, 90),
        "words": len(word_lat),
        "partials": len(partial_lat),
        "wer_mean": round(float(np.mean(wers)), 3),
    }


async def run_streams(
    runtime: CaptionRuntime, audio: np.ndarray, n: int, args: Any, reference: str
) -> dict[str, Any]:
    runtime.worker.governor = LoadGovernor()  # each run starts from a calm worker
    backend = runtime.worker.backend
    assert isinstance(backend, RecordingBackend)
    sinks = [TimedSink() for _ in range(n)]
    config = SessionConfig(mode="caption")
    backend.compute_s = backend.audio_s = 0.0
    backend.calls = 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    async with anyio.create_task_group() as tg:
        for i in range(n):
            ctx = PipelineContext(f"bench-{i}", TenantPolicy("bench"), config)
            pipeline = CaptionPipeline(ctx, runtime)
            tg.start_soon(
                pipeline.run, feed(audio, sinks[i], args.chunk_s, args.speed, i * 0.37), sinks[i]
            )
    audio_s = len(audio) / 16000 * n
    out = summarize(sinks, args.speed, reference)
    out.update(
        {
            "streams": n,
            "asr_rtf": round(backend.compute_s / max(backend.audio_s, 1e-9), 3),
            "cpu_rtf": round((time.process_time() - cpu0) / audio_s, 3),
            "decodes": backend.calls,
            "wall_s": round(time.monotonic() - wall0, 1),
            "load_level_at_end": runtime.worker.load.value,
        }
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wav", type=Path, help="16 kHz mono WAV (default: pyannote sample)")
    ap.add_argument("--ref", type=Path, help="reference text of --wav (bench.corpus writes one)")
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--chunk-s", type=float, default=0.1)
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--encoder-window",
        type=float,
        default=AsrSettings().encoder_window_s,
        help="seconds of padded audio the encoder sees (30: Whisper's standard)",
    )
    ap.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "captions_latency.json"
    )
    args = ap.parse_args()
    reference = ""
    if args.wav is None:
        sample = pyannote_sample()
        args.wav, reference = sample.wav, sample.reference_text()
    elif args.ref is not None:
        reference = args.ref.read_text()
    audio = read_wav(args.wav)
    settings = CaptionSettings(
        asr=AsrSettings(workers=args.workers, encoder_window_s=args.encoder_window)
    )
    backend = RecordingBackend(FasterWhisperBackend(settings.asr))
    runtime = CaptionRuntime(settings, asr=backend)
    rows = []
    for n in args.streams:
        row = anyio.run(run_streams, runtime, audio, n, args, reference)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "bench": "captions_latency",
        "wav": str(args.wav),
        "speed": args.speed,
        "chunk_s": args.chunk_s,
        "workers": args.workers,
        "encoder_window_s": args.encoder_window,
        "load_average_after": os.getloadavg(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "backend": backend.name,
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'streams':>7} {'word p50':>8} {'p90':>6} {'partial p50':>11} {'RTF':>5} {'WER':>5}")
    for r in rows:
        print(
            f"{r['streams']:>7} {r['word_latency_p50_s']!s:>8} {r['word_latency_p90_s']!s:>6} "
            f"{r['partial_latency_p50_s']!s:>11} {r['asr_rtf']:>5} {r['wer_mean']:>5}"
        )


if __name__ == "__main__":
    main()
