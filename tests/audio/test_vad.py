"""VAD backends on real speech (espeak-ng) and silence; batching across streams."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import numpy as np
import numpy.typing as npt
import pytest

from pipelines.audio.vad import SileroVad, WebRtcGate, WebRtcVad
from pipelines.audio.vad_batcher import VadBatcher

Audio = npt.NDArray[np.float32]


def frames(x: Audio, size: int) -> Audio:
    n = len(x) // size
    return x[: n * size].reshape(n, size)


@pytest.fixture(scope="module")
def speech(say: Callable[..., Audio]) -> Audio:
    return say("The quick brown fox jumps over the lazy dog.")


def test_silero_hears_speech_and_not_silence(silero: SileroVad, speech: Audio) -> None:
    stream = silero.open_stream()
    try:
        quiet = silero.speech_probs({stream: frames(np.zeros(16000, np.float32), 512)})[stream]
        loud = silero.speech_probs({stream: frames(speech, 512)})[stream]
    finally:
        silero.close_stream(stream)
    assert quiet.max() < 0.1
    assert np.mean(loud > 0.5) > 0.5


def test_silero_streams_in_one_batch_match_streams_run_alone(
    silero: SileroVad, speech: Audio
) -> None:
    noise = (np.random.default_rng(1).standard_normal(len(speech)) * 0.01).astype(np.float32)
    inputs = {"speech": frames(speech, 512), "noise": frames(noise, 512)[:20]}
    alone = {}
    for name, fr in inputs.items():
        s = silero.open_stream()
        alone[name] = silero.speech_probs({s: fr})[s]
        silero.close_stream(s)
    ids = {name: silero.open_stream() for name in inputs}
    together = silero.speech_probs({ids[n]: fr for n, fr in inputs.items()})
    for name, s in ids.items():
        assert np.allclose(together[s], alone[name], atol=1e-4)
        silero.close_stream(s)
    assert silero.speech_probs({12345: inputs["noise"]}) == {}  # closed/unknown: nothing


def test_webrtc_backend_and_gate(speech: Audio) -> None:
    vad = WebRtcVad(mode=3)
    s = vad.open_stream()
    voiced = vad.speech_probs({s: frames(speech, 480)})[s]
    silent = vad.speech_probs({s: frames(np.zeros(4800, np.float32), 480)})[s]
    vad.close_stream(s)
    assert voiced.mean() > 0.5 and silent.max() == 0.0
    gate = WebRtcGate(hangover_s=0.2)
    assert not any(gate.open_for(f) for f in frames(np.zeros(8000, np.float32), 512))
    assert any(gate.open_for(f) for f in frames(speech, 512))


@pytest.mark.anyio
async def test_batcher_runs_concurrent_streams_together(silero: SileroVad, speech: Audio) -> None:
    batcher = VadBatcher(silero)
    streams = [silero.open_stream() for _ in range(4)]
    results: dict[int, list[Audio]] = {s: [] for s in streams}
    blocks = frames(speech, 512 * 6)

    async def one(stream: int) -> None:
        for block in blocks:
            results[stream].append(await batcher.speech_probs(stream, block.reshape(6, 512)))

    async with anyio.create_task_group() as tg:
        for s in streams:
            tg.start_soon(one, s)
    first = np.concatenate(results[streams[0]])
    for s in streams:
        assert np.allclose(np.concatenate(results[s]), first, atol=1e-4)
        silero.close_stream(s)
    assert batcher.largest_batch > 1  # streams shared calls
    assert batcher.batches < 4 * len(blocks)
