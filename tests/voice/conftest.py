"""Real parts for the voice tests, each loaded once per test session: the caption
runtime (the process's shared one, as the provider takes it), one llama.cpp engine
from the process's engine cache, and espeak-ng speech."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import anyio
import numpy as np
import numpy.typing as npt
import pytest

from pipelines.audio.provider import CaptionOptions
from pipelines.audio.runtime import CaptionRuntime, runtime_for
from pipelines.text.engine import LlmEngine
from pipelines.text.engines import EngineSettings
from pipelines.text.llama_engine import LlamaSettings
from pipelines.text.provider import ENGINES
from tests.audio import assets

Audio = npt.NDArray[np.float32]

# What the voice tests' engine is built with; provider tests that ask for the same
# settings get this very engine back from the cache.
ENGINE_SETTINGS = EngineSettings(llama=LlamaSettings(n_ctx=2048, n_threads=1, max_queue=8))


@pytest.fixture(scope="session")
def runtime() -> CaptionRuntime:
    return runtime_for(CaptionOptions().settings())


@pytest.fixture(scope="session")
def engine() -> Iterator[LlmEngine]:
    held = anyio.run(ENGINES.acquire, ENGINE_SETTINGS)
    yield held
    anyio.run(ENGINES.release, held)


@pytest.fixture(scope="session")
def say() -> Callable[..., Audio]:
    """``say(text, voice=...)``: espeak-ng speech, synthesized once per text."""
    return assets.say
