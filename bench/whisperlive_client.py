"""A timed client of WhisperLive's WebSocket protocol, for the comparison bench.

WhisperLive's protocol: a JSON options message, then ``SERVER_READY``; binary frames of
float32 16 kHz audio; ``END_OF_AUDIO`` at the end. The server sends its last few
segments again and again (``{"segments": [{start, end, text, completed, words?}]}``):
a segment counts as final the first time it arrives ``completed``, and as a partial
each time the open (last, not completed) segment's text changes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


@dataclass
class WlRun:
    speed: float
    t0: float = 0.0
    finals: dict[tuple[str, str], tuple[float, dict[str, Any]]] = field(default_factory=dict)
    partials: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    last_partial: str = ""

    def spoken_at(self, audio_s: float) -> float:
        return self.t0 + audio_s / self.speed

    def ordered(self) -> list[tuple[float, dict[str, Any]]]:
        return sorted(self.finals.values(), key=lambda f: float(f[1]["start"]))

    def text(self, *, with_partial: bool = False) -> str:
        said = [seg["text"].strip() for _, seg in self.ordered()]
        if with_partial and self.last_partial:
            said.append(self.last_partial)
        return " ".join(said)

    def word_latencies(self) -> list[float]:
        out = []
        for at, seg in self.finals.values():
            ends = [float(w["end"]) for w in seg.get("words") or ()] or [float(seg["end"])]
            out += [at - self.spoken_at(end) for end in ends]
        return out

    def partial_latencies(self) -> list[float]:
        return [at - self.spoken_at(float(seg["end"])) for at, seg in self.partials]


async def whisperlive_stream(
    url: str,
    audio: np.ndarray,
    model: str,
    *,
    uid: str = "bench",
    speed: float = 1.0,
    chunk_s: float = 0.1,
    settle_s: float = 4.0,
) -> WlRun:
    """Streams ``audio`` (float32 16 kHz) at ``speed`` times real time; after the last
    chunk, waits until no segment is left open (or ``settle_s``) before ending."""
    run = WlRun(speed)
    options = {
        "uid": uid,
        "language": "en",
        "task": "transcribe",
        "model": model,
        "use_vad": True,
        "word_timestamps": True,  # word ends, for latency per word
    }
    pcm = audio.astype(np.float32).tobytes()
    step = int(16000 * chunk_s) * 4
    async with connect(url, max_size=None, open_timeout=30) as ws:
        await ws.send(json.dumps(options))
        with anyio.fail_after(60):
            while True:
                ready = json.loads(await ws.recv())
                if ready.get("message") == "SERVER_READY":
                    break
                if ready.get("status") in ("ERROR", "WAIT"):
                    raise RuntimeError(f"WhisperLive refused the stream: {ready}")
        sent_all = anyio.Event()
        open_segment = True

        async def receive() -> None:
            nonlocal open_segment
            try:
                async for frame in ws:
                    now = time.monotonic()
                    message = json.loads(frame)
                    segments = message.get("segments") or []
                    for seg in segments:
                        if seg.get("completed"):
                            run.finals.setdefault((seg["start"], seg["text"]), (now, seg))
                    last = segments[-1] if segments else None
                    open_segment = bool(last and not last.get("completed"))
                    if last and not last.get("completed"):
                        text = last["text"].strip()
                        if text and text != run.last_partial:
                            run.partials.append((now, last))
                        run.last_partial = text
                    elif last:
                        run.last_partial = ""
            except ConnectionClosed:
                pass

        async with anyio.create_task_group() as tg:
            tg.start_soon(receive)
            run.t0 = t0 = time.monotonic()
            for i in range(0, len(pcm), step):
                due = t0 + (i + step) / 4 / 16000 / speed
                await anyio.sleep(max(0.0, due - time.monotonic()))
                await ws.send(pcm[i : i + step])
            sent_all.set()
            with anyio.move_on_after(settle_s):
                while open_segment:
                    await anyio.sleep(0.1)
            await ws.send(b"END_OF_AUDIO")
            await anyio.sleep(0.5)
            tg.cancel_scope.cancel()
    return run
