"""Does a caption session fed faster than real time keep up? The long synthetic
conversation through ``CaptionPipeline`` (no server) at ``--speed`` times real time,
with the catch-up rule (a session more than ``behind_s`` behind skips partials) on
and off, alternating in one run; reports the median lag of finals per minute of audio.

    .venv/bin/python -m bench.captions_catchup [--minutes 5] [--speed 8] [--rounds 1]

Writes bench/results/captions_catchup.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import AsyncIterator

import anyio
import numpy as np

from bench.common import write_result
from pipelines.audio.asr import FasterWhisperBackend
from pipelines.audio.caption_pipeline import CaptionPipeline
from pipelines.audio.runtime import CaptionRuntime, CaptionSettings
from pipelines.audio.vad import SileroVad
from sessions.config import SessionConfig
from sessions.events import CaptionFinal, ServerEvent
from sessions.inputs import AudioChunk, AudioEnd, PipelineInput
from sessions.pipeline import PipelineContext
from sessions.tenants import TenantPolicy
from tests.audio.assets import to_pcm16
from tests.audio.diarization_assets import long_conversation


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[float, ServerEvent]] = []

    def emit(self, event: ServerEvent) -> None:
        self.events.append((time.monotonic(), event))


async def one_run(runtime: CaptionRuntime, pcm: bytes, speed: float) -> list[tuple[float, float]]:
    """(word end, lag) for every word: arrival of its final - when its chunk was fed."""
    fed: list[tuple[float, float]] = []
    step = 16000 * 2 // 4  # 0.25 s chunks

    async def inputs() -> AsyncIterator[PipelineInput]:
        t0 = time.monotonic()
        for k, i in enumerate(range(0, len(pcm), step)):
            end_s = min(len(pcm), i + step) / 32000
            await anyio.sleep(max(0.0, t0 + end_s / speed - time.monotonic()))
            now = time.monotonic()
            fed.append((end_s, now))
            yield AudioChunk(pcm[i : i + step], k, now)
        yield AudioEnd(time.monotonic())

    sink = Sink()
    ctx = PipelineContext("catchup", TenantPolicy("bench"), SessionConfig(mode="caption"))
    await CaptionPipeline(ctx, runtime).run(inputs(), sink)
    ends = [e for e, _ in fed]
    out = []
    for at, ev in sink.events:
        if isinstance(ev, CaptionFinal):
            for w in ev.words or ():
                i = min(int(np.searchsorted(ends, w.end - 1e-9)), len(fed) - 1)
                out.append((w.end, at - fed[i][1]))
    return out


def per_minute(lags: list[tuple[float, float]]) -> list[float | None]:
    top = int(max(e for e, _ in lags) // 60) + 1
    return [
        round(float(np.median(v)), 2)
        if (v := [x for e, x in lags if m * 60 <= e < m * 60 + 60])
        else None
        for m in range(top)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--speed", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    pcm = to_pcm16(long_conversation(args.minutes))
    base = CaptionSettings()
    asr, vad = FasterWhisperBackend(base.asr), SileroVad()
    rows = []
    for r in range(args.rounds):
        for catch_up in (False, True) if r % 2 == 0 else (True, False):
            # behind_s also sets the "behind" metric; only this bench turns it off.
            settings = dataclasses.replace(base, behind_s=3.0 if catch_up else 1e9)
            runtime = CaptionRuntime(settings, asr=asr, vad=vad)
            lags = anyio.run(one_run, runtime, pcm, args.speed)
            row = {"catch_up": catch_up, "round": r, "median_lag_per_minute_s": per_minute(lags)}
            rows.append(row)
            print(row, flush=True)
    write_result(
        "captions_catchup",
        {"minutes": args.minutes, "speed": args.speed, "runs": rows, "load": os.getloadavg()},
    )


if __name__ == "__main__":
    main()
