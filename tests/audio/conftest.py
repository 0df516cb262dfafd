"""Audio fixtures: real models (loaded once per test session), real speech."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from pipelines.audio.asr import AsrSettings, FasterWhisperBackend
from pipelines.audio.runtime import CaptionRuntime, CaptionSettings
from pipelines.audio.vad import SileroVad
from tests.audio import assets
from tests.audio.assets import Sample, pyannote_sample

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


@pytest.fixture(scope="session")
def say() -> Callable[..., Audio]:
    """``say(text, voice=...)``: espeak-ng speech, synthesized once per text."""
    return assets.say
