"""Audio fixtures: real models (loaded once per test session), real speech."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import numpy.typing as npt
import pytest

from pipelines.audio.asr import AsrSettings, FasterWhisperBackend
from pipelines.audio.runtime import CaptionRuntime, CaptionSettings
from pipelines.audio.vad import SileroVad
from tests.audio.assets import Sample, espeak, pyannote_sample

Audio = npt.NDArray[np.float32]


@pytest.fixture(scope="session")
def asr_backend() -> FasterWhisperBackend:
    return FasterWhisperBackend(AsrSettings(workers=2))


@pytest.fixture(scope="session")
def silero() -> SileroVad:
    return SileroVad()


@pytest.fixture(scope="session")
def runtime(asr_backend: FasterWhisperBackend, silero: SileroVad) -> CaptionRuntime:
    return CaptionRuntime(CaptionSettings(), asr=asr_backend, vad=silero)


@pytest.fixture(scope="session")
def sample() -> Sample:
    return pyannote_sample()


@cache
def _spoken(text: str, voice: str) -> bytes:
    return espeak(text, voice=voice).tobytes()


@pytest.fixture(scope="session")
def say() -> Callable[..., Audio]:
    """``say(text, voice=...)``: espeak-ng speech, synthesized once per text."""

    def speak(text: str, voice: str = "en-us") -> Audio:
        return np.frombuffer(_spoken(text, voice), dtype=np.float32).copy()

    return speak
