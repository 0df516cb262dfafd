"""Voice activity: the ``VadBackend`` boundary, its two backends, and the cheap gate.

- ``WebRtcVad``: webrtcvad, a few µs per frame, voiced/unvoiced only. Used as the
  gate (``WebRtcGate``): while it has heard nothing voiced for a while, Silero is not
  run for that stream at all.
- ``SileroVad``: Silero's bundled ONNX model with explicit per-stream state, so
  frames of many sessions go through one batched call (``VadBatcher``). CUDA when
  onnxruntime offers it.

Every backend works on 16 kHz float32 frames of ``frame_samples`` and returns a
speech probability per frame; the endpointer (``endpointing.py``) decides.
"""

from __future__ import annotations

import importlib.resources
import itertools
import threading
from collections.abc import Mapping
from typing import Protocol

import numpy as np
import numpy.typing as npt
import webrtcvad

Frames = npt.NDArray[np.float32]  # (n_frames, frame_samples)
Probs = npt.NDArray[np.float32]  # (n_frames,)

SAMPLE_RATE = 16000


class VadBackend(Protocol):
    """Speech probability per frame, per stream. ``speech_probs`` is called from one
    worker thread at a time; ``open_stream``/``close_stream`` from anywhere."""

    frame_samples: int

    def open_stream(self) -> int: ...

    def close_stream(self, stream: int) -> None: ...

    def reset_stream(self, stream: int) -> None: ...

    def speech_probs(self, frames: Mapping[int, Frames]) -> dict[int, Probs]: ...


def _to_pcm16(x: npt.NDArray[np.float32]) -> bytes:
    return bytes((np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())


class WebRtcVad:
    """webrtcvad as a backend: probability 1.0 for voiced frames, 0.0 otherwise."""

    frame_samples = 480  # 30 ms, one of the three frame sizes webrtcvad accepts

    def __init__(self, mode: int = 3) -> None:
        self.mode = mode
        self._ids = itertools.count(1)
        self._vads: dict[int, webrtcvad.Vad] = {}
        self._lock = threading.Lock()

    def open_stream(self) -> int:
        with self._lock:
            stream = next(self._ids)
            self._vads[stream] = webrtcvad.Vad(self.mode)
        return stream

    def close_stream(self, stream: int) -> None:
        with self._lock:
            self._vads.pop(stream, None)

    def reset_stream(self, stream: int) -> None:
        """webrtcvad keeps no state that matters between frames."""

    def speech_probs(self, frames: Mapping[int, Frames]) -> dict[int, Probs]:
        out: dict[int, Probs] = {}
        for stream, block in frames.items():
            vad = self._vads[stream]
            out[stream] = np.array(
                [vad.is_speech(_to_pcm16(f), SAMPLE_RATE) for f in block], dtype=np.float32
            )
        return out


class WebRtcGate:
    """Per-stream cheap gate: open while webrtcvad heard a voiced 10 ms frame within
    the last ``hangover_s``. Works for any frame size by re-framing into 10 ms."""

    _SUB = 160

    def __init__(self, mode: int = 2, hangover_s: float = 0.4) -> None:
        self._vad = webrtcvad.Vad(mode)
        self._hangover = int(hangover_s * SAMPLE_RATE / self._SUB)
        self._since_voiced = self._hangover + 1
        self._rest = np.zeros(0, dtype=np.float32)

    def open_for(self, frame: npt.NDArray[np.float32]) -> bool:
        """Feed one frame; whether the accurate VAD should look at it."""
        buf = np.concatenate([self._rest, frame])
        n = len(buf) // self._SUB
        for i in range(n):
            sub = buf[i * self._SUB : (i + 1) * self._SUB]
            voiced = self._vad.is_speech(_to_pcm16(sub), SAMPLE_RATE)
            self._since_voiced = 0 if voiced else self._since_voiced + 1
        self._rest = buf[n * self._SUB :]
        return self._since_voiced <= self._hangover


class SileroVad:
    """Silero VAD (ONNX, bundled with the ``silero-vad`` package), batched over streams.

    The model is recurrent: each stream keeps its LSTM state and the last 64 samples
    of context, and its frames must be run in order. A call runs step ``i`` of every
    stream that has an ``i``-th frame as one batch.
    """

    frame_samples = 512
    _CONTEXT = 64

    def __init__(self, *, use_cuda: bool | None = None, threads: int = 1) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        path = importlib.resources.files("silero_vad.data") / "silero_vad.onnx"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if use_cuda is not False and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        with importlib.resources.as_file(path) as model_file:
            self._session = ort.InferenceSession(
                str(model_file), sess_options=options, providers=providers
            )
        self.providers = tuple(providers)
        self._ids = itertools.count(1)
        self._state: dict[int, npt.NDArray[np.float32]] = {}
        self._context: dict[int, npt.NDArray[np.float32]] = {}
        self._lock = threading.Lock()
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def open_stream(self) -> int:
        with self._lock:
            stream = next(self._ids)
        self.reset_stream(stream)
        return stream

    def reset_stream(self, stream: int) -> None:
        with self._lock:
            self._state[stream] = np.zeros((2, 1, 128), dtype=np.float32)
            self._context[stream] = np.zeros(self._CONTEXT, dtype=np.float32)

    def close_stream(self, stream: int) -> None:
        with self._lock:
            self._state.pop(stream, None)
            self._context.pop(stream, None)

    def speech_probs(self, frames: Mapping[int, Frames]) -> dict[int, Probs]:
        with self._lock:
            live = {s: f for s, f in frames.items() if s in self._state}
        out = {s: np.zeros(len(f), dtype=np.float32) for s, f in live.items()}
        steps = max((len(f) for f in live.values()), default=0)
        for i in range(steps):
            batch = [s for s, f in live.items() if len(f) > i]
            x = np.stack([np.concatenate([self._context[s], live[s][i]]) for s in batch]).astype(
                np.float32
            )
            state = np.concatenate([self._state[s] for s in batch], axis=1)
            prob, new_state = self._session.run(None, {"input": x, "state": state, "sr": self._sr})
            for k, s in enumerate(batch):
                out[s][i] = float(prob[k, 0])
                self._state[s] = np.ascontiguousarray(new_state[:, k : k + 1, :])
                self._context[s] = x[k, -self._CONTEXT :]
        return out
