"""A live microphone for tests and benches: 16 kHz mono PCM sent in fixed pieces at
real-time pace, silence between utterances, the way a browser streams a mic.

``say`` queues speech; the returned ``Utterance`` records, on the sender's clock,
when the piece holding the first and the last voiced sample went out: "end of
speech" for latency figures is when the audio of its last voiced sample was sent.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import numpy as np
import numpy.typing as npt

Audio = npt.NDArray[np.float32]
RATE = 16000
VOICED = 0.02  # amplitude above which a sample counts as voiced (espeak's floor is ~0)


def pcm16(x: Audio) -> bytes:
    return bytes((np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())


@dataclass
class Utterance:
    audio: Audio
    first_voiced: int  # sample indices within ``audio``
    last_voiced: int
    onset_sent_at: float | None = None
    end_sent_at: float | None = None
    session_start_s: float = 0.0  # session audio time of ``audio[0]``
    done: anyio.Event = field(default_factory=anyio.Event)

    @classmethod
    def of(cls, audio: Audio) -> Utterance:
        voiced = np.flatnonzero(np.abs(audio) > VOICED)
        if len(voiced) == 0:
            raise ValueError("no voiced sample in the utterance")
        return cls(audio, int(voiced[0]), int(voiced[-1]))

    @property
    def voiced_end_s(self) -> float:
        """Session audio time of the last voiced sample."""
        return self.session_start_s + (self.last_voiced + 1) / RATE


class Microphone:
    """Calls ``send(pcm)`` every ``piece_s`` / ``speed`` seconds until cancelled."""

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        *,
        piece_s: float = 0.1,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.send = send
        self.piece = int(RATE * piece_s)
        self.speed = speed
        self.clock = clock
        self.sent_samples = 0
        self._queue: deque[Utterance] = deque()
        self._offset = 0  # next sample of the utterance at the head of the queue

    def say(self, audio: Audio) -> Utterance:
        utterance = Utterance.of(audio)
        self._queue.append(utterance)
        return utterance

    def _next_piece(self) -> tuple[Audio, list[Utterance]]:
        """The next piece, and the utterances whose onset or end it carries."""
        out = np.zeros(self.piece, dtype=np.float32)
        touched: list[Utterance] = []
        filled = 0
        while filled < self.piece and self._queue:
            u = self._queue[0]
            if self._offset == 0:
                u.session_start_s = (self.sent_samples + filled) / RATE
            take = min(self.piece - filled, len(u.audio) - self._offset)
            out[filled : filled + take] = u.audio[self._offset : self._offset + take]
            lo, hi = self._offset, self._offset + take
            if lo <= u.first_voiced < hi or lo <= u.last_voiced < hi:
                touched.append(u)
            filled += take
            self._offset += take
            if self._offset >= len(u.audio):
                self._queue.popleft()
                self._offset = 0
        return out, touched

    async def run(self) -> None:
        start = self.clock()
        k = 0
        while True:
            piece, touched = self._next_piece()
            await anyio.sleep(max(0.0, start + k * self.piece / RATE / self.speed - self.clock()))
            await self.send(pcm16(piece))
            now = self.clock()
            for u in touched:
                first = u.session_start_s + u.first_voiced / RATE
                if u.onset_sent_at is None and first < (self.sent_samples + self.piece) / RATE:
                    u.onset_sent_at = now
                if u.voiced_end_s <= (self.sent_samples + self.piece) / RATE:
                    u.end_sent_at = now
                    u.done.set()
            self.sent_samples += self.piece
            k += 1
