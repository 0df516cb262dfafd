"""The ``voice_agent`` mode's ``PipelineProvider``: the caption models and the LLM,
each loaded once per process and shared with the ``caption`` and ``agent`` modes
where their settings agree; one ``VoiceAgentPipeline`` per session.

Its options are the server's ``[pipeline_options.voice_agent]`` table::

    [pipeline_options.voice_agent]
    end_of_turn_s = 0.5          # silence that ends the user's turn (docs/voice.md)
    final_wait_s = 3.0           # longest wait for the last caption after speech stops
    barge_in = true              # speech during an answer cancels it
    caption = { vad = "silero", min_silence_s = 0.3 }     # as [pipeline_options.caption]
    agent = { agent = { max_tokens = 128 } }              # as [pipeline_options.agent]
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from pipelines.audio.caption_pipeline import CaptionPipeline
from pipelines.audio.diarization_stage import DiarizationRuntime, settings_from_env
from pipelines.audio.provider import CaptionOptions
from pipelines.audio.runtime import CaptionRuntime, runtime_for
from pipelines.options import parse_options
from pipelines.text.provider import ENGINES, AgentOptions, AgentProvider, EngineCache
from pipelines.voice.pipeline import VoiceAgentPipeline
from pipelines.voice.turn_taking import TurnTakingSettings
from sessions.pipeline import PipelineContext

log = logging.getLogger("parley.voice")


class VoiceAgentOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    end_of_turn_s: float = Field(default=0.5, ge=0.0, le=10.0)
    final_wait_s: float = Field(default=3.0, gt=0.0, le=30.0)
    barge_in: bool = True
    max_utterance_chars: int = Field(default=4000, ge=1)
    caption: CaptionOptions = CaptionOptions()
    agent: AgentOptions = AgentOptions()

    def turn_taking(self) -> TurnTakingSettings:
        return TurnTakingSettings(
            end_of_turn_s=self.end_of_turn_s,
            final_wait_s=self.final_wait_s,
            barge_in=self.barge_in,
            max_utterance_chars=self.max_utterance_chars,
        )


def speaker_runtime() -> DiarizationRuntime | None:
    """The speaker encoder (its model is shared by the process), or None without the
    ``diarization`` extra: captions then carry no speaker labels."""
    try:
        return DiarizationRuntime(settings_from_env())
    except ImportError as exc:
        log.warning("speaker labels unavailable", extra={"why": str(exc)})
        return None


class VoiceAgentProvider:
    def __init__(self, options: VoiceAgentOptions, *, engines: EngineCache = ENGINES) -> None:
        self.options = options
        self.agents = AgentProvider(options.agent, engines=engines)
        self.runtime: CaptionRuntime | None = None
        self.speakers: DiarizationRuntime | None = None

    async def start(self) -> None:
        """Load (or take from another mode) the caption models and the engine, off
        the event loop."""
        settings = self.options.caption.settings()
        self.runtime = await anyio.to_thread.run_sync(runtime_for, settings)
        if self.options.caption.diarization:
            self.speakers = await anyio.to_thread.run_sync(speaker_runtime)
        await self.agents.start()

    def create(self, context: PipelineContext) -> VoiceAgentPipeline:
        if self.runtime is None:
            raise RuntimeError("the voice_agent provider was not started")
        return VoiceAgentPipeline(
            context,
            CaptionPipeline(context, self.runtime, diarization=self.speakers),
            self.agents.create(context),
            self.options.turn_taking(),
            speech_pad_s=self.runtime.settings.endpoint.pad_s,
        )

    async def aclose(self) -> None:
        # Caption and speaker models are shared: freed with the last session holding them.
        self.runtime = self.speakers = None
        await self.agents.aclose()


def create_provider(options: dict[str, Any]) -> VoiceAgentProvider:
    """The provider for ``[pipeline_options.voice_agent]``; ValueError names a bad option."""
    return VoiceAgentProvider(parse_options(VoiceAgentOptions, options, "voice_agent"))
