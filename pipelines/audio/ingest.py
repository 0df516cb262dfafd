"""Ingest: client PCM (``pcm_s16le``, any supported rate, mono or stereo) → float32
16 kHz mono, the one format every later stage works in.

Pure and synchronous: ``PcmDecoder.feed`` takes bytes and returns samples. The
session core drops duplicate chunks already, but the decoder keeps its own guard
(chunk indices that go backwards are dropped, never decoded twice), carries a
trailing partial frame over to the next chunk, and resamples with a streaming
polyphase filter whose output matches a whole-file ``resample_poly``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from math import gcd

import numpy as np
import numpy.typing as npt
from scipy.signal import firwin

TARGET_RATE = 16000
Samples = npt.NDArray[np.float32]

# Outputs computed per vectorised step: bounds the (outputs x taps) work matrix for
# huge chunks (16 000 x 61 taps x 4 bytes ≈ 4 MB).
_BLOCK_OUT = 16000


class StreamingResampler:
    """Rational-ratio polyphase resampler with state carried across calls.

    Output sample ``n`` sits at input time ``n * down / up``; it is the anti-aliasing
    FIR (Kaiser window, cutoff at the lower Nyquist rate) applied around that time.
    The filter is centred (zero phase), so outputs lag inputs by half the filter.
    """

    def __init__(self, rate_in: int, rate_out: int = TARGET_RATE) -> None:
        g = gcd(rate_in, rate_out)
        self.up, self.down = rate_out // g, rate_in // g
        max_rate = max(self.up, self.down)
        half = 10 * max_rate
        taps = firwin(2 * half + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * self.up
        self._delay = half
        # Polyphase bank: phase p uses taps p, p+up, p+2up, … against x[j], x[j-1], …
        n_taps = -(-len(taps) // self.up)
        padded = np.zeros(n_taps * self.up)
        padded[: len(taps)] = taps
        self._bank = padded.reshape(n_taps, self.up).T.astype(np.float32)
        self._n_taps = n_taps
        self._history = np.zeros(0, dtype=np.float32)
        self._history_start = 0  # global input index of _history[0]
        self._n_in = 0
        self._n_out = 0

    def _produce(self, last_input: int) -> Samples:
        """Every output whose newest needed input index is ≤ ``last_input``."""
        # Output n needs inputs up to j_hi(n) = (n*down + delay) // up.
        n_end = ((last_input + 1) * self.up - self._delay - 1) // self.down + 1
        pieces: list[Samples] = []
        while self._n_out < n_end:
            n = np.arange(self._n_out, min(n_end, self._n_out + _BLOCK_OUT), dtype=np.int64)
            t = n * self.down + self._delay
            j_hi, phase = t // self.up, t % self.up
            idx = j_hi[:, None] - np.arange(self._n_taps)[None, :] - self._history_start
            valid = idx >= 0  # inputs before the stream's start are zeros
            x = np.where(valid, self._history[np.clip(idx, 0, None)], 0.0)
            pieces.append(np.einsum("ij,ij->i", x, self._bank[phase]).astype(np.float32))
            self._n_out = int(n[-1]) + 1
        # Keep what the next output still needs: j ≥ j_hi(n_out) - n_taps + 1.
        keep_from = (self._n_out * self.down + self._delay) // self.up - self._n_taps + 1
        drop = max(0, keep_from - self._history_start)
        if drop:
            self._history = self._history[drop:]
            self._history_start += drop
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    def feed(self, x: Samples) -> Samples:
        self._history = np.concatenate([self._history, x.astype(np.float32)])
        self._n_in += len(x)
        return self._produce(self._n_in - 1)

    def flush(self) -> Samples:
        """The outputs still owed for the input so far (zero-padded past its end)."""
        total = -(-self._n_in * self.up // self.down)
        last = ((total - 1) * self.down + self._delay) // self.up
        if last >= self._n_in:
            self._history = np.concatenate(
                [self._history, np.zeros(last - self._n_in + 1, dtype=np.float32)]
            )
        out = self._produce(last)
        return out[: max(0, total - (self._n_out - len(out)))]


@dataclass(frozen=True, slots=True)
class IngestStats:
    chunks: int = 0
    dropped_chunks: int = 0
    bytes_in: int = 0
    samples_out: int = 0


class PcmDecoder:
    """``pcm_s16le`` chunks → float32 16 kHz mono samples, with the session timeline."""

    def __init__(self, sample_rate: int = TARGET_RATE, channels: int = 1) -> None:
        if channels not in (1, 2) or sample_rate <= 0:
            raise ValueError(f"cannot decode {channels} channels at {sample_rate} Hz")
        self.sample_rate, self.channels = sample_rate, channels
        self._carry = b""
        self._next_chunk = 0
        self._resampler = None if sample_rate == TARGET_RATE else StreamingResampler(sample_rate)
        self.stats = IngestStats()

    @property
    def frame_bytes(self) -> int:
        return 2 * self.channels

    def feed(self, data: bytes, chunk: int | None = None) -> Samples:
        """Decode one chunk. A chunk index below the next expected one is a duplicate
        (or a late reordering): dropping it keeps the timeline monotonic."""
        s = self.stats
        if chunk is not None and chunk >= 0:
            if chunk < self._next_chunk:
                self.stats = IngestStats(s.chunks, s.dropped_chunks + 1, s.bytes_in, s.samples_out)
                return np.zeros(0, dtype=np.float32)
            self._next_chunk = chunk + 1
        buf = self._carry + data
        usable = len(buf) - len(buf) % self.frame_bytes
        self._carry = buf[usable:]
        pcm = np.frombuffer(buf[:usable], dtype="<i2").astype(np.float32) / 32768.0
        if self.channels == 2:
            pcm = pcm.reshape(-1, 2).mean(axis=1, dtype=np.float32)
        out = pcm if self._resampler is None else self._resampler.feed(pcm)
        self.stats = IngestStats(
            s.chunks + 1, s.dropped_chunks, s.bytes_in + len(data), s.samples_out + len(out)
        )
        return out

    def flush(self) -> Samples:
        """End of this format's stream: the resampler's tail (a partial frame is dropped)."""
        self._carry = b""
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        out = self._resampler.flush()
        self._resampler = StreamingResampler(self.sample_rate)
        s = self.stats
        self.stats = IngestStats(s.chunks, s.dropped_chunks, s.bytes_in, s.samples_out + len(out))
        return out

    def reformat(self, sample_rate: int, channels: int) -> tuple[Samples, PcmDecoder]:
        """A decoder for a new declared format that keeps the chunk numbering."""
        tail = self.flush()
        nxt = PcmDecoder(sample_rate, channels)
        nxt._next_chunk = self._next_chunk
        nxt.stats = self.stats
        return tail, nxt


class ArrivalClock:
    """When (server monotonic clock) each stretch of session audio arrived, so that
    caption latency can be measured from the arrival of the audio it covers."""

    def __init__(self, keep_s: float = 120.0) -> None:
        self._marks: deque[tuple[float, float]] = deque()  # (audio end s, received_at)
        self._keep_s = keep_s

    def mark(self, audio_end_s: float, received_at: float) -> None:
        self._marks.append((audio_end_s, received_at))
        while self._marks and self._marks[0][0] < audio_end_s - self._keep_s:
            self._marks.popleft()

    def arrival_of(self, audio_s: float) -> float | None:
        """Arrival time of the chunk holding ``audio_s`` (None if unknown or forgotten)."""
        for end, at in self._marks:
            if end >= audio_s:
                return at
        return self._marks[-1][1] if self._marks else None
