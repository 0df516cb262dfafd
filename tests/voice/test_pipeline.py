"""The voice pipeline as transcripts: a live microphone in, captions and agent turns
out, on the real caption models and the real llama.cpp engine.

The model is a small base model: these tests assert order, status and timing
properties, never what it wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import numpy as np
import pytest

from pipelines.audio.runtime import CaptionRuntime
from pipelines.text.agent import AgentSettings
from pipelines.text.engine import LlmEngine
from pipelines.voice.pipeline import _Arrivals
from pipelines.voice.turn_taking import TurnTakingSettings
from sessions.config import AudioFormat, SessionConfig
from sessions.events import (
    CaptionFinal,
    ErrorEvent,
    SpeechStarted,
    SpeechStopped,
    TokenDelta,
    TurnDone,
)
from sessions.inputs import AudioChunk, CancelRequest, UserText
from tests.voice.harness import STORY, voice_session
from tests.voice.microphone import Audio

pytestmark = pytest.mark.anyio

Say = Callable[..., Audio]


def padded(speech: Audio, after_s: float = 0.3) -> Audio:
    return np.concatenate([speech, np.zeros(int(16000 * after_s), dtype=np.float32)])


# -- the audio clock ----------------------------------------------------------------


def test_arrivals_follow_the_declared_format_and_skip_duplicates() -> None:
    clock = _Arrivals(AudioFormat())
    clock.mark(AudioChunk(b"\0" * 3200, 0, received_at=10.0))  # 0.1 s
    clock.mark(AudioChunk(b"\0" * 3200, 0, received_at=11.0))  # a duplicate: no time
    clock.mark(AudioChunk(b"\0" * 3200, 1, received_at=12.0))
    assert clock.arrival_of(0.05) == 10.0
    assert clock.arrival_of(0.15) == 12.0
    assert clock.arrival_of(99.0) == 12.0  # not yet heard: the latest arrival
    clock.reformat(AudioFormat(sample_rate=48000, channels=2))  # 192000 bytes/s
    clock.mark(AudioChunk(b"\0" * 19200, 5, received_at=13.0))  # +0.1 s, after a gap
    assert clock.arrival_of(0.25) == 13.0


def test_arrivals_of_an_empty_or_hostile_stream() -> None:
    clock = _Arrivals(AudioFormat())
    assert clock.arrival_of(0.0) is None
    clock.mark(AudioChunk(b"", 0, received_at=1.0))  # empty
    clock.mark(AudioChunk(b"\0" * 7, -3, received_at=2.0))  # odd size, no index
    assert clock.arrival_of(0.0) == 1.0
    assert clock.arrival_of(1e-4) == 2.0


# -- speech turns -------------------------------------------------------------------


# 0.3 s: the last final comes after the silence is long enough, and starts the turn;
# 2.0 s: the final is in first, and the timer starts the turn when the silence is.
@pytest.mark.parametrize("end_of_turn_s", [0.3, 2.0])
async def test_a_spoken_question_becomes_a_speech_turn(
    runtime: CaptionRuntime, engine: LlmEngine, say: Say, end_of_turn_s: float
) -> None:
    async with voice_session(
        runtime,
        engine,
        agent=AgentSettings(max_tokens=16),
        turn_taking=TurnTakingSettings(end_of_turn_s=end_of_turn_s),
    ) as session:
        await anyio.sleep(0.3)
        spoken = session.mic.say(padded(say("What time is it?")))
        started = await session.sink.turn_started("speech")
        done = await session.sink.turn_done(started.turn_id)
    sink = session.sink
    events = sink.events
    types = [type(e) for e in events]
    first_turn_event = events.index(started)
    assert SpeechStarted in types[:first_turn_event]
    assert SpeechStopped in types[:first_turn_event]
    finals = [e for e in events[:first_turn_event] if isinstance(e, CaptionFinal)]
    assert "time" in " ".join(f.text for f in finals).lower()
    turn = sink.of_turn(started.turn_id)
    assert turn[0] is started and turn[-1] is done
    assert all(isinstance(e, TokenDelta) for e in turn[1:-1]) and len(turn) > 2
    assert done.status in ("completed", "length")
    # The latency clock starts at the end of speech: no earlier than the silence that
    # ends a turn, and the turn waits for that silence after the speech was sent.
    assert spoken.end_sent_at is not None
    assert sink.time_of(started) >= spoken.end_sent_at + end_of_turn_s
    assert done.timings["ttft_ms"] >= end_of_turn_s * 1000
    if end_of_turn_s > 1:  # the timer, not an event, started it: and on time
        assert sink.time_of(finals[-1]) < sink.time_of(started) - 0.1
        assert sink.time_of(started) < spoken.end_sent_at + end_of_turn_s + 0.5
    assert done.timings["ttft_ms"] >= done.timings["queue_ms"]


async def test_speech_over_an_answer_cancels_it_then_becomes_the_next_turn(
    runtime: CaptionRuntime, engine: LlmEngine, say: Say
) -> None:
    async with voice_session(runtime, engine, agent=AgentSettings(max_tokens=1000)) as session:
        sink = session.sink
        await session.inputs.send(UserText(STORY, "m1", time.monotonic()))
        first = await sink.wait_for(lambda e: isinstance(e, TokenDelta))
        assert isinstance(first, TokenDelta)
        story = first.turn_id
        session.mic.say(padded(say("Stop, wait a moment.")))
        done = await sink.turn_done(story)
        assert (done.status, done.reason) == ("cancelled", "barge_in")
        assert done.usage.output_tokens < 1000
        barged = [e for e in sink.events if isinstance(e, SpeechStarted)][-1]
        # The barge-in reaches the engine at once: done follows speech.started.
        assert sink.time_of(done) - sink.time_of(barged) < 2.0
        after = sink.events.index(done)
        spoken = await sink.turn_started("speech", after=after)
    events = sink.events
    assert [e for e in events[after + 1 :] if getattr(e, "turn_id", None) == story] == []
    heard = [e for e in events if isinstance(e, CaptionFinal)]
    assert "stop" in " ".join(f.text for f in heard).lower()
    # The user's interruption is the next turn; the session then closed under it.
    last = sink.of_turn(spoken.turn_id)[-1]
    assert isinstance(last, TurnDone)
    assert (last.status, last.reason) == ("cancelled", "session_closed")


async def test_without_barge_in_speech_leaves_the_answer_running(
    runtime: CaptionRuntime, engine: LlmEngine, say: Say
) -> None:
    async with voice_session(
        runtime,
        engine,
        agent=AgentSettings(max_tokens=1000),
        turn_taking=TurnTakingSettings(barge_in=False),
    ) as session:
        sink = session.sink
        await session.inputs.send(UserText(STORY, "m1", time.monotonic()))
        first = await sink.wait_for(lambda e: isinstance(e, TokenDelta))
        assert isinstance(first, TokenDelta)
        session.mic.say(padded(say("Stop.")))
        await sink.wait_for(lambda e: isinstance(e, SpeechStopped))
        assert [e for e in sink.of_turn(first.turn_id) if isinstance(e, TurnDone)] == []
        await session.inputs.send(CancelRequest(first.turn_id, time.monotonic()))
        done = await sink.turn_done(first.turn_id)
    assert (done.status, done.reason) == ("cancelled", "client")


# -- text beside speech -------------------------------------------------------------


async def test_text_and_cancel_reach_the_agent(runtime: CaptionRuntime, engine: LlmEngine) -> None:
    async with voice_session(
        runtime, engine, agent=AgentSettings(max_tokens=8), microphone=False
    ) as session:
        sink = session.sink
        await session.inputs.send(UserText("Say hello.", "m1", time.monotonic()))
        started = await sink.turn_started("text")
        assert started.input_id == "m1"
        assert (await sink.turn_done(started.turn_id)).status in ("completed", "length")
        await session.inputs.send(UserText(STORY, "m2", time.monotonic()))
        second = await sink.turn_started("text", after=sink.events.index(started) + 1)
        await session.inputs.send(CancelRequest(None, time.monotonic()))
        done = await sink.turn_done(second.turn_id)
    assert (done.status, done.reason) == ("cancelled", "client")


async def test_when_captions_stop_the_agent_still_answers_text(
    runtime: CaptionRuntime, engine: LlmEngine
) -> None:
    # A format the decoder refuses (the edge normally rejects it): the caption stages
    # end with a fatal error, and audio that follows is dropped, not an exception.
    broken = SessionConfig.model_construct(
        mode="voice_agent", audio=AudioFormat.model_construct(sample_rate=16000, channels=5)
    )
    async with voice_session(
        runtime, engine, agent=AgentSettings(max_tokens=8), config=broken, microphone=False
    ) as session:
        sink = session.sink
        error = await sink.wait_for(lambda e: isinstance(e, ErrorEvent))
        assert isinstance(error, ErrorEvent) and error.fatal and error.code == "unsupported"
        for k in range(40):  # more than the queue to the caption stages holds
            await session.inputs.send(AudioChunk(b"\0" * 320, k, time.monotonic()))
        await session.inputs.send(UserText("Say hello.", None, time.monotonic()))
        started = await sink.turn_started("text")
        done = await sink.turn_done(started.turn_id)
    assert done.status in ("completed", "length")
