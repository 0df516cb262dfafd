"""The caption provider: options validated at the edge, models loaded in start."""

from __future__ import annotations

import pytest

from pipelines.audio.caption_pipeline import CaptionPipeline
from pipelines.audio.provider import create_provider
from sessions.config import SessionConfig
from sessions.pipeline import PipelineContext
from sessions.tenants import TenantPolicy


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match=r"pipeline_options\.caption\.workers"):
        create_provider({"workers": 0})
    with pytest.raises(ValueError, match=r"pipeline_options\.caption\.colour"):
        create_provider({"colour": "blue"})


def test_options_reach_the_settings() -> None:
    settings = create_provider(
        {"workers": 1, "vad": "webrtc", "min_silence_s": 0.5, "partial_interval_s": 0.8}
    ).options.settings()
    assert settings.asr.workers == 1 and settings.vad == "webrtc"
    assert settings.endpoint.min_silence_s == 0.5
    assert settings.policy.partial_interval_s == 0.8


@pytest.mark.anyio
async def test_start_loads_the_models_and_create_makes_pipelines() -> None:
    provider = create_provider({"workers": 1, "vad": "webrtc"})
    context = PipelineContext("s", TenantPolicy("t"), SessionConfig(mode="caption"))
    with pytest.raises(RuntimeError):
        provider.create(context)
    await provider.start()
    assert isinstance(provider.create(context), CaptionPipeline)
    await provider.aclose()


@pytest.mark.anyio
async def test_the_speaker_encoder_is_loaded_only_when_offered() -> None:
    context = PipelineContext(
        "s", TenantPolicy("t"), SessionConfig(mode="caption", diarization=True)
    )
    without = create_provider({"workers": 1, "vad": "webrtc", "diarization": False})
    await without.start()
    assert without.diarization is None and without.create(context).diarization is None
    offered = create_provider({"workers": 1, "vad": "webrtc"})
    await offered.start()
    assert offered.diarization is not None
    assert offered.create(context).diarization is offered.diarization
    await without.aclose()
    await offered.aclose()
