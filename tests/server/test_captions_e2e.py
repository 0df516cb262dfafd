"""``caption`` mode end to end: the real server process with its default caption
provider (VAD, faster-whisper tiny.en and the speaker encoder, loaded once for the
module) and a real websockets client speaking msgpack, audio paced like a live
microphone (docs/captions.md)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt
import pytest

from pipelines.audio.asr import AsrSettings, FasterWhisperBackend
from server.settings import Settings
from tests.audio.assets import Sample, espeak, pyannote_sample, read_wav, to_pcm16
from tests.audio.caption_client import CaptionRun, stream_captions
from tests.audio.diarization_assets import (
    TWO_SPEAKERS,
    conversation,
    long_conversation,
)
from tests.audio.helpers import wer
from tests.support.client import Client
from tests.support.server import NUMBERED, ServerProcess, run_server

pytestmark = pytest.mark.anyio
Audio = npt.NDArray[np.float32]
RATE = 16000
MAX_FRAME = 256 * 1024

FIRST = "Hello, my name is John and I live in London."
SECOND = "Can you tell me where the nearest station is?"


@pytest.fixture(scope="module")
def captions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The default caption provider; agent mode gets the numbered test pipeline (it is
    only here to receive audio it must refuse)."""
    config = {
        "limits": {"max_frame_bytes": MAX_FRAME},
        "pipelines": {"caption": Settings().pipelines["caption"], "agent": NUMBERED},
    }
    with run_server(tmp_path_factory.mktemp("captions"), config) as server:
        yield server


@pytest.fixture(scope="module")
def sample() -> Sample:
    return pyannote_sample()


@pytest.fixture(scope="module")
def two_sentences() -> Audio:
    quiet = np.zeros(RATE, dtype=np.float32)
    return np.concatenate([quiet, espeak(FIRST), quiet, espeak(SECOND), quiet])


def heard_both(run: CaptionRun) -> bool:
    return wer(f"{FIRST} {SECOND}", run.text()) <= 0.2


def check_timeline(run: CaptionRun, duration: float) -> None:
    """Finals numbered 0, 1, 2, …; words in order on the session timeline and inside
    the speech the VAD reported; partials before their finals."""
    finals = run.finals()
    assert [f["segment"] for f in finals] == list(range(len(finals)))
    words = [w for f in finals for w in f["words"]]
    assert all(a["start"] <= a["end"] <= b["start"] + 1e-6 for a, b in pairwise(words))
    assert all(w["start"] >= 0.0 and w["end"] <= duration + 1e-6 for w in words)
    assert all(f["start"] == f["words"][0]["start"] for f in finals)
    assert all(f["end"] == f["words"][-1]["end"] for f in finals)
    marks = run.of_type("speech.started", "speech.stopped")
    kinds = [m["type"] for m in marks]
    assert kinds == ["speech.started", "speech.stopped"] * (len(kinds) // 2)
    ats = [m["at"] for m in marks]
    assert ats == sorted(ats)
    spans = list(zip(ats[::2], ats[1::2], strict=True))
    # Whisper's word times are good to a couple of tenths of a second: a last word's
    # end may be stretched over the silence after it, past the VAD's stop.
    assert all(any(a - 0.05 <= w["start"] and w["end"] <= b + 0.3 for a, b in spans) for w in words)
    shown = -1  # the last final received: a partial for it or before it is stale
    for m in run.of_type("caption.final", "caption.partial"):
        if m["type"] == "caption.final":
            shown = m["segment"]
        else:
            assert m["segment"] > shown, m


async def test_a_phone_call_in_real_time_is_captioned_close_to_offline(
    captions: ServerProcess, sample: Sample
) -> None:
    audio = read_wav(sample.wav)
    run = await stream_captions(captions.url, to_pcm16(audio), speed=1.0)
    assert run.closed is not None and run.closed.code == 1000
    duration = len(audio) / RATE
    check_timeline(run, duration)
    offline = FasterWhisperBackend(AsrSettings(workers=1)).transcribe(audio, "")
    offline_text = " ".join(w.text for s in offline.segments for w in s.words)
    reference = sample.reference_text()
    streamed_wer, offline_wer = wer(reference, run.text()), wer(reference, offline_text)
    latencies = sorted(lat for _, lat in run.word_latencies())
    p50 = latencies[len(latencies) // 2]
    # Measured on the shared 2-core machine: offline 0.16; streamed 0.148 (with a
    # 30 s encoder window 0.15-0.20, and 0.27 once in a loaded run); word latency
    # p50 0.58 s.
    assert streamed_wer <= offline_wer + 0.08, (streamed_wer, offline_wer, run.text())
    assert p50 < 4.0, p50


async def test_silence_and_noise_give_no_captions(captions: ServerProcess) -> None:
    rng = np.random.default_rng(11)
    inputs = {
        "silence": np.zeros(RATE * 6, dtype=np.float32),
        "hum": (0.02 * rng.standard_normal(RATE * 6)).astype(np.float32),
        "noise": (0.3 * rng.standard_normal(RATE * 6)).astype(np.float32),
    }
    runs: dict[str, CaptionRun] = {}

    async def one(name: str, audio: Audio) -> None:
        runs[name] = await stream_captions(captions.url, to_pcm16(audio), speed=4.0)

    async with anyio.create_task_group() as tg:
        for name, audio in inputs.items():
            tg.start_soon(one, name, audio)
    for name, run in runs.items():
        said = [m for m in run.of_type("caption.final", "caption.partial") if m["text"]]
        assert said == [], (name, said)
        assert run.of_type("error") == [], name
        assert run.closed is not None and run.closed.code == 1000
    assert runs["silence"].of_type("speech.started") == []


@pytest.mark.slow
async def test_a_long_session_sent_fast_does_not_fall_behind(captions: ServerProcess) -> None:
    audio = long_conversation(10.2)
    # 7x real time: the most this shared 2-core machine sustains for one session
    # with some margin (about 8x measured); TCP pushes back on the sender beyond it.
    speed = 7.0
    run = await stream_captions(captions.url, to_pcm16(audio), speed=speed, chunk_s=0.25)
    assert run.closed is not None and run.closed.code == 1000
    assert run.sent[-1][0] == pytest.approx(len(audio) / RATE)
    check_timeline(run, len(audio) / RATE)

    def median_lag(minute: int) -> float:
        lags = [
            lag
            for end, lag in run.word_latencies(by="sent")
            if minute * 60 <= end < minute * 60 + 60
        ]
        assert len(lags) > 50, minute
        return float(np.median(lags))

    first, last = median_lag(0), median_lag(9)
    # Measured at 7x: median lag 1.3-1.7 s in the first minute, 1.0-2.0 s in the
    # tenth; at 8x it grew to 5 s as other work took the cores (docs/captions.md).
    assert last <= first + 2.5, (first, last)


async def test_odd_sized_chunks_are_reassembled(
    captions: ServerProcess, two_sentences: Audio
) -> None:
    pcm = to_pcm16(two_sentences)
    cuts = np.cumsum(np.random.default_rng(4).integers(1, 4001, len(pcm) // 1000) | 1)
    odd = [pcm[a:b] for a, b in pairwise([0, *cuts.tolist(), len(pcm)]) if a < b]
    assert sum(len(p) % 2 for p in odd) > 10
    run = await stream_captions(captions.url, odd, speed=None)
    assert heard_both(run), run.text()


async def test_a_wrongly_declared_rate_plays_at_another_speed(
    captions: ServerProcess, two_sentences: Audio
) -> None:
    # 16 kHz audio declared as 8 kHz is heard at half speed: whatever comes out of
    # it, the session keeps one timeline and ends cleanly.
    pcm = to_pcm16(two_sentences)
    run = await stream_captions(captions.url, pcm, sample_rate=8000, speed=None)
    assert run.closed is not None and run.closed.code == 1000
    check_timeline(run, 2 * len(two_sentences) / RATE)


async def test_an_unsupported_rate_is_refused_at_hello(captions: ServerProcess) -> None:
    client = await Client.open(captions.url, "msgpack")
    audio = {"encoding": "pcm_s16le", "sample_rate": 12345, "channels": 1}
    await client.send(
        {"type": "hello", "v": 1, "token": "t", "session": {"mode": "caption", "audio": audio}}
    )
    closed = await client.closed()
    errors = [m for m in closed.received if m.get("type") == "error"]
    assert errors and errors[0]["code"] == "unsupported", closed.received
    await still_serving(captions)


async def test_garbage_bytes_give_no_captions(captions: ServerProcess) -> None:
    garbage = np.random.default_rng(9).integers(0, 256, RATE * 2 * 6, np.uint8).tobytes()
    run = await stream_captions(captions.url, garbage, speed=None)
    assert [m for m in run.of_type("caption.final", "caption.partial") if m["text"]] == []
    assert run.closed is not None and run.closed.code == 1000


async def test_a_frame_over_the_limit_closes_with_1009(captions: ServerProcess) -> None:
    client = await Client.open(captions.url, "msgpack")
    await client.hello(session={"mode": "caption"})
    await client.send({"type": "audio", "data": bytes(MAX_FRAME + 2), "chunk": 0})
    closed = await client.closed()
    assert closed.code == 1009
    await still_serving(captions)


async def test_audio_in_agent_mode_is_unsupported(captions: ServerProcess) -> None:
    client = await Client.open(captions.url, "msgpack")
    await client.hello(session={"mode": "agent"})
    await client.send({"type": "audio", "data": bytes(3200), "chunk": 0})
    got = await client.recv_until(lambda m: m.get("type") == "error")
    assert got[-1]["code"] == "unsupported", got
    await client.send({"type": "text", "text": "count 2"})  # the session still works
    replies = await client.recv_until(lambda m: m.get("segment") == 1)
    assert [m["segment"] for m in replies if "segment" in m] == [0, 1]
    await client.send({"type": "bye"})
    await client.closed()
    await still_serving(captions)


async def still_serving(server: ServerProcess) -> None:
    audio = np.concatenate([np.zeros(RATE // 2, dtype=np.float32), espeak(FIRST)])
    run = await stream_captions(server.url, to_pcm16(audio), speed=None)
    assert wer(FIRST, run.text()) <= 0.2, run.text()


async def test_two_voices_get_two_speaker_labels(captions: ServerProcess) -> None:
    audio, _ = conversation(TWO_SPEAKERS, gap_s=0.6)
    run = await stream_captions(
        captions.url, to_pcm16(audio), speed=4.0, session={"diarization": True}
    )
    assert run.of_type("error") == []
    merged: dict[str, Any] = {}
    for m in run.of_type("speaker.merged", "caption.final"):
        if m["type"] == "speaker.merged":
            merged[m["merged"]] = m["into"]
        else:
            assert m["speaker"] not in merged  # merges come before the captions they imply
    labels = [f["speaker"] for f in run.finals()]
    assert {"S1", "S2"} <= set(labels), labels
    assert labels.count(None) <= 1
    check_timeline(run, len(audio) / RATE)
