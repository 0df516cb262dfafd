"""A timed ``caption`` session over the real protocol (tests and benches).

``stream_captions`` opens a session on a running server, sends PCM paced at
``speed`` times real time (or as fast as the server reads), keeps the connection
alive (``ping``, ``ack``), ends with ``audio.end``, waits until the server has been
quiet, and records when every message arrived and when every chunk went out.
Latencies are then measured against either clock: when the audio was "spoken"
(the pacing schedule) or when it was actually sent (the two differ once TCP pushes
back on a sender that is ahead of the server).
"""

from __future__ import annotations

import bisect
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from websockets.exceptions import ConnectionClosed

from tests.support.client import Client, Closed, Message


@dataclass
class CaptionRun:
    bytes_per_second: int
    speed: float | None
    t0: float = 0.0  # monotonic time the first chunk was due
    messages: list[tuple[float, Message]] = field(default_factory=list)
    sent: list[tuple[float, float]] = field(default_factory=list)  # (audio s at chunk end, at)
    closed: Closed | None = None

    def of_type(self, *types: str) -> list[Message]:
        return [m for _, m in self.messages if m.get("type") in types]

    def finals(self) -> list[Message]:
        return self.of_type("caption.final")

    def text(self) -> str:
        return " ".join(m["text"] for m in self.finals())

    def spoken_at(self, audio_s: float) -> float:
        """When the audio at ``audio_s`` had been spoken, at the pacing speed."""
        return self.t0 + audio_s / (self.speed or float("inf"))

    def sent_at(self, audio_s: float) -> float:
        """When the chunk holding the audio at ``audio_s`` went out."""
        ends = [end for end, _ in self.sent]
        i = min(bisect.bisect_left(ends, audio_s - 1e-9), len(self.sent) - 1)
        return self.sent[i][1]

    def word_latencies(self, *, by: str = "spoken") -> list[tuple[float, float]]:
        """(word end on the timeline, its final's arrival - when that audio was
        spoken or sent), for every word of every final."""
        clock = self.spoken_at if by == "spoken" else self.sent_at
        return [
            (w["end"], at - clock(w["end"]))
            for at, m in self.messages
            if m.get("type") == "caption.final"
            for w in m.get("words") or ()
        ]

    def partial_latencies(self) -> list[float]:
        return [
            at - self.spoken_at(m["end"])
            for at, m in self.messages
            if m.get("type") == "caption.partial" and m.get("text")
        ]


def pieces(pcm: bytes, size: int) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


async def stream_captions(
    url: str,
    pcm: bytes | Sequence[bytes],
    *,
    sample_rate: int = 16000,
    channels: int = 1,
    speed: float | None = 1.0,
    chunk_s: float = 0.1,
    kind: str = "msgpack",
    session: dict[str, Any] | None = None,
    linger_s: float = 2.5,
    timeout_s: float = 300.0,
) -> CaptionRun:
    """Streams ``pcm`` (bytes cut into ``chunk_s`` chunks, or the chunks themselves)
    in a new caption session and returns what was received, and when."""
    bps = sample_rate * channels * 2
    if isinstance(pcm, bytes):
        size = max(2, round(bps * chunk_s) // (2 * channels) * 2 * channels)
        chunks = pieces(pcm, size)
    else:
        chunks = list(pcm)
    run = CaptionRun(bps, speed)
    client = await Client.open(url, kind)
    audio = {"encoding": "pcm_s16le", "sample_rate": sample_rate, "channels": channels}
    welcome = await client.hello(session={"mode": "caption", "audio": audio, **(session or {})})
    heartbeat = float(welcome["heartbeat_s"])
    quiet_since = time.monotonic()
    sent_all = anyio.Event()

    async def receive() -> None:
        nonlocal quiet_since
        unacked = 0
        try:
            while True:
                message = await client.recv(timeout=timeout_s)
                now = time.monotonic()
                run.messages.append((now, message))
                if message.get("type") != "pong":
                    quiet_since = now
                if "seq" in message:
                    unacked += 1
                    if unacked >= 32:
                        await client.send({"type": "ack", "seq": client.last_seq})
                        unacked = 0
        except Closed as closed:
            run.closed = closed
            sent_all.set()

    async def keepalive() -> None:
        n = 0
        while run.closed is None:
            await anyio.sleep(heartbeat / 2)
            n += 1
            try:
                await client.send({"type": "ping", "id": n})
            except ConnectionClosed:
                return  # the receiver records the close

    async def send_audio() -> None:
        first = int(welcome.get("audio_next", 0))
        run.t0 = t0 = time.monotonic()
        done = 0
        try:
            for k, chunk in enumerate(chunks):
                done += len(chunk)
                if speed is not None:  # a chunk goes out once it has been "spoken"
                    await anyio.sleep(max(0.0, t0 + done / bps / speed - time.monotonic()))
                await client.send({"type": "audio", "data": chunk, "chunk": first + k})
                run.sent.append((done / bps, time.monotonic()))
            await client.send({"type": "audio.end"})
        except ConnectionClosed:
            pass  # the receiver records the close
        sent_all.set()

    try:
        with anyio.fail_after(timeout_s):
            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                tg.start_soon(keepalive)
                tg.start_soon(send_audio)
                await sent_all.wait()
                while run.closed is None and time.monotonic() - quiet_since < linger_s:
                    await anyio.sleep(0.1)
                if run.closed is None:
                    with contextlib.suppress(ConnectionClosed):
                        await client.send({"type": "bye"})
                    with anyio.move_on_after(10):
                        while run.closed is None:
                            await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
    finally:
        await client.close()
    return run
