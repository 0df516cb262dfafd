"""The voice_agent mode's provider: options from the server config, and the models it
shares with the caption and agent modes of the same process."""

from __future__ import annotations

import pytest

from pipelines.audio.provider import CaptionOptions
from pipelines.audio.runtime import CaptionRuntime, runtime_for
from pipelines.text.engine import LlmEngine
from pipelines.text.provider import ENGINES, AgentOptions, AgentProvider
from pipelines.voice.pipeline import VoiceAgentPipeline
from pipelines.voice.provider import VoiceAgentProvider, create_provider
from sessions.config import SessionConfig
from sessions.pipeline import PipelineContext
from sessions.tenants import TenantPolicy
from tests.voice.conftest import ENGINE_SETTINGS


@pytest.mark.parametrize(
    ("options", "where"),
    [
        ({"end_of_turn_s": -1}, "end_of_turn_s"),
        ({"end_of_turn_s": "soon"}, "end_of_turn_s"),
        ({"final_wait_s": 0}, "final_wait_s"),
        ({"barge_in": "sometimes"}, "barge_in"),
        ({"caption": {"vad": "psychic"}}, "caption.vad"),
        ({"agent": {"agent": {"max_tokens": 0}}}, "agent.agent"),
        ({"agent": {"engine": {"engine": "gpt"}}}, "agent.engine.engine"),
        ({"turn_s": 1}, "turn_s"),
    ],
)
def test_bad_options_name_the_setting(options: dict[str, object], where: str) -> None:
    with pytest.raises(ValueError, match=rf"pipeline_options\.voice_agent\.{where}"):
        create_provider(options)


def test_options_become_turn_taking_settings() -> None:
    provider = create_provider({"end_of_turn_s": 0.8, "barge_in": False, "final_wait_s": 2})
    settings = provider.options.turn_taking()
    assert (settings.end_of_turn_s, settings.barge_in, settings.final_wait_s) == (0.8, False, 2)
    assert create_provider({}).options.turn_taking().end_of_turn_s == 0.5


def test_create_before_start_is_a_bug() -> None:
    context = PipelineContext("s", TenantPolicy("t"), SessionConfig(mode="voice_agent"))
    with pytest.raises(RuntimeError):
        create_provider({}).create(context)


def test_caption_runtime_is_shared_when_the_settings_agree(runtime: CaptionRuntime) -> None:
    settings = CaptionOptions().settings()
    assert runtime_for(settings) is runtime  # the process's, already loaded
    other = CaptionOptions(min_silence_s=0.5, workers=1).settings()
    own = runtime_for(other)
    assert own is not runtime and own.settings == other
    assert runtime_for(other) is own  # built once per settings


@pytest.mark.anyio
async def test_voice_and_agent_modes_share_the_loaded_models(
    runtime: CaptionRuntime, engine: LlmEngine
) -> None:
    options = {
        "agent": {"engine": ENGINE_SETTINGS.model_dump(), "agent": {"max_tokens": 8}},
        "caption": {"diarization": False},
        "end_of_turn_s": 0.4,
    }
    voice = create_provider(options)
    agents = AgentProvider(AgentOptions(engine=ENGINE_SETTINGS))
    assert isinstance(voice, VoiceAgentProvider)
    holders = ENGINES.users(engine)
    await voice.start()
    await agents.start()
    try:
        assert ENGINES.users(engine) == holders + 2  # no second copy of the model
        assert voice.runtime is runtime and voice.speakers is None
        context = PipelineContext("s1", TenantPolicy("t"), SessionConfig(mode="voice_agent"))
        pipeline = voice.create(context)
        assert isinstance(pipeline, VoiceAgentPipeline)
        assert pipeline.agent.engine is engine
        assert pipeline.agent.settings.max_tokens == 8
        assert pipeline.taker.settings.end_of_turn_s == 0.4
        assert pipeline.speech_pad_s == runtime.settings.endpoint.pad_s
        assert agents.create(context).engine is engine
    finally:
        await voice.aclose()
        await agents.aclose()
    assert ENGINES.users(engine) == holders
