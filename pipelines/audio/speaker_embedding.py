"""The ``SpeakerEmbedder`` boundary and its embedded default, the GE2E speaker encoder
whose weights ship in the ``resemblyzer`` package.

An embedder maps short windows of 16 kHz float32 speech to L2-normalized vectors:
windows of one voice point the same way. It is synchronous and only ever called from
the shared embedding thread (``speaker_worker.py``), several sessions' windows at a
time.

The encoder is rebuilt here (three LSTM layers and a projection, as in the package)
and only its weights file is read: importing the ``resemblyzer`` package itself pulls
deprecated SciPy modules and the ``webrtcvad`` module, and computes features one
window at a time with librosa. Here the mel spectrogram is computed with
``torch.stft`` for a whole batch at once, on the encoder's device, with the same
parameters (25 ms Hann window, 10 ms hop, 40 Slaney mel bands, power 2, not log).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Audio = npt.NDArray[np.float32]
Embeddings = npt.NDArray[np.float32]

SAMPLE_RATE = 16000


class SpeakerEmbedder(Protocol):
    name: str
    dim: int
    window_s: float  # the window length the model was trained on

    def embed(self, windows: Sequence[Audio]) -> Embeddings:
        """One L2-normalized row per window (windows may differ in length; each has at
        least ``min_samples`` samples)."""
        ...


@dataclass(frozen=True, slots=True)
class Ge2eSettings:
    weights_path: str | None = None  # default: the file inside the resemblyzer package
    device: str = "auto"  # "auto": CUDA when present, else CPU
    threads: int = 1  # torch intra-op threads on CPU: the worker is one thread


_N_FFT = 400  # 25 ms at 16 kHz
_HOP = 160  # 10 ms
_N_MELS = 40
_HIDDEN = 256
_LAYERS = 3
_TARGET_DBFS = -30.0  # resemblyzer's loudness target (raise only)
_MAX_GAIN_DB = 30.0  # never blow a near-silent window up into loud noise
min_samples = _N_FFT  # shorter windows are not embedded (the caller's rule)


def packaged_weights() -> Path:
    """``pretrained.pt`` inside the installed ``resemblyzer`` package, found without
    importing the package."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the resemblyzer package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no encoder weights at {path}")
    return path


def loudness_normalized(window: Audio) -> Audio:
    """Raise a quiet window to -30 dBFS: the encoder reads linear mel power, so its
    input level matters. Loud windows stay as they are; the gain is capped."""
    x = np.nan_to_num(window.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    if rms <= 1e-9:
        return x
    gain_db = min(_TARGET_DBFS - 20.0 * np.log10(rms), _MAX_GAIN_DB)
    if gain_db <= 0:
        return x
    return (x * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


class Ge2eEmbedder:
    """The GE2E encoder: 256-dimensional embeddings, trained on 1.6 s windows."""

    name = "ge2e"
    dim = _HIDDEN
    window_s = 1.6

    def __init__(self, settings: Ge2eSettings | None = None) -> None:
        import librosa
        import torch

        self.settings = s = settings or Ge2eSettings()
        device = s.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cpu":
            torch.set_num_threads(max(1, s.threads))
        path = Path(s.weights_path) if s.weights_path else packaged_weights()
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        self._lstm = torch.nn.LSTM(_N_MELS, _HIDDEN, _LAYERS, batch_first=True)
        self._linear = torch.nn.Linear(_HIDDEN, _HIDDEN)
        self._lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self._linear.load_state_dict(
            {k[7:]: v for k, v in state.items() if k.startswith("linear.")}
        )
        for module in (self._lstm, self._linear):
            module.to(self.device).eval()
        bank = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=_N_FFT, n_mels=_N_MELS)
        self._mel = torch.from_numpy(bank.astype(np.float32)).to(self.device)
        self._window = torch.hann_window(_N_FFT, periodic=True, device=self.device)
        self._torch: Any = torch

    def mel_frames(self, windows: Sequence[Audio]) -> tuple[Any, Any]:
        """Mel power spectrograms of ``windows`` zero-padded to one length,
        (batch, frames, 40), and each window's own frame count."""
        torch = self._torch
        longest = max(len(w) for w in windows)
        batch = np.zeros((len(windows), longest), dtype=np.float32)
        for i, w in enumerate(windows):
            batch[i, : len(w)] = loudness_normalized(w)
        x = torch.from_numpy(batch).to(self.device)
        spec = (
            torch.stft(
                x,
                _N_FFT,
                _HOP,
                _N_FFT,
                self._window,
                center=True,
                pad_mode="constant",
                return_complex=True,
            ).abs()
            ** 2
        )
        mels = torch.matmul(self._mel, spec).transpose(1, 2).contiguous()
        lengths = torch.tensor([1 + len(w) // _HOP for w in windows])
        return mels, lengths

    def embed(self, windows: Sequence[Audio]) -> Embeddings:
        if not windows:
            return np.zeros((0, self.dim), dtype=np.float32)
        if min(len(w) for w in windows) < min_samples:
            raise ValueError(f"windows must hold at least {min_samples} samples")
        torch = self._torch
        with torch.inference_mode():
            mels, lengths = self.mel_frames(windows)
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                mels, lengths, batch_first=True, enforce_sorted=False
            )
            _, (hidden, _) = self._lstm(packed)
            raw = torch.relu(self._linear(hidden[-1]))
            norm = torch.linalg.vector_norm(raw, dim=1, keepdim=True).clamp_min(1e-12)
            out: Embeddings = (raw / norm).cpu().numpy().astype(np.float32)
        return out


_loaded: dict[Ge2eSettings, Ge2eEmbedder] = {}
_load_lock = threading.Lock()


def shared_ge2e(settings: Ge2eSettings | None = None) -> Ge2eEmbedder:
    """The process's encoder for ``settings``, loaded on first use (about 0.2 s)."""
    key = settings or Ge2eSettings()
    with _load_lock:
        if key not in _loaded:
            _loaded[key] = Ge2eEmbedder(key)
        return _loaded[key]
