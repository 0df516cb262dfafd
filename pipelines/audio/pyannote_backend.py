"""A ``SpeakerEmbedder`` on pyannote.audio models, for operators who have local
pyannote checkpoints (install the ``pyannote`` extra).

- ``embedding`` (required): a speaker-embedding checkpoint (``pytorch_model.bin``, or
  a directory holding one), e.g. a WeSpeaker ResNet exported by pyannote.audio.
- ``segmentation`` (optional): a segmentation checkpoint. When given, a window where
  it hears two voices at once for more than ``overlap_gate`` of its frames gets no
  embedding (a zero row, which the clustering skips): overlapped speech is the
  commonest cause of a spurious speaker.

Checkpoints are read from local paths only, never fetched from a model hub: a path
that does not exist is a configuration error, raised at startup. pyannote.audio is
imported only when the backend is built, so the server installs and runs without it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.audio.speaker_embedding import Audio, Embeddings

CHECKPOINT_FILE = "pytorch_model.bin"


class PyannoteConfigError(ValueError):
    """The pyannote backend is misconfigured (a missing checkpoint, a bad value)."""


@dataclass(frozen=True, slots=True)
class PyannoteSettings:
    embedding: str
    segmentation: str | None = None
    device: str = "auto"
    overlap_gate: float = 0.5
    window_s: float = 2.0


def checkpoint_file(path: str, role: str) -> Path:
    """The checkpoint file at ``path`` (a file, or a directory with
    ``pytorch_model.bin``), or a ``PyannoteConfigError`` saying what is wrong."""
    if not path:
        raise PyannoteConfigError(f"pyannote {role} checkpoint: no path configured")
    p = Path(os.path.expanduser(path))
    if p.is_dir():
        p = p / CHECKPOINT_FILE
    if not p.is_file():
        raise PyannoteConfigError(
            f"pyannote {role} checkpoint not found at {p} (give a local file or a "
            f"directory holding {CHECKPOINT_FILE}; checkpoints are never downloaded)"
        )
    return p


def validate(settings: PyannoteSettings) -> tuple[Path, Path | None]:
    """Both checkpoint files, checked without importing pyannote.audio."""
    if not 0.0 < settings.overlap_gate <= 1.0:
        raise PyannoteConfigError("overlap_gate must be in (0, 1]")
    if settings.window_s <= 0:
        raise PyannoteConfigError("window_s must be positive")
    if settings.device not in ("auto", "cpu", "cuda") and not settings.device.startswith("cuda:"):
        raise PyannoteConfigError(f"unknown device {settings.device!r}")
    embedding = checkpoint_file(settings.embedding, "embedding")
    segmentation = (
        checkpoint_file(settings.segmentation, "segmentation")
        if settings.segmentation is not None
        else None
    )
    return embedding, segmentation


def pyannote_available() -> bool:
    """Whether pyannote.audio is installed (found without importing it)."""
    try:
        return importlib.util.find_spec("pyannote.audio") is not None
    except (ImportError, ValueError):
        return False


class PyannoteEmbedder:
    name = "pyannote"

    def __init__(self, settings: PyannoteSettings) -> None:
        embedding_path, segmentation_path = validate(settings)
        try:
            import torch
            from pyannote.audio import Model
        except ImportError as exc:  # installed without the extra, or a broken torchaudio
            raise PyannoteConfigError(
                f"the pyannote backend needs pyannote.audio (pip install 'parley[pyannote]'): {exc}"
            ) from exc
        self.settings = settings
        self.window_s = settings.window_s
        device = settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._torch: Any = torch
        self._device = torch.device(device)
        self._model: Any = Model.from_pretrained(embedding_path, map_location=self._device)
        self._model.eval()
        self._segmentation: Any = None
        if segmentation_path is not None:
            self._segmentation = Model.from_pretrained(segmentation_path, map_location=self._device)
            self._segmentation.eval()
        self.dim = int(self._forward([np.zeros(16000, dtype=np.float32)]).shape[1])

    def _forward(self, windows: Sequence[Audio]) -> Embeddings:
        torch = self._torch
        x = torch.from_numpy(np.stack(windows)[:, None, :]).to(self._device)
        with torch.inference_mode():
            out = self._model(x)
        return np.asarray(out.detach().cpu().numpy(), dtype=np.float32)

    def _overlapped(self, windows: Sequence[Audio]) -> np.ndarray:
        """Per window: whether two voices overlap in more than ``overlap_gate`` of it."""
        torch = self._torch
        seg = self._segmentation
        x = torch.from_numpy(np.stack(windows)[:, None, :]).to(self._device)
        with torch.inference_mode():
            scores = seg(x)
            spec = seg.specifications
            if getattr(spec, "powerset", False):
                from pyannote.audio.utils.powerset import Powerset

                to_multi = Powerset(len(spec.classes), spec.powerset_max_classes)
                active = to_multi.to(self._device).to_multilabel(scores)
            else:
                active = (scores > 0.5).float()
            share = (active.sum(dim=-1) >= 2).float().mean(dim=-1)
        return np.asarray(share.cpu().numpy()) > self.settings.overlap_gate

    def embed(self, windows: Sequence[Audio]) -> Embeddings:
        out = np.zeros((len(windows), self.dim), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            by_length.setdefault(len(w), []).append(i)
        for idx in by_length.values():  # zero padding would skew pooled statistics
            group = [windows[i] for i in idx]
            emb = self._forward(group)
            if self._segmentation is not None:
                emb[self._overlapped(group)] = 0.0
            norms = np.linalg.norm(emb, axis=1, keepdims=True)
            out[idx] = np.where(norms > 0, emb / np.maximum(norms, 1e-12), 0.0)
        return out
