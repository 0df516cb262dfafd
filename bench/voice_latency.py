"""Voice turns through the real server: end of speech → first agent token, and barge-in.

    .venv/bin/python -m bench.voice_latency [--utterances 12] [--barge-ins 8]
        [--end-of-turn-s 0.5] [--min-silence-s 0.3] [--no-tools-only]

The server runs as its own process with the embedded defaults of ``voice_agent``
(faster-whisper tiny.en int8 and Silero for captions, llama.cpp with the packaged
gemma GGUF for the agent; end_of_turn_s 0.5); only the answers' ``max_tokens`` is
raised so that answers outlast a barge-in. One client streams espeak-ng speech as
16 kHz PCM in 0.1 s pieces at real-time pace, silence between utterances, like a
microphone.

- End of speech → first token: the audio time of the utterance's last voiced sample,
  mapped to the wall clock of when the piece holding it was sent, to the arrival of
  the speech turn's first ``token``. Also the steps in between (``speech.stopped``,
  the last ``caption.final`` before the turn, ``turn.started``) and the server's own
  ``ttft_ms`` (from its VAD's end of speech). Each turn is cancelled after its first
  token, so the next utterance finds the engine free. Sessions are offered no tools
  (``tools: []``), then, in a second pass, the tenant's default tools (a tool
  decision precedes every answer).
- Barge-in: during a long answer to a ``text`` message, the first voiced sample of
  "Stop, wait a moment." sent → ``turn.done`` ``cancelled`` ``barge_in`` received.

The machine is shared: the 1-minute load average is sampled through the run and
reported with the figures. Prints them and writes bench/results/voice_latency.json
(with settings other than the defaults: voice_latency_eot<S>_sil<S>.json).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from bench.common import summary_ms, write_result
from server.settings import Settings
from tests.audio.assets import espeak
from tests.support.client import Client, Message, Timed
from tests.support.server import ServerProcess, run_server
from tests.voice.microphone import Audio, Microphone, Utterance

QUESTIONS = (
    "What time is it?",
    "Tell me a joke about cats.",
    "How far away is the moon?",
    "What is the capital of France?",
    "Can you help me plan a trip?",
    "Turn off the lights in the kitchen.",
)
INTERRUPTION = "Stop, wait a moment."
STORY = "Write a very long story about a dragon who learns to sing."
MAX_TOKENS = 400


def speech(text: str) -> Audio:
    return np.concatenate([espeak(text), np.zeros(4800, dtype=np.float32)])


class Session(Timed):
    """One voice session: its microphone, and its messages with arrival times."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        chunk = 0

        async def send(pcm: bytes) -> None:
            nonlocal chunk
            await client.send({"type": "audio", "data": pcm, "chunk": chunk})
            chunk += 1

        self.mic = Microphone(send)

    def first_after(self, since: int, kind: str) -> tuple[float, Message] | None:
        return next(((t, m) for t, m in self.at[since:] if m["type"] == kind), None)

    async def finish_turn(self, turn_id: str) -> Message:
        await self.client.send({"type": "cancel", "turn_id": turn_id})
        return await self.until(lambda m: m["type"] == "turn.done" and m["turn_id"] == turn_id)


def is_type(kind: str, **fields: Any) -> Callable[[Message], bool]:
    return lambda m: m["type"] == kind and all(m.get(k) == v for k, v in fields.items())


async def one_question(session: Session, audio: Audio) -> dict[str, float]:
    since = len(session.at)
    said: Utterance = session.mic.say(audio)
    started = await session.until(is_type("turn.started", input="speech"))
    turn_id = started["turn_id"]
    token = await session.until(is_type("token", turn_id=turn_id))
    token_at = session.at[-1][0]
    done = await session.finish_turn(turn_id)
    assert said.end_sent_at is not None
    end = said.end_sent_at
    stopped = session.first_after(since, "speech.stopped")
    finals = [t for t, m in session.at[since:] if m["type"] == "caption.final"]
    started_at = next(t for t, m in session.at[since:] if m is started)
    finals_before = [t for t in finals if t <= started_at]
    assert token is not None and stopped is not None and finals_before
    return {
        "end_to_first_token": token_at - end,
        "end_to_speech_stopped": stopped[0] - end,
        "end_to_last_final": finals_before[-1] - end,
        "end_to_turn_started": started_at - end,
        "server_ttft": done["timings"]["ttft_ms"] / 1000,
    }


async def one_barge_in(session: Session, audio: Audio, wait_s: float) -> float:
    await session.client.send({"type": "text", "text": STORY})
    token = await session.until(is_type("token"))
    story = token["turn_id"]
    await anyio.sleep(wait_s)
    said = session.mic.say(audio)
    done = await session.until(is_type("turn.done", turn_id=story))
    done_at = session.at[-1][0]
    if done["reason"] != "barge_in":
        raise RuntimeError(f"the answer ended {done['status']} {done.get('reason')}")
    assert said.onset_sent_at is not None
    following = await session.until(is_type("turn.started", input="speech"))
    await session.finish_turn(following["turn_id"])
    return done_at - said.onset_sent_at


def load_sampler(samples: list[float]) -> Callable[[], Any]:
    async def sample() -> None:
        while True:
            samples.append(os.getloadavg()[0])
            await anyio.sleep(2)

    return sample


async def bench(
    server: ServerProcess, utterances: int, barge_ins: int, passes: tuple[str, ...]
) -> dict[str, Any]:
    questions = [speech(text) for text in QUESTIONS]
    interruption = speech(INTERRUPTION)
    loads: list[float] = []
    out: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        tg.start_soon(load_sampler(loads))
        for label in passes:
            tools: list[str] | None = [] if label == "no_tools" else None
            client = await Client.open(server.url, "msgpack")
            config: dict[str, Any] = {"mode": "voice_agent"}
            if tools is not None:
                config["tools"] = tools
            await client.hello(session=config)
            session = Session(client)
            runs: list[dict[str, float]] = []
            async with anyio.create_task_group() as mic:
                mic.start_soon(session.mic.run)
                await anyio.sleep(0.5)
                for i in range(utterances):
                    runs.append(await one_question(session, questions[i % len(questions)]))
                    await anyio.sleep(0.4)
                if label == "no_tools" and barge_ins > 0:
                    barge = [
                        await one_barge_in(session, interruption, 0.2 + 0.1 * (i % 5))
                        for i in range(barge_ins)
                    ]
                    out["barge_in"] = {"speech_onset_to_cancelled": summary_ms(barge)}
                mic.cancel_scope.cancel()
            await client.send({"type": "bye"})
            await client.closed()
            out[label] = {key: summary_ms([r[key] for r in runs]) for key in runs[0]}
        tg.cancel_scope.cancel()
    out["load_1min"] = {
        "min": round(min(loads), 2),
        "mean": round(statistics.fmean(loads), 2),
        "max": round(max(loads), 2),
        "samples": len(loads),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--utterances", type=int, default=12)
    parser.add_argument("--barge-ins", type=int, default=8)
    parser.add_argument("--end-of-turn-s", type=float, default=0.5)
    parser.add_argument("--min-silence-s", type=float, default=0.3)
    parser.add_argument("--no-tools-only", action="store_true")
    args = parser.parse_args()
    options: dict[str, Any] = {
        "agent": {"agent": {"max_tokens": MAX_TOKENS}},
        "end_of_turn_s": args.end_of_turn_s,
    }
    if args.min_silence_s != 0.3:
        options["caption"] = {"min_silence_s": args.min_silence_s}
    config = {
        "pipelines": {"voice_agent": Settings().pipelines["voice_agent"]},
        "pipeline_options": {"voice_agent": options},
    }
    passes = ("no_tools",) if args.no_tools_only else ("no_tools", "default_tools")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, run_server(Path(tmp), config) as server:
        data = anyio.run(bench, server, args.utterances, args.barge_ins, passes)
    data["load_before"] = [round(x, 2) for x in load_before]
    data["params"] = {
        "utterances": args.utterances,
        "barge_ins": args.barge_ins,
        "max_tokens": MAX_TOKENS,
        "end_of_turn_s": args.end_of_turn_s,
        "min_silence_s": args.min_silence_s,
        "piece_s": 0.1,
    }
    for label in passes:
        print(label)
        for key, figures in data[label].items():
            print(f"  {key:24s} p50 {figures['p50_ms']:7.0f} ms  p90 {figures['p90_ms']:7.0f} ms")
    if "barge_in" in data:
        barge = data["barge_in"]["speech_onset_to_cancelled"]
        p50, p90 = barge["p50_ms"], barge["p90_ms"]
        print(f"barge-in onset → cancelled  p50 {p50:.0f} ms  p90 {p90:.0f} ms")
    print(f"load (1 min) {data['load_1min']}  before {data['load_before']}")
    defaults = args.end_of_turn_s == 0.5 and args.min_silence_s == 0.3 and not args.no_tools_only
    name = "voice_latency"
    if not defaults:
        name += f"_eot{args.end_of_turn_s:g}_sil{args.min_silence_s:g}"
    write_result(name, data)


if __name__ == "__main__":
    main()
