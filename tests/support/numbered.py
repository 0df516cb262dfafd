"""A test pipeline that emits numbered durable events, plugged in by config.

Commands (``text`` messages): ``count N [interval_ms] [pad]`` emits N
``caption.final`` events numbered 0..N-1 (text ``"<i>"`` plus ``pad`` bytes of
random padding); ``tokens N [interval_ms]`` runs a turn of N ``token`` deltas ``"<i>,"``.
``fatal CODE`` reports a fatal error with that code; ``crash`` raises.
``cancel`` stops the running command's turn with ``turn.done cancelled``. Each
``audio`` chunk yields one ``caption.final`` whose segment is the chunk index, after
``chunk_delay_s`` (option) to play a slow pipeline.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio

from sessions.events import (
    CaptionFinal,
    CaptionPartial,
    ErrorEvent,
    TokenDelta,
    TurnDone,
    TurnStarted,
)
from sessions.inputs import AudioChunk, AudioEnd, CancelRequest, PipelineInput, UserText
from sessions.pipeline import EventSink, Pipeline, PipelineContext

END_SEGMENT = 1_000_000  # the final ``audio.end`` yields


class NumberedPipeline:
    def __init__(self, chunk_delay_s: float) -> None:
        self.chunk_delay_s = chunk_delay_s
        self.turns = 0

    async def run(self, inputs: AsyncIterator[PipelineInput], sink: EventSink) -> None:
        async with anyio.create_task_group() as tg:
            running: dict[str, anyio.CancelScope] = {}
            async for item in inputs:
                match item:
                    case UserText(text=text):
                        words = text.split()
                        args = [int(w) for w in words[1:] if w.isdigit()]
                        if words[0] == "fatal":
                            sink.emit(ErrorEvent(words[1], "asked to fail", fatal=True))
                        elif words[0] == "crash":
                            raise RuntimeError("asked to crash")
                        elif words[0] == "count":
                            tg.start_soon(self._count, sink, *args)
                        elif words[0] == "tokens":
                            self.turns += 1
                            turn_id = f"t{self.turns}"
                            scope = anyio.CancelScope()
                            running[turn_id] = scope
                            tg.start_soon(self._tokens, sink, scope, turn_id, *args)
                    case CancelRequest(turn_id=turn_id):
                        for tid, scope in list(running.items()):
                            if turn_id in (None, tid):
                                scope.cancel()
                                running.pop(tid)
                    case AudioChunk(data=data, chunk=chunk):
                        if self.chunk_delay_s:
                            await anyio.sleep(self.chunk_delay_s)
                        sink.emit(CaptionPartial(chunk, f"partial {chunk}", 0.0, 0.0))
                        sink.emit(CaptionFinal(chunk, f"chunk {chunk} {len(data)}", 0.0, 0.0))
                    case AudioEnd():
                        sink.emit(CaptionFinal(END_SEGMENT, "end", 0.0, 0.0))
                    case _:
                        pass

    async def _count(self, sink: EventSink, n: int, interval_ms: int = 0, pad: int = 0) -> None:
        for i in range(n):
            # Incompressible padding: permessage-deflate must not hide the volume.
            padding = random.Random(i).randbytes(pad // 2).hex() if pad else ""
            # The wall-clock emit time lets a bench measure delivery latency.
            sink.emit(CaptionFinal(i, f"{i} {time.time():.6f} {padding}", 0.0, 0.0))
            await anyio.sleep(interval_ms / 1000)

    async def _tokens(
        self, sink: EventSink, scope: anyio.CancelScope, turn_id: str, n: int, interval_ms: int = 0
    ) -> None:
        sink.emit(TurnStarted(turn_id, "text"))
        status: Any = "completed"
        with scope:
            for i in range(n):
                sink.emit(TokenDelta(turn_id, f"{i},"))
                await anyio.sleep(interval_ms / 1000)
        if scope.cancelled_caught:
            status = "cancelled"
        sink.emit(TurnDone(turn_id, status))


class NumberedProvider:
    def __init__(self, options: dict[str, Any]) -> None:
        self.chunk_delay_s = float(options.get("chunk_delay_s", 0.0))

    async def start(self) -> None:
        return None

    def create(self, context: PipelineContext) -> Pipeline:
        return NumberedPipeline(self.chunk_delay_s)

    async def aclose(self) -> None:
        return None


def create_provider(options: dict[str, Any]) -> NumberedProvider:
    return NumberedProvider(options)
