"""``voice_agent`` mode end to end: the real server process with its default providers
(faster-whisper and Silero for captions, llama.cpp for the agent, all from their PyPI
packages) and a real websockets client streaming espeak-ng speech as PCM in real
time, the way a microphone does.

The model is a small base model: these tests assert protocol properties (order, seq,
status, timing), never what it wrote.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import anyio
import numpy as np
import pytest

from server.settings import Settings
from tests.audio.assets import espeak
from tests.support.client import Client, Message, Timed
from tests.support.server import ServerProcess, run_server
from tests.voice.microphone import Audio, Microphone

pytestmark = pytest.mark.anyio

PIPELINES = Settings().pipelines
ENGINE = {"engine": "llama", "llama": {"n_ctx": 2048, "n_threads": 1}}
STORY = "Write a very long story about a dragon who learns to sing."


def voice_config(max_tokens: int, *, agent_mode: bool = False) -> dict[str, Any]:
    agent = {"engine": ENGINE, "agent": {"max_tokens": max_tokens}}
    config: dict[str, Any] = {
        "limits": {"heartbeat_s": 5.0},
        "pipelines": {"voice_agent": PIPELINES["voice_agent"]},
        # Speaker labels are not under test; their encoder would only slow the start.
        "pipeline_options": {"voice_agent": {"agent": agent, "caption": {"diarization": False}}},
    }
    if agent_mode:  # the same engine settings: both modes share one loaded model
        config["pipelines"]["agent"] = PIPELINES["agent"]
        config["pipeline_options"]["agent"] = agent
    return config


@pytest.fixture(scope="module")
def short_answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("voice")
    with run_server(tmp, voice_config(16, agent_mode=True)) as server:
        yield server


@pytest.fixture(scope="module")
def long_answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_server(tmp_path_factory.mktemp("voice_long"), voice_config(1000)) as server:
        yield server


@cache
def _spoken(text: str) -> bytes:
    speech = espeak(text)
    return np.concatenate([speech, np.zeros(4800, dtype=np.float32)]).tobytes()


def spoken(text: str) -> Audio:
    return np.frombuffer(_spoken(text), dtype=np.float32)


@asynccontextmanager
async def voice_client(server: ServerProcess) -> AsyncIterator[tuple[Timed, Microphone]]:
    """A session whose microphone streams (silence until told to speak) meanwhile."""
    client = await Client.open(server.url, "msgpack")
    welcome = await client.hello(session={"mode": "voice_agent", "tools": []})
    assert welcome["mode"] == "voice_agent"
    chunk = 0

    async def send(pcm: bytes) -> None:
        nonlocal chunk
        await client.send({"type": "audio", "data": pcm, "chunk": chunk})
        chunk += 1

    mic = Microphone(send)
    async with anyio.create_task_group() as tg:
        tg.start_soon(mic.run)
        try:
            yield Timed(client), mic
        finally:
            tg.cancel_scope.cancel()
    await client.send({"type": "bye"})
    await client.closed()


def turn_started(input: str) -> Callable[[Message], bool]:
    return lambda m: m["type"] == "turn.started" and m["input"] == input


def turn_done(turn_id: str) -> Callable[[Message], bool]:
    return lambda m: m["type"] == "turn.done" and m["turn_id"] == turn_id


async def test_a_spoken_question_is_captioned_then_answered(short_answers: ServerProcess) -> None:
    async with voice_client(short_answers) as (timed, mic):
        await anyio.sleep(0.3)
        question = mic.say(spoken("What time is it?"))
        started = await timed.until(turn_started("speech"))
        done = await timed.until(turn_done(started["turn_id"]))
    before = [m for _, m in timed.at[: timed.index_of(started)]]
    kinds = [m["type"] for m in before]
    assert "speech.started" in kinds and "speech.stopped" in kinds
    finals = [m for m in before if m["type"] == "caption.final"]
    assert finals and "time" in " ".join(m["text"] for m in finals).lower()
    assert all(m["speaker"] is None for m in finals)
    turn = timed.of_turn(started["turn_id"])
    assert turn[0] is started and turn[-1] is done
    assert [m["type"] for m in turn[1:-1]] == ["token"] * (len(turn) - 2) and len(turn) > 2
    assert done["status"] in ("completed", "length")
    assert 1 <= done["usage"]["output_tokens"] <= 16
    # Measured from the end of speech: the turn waited for the end-of-turn silence.
    assert question.end_sent_at is not None
    assert timed.time_of(started) >= question.end_sent_at + 0.5
    assert done["timings"]["ttft_ms"] >= 500


async def test_agent_mode_beside_voice_answers_text(short_answers: ServerProcess) -> None:
    client = await Client.open(short_answers.url)
    await client.hello(session={"mode": "agent", "tools": []})
    await client.send({"type": "text", "text": "Say hello.", "id": "m1"})
    turn = await client.recv_until(lambda m: m["type"] == "turn.done", timeout=60)
    assert turn[0]["type"] == "turn.started" and turn[0]["input"] == "text"
    assert turn[-1]["status"] in ("completed", "length")
    await client.close()


async def test_speech_during_an_answer_barges_in(long_answers: ServerProcess) -> None:
    async with voice_client(long_answers) as (timed, mic):
        await timed.client.send({"type": "text", "text": STORY, "id": "m1"})
        first = await timed.until(lambda m: m["type"] == "token")
        story = first["turn_id"]
        mic.say(spoken("Stop, wait a moment."))
        done = await timed.until(turn_done(story))
        heard = timed.at[-1][0]
        assert (done["status"], done["reason"]) == ("cancelled", "barge_in")
        assert done["usage"]["output_tokens"] < 1000
        speech = [m for _, m in timed.at if m["type"] == "speech.started"]
        assert speech and heard - timed.time_of(speech[-1]) < 2.0
        # The interruption itself is the user's next turn.
        following = await timed.until(turn_started("speech"))
        assert following["turn_id"] != story
    after = [m for _, m in timed.at[timed.index_of(done) + 1 :]]
    assert [m for m in after if m.get("turn_id") == story] == []
    seqs = [m["seq"] for _, m in timed.at if "seq" in m]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
