"""A voice session without a server: the real caption and agent pipelines under a
``VoiceAgentPipeline``, fed by a live ``Microphone``, with every event timestamped."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from pipelines.audio.caption_pipeline import CaptionPipeline
from pipelines.audio.runtime import CaptionRuntime
from pipelines.text.agent import AgentPipeline, AgentSettings
from pipelines.text.engine import LlmEngine
from pipelines.voice.pipeline import VoiceAgentPipeline
from pipelines.voice.turn_taking import TurnTakingSettings
from sessions.config import SessionConfig
from sessions.events import TurnDone, TurnStarted
from sessions.inputs import AudioChunk, PipelineInput
from sessions.pipeline import PipelineContext
from sessions.tenants import TenantPolicy
from tests.support.sinks import TimedSink as BaseTimedSink
from tests.voice.microphone import Microphone
from tools.registry import ToolRegistry

# A prompt the small base model answers at length: turns that must still be running
# when the user speaks over them.
STORY = "Write a very long story about a dragon who learns to sing."


class TimedSink(BaseTimedSink):
    """The shared timed sink, with waits for speech turns."""

    async def turn_started(self, input: str, after: int = 0) -> TurnStarted:
        event = await self.wait_for(
            lambda e: (
                isinstance(e, TurnStarted) and e.input == input and self.events.index(e) >= after
            )
        )
        assert isinstance(event, TurnStarted)
        return event

    async def turn_done(self, turn_id: str) -> TurnDone:
        return await self.wait_done(turn_id)


@dataclass
class VoiceSession:
    pipeline: VoiceAgentPipeline
    sink: TimedSink
    inputs: MemoryObjectSendStream[PipelineInput]
    mic: Microphone


@asynccontextmanager
async def voice_session(
    runtime: CaptionRuntime,
    engine: LlmEngine,
    *,
    agent: AgentSettings | None = None,
    turn_taking: TurnTakingSettings | None = None,
    config: SessionConfig | None = None,
    microphone: bool = True,
    speed: float = 1.0,
) -> AsyncIterator[VoiceSession]:
    """A running session; leaving the block ends its input (the session closes)."""
    config = config or SessionConfig(mode="voice_agent")
    context = PipelineContext("voice-test", TenantPolicy("t", latency_budget_ms=60_000), config)
    pipeline = VoiceAgentPipeline(
        context,
        CaptionPipeline(context, runtime),
        AgentPipeline(context, engine, ToolRegistry(), settings=agent or AgentSettings()),
        turn_taking,
        speech_pad_s=runtime.settings.endpoint.pad_s,
    )
    send, receive = anyio.create_memory_object_stream[PipelineInput](64)
    chunk = 0

    async def pcm(data: bytes) -> None:
        nonlocal chunk
        await send.send(AudioChunk(data, chunk, time.monotonic()))
        chunk += 1

    sink = TimedSink()
    session = VoiceSession(pipeline, sink, send, Microphone(pcm, speed=speed))

    async def serve() -> None:
        async with receive:
            await pipeline.run(receive, sink)

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve)
        mic = anyio.CancelScope()

        async def listen() -> None:
            with mic:
                await session.mic.run()

        if microphone:
            tg.start_soon(listen)
        try:
            yield session
        finally:
            mic.cancel()
            await send.aclose()
